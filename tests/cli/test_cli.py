"""The command line: global options, exit codes, bad input, JSON shapes."""
from __future__ import annotations

import json
import os
import re
import threading

import pytest

from cli_runner import run, run_installed
from vtest_paths import ROOT
from virtctl.errors import CODES

T = ("-c", "test:///default")


def test_installed_entry_point_runs():
    r = run_installed(*T, "list", "--all")
    assert r.status == 0 and " test " in r.out


def test_version_and_help():
    assert run("--version").out.strip() == __import__("virtctl").__version__
    assert "Usage: virtctl" in run("--help").out
    r = run(*T, "help")
    assert r.status == 0 and "Domain Management" in r.out and "destroy (poweroff)" in r.out
    r = run(*T, "help", "dominfo")
    assert "--domain" in r.out
    assert run(*T, "help", "nosuch").status == 2


@pytest.mark.parametrize("argv,code,status,needle", [
    (("dominfo", "nosuch"), "NO_DOMAIN", 3, "failed to get domain 'nosuch'"),
    (("dominfo",), "USAGE", 2, "requires <domain> option"),
    (("dominfo", "test", "--bogus"), "USAGE", 2, "doesn't support option --bogus"),
    (("frobnicate",), "USAGE", 2, "unknown command: 'frobnicate'"),
    (("dominfo", "test", "extra"), "USAGE", 2, "unexpected data 'extra'"),
    (("start", "test"), "OPERATION_INVALID", 4, "Domain is already active"),
    (("setmem", "test", "--", "-1"), "INVALID_ARG", 2, "malformed or out of range"),
    (("setmem", "test", "99999999999999999999"), "INVALID_ARG", 2, "malformed or out of range"),
    (("setmem", "test", "12XB"), "INVALID_ARG", 2, "malformed or out of range"),
    (("setmaxmem", "test", "1G"), "OPERATION_INVALID", 4, "active domain"),
    (("setvcpus", "test", "0"), "INVALID_ARG", 2, "Can't set 0 processors"),
    (("setvcpus", "test", "many"), "INVALID_ARG", 2, "<count>"),
    (("define", "/nonexistent/file.xml"), "NO_FILE", 3, "No such file"),
    (("shutdown", "test", "--mode", "bogus"), "INVALID_ARG", 2, "bogus"),
    (("list", "--table", "--name"), "USAGE", 2, "mutually exclusive"),
])
def test_errors_have_codes_and_statuses(argv, code, status, needle):
    r = run(*T, *argv)
    assert r.status == status, r.err
    assert needle in r.err and r.err.startswith("error: ")
    assert "Traceback" not in r.err
    j = run("--json", *T, *argv)
    assert j.status == status
    err = json.loads(j.err)["error"]
    assert err["code"] == code and err["exit_status"] == status and needle in err["message"]


def test_bad_uri():
    for uri, needle in (("nosuchdriver:///x", "no connection driver"), ("garbage", "invalid connection URI"),
                        ("test:///nonexistent/node.xml", "no such file"), ("test:///relative", "")):
        r = run("-c", uri, "list")
        assert r.status == 7, (uri, r.err)
        assert needle in r.err


def test_bad_xml_leaves_state_unchanged(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<domain type='test'><name>x</name><memory>1</memory><os><type>hvm</type></os><devices><disk type='file' device='disk'><target dev='vda' bus='virtioo'/></disk></devices></domain>")
    r = run(*T, f"define {bad}; list --all --name")
    assert "virtioo" in r.err and "bad.xml" in r.err
    assert r.out.split() == ["test"]
    hostile = tmp_path / "xxe.xml"
    hostile.write_text('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain>&x;</domain>')
    r = run(*T, "define", str(hostile))
    assert r.status == 5 and "DOCTYPE" in r.err
    fifo = tmp_path / "fifo.xml"  # read as virsh reads it (here: truncated XML from a writer)
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("<domain type='test'><name>x",), daemon=True)
    writer.start()
    r = run(*T, "define", str(fifo))
    writer.join(10)
    assert r.status == 5 and "malformed XML" in r.err
    big = tmp_path / "big.xml"
    big.write_bytes(b"<domain>" + b" " * (10 * 1024 * 1024) + b"</domain>")
    r = run(*T, "define", str(big))
    assert r.status == 5 and "limit" in r.err


def test_command_string_and_exit_status_of_last():
    r = run(*T, "destroy test; domstate test --reason")
    assert r.out == "Domain 'test' destroyed\n\nshut off (destroyed)\n\n"
    r = run(*T, "start test; domid test")  # virsh: the status is the last command's
    assert r.status == 0 and "error:" in r.err
    r = run(*T, "domid test; bogus")  # parsed whole: nothing runs
    assert r.status == 2 and r.out == ""


def test_commands_from_stdin():
    r = run(*T, stdin="destroy test\ndomstate test\n# a comment\necho done\n")
    assert r.out == "Domain 'test' destroyed\n\nshut off\n\ndone\n"


def test_readonly_and_quiet():
    r = run("-r", *T, "destroy", "test")
    assert r.status == 8 and "read only" in r.err
    assert run("-q", *T, "destroy", "test").out == ""


