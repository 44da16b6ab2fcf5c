"""Running domains: runtime records, liveness, cleanup, and QMP under the lock.

The runtime record (``<run>/domains/<uuid>/record.json``) is the truth about
a run.  Its ``phase`` is ``starting`` from before QEMU is spawned until the
start is committed, then ``running``.  A ``starting`` record found by anyone
holding the domain lock is a start that died half-way: its QEMU (still
frozen by ``-S``) is killed and the record removed, so a ``kill -9`` of
virtctl at any point leaves either a running domain or a shut-off one with
no stray QEMU.

Fields: ``uuid run_id phase pid start_time id state reason persistent
autodestroy paths actions monitor_pid monitor_start_time stopping
fake_reboot emulator qemu_version started_at``.

Liveness (RELIABILITY.md rule 6): QEMU's pid-file lock is held by the
recorded pid, and that pid is not a zombie and started at the recorded
start time.  A dead QEMU is cleaned up by whoever first holds the domain
lock (the monitor, or any command), with the reason derived here:
``destroyed`` if virtctl was killing it, ``shutdown`` if the monitor saw
the guest power off, else ``crashed``.

For commands built on the runtime (save, console, screenshot, monitor
commands, stats), use::

    with runtime.running_domain(state, uuid) as run:   # domain lock held, alive
        run.record, run.paths, run.chardev_dir
        with run.qmp() as q:                           # the command QMP socket
            q.command("query-status")

This module is imported by the monitor process: no lxml, no API imports.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass

from virtctl.drivers.qemu import process
from virtctl.drivers.qemu.locks import FileLock, pidfile_holder, try_lock
from virtctl.drivers.qemu.state import CorruptState, StateRoot, read_bytes, read_json, unlink_quiet, write_json
from virtctl.errors import OperationFailed, OperationInvalid, OperationTimeout

PHASE_STARTING = "starting"
PHASE_RUNNING = "running"
LOCK_TIMEOUT = 60.0  # a domain operation waits this long for another one to finish


# --- records ---------------------------------------------------------------------------
def read_record(state: StateRoot, uuid: str) -> dict | None:
    """The runtime record, None if none; CorruptState if unreadable."""
    rec = read_json(state.record_file(uuid))
    if rec is not None and rec.get("uuid") != uuid:
        raise CorruptState(f"'{state.record_file(uuid)}' names another domain")
    return rec


def write_record(state: StateRoot, uuid: str, rec: dict) -> None:
    write_json(state.record_file(uuid), rec)


def update_record(root: StateRoot, uuid: str, rec: dict, /, **changes) -> dict:
    """Write ``rec`` with ``changes`` (caller holds the domain lock); returns it."""
    rec.update(changes)
    write_record(root, uuid, rec)
    return rec


def last_exit(state: StateRoot, uuid: str) -> dict | None:
    try:
        return read_json(state.exit_file(uuid))
    except CorruptState:
        return None


# --- liveness --------------------------------------------------------------------------
def qemu_alive(state: StateRoot, uuid: str, rec: dict) -> bool:
    pid = rec.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    holder = pidfile_holder(state.pidfile(uuid))
    if holder is None or holder not in (-1, pid):
        return False
    return process.is_running(pid, rec.get("start_time"))


def exit_reason(state: StateRoot, uuid: str, rec: dict) -> str:
    """Why the run of ``rec`` ended: destroyed, shutdown or crashed."""
    if rec.get("stopping") == "destroy":
        return "destroyed"
    reason = "crashed"
    try:
        data = read_bytes(state.events_file(uuid)) or b""
    except CorruptState:
        data = b""
    for line in data.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ev, dict) or ev.get("run_id", rec.get("run_id")) != rec.get("run_id"):
            continue
        if ev.get("virtctl") == "exit-reason":
            reason = str(ev.get("reason") or reason)
        elif ev.get("event") == "SHUTDOWN" and (ev.get("data") or {}).get("guest") \
                and (ev.get("data") or {}).get("reason") == "guest-shutdown":
            reason = "shutdown"
    return reason


def append_event(state: StateRoot, uuid: str, event: dict) -> None:
    """Append one JSON line to the run's event log (the monitor's file)."""
    line = (json.dumps(event, sort_keys=True) + "\n").encode()
    fd = os.open(state.events_file(uuid), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                 | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# --- cleanup ---------------------------------------------------------------------------
def kill_stray(state: StateRoot, uuid: str, rec: dict | None) -> None:
    """Kill a QEMU of an uncommitted start (or one nobody records) and wait for it."""
    pid, started = (rec or {}).get("pid"), (rec or {}).get("start_time")
    if isinstance(pid, int) and pid > 0 and process.is_running(pid, started):
        process.kill_and_wait(pid, started, term_timeout=0.0, kill_timeout=10.0)
    holder = pidfile_holder(state.pidfile(uuid))
    if holder and holder > 0 and process.is_running(holder, None):
        st = process.start_time(holder)
        process.signal_process(holder, st, 9)
        process.wait_gone(holder, st, 10.0, lambda: pidfile_holder(state.pidfile(uuid)) == holder)


def cleanup(state: StateRoot, uuid: str, rec: dict | None, reason: str | None) -> None:
    """Remove a finished run's files (caller holds the domain lock, QEMU is dead).

    Writes ``exit.json`` with ``reason`` for a persistent domain; a transient
    domain's runtime directory (its only definition) goes entirely."""
    rundir = state.run_dir(uuid)
    persistent = bool(rec.get("persistent", True)) if rec else True
    if rec is not None and reason is not None and persistent:
        write_json(state.exit_file(uuid), {"reason": reason, "run_id": rec.get("run_id"),
                                           "time": time.time()})
    for name in ("record.json", "live.xml", "qemu.pid", "events.jsonl"):
        unlink_quiet(os.path.join(rundir, name))
    shutil.rmtree(state.sock_dir(uuid), ignore_errors=True)
    if state.sock != state.run_domains:
        try:
            os.rmdir(state.sock)  # the short /tmp directory goes with its last domain
        except OSError:
            pass
    if not persistent:
        shutil.rmtree(rundir, ignore_errors=True)


