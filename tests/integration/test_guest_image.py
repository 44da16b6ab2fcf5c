"""The test guest boots under bare QEMU (TCG) and honours the ACPI power button.

These pin down the QEMU 7.2 behaviour the daemonless driver relies on
(RELIABILITY.md rule 8).  No timing assertions: only generous timeouts.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.qemu

POWEROFF_TIMEOUT = 60


def test_guest_artifacts(test_guest):
    assert test_guest.kernel.is_file() and test_guest.initrd.is_file()
    assert "console=ttyS0" in test_guest.cmdline and "panic=-1" in test_guest.cmdline
    assert test_guest.ready_line


def test_powerdown_shuts_down_and_exits(bare_qemu):
    vm = bare_qemu()
    with vm.qmp() as q:
        assert q.command("query-status")["status"] == "running"
        vm.wait_ready()
        q.command("system_powerdown")
        ev = q.wait_event("SHUTDOWN", timeout=POWEROFF_TIMEOUT)
        assert ev["data"]["guest"] is True
        assert ev["data"]["reason"] == "guest-shutdown"
    assert vm.wait_exit(POWEROFF_TIMEOUT) == 0


def test_no_shutdown_keeps_process_until_quit(bare_qemu):
    vm = bare_qemu(["-no-shutdown"])
    with vm.qmp() as q:
        vm.wait_ready()
        q.command("system_powerdown")
        shut = q.wait_event("SHUTDOWN", timeout=POWEROFF_TIMEOUT)
        assert shut["data"]["guest"] is True
        # STOP comes after SHUTDOWN: none was read before it.
        assert not [e for e in q.events if e["event"] == "STOP"]
        q.wait_event("STOP", timeout=POWEROFF_TIMEOUT)
        assert q.command("query-status")["status"] == "shutdown"
        assert vm.proc.poll() is None
        q.command("quit")
    assert vm.wait_exit(POWEROFF_TIMEOUT) == 0


def test_guest_reboot_is_a_reset_and_boots_again(bare_qemu):
    vm = bare_qemu()
    with vm.qmp() as q:
        vm.wait_ready()
        vm.send_serial("reboot")
        ev = q.wait_event("RESET", timeout=POWEROFF_TIMEOUT)
        assert ev["data"]["guest"] is True
        vm.wait_ready(count=2)  # the ready line is printed at every boot
        assert q.command("query-status")["status"] == "running"
        q.command("quit")
    vm.wait_exit(POWEROFF_TIMEOUT)


def test_guest_crash_with_no_reboot_exits(bare_qemu):
    # panic=-1 resets at once; -no-reboot turns the reset into a shutdown.
    vm = bare_qemu(["-no-reboot"])
    with vm.qmp() as q:
        vm.wait_ready()
        vm.send_serial("crash")
        ev = q.wait_event("SHUTDOWN", timeout=POWEROFF_TIMEOUT)
        assert ev["data"]["guest"] is True
        assert ev["data"]["reason"] == "guest-reset"
    assert vm.wait_exit(POWEROFF_TIMEOUT) == 0
