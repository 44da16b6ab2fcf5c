"""``<interface type='user'>`` with ``<portForward>`` on real QEMU: the test
guest's httpd (port 80) fetched through a forwarded port on 127.0.0.1, with
QEMU's user networking (slirp ``hostfwd``) and with passt; the passt process
goes with the guest; a port already in use is a clear error.  Traffic stays
on 127.0.0.1.  Link state (domif-setlink/getlink) is checked in the guest's
/sys/class/net/eth0/carrier on the same guest.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
import urllib.request

import pytest

from integration.test_qemu_driver import BOOT, VIRTCTL, Env

pytestmark = pytest.mark.qemu


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _xml(env: Env, name: str, port: int, backend: str = "", guest_port: int = 80) -> str:
    iface = (f"<interface type='user'>{backend}<mac address='52:54:00:aa:bb:01'/><model type='virtio'/>"
             f"<portForward proto='tcp' address='127.0.0.1'><range start='{port}' to='{guest_port}'/>"
             "</portForward></interface>\n    ")
    text = env.xml(name).replace("<serial type='pty'/>", iface + "<serial type='pty'/>")
    p = env.root.parent / f"{name}.xml"
    p.write_text(text)
    return str(p)


def _fetch(port: int, timeout: float = BOOT) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                return r.read().decode()
        except OSError as exc:  # not up yet: slirp/passt accept, the guest resets
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"nothing answered on 127.0.0.1:{port}: {last}")


def _console_run(env: Env, uuid: str, cmd: str, timeout: float = 60) -> list[str]:
    """``run CMD`` on the guest console; the output lines of that run."""
    log = env.serial_log(uuid)
    before = log.read_bytes().decode(errors="replace").count("VIRTCTL-GUEST-DONE")
    env.send_serial(uuid, f"run {cmd}")
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_bytes().decode(errors="replace")
        if text.count("VIRTCTL-GUEST-DONE") > before:
            last = text.split("VIRTCTL-GUEST-CMD run")[-1]
            return re.findall(r"VIRTCTL-GUEST-OUT (.*?)\r?$", last, re.M)
        assert time.monotonic() < deadline, f"no answer to 'run {cmd}': {text[-800:]!r}"
        time.sleep(0.1)


@pytest.fixture
def env(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(tmp_path / "root", test_guest)
    yield e
    e.cleanup()


def test_slirp_hostfwd_reaches_guest_httpd_and_link_state(env):
    port = _free_port()
    env.ok("define", _xml(env, "pf", port))
    env.ok("start", "pf")
    uuid = env.uuid("pf")
    assert _fetch(port).strip() == "VIRTCTL-GUEST-HTTP"
    # slirp's DHCP gave the guest 10.0.2.15
    assert "VIRTCTL-GUEST-NET eth0 10.0.2.15" in env.serial_log(uuid).read_text(errors="replace")
    # only on 127.0.0.1: the rule is on QEMU's command line with that address
    cmd = open(f"/proc/{env.record('pf')['pid']}/cmdline", "rb").read().decode()
    assert f"tcp:127.0.0.1:{port}-:80" in cmd
    # the live definition keeps the forward
    live = env.ok("dumpxml", "pf")
    assert f"<range start='{port}' to='80'/>" in live or f'<range start="{port}" to="80"/>' in live

    # link state, by target-less MAC and by alias-free index name
    assert env.ok("domif-getlink", "pf", "52:54:00:aa:bb:01").split() == ["52:54:00:aa:bb:01", "up"]
    assert _console_run(env, uuid, "cat /sys/class/net/eth0/carrier") == ["1"]
    assert "successfully" in env.ok("domif-setlink", "pf", "52:54:00:aa:bb:01", "down")
    assert json.loads(env.ok("--json", "domif-getlink", "pf", "52:54:00:aa:bb:01")) == \
        {"interface": "52:54:00:aa:bb:01", "state": "down"}
    assert _console_run(env, uuid, "cat /sys/class/net/eth0/carrier") == ["0"]
    assert "<link state='down'/>" in env.ok("dumpxml", "pf").replace('"', "'")
    assert "<link state" not in env.ok("dumpxml", "pf", "--inactive")
    env.ok("domif-setlink", "pf", "52:54:00:aa:bb:01", "up")
    assert _console_run(env, uuid, "cat /sys/class/net/eth0/carrier") == ["1"]
    # --config: the persistent definition only
    env.ok("domif-setlink", "pf", "52:54:00:aa:bb:01", "down", "--config")
    assert "<link state='down'/>" in env.ok("dumpxml", "pf", "--inactive").replace('"', "'")
    assert env.ok("domif-getlink", "pf", "52:54:00:aa:bb:01").split()[1] == "up"
    r = env.run("domif-setlink", "pf", "52:54:00:aa:bb:99", "down")
    assert r.returncode != 0 and "52:54:00:aa:bb:99" in r.stderr
    env.ok("destroy", "pf")


def test_passt_reaches_guest_httpd_and_ends_with_the_guest(env):
    if shutil.which("passt") is None:
        pytest.skip("passt is not installed (Debian: passt)")
    port = _free_port()
    env.ok("define", _xml(env, "pp", port, "<backend type='passt'/>"))
    env.ok("start", "pp")
    rec = env.record("pp")
    helpers = rec["helpers"]
    assert [h["kind"] for h in helpers] == ["passt"]
    pid = helpers[0]["pid"]
    cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")
    assert f"127.0.0.1/{port}:80" in cmd
    assert _fetch(port).strip() == "VIRTCTL-GUEST-HTTP"
    env.ok("destroy", "pp")
    state = _state(pid)
    assert state in ("gone", "Z"), f"passt {pid} still running after destroy ({state})"
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))
    # a guest that powers itself off: the monitor's clean-up ends passt too
    env.ok("start", "pp")
    pid = env.record("pp")["helpers"][0]["pid"]
    uuid = env.uuid("pp")
    env.wait_ready(uuid)
    env.send_serial(uuid, "poweroff")
    env.wait_state("pp", "shut off (shutdown)", timeout=60)
    deadline = time.monotonic() + 20
    while _state(pid) not in ("gone", "Z"):
        assert time.monotonic() < deadline, f"passt {pid} outlived its guest"
        time.sleep(0.1)


def _state(pid: int) -> str:
    """The process state letter of ``pid``, or "gone"."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


