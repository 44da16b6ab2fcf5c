"""Running domains: runtime records, liveness, cleanup, and QMP under the lock.

The runtime record (``<run>/domains/<uuid>/record.json``) is the truth about
a run.  Its ``phase`` is ``starting`` from before QEMU is spawned until the
start is committed, then ``running``.  QEMU's pid is recorded before QEMU
runs at all (launch.py holds it at a gate until then).  A ``starting``
record found by anyone who can take the domain lock is a start that died
half-way (the starter holds that lock throughout): its QEMU is killed and
the record removed, by a command on the domain or by ``list`` (which
try-locks), so a ``kill -9`` of virtctl at any point leaves either a running
domain or a shut-off one with no stray QEMU.

Fields: ``uuid run_id phase pid start_time id state reason persistent
autodestroy owner paths actions monitor_pid monitor_start_time stopping
save exit_reason fake_reboot emulator qemu_version started_at``.

Liveness (RELIABILITY.md rule 6): QEMU's pid-file lock is held by the
recorded pid, and that pid is not a zombie and started at the recorded
start time.  The monitor is alive when its recorded pid has its recorded
start time.  :func:`sync` is the one place that looks, and under the domain
lock (taken, or try-locked by readers) it repairs what a kill left:

* a dead QEMU: runtime files removed, ``exit.json`` written with the
  reason (``destroyed`` if virtctl was killing it or QMP ``quit`` was sent
  by hand, ``saved``, ``shutdown`` if the guest powered off, else
  ``crashed``); when even that cannot be written (a full disk) the record
  stays, still saying what it was, and the next command tries again;
* a save whose maker died (``save`` in the record): finished if the image
  was committed (its inode is the one recorded), else undone (recover.py);
* a dead monitor: a new one is started and what it missed is done from
  QMP's status (recover.py);
* a corrupt record: reported (``Probe.corrupt``) while QEMU holds its pid
  file, so the domain stays visible and ``destroy`` can stop it; removed
  once QEMU is dead.

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
import time

from virtctl.drivers.qemu import process
from virtctl.drivers.qemu.locks import FileLock, pidfile_holder, try_lock
from virtctl.drivers.qemu.state import (CorruptState, StateRoot, clean_stale, read_bytes, read_json, unlink_quiet,
                                       write_json)
from virtctl.errors import OperationFailed, OperationInvalid, OperationTimeout, SystemError_
from virtctl.lazy import lazy

shutil = lazy("shutil")

PHASE_STARTING = "starting"
PHASE_RUNNING = "running"
LOCK_TIMEOUT = 60.0  # a domain operation waits this long for another one to finish
SAVE_FDNAME = "virtctl-migfd"  # the descriptor name a save hands QEMU (getfd), for a repair to close


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


def monitor_alive(rec: dict) -> bool:
    pid = rec.get("monitor_pid")
    return isinstance(pid, int) and pid > 0 and process.is_running(pid, rec.get("monitor_start_time"))


def qemu_holder(state: StateRoot, uuid: str) -> int | None:
    """The live process holding the domain's pid-file lock (its QEMU), if any."""
    holder = pidfile_holder(state.pidfile(uuid))
    if holder is None:
        return None
    if holder > 0 and not process.is_running(holder, None):
        return None
    return holder


def save_committed(rec: dict) -> bool:
    """The save recorded in ``rec`` has renamed its image into place."""
    save = rec.get("save") or {}
    if not save.get("ino"):
        return False
    try:
        st = os.stat(save["path"])
    except (OSError, KeyError, TypeError):
        return False
    return (st.st_dev, st.st_ino) == (save.get("dev"), save.get("ino"))


def exit_reason(state: StateRoot, uuid: str, rec: dict, hint: str | None = None) -> str:
    """Why the run of ``rec`` ended: destroyed, saved, shutdown or crashed.

    In this order: what a command was doing (``stopping``, ``save``), an
    explicit reason (the record's ``exit_reason``, or a ``virtctl:
    exit-reason`` line of the event log), ``hint`` (what the monitor saw
    itself), then what QEMU's events imply; else ``crashed``."""
    stopping = rec.get("stopping")
    if stopping == "destroy":
        return "destroyed"
    if stopping == "save" or rec.get("save"):
        return "saved" if save_committed(rec) else "crashed"
    if rec.get("exit_reason"):
        return str(rec["exit_reason"])
    explicit = derived = None
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
            explicit = str(ev.get("reason") or "crashed")
        elif ev.get("event") == "SHUTDOWN" and not ev.get("virtctl-derived"):
            data_ = ev.get("data") or {}
            if data_.get("guest") and data_.get("reason") == "guest-shutdown":
                derived = "shutdown"
            elif data_.get("reason") == "host-qmp-quit":
                derived = derived or "destroyed"  # QMP quit sent by hand (libvirt: destroyed)
    return explicit or hint or derived or "crashed"


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
    if (rec or {}).get("helpers"):
        from virtctl.drivers.qemu.passt import kill_helpers

        kill_helpers(rec)  # passt: nothing to serve once QEMU is gone
    mon = (rec or {}).get("monitor_pid")
    if isinstance(mon, int) and mon > 0:  # it leaves by itself once QEMU is gone; do not wait
        process.signal_process(mon, (rec or {}).get("monitor_start_time"), 15)


