"""libvirt's event loop, and domain events through it (``virtctl event``).

libvirt delivers events and stream data only to a process that has an event
loop implementation registered *before* the connection is opened
(:func:`register_impl`, called by the driver before ``libvirt.open``) and a
thread running it (:func:`run_loop`, started on first need: the first
follower or console).  :class:`Follower` registers one callback per domain
event type with ``domainEventRegisterAny`` and hands the events out as the
dicts of drivers/qemu/events.py (what commands/domain_event.py prints):
``{"time", "kind": "domain", "name", "uuid", "event", "detail", ...}``,
lifecycle events with virsh's words for the event and its detail
(``Started Booted``, ``Stopped Shutdown``, ...: tables from virsh's
virsh-domain-event.c).
"""
from __future__ import annotations

import queue
import threading
import time

_lock = threading.Lock()
_registered = False
_thread: threading.Thread | None = None

# virsh's words (virshDomainEventToString and the detail tables), by libvirt's numbers
LIFECYCLE = ("Defined", "Undefined", "Started", "Suspended", "Resumed", "Stopped", "Shutdown",
             "PMSuspended", "Crashed")
DETAILS = (
    ("Added", "Updated", "Renamed", "Snapshot"),
    ("Removed", "Renamed"),
    ("Booted", "Migrated", "Restored", "Snapshot", "Event wakeup"),
    ("Paused", "Migrated", "I/O Error", "Watchdog", "Restored", "Snapshot", "API error", "Post-copy",
     "Post-copy Error"),
    ("Unpaused", "Migrated", "Snapshot", "Post-copy", "Post-copy Error"),
    ("Shutdown", "Destroyed", "Crashed", "Migrated", "Saved", "Failed", "Snapshot"),
    ("Finished", "Finished after guest request", "Finished after host request"),
    ("Memory", "Disk"),
    ("Panicked", "Crashloaded"),
)
WATCHDOG = ("none", "pause", "reset", "poweroff", "shutdown", "debug", "inject-nmi")
IO_ERROR = ("none", "pause", "report")
METADATA = ("description", "title", "element")
NET_LIFECYCLE = ("Defined", "Undefined", "Started", "Stopped")
POOL_LIFECYCLE = ("Defined", "Undefined", "Started", "Stopped", "Created", "Deleted")
AGENT_STATE = ("unknown", "connected", "disconnected")
AGENT_REASON = ("unknown", "domain started", "channel event")
DISK_CHANGE = ("changed", "dropped")
TRAY = ("opened", "closed")
BLOCK_JOB = ("unknown", "Block Pull", "Block Copy", "Block Commit", "Active Block Commit", "Backup")
BLOCK_JOB_STATUS = ("completed", "failed", "canceled", "ready")

# virsh's event type names (commands/domain_event.py EVENT_TYPES) -> libvirt's
# VIR_DOMAIN_EVENT_ID_* suffix
IDS = {
    "lifecycle": "LIFECYCLE", "reboot": "REBOOT", "rtc-change": "RTC_CHANGE", "watchdog": "WATCHDOG",
    "io-error": "IO_ERROR", "graphics": "GRAPHICS", "io-error-reason": "IO_ERROR_REASON",
    "control-error": "CONTROL_ERROR", "block-job": "BLOCK_JOB", "disk-change": "DISK_CHANGE",
    "tray-change": "TRAY_CHANGE", "pm-wakeup": "PMWAKEUP", "pm-suspend": "PMSUSPEND",
    "balloon-change": "BALLOON_CHANGE", "pm-suspend-disk": "PMSUSPEND_DISK",
    "device-removed": "DEVICE_REMOVED", "block-job-2": "BLOCK_JOB_2", "tunable": "TUNABLE",
    "agent-lifecycle": "AGENT_LIFECYCLE", "device-added": "DEVICE_ADDED",
    "migration-iteration": "MIGRATION_ITERATION", "job-completed": "JOB_COMPLETED",
    "device-removal-failed": "DEVICE_REMOVAL_FAILED", "metadata-change": "METADATA_CHANGE",
    "block-threshold": "BLOCK_THRESHOLD", "memory-failure": "MEMORY_FAILURE",
    "memory-device-size-change": "MEMORY_DEVICE_SIZE_CHANGE",
}


def _word(table, n: int) -> str:
    return table[n] if 0 <= n < len(table) else "unknown"


def register_impl(lv) -> None:
    """libvirt's default event loop implementation, once per process (before
    any connection is opened, or that connection gets no events)."""
    global _registered
    with _lock:
        if not _registered:
            lv.virEventRegisterDefaultImpl()
            _registered = True


def run_loop(lv) -> None:
    """A daemon thread running the event loop, once per process."""
    global _thread
    register_impl(lv)
    with _lock:
        if _thread is None:
            def loop():
                while True:
                    try:
                        lv.virEventRunDefaultImpl()
                    except Exception:  # noqa: BLE001 - the loop must survive one bad callback
                        time.sleep(0.01)

            _thread = threading.Thread(target=loop, name="libvirt-event-loop", daemon=True)
            _thread.start()


