"""virtctl+ssh://: virtctl on another host through ssh, here an sshd of the
run's own on 127.0.0.1 (tests/sshd_fixture.py) reaching this worktree's
virtctl on test:///default.  The same commands give the same answers as the
local URI; the failures (a host that refuses, a wrong key, no remote
virtctl, another protocol, a connection cut mid-command) are CONNECT_FAILED
naming what went wrong, and leave no ssh or remote server behind; the fleet
view (`list --remote`) reports a dead host without stopping.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sshd_fixture import free_port

VIRTCTL = str(Path(sys.executable).parent / "virtctl")
LOCAL = "test:///default"
REMOTE = f"virtctl+ssh://127.0.0.1/default?driver=test&command={VIRTCTL}"


def _env(ssh_command: str, **extra) -> dict:
    env = dict(os.environ, VIRTCTL_SSH_COMMAND=ssh_command, NO_COLOR="1")
    env.update(extra)
    return env


def run(uri, *args, env=None, input=None, timeout=60):  # noqa: A002
    return subprocess.run([VIRTCTL, "-c", uri, *args], capture_output=True, text=True, env=env,
                          input=input, timeout=timeout)


def _servers() -> list[int]:
    """This worktree's remote servers still running (what a failure must not leave)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"__serve-stdio" in cmd and any(VIRTCTL.encode() in c for c in cmd):
            out.append(int(d))
    return out


