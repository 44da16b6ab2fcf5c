"""The guest agent's commands (qemu-agent-command, guest-agent-timeout, guestinfo,
domfsinfo, domfsfreeze, domfsthaw, domfstrim, domhostname, set-user-password,
guestvcpus) on the test driver against virsh: every case of
tests/cli/wide/agent.txt on test:///default, cases on a node file (disks of
other kinds, a domain without disks), with -q and with -r; the same stdout
and the same success or failure.  Then the JSON shapes and the API's checks.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from virsh_side import both, needs_virsh, verdict

HERE = Path(__file__).parent
WIDE = HERE / "wide"

# domain a: a cdrom first, then sdb (the one libvirt's test driver reports); b: no
# disk at all; c: only a cdrom
NODE = """<node>
  <domain type="test"><name>a</name><memory>1024</memory><vcpu>2</vcpu><os><type>hvm</type></os>
    <devices><disk type='file' device='cdrom'><source file='/x/c'/><target dev='hdc'/></disk>
    <disk type='file'><source file='/x/a'/><target dev='sdb'/></disk>
    <disk type='file'><source file='/x/b'/><target dev='vdb'/></disk></devices></domain>
  <domain type="test"><name>b</name><memory>1024</memory><vcpu>3</vcpu><os><type>hvm</type></os></domain>
  <domain type="test"><name>c</name><memory>1024</memory><vcpu>3</vcpu><os><type>hvm</type></os>
    <devices><disk type='file' device='cdrom'><source file='/x/c'/><target dev='hdc'/></disk></devices></domain>