def keep_console_logs(state: StateRoot, uuid: str) -> None:
    """Move the run's console logs (``chardev/*.log``) to ``<run>/logs/<uuid>.<name>``:
    the last run's console output outlives its runtime directory, as libvirt's logs do."""
    chardev = os.path.join(state.sock_dir(uuid), "chardev")
    try:
        names = [n for n in os.listdir(chardev) if n.endswith(".log")]
    except OSError:
        return
    for n in names:
        src, dst = os.path.join(chardev, n), os.path.join(state.logs_dir, f"{uuid}.{n}")
        try:
            os.replace(src, dst)
        except OSError:
            try:  # another file system (the short socket directory in /tmp)
                shutil.copyfile(src, dst, follow_symlinks=False)
            except OSError:
                unlink_quiet(dst, missing_ok_only=False)


def cleanup(state: StateRoot, uuid: str, rec: dict | None, reason: str | None, *,
            persistent: bool | None = None) -> None:
    """Remove a finished run's files (caller holds the domain lock, QEMU is dead).

    Writes ``exit.json`` with ``reason`` for a persistent domain; a transient
    domain's runtime directory (its only definition) goes entirely.  The
    record goes last: killed half-way, the next command finds it and finishes.
    SYSTEM_ERROR (nothing removed) when ``exit.json`` cannot be written."""
    rundir = state.run_dir(uuid)
    if (rec or {}).get("helpers"):
        from virtctl.drivers.qemu.passt import kill_helpers

        kill_helpers(rec)  # the run's helper processes (passt) end with it
    if persistent is None:
        persistent = bool(rec.get("persistent", True)) if rec else True
    if rec is None or rec.get("phase") == PHASE_RUNNING:  # a start that never committed was never Started
        from virtctl.drivers.qemu import events

        events.stopped(state, events.live_name(state, uuid), uuid, reason)
    if reason is not None and persistent:
        write_json(state.exit_file(uuid), {"reason": reason, "run_id": (rec or {}).get("run_id"),
                                           "time": time.time()})
    keep_console_logs(state, uuid)
    if rec and rec.get("taps"):  # the tap devices this run made (network/taps.py)
        from virtctl.drivers.qemu.network import taps

        taps.remove_all(rec)
    shutil.rmtree(state.sock_dir(uuid), ignore_errors=True)
    if state.sock != state.run_domains:
        try:
            os.rmdir(state.sock)  # the short /tmp directory goes with its last domain
        except OSError:
            pass
    tmp = ((rec or {}).get("save") or {}).get("tmp")
    if isinstance(tmp, str) and os.path.basename(tmp).startswith("."):
        unlink_quiet(tmp, missing_ok_only=False)  # the temp file of a save that never finished
    if not persistent:
        unlink_quiet(os.path.join(rundir, "record.json"), missing_ok_only=False)
        shutil.rmtree(rundir, ignore_errors=True)
        return
    for name in ("live.xml", "qemu.pid", "events.jsonl", ".spare", "record.json"):
        unlink_quiet(os.path.join(rundir, name), missing_ok_only=False)


class Probe:
    """What one look at a domain's runtime found.  (A plain class, not a
    dataclass: the monitor imports this module, and its start-up is on the
    path of every ``start``.)"""

    __slots__ = ("record", "last_exit", "transient_gone", "corrupt", "holder")

    def __init__(self, record: dict | None, last_exit: dict | None, transient_gone: bool = False,
                 corrupt: str | None = None, holder: int | None = None):
        self.record = record  # the committed, live run (None when not running)
        self.last_exit = last_exit  # why the last run ended (when not running)
        self.transient_gone = transient_gone  # a transient domain that has ended: it no longer exists
        self.corrupt = corrupt  # the record cannot be read (why); QEMU may run on
        self.holder = holder  # with ``corrupt``: the live QEMU holding the pid file

    def _key(self) -> tuple:
        return (self.record, self.last_exit, self.transient_gone, self.corrupt, self.holder)

    def __eq__(self, other) -> bool:
        return type(other) is Probe and self._key() == other._key()

    def __repr__(self) -> str:
        return "Probe(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    @property
    def alive(self) -> bool:
        return self.record is not None


def _ended(state: StateRoot, uuid: str, rec: dict, reason: str | None, *, locked: bool) -> Probe:
    """A run whose QEMU is dead: clean up if we hold the lock (a failed write
    leaves the record to say what happened) and report it shut off."""
    if locked:
        try:
            cleanup(state, uuid, rec, reason)
        except (SystemError_, OSError):
            pass  # e.g. no space for exit.json: the record stays, the next look retries
    return Probe(None, {"reason": reason, "run_id": rec.get("run_id")} if reason else last_exit(state, uuid),
                 transient_gone=not rec.get("persistent", True))


