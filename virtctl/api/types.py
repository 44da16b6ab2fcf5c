"""Plain data the API hands out: states, reasons, snapshots of objects.

These are value objects (frozen records, virtctl/record.py, and enums); they never talk to a
driver.  Their field names are the keys of the ``--json`` output.
"""
from __future__ import annotations

import enum

from virtctl.record import Record


class DomainState(enum.IntEnum):
    """libvirt's domain states, with the same numbers (node files use them)."""

    NOSTATE = 0
    RUNNING = 1
    BLOCKED = 2
    PAUSED = 3
    SHUTDOWN = 4  # being shut down
    SHUTOFF = 5
    CRASHED = 6
    PMSUSPENDED = 7

    @property
    def text(self) -> str:
        return _STATE_TEXT[self]

    @property
    def key(self) -> str:
        """The machine name used in JSON: ``running``, ``shut-off``, ..."""
        return _STATE_KEY[self]

    @property
    def active(self) -> bool:
        return self not in (DomainState.SHUTOFF, DomainState.NOSTATE)


_STATE_TEXT = {
    DomainState.NOSTATE: "no state",
    DomainState.RUNNING: "running",
    DomainState.BLOCKED: "idle",
    DomainState.PAUSED: "paused",
    DomainState.SHUTDOWN: "in shutdown",
    DomainState.SHUTOFF: "shut off",
    DomainState.CRASHED: "crashed",
    DomainState.PMSUSPENDED: "pmsuspended",
}
_STATE_KEY = {s: t.replace(" ", "-") for s, t in _STATE_TEXT.items()}

# Reasons per state, in libvirt's numbering (index = reason number) and virsh's words.
REASONS: dict[DomainState, tuple[str, ...]] = {
    DomainState.NOSTATE: ("unknown",),
    DomainState.RUNNING: ("unknown", "booted", "migrated", "restored", "from snapshot",
                          "unpaused", "migration canceled", "save canceled", "event wakeup",
                          "crashed", "post-copy", "post-copy failed"),
    DomainState.BLOCKED: ("unknown",),
    DomainState.PAUSED: ("unknown", "user", "migrating", "saving", "dumping", "I/O error",
                         "watchdog", "from snapshot", "shutting down", "creating snapshot",
                         "crashed", "starting up", "post-copy", "post-copy failed"),
    DomainState.SHUTDOWN: ("unknown", "user"),
    DomainState.SHUTOFF: ("unknown", "shutdown", "destroyed", "crashed", "migrated", "saved",
                          "failed", "from snapshot", "daemon"),
    DomainState.CRASHED: ("unknown", "panicked"),
    DomainState.PMSUSPENDED: ("unknown",),
}


def reason_text(state: DomainState, reason: int) -> str:
    names = REASONS[state]
    return names[reason] if 0 <= reason < len(names) else "unknown"


def reason_number(state: DomainState, text: str) -> int:
    return REASONS[state].index(text)


class DomainRecord(Record):
    """A consistent snapshot of one domain, as a driver reports it.

    uuid, name; id (None when inactive); state, reason; persistent, autostart,
    managed_save; title, os_type, vcpus, max_memory_kib, memory_kib;
    cpu_time_ns, has_current_snapshot, extra (a dict)."""

    _fields = ("uuid", "name", "id", "state", "reason", "persistent", "autostart", "managed_save",
               "title", "os_type", "vcpus", "max_memory_kib", "memory_kib", "cpu_time_ns",
               "has_current_snapshot", "extra")
    _defaults = {"cpu_time_ns": 0, "has_current_snapshot": False, "extra": dict}
    __slots__ = _fields

    @property
    def active(self) -> bool:
        return self.id is not None

    @property
    def reason_text(self) -> str:
        return reason_text(self.state, self.reason)

    def to_json(self) -> dict:
        d = self._asdict()
        d.pop("extra")
        d["state"] = self.state.key
        d["reason"] = self.reason_text
        return d


class NodeInfo(Record):
    _fields = ("model", "memory_kib", "cpus", "mhz", "nodes", "sockets", "cores", "threads")
    __slots__ = _fields

    def to_json(self) -> dict:
        return self._asdict()


class VcpuCount(Record):
    """``vcpucount``: maximum/current for config and live (live None if inactive)."""

    _fields = ("config_maximum", "config_current", "live_maximum", "live_current")
    __slots__ = _fields

    def to_json(self) -> dict:
        return self._asdict()


class Version(Record):
    """library: virtctl's version; api_driver: e.g. "TEST"; hypervisor: e.g.
    "TEST 0.0.2", "QEMU 7.2.0"."""

    _fields = ("library", "api_driver", "hypervisor")
    __slots__ = _fields

    def to_json(self) -> dict:
        return self._asdict()
