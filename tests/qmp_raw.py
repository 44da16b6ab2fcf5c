"""The QMP client for tests and benchmarks: the product's own
(``virtctl.drivers.qemu.qmp``), which bare-QEMU tests also exercise.

    with QMP("/run/x/qmp.sock", timeout=5) as q:
        q.command("query-status")            # -> {"status": "running", ...}
        q.command("system_powerdown")
        q.wait_event("SHUTDOWN", timeout=30)  # -> the event dict
"""
from __future__ import annotations

from typing import Any

from virtctl.drivers.qemu.qmp import QMP, QMPClosed, QMPCommandError, QMPError, QMPTimeout

__all__ = ["QMP", "QMPError", "QMPTimeout", "QMPCommandError", "QMPClosed", "qmp_command"]


def qmp_command(path: str, name: str, arguments: dict | None = None,
                timeout: float = 5.0) -> Any:
    """One-shot: connect, negotiate, run one command, close."""
    with QMP(path, timeout=timeout) as q:
        return q.command(name, arguments)
