"""The per-connection event journal: what ``virtctl event`` follows.

No daemon hands events out, so every process that changes something writes
it down: the per-VM monitors (what QEMU reports: a guest powering off,
pausing on an I/O error, rebooting, ...) and the commands (define, undefine,
rename, start, the end of a run; networks and pools).  One function does it,
:func:`emit` -- ``events.emit(state, kind, name, uuid, event, detail)``.

Layout (``<run>`` is the state root's runtime directory, see state.py)::

    <run>/events/journal.jsonl     one JSON object per line, oldest first
    <run>/events/journal.jsonl.1   the previous generation (rotation)
    <run>/events/.lock             flock held while appending / rotating

A line is written with one ``write`` on an ``O_APPEND`` descriptor while the
lock is held, so lines never interleave and a reader sees whole lines (it
keeps a partial tail until its newline arrives).  When the journal passes
:data:`MAX_BYTES` it is renamed to ``journal.jsonl.1`` (replacing the older
one) under the lock: retention is the last one to two ``MAX_BYTES``.

:class:`Follower` waits with inotify on the directory (ctypes on libc's
``inotify_init1``/``inotify_add_watch``; a 0.25 s stat poll only where
inotify is missing) and reads from where the journal ended when it started:
the watch is set before that position is taken, so nothing written after
the follower started is missed, across rotations too (it drains the old
file through its open descriptor before moving to the new one).

Imported by the monitor: no lxml, no API.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import time

MAX_BYTES = 1024 * 1024
MAX_LINE = 64 * 1024  # a longer line is cut to its essentials (never expected)
DIR = "events"
JOURNAL = "journal.jsonl"

# inotify(7)
IN_MODIFY = 0x002
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000


def journal_dir(state) -> str:
    return os.path.join(state.run, DIR)


def journal_path(state) -> str:
    return os.path.join(journal_dir(state), JOURNAL)


def _ensure_dir(d: str) -> None:
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass


def emit(state, kind: str, name: str | None, uuid: str | None, event: str, detail: str | None = None,
         **extra) -> bool:
    """Append one event; never raises (an event that cannot be written must
    not fail the change it reports).  ``kind``: domain, network, pool;
    ``event``: virsh's event type for the domain's extra events (reboot,
    rtc-change, ...) or the lifecycle event (Started, Stopped, ...) with
    its ``detail`` (Booted, Destroyed, ...).  ``extra``: more fields
    (offset, action, alias, ...).  Returns whether it was written."""
    rec = {"time": time.time(), "kind": kind, "name": name, "uuid": uuid, "event": event,
           "detail": detail, "pid": os.getpid()}
    rec.update(extra)
    line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
    if len(line) > MAX_LINE:
        rec = {k: rec[k] for k in ("time", "kind", "name", "uuid", "event", "detail", "pid")}
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
    try:
        d = journal_dir(state)
        _ensure_dir(d)
        lock = os.open(os.path.join(d, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = os.path.join(d, JOURNAL)
            try:
                if os.stat(path).st_size + len(line) > MAX_BYTES:
                    os.replace(path, path + ".1")
            except FileNotFoundError:
                pass
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        finally:
            os.close(lock)  # releases the flock
        return True
    except OSError:
        return False


def live_name(state, uuid: str) -> str | None:
    """A running domain's name, from its live definition (``<name>`` is its
    first child; no XML parser: the monitor imports this)."""
    import html
    import re

    try:
        with open(state.live_xml(uuid), "rb") as f:
            m = re.search(rb"<name>([^<]*)</name>", f.read(65536))
    except OSError:
        return None
    return html.unescape(m.group(1).decode("utf-8", "replace")) if m else None


def lifecycle(state, name: str | None, uuid: str | None, event: str, detail: str) -> bool:
    """A domain lifecycle event (virsh: ``event 'lifecycle' ...: EVENT DETAIL``)."""
    return emit(state, "domain", name, uuid, "lifecycle", detail, lifecycle=event)


# why a run ended (runtime.exit_reason) -> the lifecycle detail of its Stopped event
STOPPED_DETAIL = {"shutdown": "Shutdown", "destroyed": "Destroyed", "crashed": "Crashed",
                  "saved": "Saved", "failed": "Failed", "migrated": "Migrated", "snapshot": "Snapshot"}


def stopped(state, name, uuid, reason: str | None) -> bool:
    return lifecycle(state, name, uuid, "Stopped", STOPPED_DETAIL.get(reason or "", "Failed"))


class _Inotify:
    """A minimal ctypes binding of inotify(7); None from :meth:`open` where absent."""

    def __init__(self, fd: int):
        self.fd = fd

    @classmethod
    def open(cls, directory: str) -> "_Inotify | None":
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)  # the libc Python runs on (no find_library: it forks)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                return None
            wd = libc.inotify_add_watch(fd, os.fsencode(directory),
                                        IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)
            if wd < 0:
                os.close(fd)
                return None
            return cls(fd)
        except (OSError, AttributeError):
            return None

    def wait(self, timeout: float | None) -> None:
        select.select([self.fd], [], [], timeout)
        try:
            while os.read(self.fd, 65536):  # drain; the events' content does not matter
                pass
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise

    def close(self) -> None:
        os.close(self.fd)


class Follower:
    """Reads the events appended to a journal after it was made.

    ``wait(timeout)`` returns the next batch of event dicts (possibly empty
    when ``timeout`` seconds passed; ``None``: wait for ever).  Sleeps in
    ``select`` between writes: no CPU is used while nothing happens."""

    def __init__(self, state, *, from_start: bool = False):
        self.dir = journal_dir(state)
        _ensure_dir(self.dir)
        self.path = os.path.join(self.dir, JOURNAL)
        self.notify = _Inotify.open(self.dir)  # first: a write after this point wakes us
        self.fd: int | None = None
        self.ino: int | None = None
        self.tail = b""
        self._open(at_end=not from_start)

    def _open(self, *, at_end: bool) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            self.fd = self.ino = None
            return
        self.fd, self.ino = fd, os.fstat(fd).st_ino
        if at_end:
            os.lseek(fd, 0, os.SEEK_END)

    def _read(self) -> list[dict]:
        out: list[dict] = []
        if self.fd is None:
            return out
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self.tail += chunk
        *lines, self.tail = self.tail.split(b"\n")
        for ln in lines:
            try:
                ev = json.loads(ln)
            except ValueError:
                continue  # a line cut by a crash: skip it
            if isinstance(ev, dict):
                out.append(ev)
        return out

    def poll(self) -> list[dict]:
        """What is there now, without waiting (rotation included)."""
        out = self._read()
        try:
            ino = os.stat(self.path).st_ino
        except FileNotFoundError:
            ino = None
        if ino is not None and ino != self.ino:  # rotated (or first created): drain, then switch
            out += self._read()
            if self.fd is not None:
                os.close(self.fd)
            self.tail = b""
            self._open(at_end=False)
            out += self._read()
        return out

    def wait(self, timeout: float | None = None) -> list[dict]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            got = self.poll()
            if got:
                return got
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return []
            if self.notify is not None:
                self.notify.wait(left)
            else:
                time.sleep(0.25 if left is None else min(0.25, left))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.notify is not None:
            self.notify.close()
            self.notify = None


class IdleFollower:
    """A follower that never sees anything (a driver whose changes no other
    process can make: the test driver).  Sleeps; uses no CPU."""

    def wait(self, timeout: float | None = None) -> list[dict]:
        if timeout is None:
            while True:
                time.sleep(3600)
        time.sleep(max(0.0, timeout))
        return []

    def close(self) -> None:
        pass
