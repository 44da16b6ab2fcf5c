"""Plain data the API hands out: states, reasons, snapshots of objects.

These are value objects (frozen dataclasses and enums); they never talk to a
driver.  Their field names are the keys of the ``--json`` output.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field


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


@dataclass(frozen=True)
class DomainRecord:
    """A consistent snapshot of one domain, as a driver reports it."""

    uuid: str
    name: str
    id: int | None  # None when inactive
    state: DomainState
    reason: int
    persistent: bool
    autostart: bool
    managed_save: bool
    title: str
    os_type: str
    vcpus: int
    max_memory_kib: int
    memory_kib: int
    cpu_time_ns: int = 0
    has_current_snapshot: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.id is not None

    @property
    def reason_text(self) -> str:
        return reason_text(self.state, self.reason)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["state"] = self.state.key
        d["reason"] = self.reason_text
        return d


@dataclass(frozen=True)
class NodeInfo:
    model: str
    memory_kib: int
    cpus: int
    mhz: int
    nodes: int
    sockets: int
    cores: int
    threads: int

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class VcpuCount:
    """``vcpucount``: maximum/current for config and live (live None if inactive)."""

    config_maximum: int
    config_current: int
    live_maximum: int | None
    live_current: int | None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Version:
    library: str  # virtctl's version
    api_driver: str  # e.g. "TEST"
    hypervisor: str  # e.g. "TEST 0.0.2", "QEMU 7.2.0"

    def to_json(self) -> dict:
        return asdict(self)