def _ssh_children(config: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ssh\0") and config.encode() in cmd:
                out.append(int(d))
    return out


def _nothing_left(config: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _servers() or _ssh_children(config):
        assert time.monotonic() < deadline, f"left running: servers {_servers()}, ssh {_ssh_children(config)}"
        time.sleep(0.1)


def _no_cpu_time(text: str) -> str:
    # the test driver's CPU time grows with the clock: the one field two runs never share
    text = re.sub(r"CPU time:.*", "CPU time: X", text)
    return re.sub(r'"cpu_time_ns": \d+', '"cpu_time_ns": X', text)


COMMANDS = [
    ["list", "--all"], ["--json", "list", "--all"], ["list", "--name"], ["dominfo", "test"],
    ["--json", "dominfo", "test"], ["domstate", "--reason", "test"], ["dumpxml", "test"], ["nodeinfo"],
    ["net-list", "--all"], ["pool-list", "--all"], ["domstats", "test"], ["vcpucount", "test"],
    ["dominfo", "nosuch"], ["--json", "start", "test"],
    ["destroy test; list --all; start test; suspend test; domstate test; resume test; list"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a)[:40])
def test_same_answers_as_the_local_uri(sshd, args):
    local = run(LOCAL, *args)
    remote = run(REMOTE, *args, env=_env(sshd.ssh_command))
    assert (remote.returncode, _no_cpu_time(remote.stdout), remote.stderr) == \
        (local.returncode, _no_cpu_time(local.stdout), local.stderr)


def test_define_start_destroy_and_errors_in_one_session(sshd, tmp_path):
    xml = tmp_path / "g.xml"
    xml.write_text("<domain type='test'><name>g1</name><memory>65536</memory><os><type>hvm</type></os></domain>")
    script = (f"define {xml}; start g1; list --all; dominfo g1; destroy g1; start g1 --paused; "
              "domstate g1; destroy g1; undefine g1; list --all; dominfo g1")
    local = run(LOCAL, script)
    remote = run(REMOTE, script, env=_env(sshd.ssh_command))
    out = re.sub(r"UUID:.*", "UUID: X", _no_cpu_time(remote.stdout))
    assert "Domain 'g1' defined" in out and "paused" in out
    assert (remote.returncode, out, remote.stderr) == \
        (local.returncode, re.sub(r"UUID:.*", "UUID: X", _no_cpu_time(local.stdout)), local.stderr)


def test_completion_of_remote_domain_names(sshd):
    args = ["__complete", "--", "-c", REMOTE, "dominfo", ""]
    remote = subprocess.run([VIRTCTL, *args], capture_output=True, text=True, env=_env(sshd.ssh_command),
                            timeout=60)
    local = subprocess.run([VIRTCTL, "__complete", "--", "-c", LOCAL, "dominfo", ""], capture_output=True,
                           text=True, timeout=60)
    assert remote.stdout == local.stdout and "test\t" in remote.stdout


def test_console_in_a_pipe_and_then_more_commands(sshd):
    # the test driver's console echoes what it gets; the session became the
    # console's, and the next command of the string opens a new one
    r = subprocess.run([VIRTCTL, "-c", REMOTE, "console test --idle 1; domstate test"], input="hello-remote\n",
                       capture_output=True, text=True, env=_env(sshd.ssh_command), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "hello-remote" in r.stdout and "running" in r.stdout


def test_shell_with_completion_and_console(sshd, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = _env(sshd.ssh_command, XDG_STATE_HOME=str(tmp_path / "st"), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               TERM="xterm")
    p = pexpect.spawn(VIRTCTL, ["-c", REMOTE], env=env, encoding="utf-8", timeout=30, dimensions=(40, 160))
    try:
        prompt = r"virtctl \(virtctl\+ssh://127\.0\.0\.1/default.*\)[#$]"
        p.expect(prompt)
        p.send("list --all\r")
        p.expect(r"1\s+test\s+running")
        p.expect(prompt)
        p.send("dominfo te")
        p.send("\t")
        p.expect_exact("dominfo test")
        p.send("\r")
        p.expect(r"Persistent:\s+yes")
        p.expect(prompt)
        p.send("console test\r")
        p.expect("Escape character is")
        p.send("typed-through\r")
        p.expect("typed-through")
        p.send("\x1d")  # ^], the escape character, as locally
        p.expect(prompt)
        p.send("destroy test\r")
        p.expect("Domain 'test' destroyed")
        p.expect(prompt)
        p.send("quit\r")
        p.expect(pexpect.EOF)
    finally:
        p.close(force=True)
    _nothing_left(str(sshd.ssh_config))


# --- failures --------------------------------------------------------------------------------

def _connect_failed(r, *words):
    assert r.returncode == 7, (r.stdout, r.stderr)
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "CONNECT_FAILED"
    for w in words:
        assert w in err["message"], err["message"]
    return err


def test_a_host_that_refuses(sshd):
    cmd = sshd.ssh_command_with(port=free_port())
    r = run(REMOTE, "--json", "list", env=_env(cmd))
    _connect_failed(r, "cannot reach 127.0.0.1", "Connection refused")
    _nothing_left(cmd.split()[-1])


def test_a_wrong_key(sshd):
    cmd = sshd.ssh_command_with(key=sshd.other_key)
    r = run(REMOTE, "--json", "list", env=_env(cmd))
    _connect_failed(r, "cannot reach 127.0.0.1", "Permission denied")
    _nothing_left(cmd.split()[-1])


def test_no_virtctl_on_the_remote_host(sshd):
    uri = "virtctl+ssh://127.0.0.1/session?command=/nonexistent/bin/virtctl"
    r = run(uri, "--json", "list", env=_env(sshd.ssh_command))
    _connect_failed(r, "'/nonexistent/bin/virtctl' was not found on 127.0.0.1", "?command=")
    _nothing_left(str(sshd.ssh_config))


def test_a_remote_virtctl_of_another_protocol(sshd, tmp_path):
    fake = tmp_path / "virtctl-v99"
    fake.write_text('#!/bin/sh\necho \'{"virtctl_remote": 99, "version": "9.9"}\'\nexec cat >/dev/null\n')
    fake.chmod(0o755)
    r = run(f"virtctl+ssh://127.0.0.1/session?command={fake}", "--json", "list", env=_env(sshd.ssh_command))
    err = _connect_failed(r, "speaks remote protocol 99", "this virtctl speaks protocol 1")
    assert err["detail"]["remote_protocol"] == 99
    _nothing_left(str(sshd.ssh_config))


def test_a_remote_command_that_is_not_virtctl(sshd):
    r = run("virtctl+ssh://127.0.0.1/session?command=/bin/echo", "--json", "list", env=_env(sshd.ssh_command))
    _connect_failed(r, "does not speak virtctl's remote protocol")


def test_a_network_cut_mid_command(sshd):
    # `event` waits on the remote host; killing its ssh is the network going away
    p = subprocess.Popen([VIRTCTL, "-c", REMOTE, "--json", "event", "--all", "--loop", "--timeout", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(sshd.ssh_command))
    try:
        deadline = time.monotonic() + 30
        while not _servers():
            assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.poll() else "no server"
            time.sleep(0.05)
        time.sleep(0.5)  # the call is running on the far side now
        ssh = [pid for pid in _ssh_children(str(sshd.ssh_config))
               if Path(f"/proc/{pid}/stat").read_text().split()[3] == str(p.pid)]
        assert ssh, "no ssh child of virtctl"
        os.kill(ssh[0], signal.SIGKILL)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 7, err
    doc = json.loads(err)["error"]
    assert doc["code"] == "CONNECT_FAILED"
    assert "lost the connection to 127.0.0.1 during event_follower" in doc["message"] or \
        "lost the connection to 127.0.0.1 during #" in doc["message"], doc["message"]
    assert "killed by signal 9" in doc["message"]
    _nothing_left(str(sshd.ssh_config), timeout=20)  # the server notices its session is gone


def test_a_session_lost_between_calls_is_reported_then_reopened(sshd, monkeypatch):
    # the shell's case: one connection, the network goes away while idle
    import virtctl

    monkeypatch.setenv("VIRTCTL_SSH_COMMAND", sshd.ssh_command)
    with virtctl.open(REMOTE) as conn:
        assert [d.name for d in conn.domains()] == ["test"]
        os.kill(conn._driver._chan.proc.pid, signal.SIGKILL)
        conn._driver._chan.proc.wait()
        with pytest.raises(virtctl.VirtError) as exc:
            conn.domains()
        assert exc.value.code == "CONNECT_FAILED"
        assert "lost the connection to 127.0.0.1 during domains.list (ssh was killed by signal 9)" in exc.value.message
        assert [d.name for d in conn.domains()] == ["test"]  # the next call opens a new session
    _nothing_left(str(sshd.ssh_config))


def test_a_bad_uri_names_what_is_wrong():
    r = run("virtctl+ssh://127.0.0.1/nowhere", "--json", "list")
    _connect_failed(r, "the path must be /session, /system or /embed")
    r = run("virtctl:///session", "--json", "list")
    _connect_failed(r, "need the ssh transport")
    r = run("virtctl+ssh:///session", "--json", "list")
    _connect_failed(r, "no host")


# --- the fleet view ------------------------------------------------------------------------------

@pytest.fixture
def fleet(sshd, tmp_path, monkeypatch):
    cfg = tmp_path / "xdg-config" / "virtctl"
    cfg.mkdir(parents=True)
    dead = free_port()
    (cfg / "config.toml").write_text(
        f'[remotes.web1]\nuri = "{REMOTE}"\n\n'
        f'[remotes.web2]\nuri = "{LOCAL}"\n\n'
        f'[remotes.dead]\nuri = "virtctl+ssh://127.0.0.1:{dead}/session?command={VIRTCTL}"\n')
    return _env(sshd.ssh_command, XDG_CONFIG_HOME=str(tmp_path / "xdg-config"))


def test_connect_to_a_named_remote(fleet):
    r = run("@web1", "list", "--name", env=fleet)
    assert (r.returncode, r.stdout) == (0, "test\n\n"), r.stderr
    r = run("@nosuch", "--json", "list", env=fleet)
    _connect_failed(r, "no remote named 'nosuch'", "known: web1, web2, dead")


def test_fleet_table_with_a_dead_host(fleet):
    r = subprocess.run([VIRTCTL, "list", "--all", "--remote", "web1,dead,web2"], capture_output=True, text=True,
                       env=fleet, timeout=60)
    assert r.returncode == 7
    rows = [line.split() for line in r.stdout.splitlines()[2:] if line.strip()]
    assert r.stdout.splitlines()[0].split() == ["Host", "Id", "Name", "State"]
    assert rows == [["web1", "1", "test", "running"], ["dead", "-", "-", "error"], ["web2", "1", "test", "running"]]
    assert "error: host 'dead': cannot reach 127.0.0.1" in r.stderr and "Connection refused" in r.stderr
    ok = subprocess.run([VIRTCTL, "list", "--all", "--remote", "web1,web2", "--name"], capture_output=True,
                        text=True, env=fleet, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "web1 test\nweb2 test\n\n"), ok.stderr
    _nothing_left(fleet["VIRTCTL_SSH_COMMAND"].split()[-1])


def test_fleet_json_with_a_dead_host(fleet):
    r = subprocess.run([VIRTCTL, "--json", "list", "--all", "--remote", "all"], capture_output=True, text=True,
                       env=fleet, timeout=60)
    assert r.returncode == 7
    doc = json.loads(r.stdout)
    assert [h["host"] for h in doc["hosts"]] == ["web1", "web2", "dead"]
    assert [d["name"] for d in doc["hosts"][0]["domains"]] == ["test"]
    assert doc["hosts"][0]["domains"] == doc["hosts"][1]["domains"] or \
        _no_cpu_time(json.dumps(doc["hosts"][0]["domains"])) == _no_cpu_time(json.dumps(doc["hosts"][1]["domains"]))
    assert doc["hosts"][2]["error"]["code"] == "CONNECT_FAILED" and "domains" not in doc["hosts"][2]
    assert json.loads(r.stderr)["error"]["detail"]["hosts"] == ["dead"]


def test_fleet_unknown_remote_is_an_error(fleet):
    r = subprocess.run([VIRTCTL, "--json", "list", "--remote", "web1,nosuch"], capture_output=True, text=True,
                       env=fleet, timeout=60)
    _connect_failed(r, "no remote named 'nosuch'")


def _complete(env, *words):
    r = subprocess.run([VIRTCTL, "__complete", "--", *words], capture_output=True, text=True, env=env, timeout=60)
    return [line.split("\t")[0] for line in r.stdout.splitlines()[1:]]


def test_completion_of_named_remotes_after_c(fleet):
    assert _complete(fleet, "-c", "@") == ["@web1", "@web2", "@dead"]
    assert _complete(fleet, "-c", "@web1", "dominfo", "") == ["test"]


def test_completion_of_list_remote(fleet):
    import virtctl.cli.command_specs as specs

    if "--remote" not in Path(specs.__file__).read_text():  # tests/shell/test_generated.py fails then
        pytest.skip("virtctl/cli/command_specs.py predates list --remote: run scripts/gen_completions.py")
    assert _complete(fleet, "list", "--remote", "") == ["web1", "web2", "dead", "all"]
    assert _complete(fleet, "list", "--remote", "web1,") == ["web1,web2", "web1,dead"]