def test_default_uri_order(tmp_path, monkeypatch):
    from virtctl.uri import builtin_default, config_path, resolve

    assert resolve(None) == builtin_default()
    os.makedirs(os.path.dirname(config_path()))
    with open(config_path(), "w") as f:
        f.write('uri = "test:///default"\n')
    assert resolve(None) == "test:///default"
    assert run("uri").out == "test:///default\n\n"
    monkeypatch.setenv("VIRTCTL_DEFAULT_URI", "test:///from-env")
    assert resolve(None) == "test:///from-env"
    assert resolve("test:///explicit") == "test:///explicit"
    with open(config_path(), "w") as f:
        f.write("uri = [\n")
    monkeypatch.delenv("VIRTCTL_DEFAULT_URI")
    r = run("uri")
    assert r.status == 2 and "not valid TOML" in r.err


# --- JSON shapes (documented in the README) -----------------------------------

DOMAIN_KEYS = {"uuid", "name", "id", "state", "reason", "persistent", "autostart", "managed_save",
               "title", "os_type", "vcpus", "max_memory_kib", "memory_kib", "cpu_time_ns",
               "has_current_snapshot"}


def test_json_shapes():
    j = run("--json", *T, "list", "--all").json()
    assert set(j) == {"domains"} and set(j["domains"][0]) == DOMAIN_KEYS
    assert j["domains"][0]["state"] == "running" and j["domains"][0]["id"] == 1
    j = run("--json", *T, "dominfo", "test").json()
    assert set(j) == DOMAIN_KEYS | {"security", "messages"}
    assert run("--json", *T, "domstate", "test").json() == {"state": "running", "reason": "unknown"}
    assert run("--json", *T, "domid", "test").json() == {"id": 1}
    assert run("--json", *T, "domname", "1").json() == {"name": "test"}
    assert run("--json", *T, "domuuid", "test").json() == {"uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f"}
    assert run("--json", *T, "dumpxml", "test").json()["xml"].startswith("<domain type='test' id='1'>")
    assert run("--json", *T, "dumpxml", "test", "--xpath", "string(//name)").json() == {"results": ["test"]}
    assert set(run("--json", *T, "vcpucount", "test").json()) == {
        "config_maximum", "config_current", "live_maximum", "live_current"}
    assert run("--json", *T, "domblklist", "test").json() == {"disks": [
        {"type": "file", "device": "disk", "target": "vda", "source": "/guest/diskimage1"}]}
    assert run("--json", *T, "domiflist", "test").json() == {"interfaces": [
        {"interface": "testnet0", "type": "network", "source": "default", "model": None,
         "mac": "aa:bb:cc:dd:ee:ff"}]}
    assert run("--json", *T, "nodeinfo").json()["cpus"] == 16
    assert run("--json", *T, "uri").json() == {"uri": "test:///default"}
    assert set(run("--json", *T, "version").json()) == {"library", "api_driver", "hypervisor"}
    assert run("--json", *T, "destroy", "test").json() == {
        "domain": "test", "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f", "action": "destroyed",
        "result": "ok"}
    # several commands: one JSON document each
    out = run("--json", *T, "domid test; domname 1").out
    docs = [json.loads(d) for d in re.split(r"(?<=})\n(?={)", out.strip())]
    assert docs == [{"id": 1}, {"name": "test"}]


def test_no_color_and_no_ansi_when_piped():
    r = run_installed(*T, "list", "--all", env={**os.environ, "NO_COLOR": "1"})
    assert "\x1b[" not in r.out


def test_readme_exit_code_table_matches_code():
    readme = (ROOT / "README.md").read_text()
    for code, (status, _meaning) in CODES.items():
        assert re.search(rf"\|\s*`{code}`\s*\|\s*{int(status)}\s*\|", readme), f"README lacks {code} -> {int(status)}"


def test_node_file_errors(tmp_path):
    p = tmp_path / "node.xml"
    p.write_text("<node><domain type='test'><name>a</name><memory>1</memory><os><type>hvm</type></os></domain>"
                 "<domain file='missing.xml'/></node>")
    r = run("-c", f"test://{p}", "list")
    assert r.status == 7 and "missing.xml" in r.err
    p.write_text("<node><cpu><nodes>x</nodes></cpu></node>")
    r = run("-c", f"test://{p}", "nodeinfo")
    assert r.status == 7


def test_errors_coloured_only_on_a_tty(monkeypatch):
    import pexpect

    monkeypatch.delenv("NO_COLOR", raising=False)
    child = pexpect.spawn("virtctl", ["-c", "test:///default", "dominfo", "nosuch"],
                          env={**os.environ, "TERM": "xterm"}, encoding="utf-8", timeout=30)
    child.expect(pexpect.EOF)
    assert "\x1b[1;31merror:" in child.before
    child = pexpect.spawn("virtctl", ["-c", "test:///default", "dominfo", "nosuch"],
                          env={**os.environ, "TERM": "xterm", "NO_COLOR": "1"}, encoding="utf-8", timeout=30)
    child.expect(pexpect.EOF)
    assert "\x1b[" not in child.before and "error: failed to get domain" in child.before
    r = run_installed("-c", "test:///default", "dominfo", "nosuch", env={**os.environ, "TERM": "xterm"})
    assert "\x1b[" not in r.err  # not a terminal


def test_quit_stops_reading_stdin():
    r = run(*T, stdin="echo one\nquit\necho two\n")
    assert "one" in r.out and "two" not in r.out