@pytest.mark.parametrize("backend", ["", "<backend type='passt'/>"])
def test_port_in_use_is_a_clear_error_and_nothing_runs(env, backend):
    if backend and shutil.which("passt") is None:
        pytest.skip("passt is not installed (Debian: passt)")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env.ok("define", _xml(env, "busy", port, backend))
        r = env.run("start", "busy")
        assert r.returncode == 1
        assert f"port {port}/tcp on 127.0.0.1 is already in use" in r.stderr
    assert env.domstate("busy") == "shut off (unknown)" or env.domstate("busy").startswith("shut off")
    assert env.qemu_pids() == []


def test_bad_forwards_are_refused_before_start(env):
    cases = [
        ("<portForward proto='tcp' address='::1'><range start='2222' to='22'/></portForward>",
         "slirp listens on IPv4 only"),
        ("<portForward proto='tcp'/>", "without a <range>"),
        ("<portForward proto='tcp'><range start='3000' end='2000'/></portForward>", "end is below start"),
        ("<portForward proto='tcp'><range start='10' end='20'/><range start='10' end='20' exclude='yes'/>"
         "</portForward>", "leave no port"),
        ("<portForward proto='tcp' dev='eth0'><range start='2222'/></portForward>", "not an interface"),
        ("<portForward proto='tcp'><range start='60000' end='65000' to='65000'/></portForward>", "past 65535"),
    ]
    for i, (pf, why) in enumerate(cases):
        text = env.xml(f"bad{i}").replace(
            "<serial type='pty'/>", f"<interface type='user'>{pf}</interface><serial type='pty'/>")
        p = env.root.parent / f"bad{i}.xml"
        p.write_text(text)
        r = env.run("domxml-to-native", "qemu-argv", "--xml", str(p))
        assert r.returncode != 0 and why in r.stderr, (pf, r.stderr)


@pytest.mark.parametrize("point", ["start:helpers", "start:spawned", "start:qemu-up"])
def test_kill_9_during_start_leaves_no_passt(env, point):
    """virtctl killed at each step of a passt start: the next command (list)
    finds the 'starting' record and ends passt with QEMU."""
    if shutil.which("passt") is None:
        pytest.skip("passt is not installed (Debian: passt)")
    port = _free_port()
    env.ok("define", _xml(env, "pk", port, "<backend type='passt'/>"))
    env.env = {**os.environ, "VIRTCTL_KILL_AT": point}
    r = env.run("start", "pk")
    env.env = None
    assert r.returncode == -9, r.stderr
    pids = _passt_under(env)  # (no look-up before this: it would clean up already)
    assert len(pids) == 1, pids
    env.ok("list", "--all")
    assert env.domstate("pk").startswith("shut off")
    assert _state(pids[0]) in ("gone", "Z")
    assert _passt_under(env) == [] and env.qemu_pids() == []


def _passt_under(env: Env) -> list[int]:
    """Live passt processes whose socket is under this test's state."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or _state(int(d)) in ("gone", "Z"):
            continue
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "passt" in os.path.basename(cmd[0]) and any(a.startswith(env.state.sock) for a in cmd):
            out.append(int(d))
    return out