def _needs_repair(state: StateRoot, uuid: str, rec: dict) -> bool:
    return (rec.get("phase") != PHASE_RUNNING or not qemu_alive(state, uuid, rec)
            or bool(rec.get("save")) or not monitor_alive(rec)
            or bool(rec.get("hotplug")) or bool(rec.get("unplugs")))


def sync(state: StateRoot, uuid: str, *, locked: bool, adopt: bool = True) -> Probe:
    """Look at the domain's runtime; repair what a dead process left (see the
    module docstring).

    ``locked``: the caller holds the domain lock.  Without it the repair is
    done only if the lock is free right now (a busy lock means an operation
    is under way: the run is reported as it is).  ``adopt=False``: do not
    start a new monitor for a run whose monitor died (the caller is about to
    end the run)."""
    try:
        rec = read_record(state, uuid)
    except CorruptState as exc:
        return _corrupt(state, uuid, str(exc), locked=locked)
    if not locked:
        if rec is None or not _needs_repair(state, uuid, rec):
            return Probe(rec, None) if rec is not None else Probe(None, last_exit(state, uuid))
        lock = try_lock(state.domain_lock(uuid))
        if lock is not None:
            try:
                return sync(state, uuid, locked=True, adopt=adopt)
            finally:
                lock.release()
        if rec.get("phase") != PHASE_RUNNING:  # a start under way
            return Probe(None, last_exit(state, uuid), transient_gone=not rec.get("persistent", True))
        if not qemu_alive(state, uuid, rec):
            return _ended(state, uuid, rec, exit_reason(state, uuid, rec), locked=False)
        return Probe(rec, None)
    clean_stale(state.run_dir(uuid))
    clean_stale(state.config_dir(uuid))  # .domain.xml.*.tmp, .managed.save.*.part: their writers hold this lock
    if rec is None:
        return Probe(None, last_exit(state, uuid))
    if rec.get("phase") != PHASE_RUNNING:
        kill_stray(state, uuid, rec)
        return _ended(state, uuid, rec, None, locked=True)
    if not qemu_alive(state, uuid, rec):
        return _ended(state, uuid, rec, exit_reason(state, uuid, rec), locked=True)
    if rec.get("save") or (adopt and not monitor_alive(rec)):
        from virtctl.drivers.qemu import recover

        if rec.get("save"):
            rec = recover.finish_save(state, uuid, rec)
        if rec is not None and adopt and not monitor_alive(rec):
            rec = recover.adopt(state, uuid, rec)
        if rec is None:
            return Probe(None, last_exit(state, uuid), transient_gone=not persistent_of(state, uuid))
    if rec.get("hotplug") or rec.get("unplugs"):  # a hotplug command was killed, or a guest let go late
        from virtctl.drivers.qemu.hotplug import repair

        rec = repair.finish(state, uuid, rec)
    return Probe(rec, None)


def persistent_of(state: StateRoot, uuid: str) -> bool:
    return os.path.exists(state.domain_xml(uuid))


def _corrupt(state: StateRoot, uuid: str, why: str, *, locked: bool) -> Probe:
    """An unreadable record: report it while QEMU lives, remove it once QEMU is dead."""
    holder = qemu_holder(state, uuid)
    if holder is not None:
        return Probe(None, None, corrupt=why, holder=holder)
    lock = None if locked else try_lock(state.domain_lock(uuid))
    if not locked and lock is None:
        return Probe(None, None, corrupt=why)
    try:
        persistent = persistent_of(state, uuid)
        try:
            cleanup(state, uuid, None, None, persistent=persistent)
        except (SystemError_, OSError):
            return Probe(None, None, corrupt=why)
        return Probe(None, last_exit(state, uuid), transient_gone=not persistent)
    finally:
        if lock is not None:
            lock.release()


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


class RunningDomain:
    """A live run, seen under the domain lock (see the module docstring)."""

    __slots__ = ("state", "uuid", "record")

    def __init__(self, state: StateRoot, uuid: str, record: dict):
        self.state, self.uuid, self.record = state, uuid, record

    def __repr__(self) -> str:
        return f"RunningDomain(uuid={self.uuid!r})"

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
def running_domain(state: StateRoot, uuid: str, *, lock_timeout: float | None = LOCK_TIMEOUT,
                   adopt: bool = True):
    """Hold the domain lock and yield a :class:`RunningDomain`; OPERATION_INVALID
    ("domain is not running") if it is not.  A dead run is cleaned up first."""
    lock = domain_lock(state, uuid, lock_timeout)
    try:
        probe = sync(state, uuid, locked=True, adopt=adopt)
        if probe.corrupt:
            raise OperationFailed(f"the state of domain {uuid} is corrupt: {probe.corrupt} "
                                  "(destroy or undefine it)")
        if probe.transient_gone:
            from virtctl.errors import NoDomain

            raise NoDomain(f"Domain not found: no domain with matching uuid '{uuid}'",
                           detail={"uuid": uuid})
        if not probe.alive:
            raise OperationInvalid("Requested operation is not valid: domain is not running")
        yield RunningDomain(state, uuid, probe.record)
    finally:
        lock.release()
