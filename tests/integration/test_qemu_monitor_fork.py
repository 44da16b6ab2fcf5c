"""The per-VM monitor forked from virtctl's command line (process.fork_detached)
is as detached as the ``python -m ...monitor`` one: its own session without
being its leader, no controlling terminal, not the child of the command that
started it, none of that command's descriptors (above all not the domain lock),
stdin from /dev/null, output into the monitor log, cwd ``/``, default signal
handling.  (That it does its work, on_poweroff, --autodestroy, a kill -9 of it,
is what the other tests of the QEMU driver show: their commands fork it.)
A program using the API is never forked: its monitor is a new interpreter."""
from __future__ import annotations

import os
import signal
import time

import pytest

from integration.test_qemu_driver import VIRTCTL, Env

pytestmark = pytest.mark.qemu


@pytest.fixture
def env(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(tmp_path / "root", test_guest)
    yield e
    e.cleanup()


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _sig_mask(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _gone(pid: int) -> bool:
    try:
        return _stat(pid)[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_forked_monitor_is_detached(env):
    env.ok("define", env.xml_file("f1"))
    env.ok("start", "f1")
    rec = env.record("f1")
    mon = rec["monitor_pid"]
    with open(f"/proc/{mon}/comm") as f:
        assert f.read().strip() == "virtctl-monitor"  # a copy of virtctl, not a new interpreter
    st = _stat(mon)
    ppid, pgrp, session, tty = int(st[1]), int(st[2]), int(st[3]), int(st[4])
    assert tty == 0, "the monitor has a controlling terminal"
    assert session != mon and session != os.getsid(0), "own session, not its leader"
    assert pgrp == session
    with open(f"/proc/{ppid}/cmdline", "rb") as f:  # re-parented: the command that forked it is gone
        assert env.uri.encode() not in f.read()
    with open(f"/proc/{mon}/cmdline", "rb") as f:
        assert b"start" in f.read()  # the starting command's, it is a fork of it
    assert os.readlink(f"/proc/{mon}/cwd") == "/"
    fds = {int(n): os.readlink(f"/proc/{mon}/fd/{n}") for n in os.listdir(f"/proc/{mon}/fd")}
    assert fds[0] == "/dev/null"
    log = os.path.realpath(env.state.monitor_log(rec["uuid"]))
    assert fds[1] == fds[2] == log
    lock = os.path.realpath(env.state.domain_lock(rec["uuid"]))
    for n, target in fds.items():
        assert not target.endswith(".lock"), f"fd {n} of the monitor is a lock file: {target}"
        assert target != lock
    # only /dev/null (in place of every inherited descriptor), the log, and its QMP socket
    assert all(t in ("/dev/null", log) or t.startswith("socket:") for t in fds.values()), fds
    # default signal handling: nothing blocked, only what a new interpreter ignores ignored
    assert _sig_mask(mon, "SigBlk") == 0
    ignored = _sig_mask(mon, "SigIgn")
    assert ignored & ~((1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))) == 0, hex(ignored)
    # the command's lock is free: another command takes it at once
    assert env.domstate("f1") == "running (booted)"
    env.ok("destroy", "f1")
    deadline = time.monotonic() + 60
    while not _gone(mon):
        assert time.monotonic() < deadline, "the monitor outlived its QEMU"
        time.sleep(0.05)


def test_api_monitor_is_a_new_interpreter(env):
    dom = env.conn.define_domain(env.xml("f3"))
    dom.start()
    try:
        mon = env.record("f3")["monitor_pid"]
        with open(f"/proc/{mon}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert b"virtctl.drivers.qemu.monitor" in argv, argv
    finally:
        dom.destroy()