</node>
"""


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


NODE_CASES = [
    "domfsinfo a; domfsinfo b; domfsinfo c",
    "domhostname a; domhostname b; domhostname c --source lease",
    "domfsfreeze b; domfsthaw c; domfsfreeze a /boot; domfsthaw a",
    "domfsfreeze b /; domfsthaw b; domfsthaw b",
    "domfstrim b --mountpoint /boot; domfstrim c; set-user-password c root x",
    "destroy a; domfsinfo a; domfsfreeze a; start a; domfsthaw a",
    "guestinfo a; guestvcpus b; qemu-agent-command c x; guest-agent-timeout a --timeout 1",
]
QUIET_CASES = [
    "domfsinfo test", "domfsfreeze test; domfsthaw test", "set-user-password test root x",
    "domhostname test", "domfstrim test",
]
READONLY_CASES = [
    "domfsinfo test", "domfsfreeze test", "domfsthaw test", "domfstrim test", "domhostname test",
    "set-user-password test a b", "guestinfo test", "qemu-agent-command test x", "guest-agent-timeout test",
    "guestvcpus test", "guestvcpus test --cpulist 1 --enable",
]

# (where, options, command): "default" test:///default, "node" NODE
CASES: list[tuple[str, tuple[str, ...], str]] = (
    [("default", (), c) for c in _lines(WIDE / "agent.txt")]
    + [("node", (), c) for c in NODE_CASES]
    + [("node", ("-q",), "domfsinfo a; domfsinfo b")]
    + [("default", ("-q",), c) for c in QUIET_CASES]
    + [("default", ("-r",), c) for c in READONLY_CASES]
)

# case -> why virtctl differs (each the words of an item of README's "differs on
# purpose"); none: these commands answer as libvirt's test driver does
DIFFERS: dict[tuple[str, tuple[str, ...], str], str] = {}


def _one(case, home: Path) -> str | None:
    where, options, cmd = case
    uri = "test:///default" if where == "default" else f"test://{home / 'n.xml'}"
    theirs, ours = both(uri, cmd, home, options=options)
    return verdict(f"{where} {' '.join(options)}: {cmd!r}", theirs, ours, differs=case in DIFFERS)


@needs_virsh[0]
@needs_virsh[1]
def test_every_agent_case_as_virsh(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "n.xml").write_text(NODE)
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(lambda c: _one(c, tmp_path), CASES) if p]
    assert len(CASES) >= 150
    assert not problems, f"{len(problems)} of {len(CASES)} cases:\n" + "\n".join(problems)


def test_differs_have_a_readme_reason():
    readme = " ".join((HERE.parents[1] / "README.md").read_text().split())
    section = readme[readme.index("differs from virsh on purpose"):]
    for case, words in DIFFERS.items():
        assert case in CASES and words in section, case


# --- JSON ---------------------------------------------------------------------------------
def _run(*argv: str, uri: str = "test:///default"):
    from virsh_side import VIRTCTL

    return subprocess.run([VIRTCTL, "-c", uri, "--json", *argv], capture_output=True, text=True)


def _json(cmd: str):
    r = _run(cmd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_json_shapes():
    fs = _json("domfsinfo test")
    assert fs == {"domain": "test", "filesystems": [
        {"mountpoint": "/", "name": "vda1", "fstype": "ext4", "devaliases": ["vda"]},
        {"mountpoint": "/boot", "name": "vda2", "fstype": "ext4", "devaliases": ["vda"]}]}
    r = _run("domfsfreeze test /; domfsfreeze test; domfsthaw test")
    docs = [json.loads(d) for d in r.stdout.replace("}\n{", "}\x00{").split("\x00")]
    assert [(d["action"], d["filesystems"]) for d in docs] == [("fsfreeze", 1), ("fsfreeze", 1), ("fsthaw", 2)]
    assert all(d["result"] == "ok" and d["domain"] == "test" for d in docs)
    assert _json("domhostname test") == {"domain": "test", "hostname": "testhost"}
    pw = _json("set-user-password test root secret --encrypted")
    assert pw["action"] == "password-set" and pw["user"] == "root" and pw["encrypted"] is True
    assert "secret" not in json.dumps(pw)
    trim = _json("domfstrim test --minimum 4096 --mountpoint /boot")
    assert (trim["action"], trim["mountpoint"], trim["minimum"]) == ("fstrim", "/boot", 4096)


@pytest.mark.parametrize("cmd,feature", [
    ("guestinfo test --os", "virDomainGetGuestInfo"),
    ("qemu-agent-command test {}", "virDomainQemuAgentCommand"),
    ("guest-agent-timeout test --timeout 3", "virDomainAgentSetResponseTimeout"),
    ("guestvcpus test", "virDomainGetGuestVcpus"),
    ("guestvcpus test --cpulist 1 --disable", "virDomainSetGuestVcpus"),
])
def test_not_supported_as_json(cmd, feature):
    r = _run(cmd)
    assert r.returncode == 6 and r.stdout == ""
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "NOT_SUPPORTED" and err["detail"]["feature"] == feature


def test_errors_as_json():
    r = _run("domfsfreeze test /nope")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 4 and err["code"] == "OPERATION_INVALID"
    assert err["context"] == "Unable to freeze filesystems" and err["message"].endswith("mount point not found: /nope")
    r = _run("domhostname test --source agent")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 6 and err["context"] == "failed to get hostname"
    assert err["detail"]["function"] == "testDomainGetHostname" and err["detail"]["flags"] == 2
    r = _run("qemu-agent-command test --timeout 0 x")
    assert r.returncode == 2 and json.loads(r.stderr)["error"]["message"] == "timeout must be positive"


# --- the API ------------------------------------------------------------------------------
def test_api_checks_arguments_in_libvirts_words():
    from virtctl.api.connection import Connection
    from virtctl.errors import InvalidArg, NotSupported, OperationDenied

    with Connection("test:///default") as c:
        dom = c.lookup_domain("test")
        assert dom.fs_freeze(["/"]) == 1 and dom.fs_freeze() == 1 and dom.fs_thaw("/boot") == 1
        with pytest.raises(InvalidArg, match="less than the minimum '-2'"):
            dom.set_agent_timeout(-3)
        with pytest.raises(InvalidArg, match="less than the minimum"):
            dom.agent_command('{"execute":"guest-ping"}', timeout=-5)
        with pytest.raises(InvalidArg):
            dom.set_agent_timeout(True)
        with pytest.raises(InvalidArg, match="Failed to parse bitmap '1-'"):
            dom.set_guest_vcpus("1-", enable=True)
        with pytest.raises(NotSupported):
            dom.set_guest_vcpus("0-1,^0", enable=True)
        with pytest.raises(InvalidArg, match="unknown guest information type 'cpu'"):
            dom.guest_info(["cpu"])
        with pytest.raises(InvalidArg, match="Unknown data source 'arp'"):
            dom.guest_hostname(source="arp")
        for bad in (-1, 2**64, 1.5, True):
            with pytest.raises(InvalidArg):
                dom.fs_trim(minimum=bad)
        dom.fs_trim("/", minimum=2**64 - 1)
        with pytest.raises(InvalidArg):
            dom.fs_freeze([1])
    with Connection("test:///default", readonly=True) as c:
        dom = c.lookup_domain("test")
        for call in (dom.fs_info, dom.fs_freeze, dom.fs_thaw, dom.fs_trim, dom.guest_vcpus, dom.guest_info,
                     dom.guest_hostname, lambda: dom.set_user_password("root", "x"),
                     lambda: dom.agent_command("{}"), lambda: dom.set_agent_timeout(5),
                     lambda: dom.set_guest_vcpus("1", enable=False)):
            with pytest.raises(OperationDenied):
                call()


def test_cpulist_syntax():
    from virtctl.api.domain import parse_cpulist
    from virtctl.errors import InvalidArg

    assert parse_cpulist("0-3,^2") == [0, 1, 3]
    assert parse_cpulist(" 1 , 3") == [1, 3]
    assert parse_cpulist("4095") == [4095]
    for bad in ("", " ", "x", "1-", "3-1", "4096", "^1-2", "1,,2", "-1", "1.5"):
        with pytest.raises(InvalidArg):
            parse_cpulist(bad)


def test_frozen_state_is_the_domain_objects():
    """A domain defined anew under the same UUID starts thawed, as libvirt's
    test driver keeps the state with the domain object."""
    from virtctl.api.connection import Connection

    with Connection("test:///default") as c:
        dom = c.lookup_domain("test")
        assert dom.fs_freeze() == 2
        xml = dom.xml(inactive=True)
        dom.destroy()
        dom.start()
        assert dom.fs_freeze() == 0  # a restart keeps it, as libvirt's
        dom.destroy()
        dom.undefine()
        dom = c.define_domain(xml)
        dom.start()
        assert dom.fs_freeze() == 2


def test_help_has_examples():
    from virsh_side import VIRTCTL

    for cmd in ("qemu-agent-command", "guest-agent-timeout", "guestinfo", "domfsinfo", "domfsfreeze",
                "domfsthaw", "domfstrim", "domhostname", "set-user-password", "guestvcpus"):
        out = subprocess.run([VIRTCTL, "help", cmd], capture_output=True, text=True).stdout
        assert "Example" in out and f"virtctl {cmd} web1" in out, cmd


def test_completion_offers_running_domains_and_options():
    from virtctl.cli.complete import Metadata, complete

    meta = Metadata.from_dict({"uri": "test:///default", "domains": [
        {"name": "web1", "state": "running"}, {"name": "web2", "state": "shut-off"}]})
    for cmd in ("qemu-agent-command", "guest-agent-timeout", "guestinfo", "domfsinfo", "domfsfreeze",
                "domfsthaw", "domfstrim", "domhostname", "set-user-password", "guestvcpus"):
        assert complete([cmd], "", meta).values() == ["web1"], cmd
    assert complete(["domhostname", "web1", "--source"], "", meta).values() == ["lease", "agent"]
    assert "--interface" in complete(["guestinfo", "web1"], "--", meta).values()


_ANSWERS = ['{"return":{}}', '{"return":[]}', '{"return":1.5e3}', '{"return":-0}', '{"return":{"a":{"b":[[]]}}}',
            '{"return":{"version":"7.2.0","supported_commands":[{"enabled":true,"name":"guest-ping",'
            '"success-response":true},{"enabled":false,"name":"x"}]}}',
            '{"return":"a/b\\u00e9\\n\\t\\u0001\\"\\\\"}', '{"return": [1, [2, {}], {"a": null}]}']


@pytest.mark.parametrize("pretty", [False, True])
def test_agent_answer_printed_as_libvirt_prints_it(pretty):
    """qemu-agent-command's text: libvirt's own JSON printer (virJSONValueToString,
    a private symbol of libvirt.so, called through ctypes) is the judge."""
    import ctypes
    import ctypes.util

    from virtctl.commands.domain_agent import _libvirt_json

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("virt") or "libvirt.so.0")
        parse, show = lib.virJSONValueFromString, lib.virJSONValueToString
    except (OSError, AttributeError):
        pytest.skip("libvirt.so with its JSON functions is not available")
    parse.restype, parse.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    show.restype, show.argtypes = ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_bool]
    for text in _ANSWERS:
        assert _libvirt_json(text, pretty) == show(parse(text.encode()), pretty).decode(), text


# --- the command layer over a driver with an agent (what the QEMU driver answers) ---------
@pytest.fixture
def agent(monkeypatch):
    """The test driver given an agent that answers: the calls it gets are recorded."""
    from virtctl.drivers.test.agent import TestAgentMixin

    calls = []

    def record(name, result=None):
        def method(self, uuid, *args, **kwargs):
            calls.append((name, args, kwargs))
            return result
        return method

    monkeypatch.setattr(TestAgentMixin, "agent_command",
                        record("agent_command", '{"version":"7.2.0","list":[],"x":1.50}'))
    monkeypatch.setattr(TestAgentMixin, "set_agent_timeout", record("set_agent_timeout"))
    monkeypatch.setattr(TestAgentMixin, "guest_info", record("guest_info", [
        ("user.count", 1), ("user.0.name", "root"), ("user.0.login-time", 1700000000123),
        ("os.id", "debian"), ("timezone.offset", 3600), ("disk.0.partition", False), ("hostname", "g1")]))
    monkeypatch.setattr(TestAgentMixin, "guest_vcpus", record("guest_vcpus", [
        ("vcpus", "0-3"), ("online", "0-2"), ("offlinable", "1-3")]))
    monkeypatch.setattr(TestAgentMixin, "set_guest_vcpus", record("set_guest_vcpus"))
    return calls


def test_qemu_agent_command_output_and_timeouts(agent):
    from cli_runner import run

    r = run("-c", "test:///default", "qemu-agent-command test '{\"execute\":\"guest-info\"}'; "
            "qemu-agent-command test --async a b; qemu-agent-command test --block x; "
            "qemu-agent-command test --timeout 7 x --pretty")
    assert r.status == 0, r.err
    assert r.out == ('{"return":{"version":"7.2.0","list":[],"x":1.50}}\n\n' * 3
                     + '{\n  "return": {\n    "version": "7.2.0",\n    "list": [\n\n    ],\n    "x": 1.50\n  }\n}\n\n')
    assert [(a, k) for _n, a, k in agent] == [(('{"execute":"guest-info"}',), {"timeout": None}),
                                            (("a b",), {"timeout": 0}), (("x",), {"timeout": -2}),
                                            (("x",), {"timeout": 7})]
    r = run("-c", "test:///default", "--json", "qemu-agent-command", "test", "{}")
    assert r.json() == {"domain": "test", "return": {"version": "7.2.0", "list": [], "x": 1.5}}


def test_guest_agent_timeout_values(agent):
    from cli_runner import run

    r = run("-c", "test:///default", "guest-agent-timeout test; guest-agent-timeout test --timeout -1; "
            "guest-agent-timeout test --timeout 30")
    assert (r.status, r.out) == (0, "\n\n\n"), r.err
    assert [a for _n, a, _k in agent] == [(-2,), (-1,), (30,)]
    r = run("-c", "test:///default", "guest-agent-timeout test --timeout -3")
    assert r.status == 2 and "less than the minimum '-2'" in r.err and len(agent) == 3


def test_guestinfo_and_guestvcpus_lines(agent):
    from cli_runner import run

    r = run("-c", "test:///default", "guestinfo test --user --disk; guestvcpus test; guestvcpus test 1-2 --disable")
    assert r.status == 0, r.err
    assert r.out == ("user.count          : 1\nuser.0.name         : root\nuser.0.login-time   : 1700000000123\n"
                     "os.id               : debian\ntimezone.offset     : 3600\ndisk.0.partition    : no\n"
                     "hostname            : g1\n\n"
                     "vcpus          : 0-3\nonline         : 0-2\nofflinable     : 1-3\n\n\n")
    assert agent[0] == ("guest_info", (("users", "disks"),), {})
    assert agent[2] == ("set_guest_vcpus", ("1-2",), {"enable": False})
    info = run("-c", "test:///default", "--json", "guestinfo", "test").json()
    assert info["info"]["disk.0.partition"] is False and info["info"]["user.count"] == 1
    assert run("-c", "test:///default", "--json", "guestvcpus", "test").json() == {
        "domain": "test", "vcpus": "0-3", "online": "0-2", "offlinable": "1-3"}


@pytest.mark.parametrize("answer", ['{"return":{"a":1.50}}', '{"a":1.50}'])
def test_qemu_agent_command_takes_the_answer_or_its_return(monkeypatch, answer):
    """A driver may give the return value (the contract) or the whole answer; the
    same is printed.  No answer (--async): nothing."""
    from cli_runner import run
    from virtctl.drivers.test.agent import TestAgentMixin

    monkeypatch.setattr(TestAgentMixin, "agent_command", lambda self, uuid, command, timeout=None:
                        "" if timeout == 0 else answer)
    r = run("-c", "test:///default", "qemu-agent-command test x; qemu-agent-command test --async x")
    assert (r.status, r.out) == (0, '{"return":{"a":1.50}}\n\n\n'), r.err
    assert run("-c", "test:///default", "--json", "qemu-agent-command", "test", "x").json()["return"] == {"a": 1.5}


@needs_virsh[0]
@needs_virsh[1]
def test_frozen_state_after_undefine_and_define_as_virsh(tmp_path):
    from virsh_side import compare, run
    from vtest_paths import VIRSH

    xml = tmp_path / "t.xml"
    xml.write_text(run([VIRSH, "-c", "test:///default", "dumpxml", "test", "--inactive"], tmp_path).stdout)
    compare("test:///default", f"domfsfreeze test /boot; destroy test; start test; domfsfreeze test; destroy test; "
            f"undefine test; define {xml}; start test; domfsfreeze test; domfsthaw test /", tmp_path)
