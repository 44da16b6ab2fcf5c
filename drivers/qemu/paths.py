"""The files of one running domain that QEMU's command line names.

The argv builder (``argv.py``) receives a ``RuntimePaths`` and never makes
up a path itself; the driver (``state.py``) decides where these live (under
the connection's runtime directory, keyed by UUID, with unix socket paths
kept under 108 bytes).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimePaths:
    qmp: str  # QMP socket for commands (virtctl processes, one at a time, under the domain lock)
    qmp_monitor: str  # QMP socket held by the per-VM monitor process (events)
    pidfile: str  # QEMU's -pidfile: its lock tells whether QEMU is alive
    chardev_dir: str  # where serial/console/channel unix sockets and logs go
    vnc_socket: str  # VNC on a unix socket when <graphics type='vnc'> asks for no port/listen
    log: str  # QEMU's stderr/stdout log
