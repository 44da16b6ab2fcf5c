"""The guest agent's commands through the libvirt driver: the cases of
test_virsh_agent.py (tests/cli/wide/agent.txt, the node file, -q and -r; less
those its parse stage refuses, which reach no driver) run as
``virtctl -c libvirt:test:///...`` (libvirt's own test driver, through the
binding: virDomainGetFSInfo, virDomainFSFreeze, ..., virDomainQemuAgentCommand)
against ``virsh -c test:///...``: the same stdout and the same success.

Here libvirt itself answers, so nothing differs on purpose (LIBVIRT_DIFFERS is
empty); the exit codes are virtctl's own (its codes table), only success or
failure is compared.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from virsh_side import both, needs_virsh, verdict

libvirt = pytest.importorskip("libvirt", reason="the libvirt binding is not installed (pip install '.[libvirt]')")

HERE = Path(__file__).parent


def _module(name: str):
    # test modules are not importable by name under --import-mode=importlib
    spec = importlib.util.spec_from_file_location(f"_lv_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _parses(cmd: str) -> bool:
    """Whether virtctl's parse stage accepts the command string (one that it
    refuses opens no connection: no driver is involved)."""
    from virtctl.cli.main import parse_command
    from virtctl.cli.session import Session
    from virtctl.cli.split import split_commands
    from virtctl.errors import VirtError

    session = Session(uri="test:///default")
    try:
        for argv in split_commands(cmd):
            parse_command(session, argv)
    except VirtError:
        return False
    return True


_agent = _module("test_virsh_agent")
# test_virsh_agent.py's cases, less those refused before any driver is asked (a
# syntax error in the string: they are the same whatever the URI, and compared there)
CASES = [c for c in _agent.CASES if _parses(c[2])]

# case -> the words of README's "differs on purpose" item; libvirt itself answers here, so none
LIBVIRT_DIFFERS: dict = {}


def _one(case, home: Path) -> str | None:
    where, options, cmd = case
    uri = "test:///default" if where == "default" else f"test://{home / 'n.xml'}"
    theirs, ours = both(uri, cmd, home, options=options, ours_uri="libvirt:" + uri)
    return verdict(f"{where} {' '.join(options)}: {cmd!r}", theirs, ours, differs=case in LIBVIRT_DIFFERS)


@needs_virsh[0]
@needs_virsh[1]
def test_every_agent_case_through_libvirt_as_virsh(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "n.xml").write_text(_agent.NODE)
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(lambda c: _one(c, tmp_path), CASES) if p]
    assert len(CASES) >= 130
    assert not problems, f"{len(problems)} of {len(CASES)} cases:\n" + "\n".join(problems)


def test_libvirt_errors_map_to_virtctl_codes():
    from virtctl.drivers.libvirt.errors import code_of

    assert code_of(libvirt, libvirt.VIR_ERR_AGENT_UNRESPONSIVE) == "AGENT_UNRESPONSIVE"
    assert code_of(libvirt, libvirt.VIR_ERR_OPERATION_TIMEOUT) == "OPERATION_TIMEOUT"


def test_api_through_libvirt():
    """The contract's shapes from libvirt's answers (fsInfo's tuples, the frozen
    counts, fSTrim's unsigned minimum, guestVcpus's silent failure)."""
    from virtctl.api.connection import Connection
    from virtctl.errors import NotSupported

    with Connection("libvirt:test:///default") as c:
        dom = c.lookup_domain("test")
        assert dom.fs_info() == [{"mountpoint": "/", "name": "vda1", "fstype": "ext4", "devaliases": ["vda"]},
                                 {"mountpoint": "/boot", "name": "vda2", "fstype": "ext4", "devaliases": ["vda"]}]
        assert (dom.fs_freeze(("/",)), dom.fs_freeze(), dom.fs_thaw(), dom.fs_thaw()) == (1, 1, 2, 0)
        dom.fs_trim(None, minimum=2**64 - 1)
        assert dom.guest_hostname() == "testhost"
        dom.set_user_password("root", "x", encrypted=True)
        for call in (dom.guest_vcpus, dom.guest_info, lambda: dom.agent_command('{"execute":"guest-ping"}'),
                     lambda: dom.set_agent_timeout(3), lambda: dom.set_guest_vcpus("1", enable=True)):
            with pytest.raises(NotSupported):
                call()