@dataclass
class Probe:
    """What one look at a domain's runtime found."""

    record: dict | None  # the committed, live run (None when not running)
    last_exit: dict | None  # why the last run ended (when not running)
    transient_gone: bool = False  # a transient domain that has ended: it no longer exists

    @property
    def alive(self) -> bool:
        return self.record is not None


def sync(state: StateRoot, uuid: str, *, locked: bool) -> Probe:
    """Look at the domain's runtime; clean up a dead run.

    ``locked``: the caller holds the domain lock (then stray QEMUs of
    half-done starts are killed too).  Without it the cleanup is done only
    if the lock is free right now; the answer is the same either way."""
    rec = read_record(state, uuid)
    if rec is None:
        return Probe(None, last_exit(state, uuid))
    if rec.get("phase") != PHASE_RUNNING:
        if locked:
            kill_stray(state, uuid, rec)
            cleanup(state, uuid, rec, None)
        return Probe(None, last_exit(state, uuid), transient_gone=not rec.get("persistent", True))
    if qemu_alive(state, uuid, rec):
        return Probe(rec, None)
    reason = exit_reason(state, uuid, rec)
    if locked:
        cleanup(state, uuid, rec, reason)
    else:
        lock = try_lock(state.domain_lock(uuid))
        if lock is not None:
            try:
                again = read_record(state, uuid)
                if again is not None and again.get("run_id") == rec.get("run_id") \
                        and not qemu_alive(state, uuid, again):
                    cleanup(state, uuid, again, reason)
            finally:
                lock.release()
    return Probe(None, {"reason": reason, "run_id": rec.get("run_id")},
                 transient_gone=not rec.get("persistent", True))


# --- QMP for commands -------------------------------------------------------------------
def qmp_error(exc: Exception, what: str) -> Exception:
    """A VirtError for a QMP failure while doing ``what``."""
    from virtctl.drivers.qemu.qmp import QMPClosed, QMPCommandError, QMPTimeout

    if isinstance(exc, QMPTimeout):
        return OperationTimeout(f"{what}: QEMU did not answer on its monitor in time "
                                "(is it stopped or busy?)")
    if isinstance(exc, QMPClosed):
        return OperationFailed(f"{what}: QEMU closed its monitor connection (did it exit?)")
    if isinstance(exc, QMPCommandError):
        return OperationFailed(f"{what}: QEMU refused: {exc.desc or exc.error_class}",
                               detail={"qmp_class": exc.error_class, "qmp_command": exc.command})
    if isinstance(exc, OSError):
        return OperationFailed(f"{what}: cannot reach QEMU's monitor socket: {exc.strerror or exc}")
    return OperationFailed(f"{what}: {exc}")


def connect_qmp(record: dict, *, timeout: float = 10.0, which: str = "qmp"):
    """A negotiated QMP connection to the run's command socket (``which='qmp'``).

    Raises a VirtError (OPERATION_TIMEOUT / OPERATION_FAILED) on failure."""
    from virtctl.drivers.qemu.qmp import QMP, QMPError

    path = record["paths"][which]
    try:
        return QMP(path, timeout=timeout)
    except (QMPError, OSError) as exc:
        raise qmp_error(exc, "connecting to QEMU") from None


@dataclass
class RunningDomain:
    """A live run, seen under the domain lock (see the module docstring)."""

    state: StateRoot
    uuid: str
    record: dict

    @property
    def paths(self) -> dict:
        return self.record["paths"]

    @property
    def chardev_dir(self) -> str:
        return self.record["paths"]["chardev_dir"]

    def qmp(self, timeout: float = 10.0):
        return connect_qmp(self.record, timeout=timeout)

    def update(self, **changes) -> None:
        update_record(self.state, self.uuid, self.record, **changes)


def domain_lock(state: StateRoot, uuid: str, timeout: float | None = LOCK_TIMEOUT) -> FileLock:
    """The domain's lock, taken (OPERATION_TIMEOUT if another operation holds it too long)."""
    lock = FileLock(state.domain_lock(uuid), what="domain lock (another operation is running on it)")
    lock.acquire(timeout=timeout)
    return lock


@contextlib.contextmanager
def running_domain(state: StateRoot, uuid: str, *, lock_timeout: float | None = LOCK_TIMEOUT):
    """Hold the domain lock and yield a :class:`RunningDomain`; OPERATION_INVALID
    ("domain is not running") if it is not.  A dead run is cleaned up first."""
    lock = domain_lock(state, uuid, lock_timeout)
    try:
        probe = sync(state, uuid, locked=True)
        if probe.transient_gone:
            from virtctl.errors import NoDomain

            raise NoDomain(f"Domain not found: no domain with matching uuid '{uuid}'",
                           detail={"uuid": uuid})
        if not probe.alive:
            raise OperationInvalid("Requested operation is not valid: domain is not running")
        yield RunningDomain(state, uuid, probe.record)
    finally:
        lock.release()