def _fields(kind: str, args: tuple) -> dict:
    """An event's fields from the callback's arguments (after conn, dom; before opaque)."""
    if kind == "lifecycle":
        event, detail = args[0], args[1]
        return {"lifecycle": _word(LIFECYCLE, event),
                "detail": _word(DETAILS[event], detail) if 0 <= event < len(DETAILS) else "unknown"}
    if kind == "rtc-change":
        return {"offset": args[0]}
    if kind == "watchdog":
        return {"action": _word(WATCHDOG, args[0])}
    if kind in ("io-error", "io-error-reason"):
        out = {"path": args[0], "device": args[1], "action": _word(IO_ERROR, args[2])}
        if kind == "io-error-reason":
            out["reason"] = args[3]
        return out
    if kind in ("device-removed", "device-added", "device-removal-failed"):
        return {"alias": args[0]}
    if kind == "balloon-change":
        return {"actual": args[0]}
    if kind == "metadata-change":
        return {"type": _word(METADATA, args[0]), "uri": args[1]}
    if kind in ("block-job", "block-job-2"):
        return {"disk": args[0], "job_type": _word(BLOCK_JOB, args[1]), "status": _word(BLOCK_JOB_STATUS, args[2])}
    if kind == "tray-change":
        return {"alias": args[0], "tray": _word(TRAY, args[1])}
    if kind == "migration-iteration":
        return {"iteration": args[0]}
    if kind in ("job-completed", "tunable"):
        return {"params": dict(args[0])}
    if kind == "agent-lifecycle":
        return {"state": _word(AGENT_STATE, args[0]), "reason": _word(AGENT_REASON, args[1])}
    if kind == "disk-change":
        return {"old": args[0], "new": args[1], "alias": args[2], "reason": _word(DISK_CHANGE, args[3])}
    if kind == "memory-device-size-change":
        return {"alias": args[0], "size": args[1]}
    if kind == "block-threshold":
        return {"device": args[0], "path": args[1], "threshold": args[2], "excess": args[3]}
    return {}


class Follower:
    """Domain events of one connection from now on (see base.Driver.event_follower)."""

    def __init__(self, lv, conn):
        self.lv, self.conn = lv, conn
        self._q: queue.Queue = queue.Queue()
        self._ids: list[int] = []
        self._object_ids: list[tuple[str, int]] = []
        run_loop(lv)
        from virtctl.drivers.libvirt.errors import mapped

        for kind, suffix in IDS.items():
            number = getattr(lv, f"VIR_DOMAIN_EVENT_ID_{suffix}", None)
            if number is None:  # a binding older than the event
                continue
            try:
                self._ids.append(conn.domainEventRegisterAny(None, number, self._callback(kind), None))
            except lv.libvirtError as exc:
                if exc.get_error_code() in (lv.VIR_ERR_NO_SUPPORT, lv.VIR_ERR_INVALID_ARG):
                    continue  # a server older than the event
                with mapped(lv):
                    raise

        # networks' and pools' events too (net-event, pool-event): the same queue
        for register, ids in ((conn.networkEventRegisterAny, (("NETWORK", "lifecycle"),)),
                              (getattr(conn, "storagePoolEventRegisterAny", None),
                               (("STORAGE_POOL", "lifecycle"), ("STORAGE_POOL", "refresh")))):
            for what, kind in ids:
                number = getattr(lv, f"VIR_{what}_EVENT_ID_{kind.upper()}", None)
                if register is None or number is None:
                    continue
                try:
                    self._object_ids.append((what, register(None, number, self._object_callback(what, kind), None)))
                except lv.libvirtError:
                    continue  # a server without them: net-event/pool-event then only wait

    def _object_callback(self, what: str, kind: str):
        obj_kind = "network" if what == "NETWORK" else "pool"
        words = NET_LIFECYCLE if what == "NETWORK" else POOL_LIFECYCLE

        def cb(_conn, obj, *rest):
            ev = {"time": time.time(), "kind": obj_kind, "name": obj.name(), "uuid": obj.UUIDString(),
                  "event": kind}
            if kind == "lifecycle" and rest:
                ev["lifecycle"] = _word(words, rest[0])
            self._q.put(ev)
        return cb

    def _callback(self, kind: str):
        def cb(_conn, dom, *rest):
            ev = {"time": time.time(), "kind": "domain", "name": dom.name(), "uuid": dom.UUIDString(),
                  "event": kind, "detail": None}
            try:
                ev.update(_fields(kind, rest[:-1]))
            except (IndexError, TypeError):
                pass  # a callback shape this table does not know: the event alone
            self._q.put(ev)
        return cb

    def wait(self, timeout: float | None = None) -> list[dict]:
        """The next events (one or more), or [] after ``timeout`` seconds."""
        try:
            out = [self._q.get(timeout=timeout if timeout is None or timeout > 0 else 0.0)]
        except queue.Empty:
            return []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        objs, self._object_ids = self._object_ids, []
        for what, i in objs:
            try:
                (self.conn.networkEventDeregisterAny if what == "NETWORK"
                 else self.conn.storagePoolEventDeregisterAny)(i)
            except self.lv.libvirtError:
                pass
        ids, self._ids = self._ids, []
        for i in ids:
            try:
                self.conn.domainEventDeregisterAny(i)
            except self.lv.libvirtError:
                pass  # a connection already cut
