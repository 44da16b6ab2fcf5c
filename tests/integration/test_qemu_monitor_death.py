"""The per-VM monitor killed with ``kill -9``: the next command notices
(its pid and start time are in the record), starts a new one, and reports
what QMP reports; ``on_*``, ``shutdown --wait`` and ``reboot`` work again.
Also: a QMP ``quit`` sent by hand ends the run as ``destroyed`` (libvirt's
reason), not ``crashed``."""
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


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def kill_monitor(env: Env, name: str) -> int:
    pid = env.record(name)["monitor_pid"]
    assert isinstance(pid, int) and pid > 0
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not _gone(pid):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return pid


def test_guest_poweroff_while_the_monitor_is_dead_is_shut_off(env):
    env.ok("define", env.xml_file("m1"))
    env.ok("start", "m1")
    uuid = env.uuid("m1")
    env.wait_ready(uuid)
    kill_monitor(env, "m1")
    env.send_serial(uuid, "poweroff")  # QEMU (-no-shutdown) stops; nobody listens
    time.sleep(2)
    # the next command notices the dead monitor and reports what QMP says
    env.wait_state("m1", "shut off (shutdown)", timeout=60)
    assert not env.qemu_pids()


def test_shutdown_wait_and_reboot_work_after_the_monitor_died(env):
    env.ok("define", env.xml_file("m2"))
    env.ok("start", "m2")
    uuid = env.uuid("m2")
    env.wait_ready(uuid)
    old = kill_monitor(env, "m2")
    env.ok("reboot", "m2")  # needs a monitor to turn the poweroff into a reset
    env.wait_ready(uuid, count=2)
    assert env.domstate("m2") == "running (unpaused)" or env.domstate("m2").startswith("running")
    new = env.record("m2")["monitor_pid"]
    assert new != old and not _gone(new)
    kill_monitor(env, "m2")
    env.ok("shutdown", "m2", "--wait", "--timeout", "120")
    assert env.domstate("m2") == "shut off (shutdown)"
    assert not env.qemu_pids()


def test_on_poweroff_restart_works_after_the_monitor_died(env):
    env.ok("define", env.xml_file("m3", on_poweroff="restart"))
    env.ok("start", "m3")
    uuid = env.uuid("m3")
    env.wait_ready(uuid)
    kill_monitor(env, "m3")
    env.send_serial(uuid, "poweroff")
    time.sleep(2)
    assert env.domstate("m3").startswith("running")  # noticed: a new monitor applies on_poweroff
    env.wait_ready(uuid, count=2)
    assert len(env.qemu_pids()) == 1


def test_qmp_quit_by_hand_is_destroyed(env):
    env.ok("define", env.xml_file("q1"))
    env.ok("start", "q1", "--paused")
    env.ok("qemu-monitor-command", "q1", '{"execute":"quit"}')
    env.wait_state("q1", "shut off (destroyed)", timeout=60)
    assert not env.qemu_pids()
