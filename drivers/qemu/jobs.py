"""Jobs of the QEMU driver (save, managedsave, restore) that another
process can watch (domjobinfo) and abort (domjobabort).

The process running a job holds the domain lock for its whole length, so
the job's state is written beside it, not behind the lock:
``<run>/jobs/<uuid>.json`` while it runs (type, operation, start time,
bytes done and in total, the owner's pid), rewritten at most every 0.1 s
(no fsync: it is a progress report, not state); once it ends, the result
is ``<uuid>.completed.json`` (what ``domjobinfo --completed`` reads and,
without ``--keep-completed``, removes) and the running file is removed.
A running file whose owner is dead is a job that died with it: none.

``domjobabort`` creates ``<uuid>.abort``; the owner's polling loop sees it,
cancels the migration (``migrate_cancel``) and the job fails as cancelled.
"""
from __future__ import annotations

import os
import time

from virtctl.drivers.qemu.state import ensure_dir, read_json, unlink_quiet, write_json

_WRITE_EVERY = 0.1


def _dir(state) -> str:
    return os.path.join(state.run, "jobs")


def _path(state, uuid: str, suffix: str) -> str:
    return os.path.join(_dir(state), f"{uuid}{suffix}")


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Job:
    """``with Job(state, uuid, "save") as job: ... job.progress(done, total)``."""

    def __init__(self, state, uuid: str, operation: str):
        self.state, self.uuid, self.operation = state, uuid, operation
        self.started = time.time()
        self.processed = self.total = 0
        self._written = 0.0
        self.cancelled = False

    def _doc(self, kind: str) -> dict:
        elapsed = int((time.time() - self.started) * 1000)
        return {"type": kind, "operation": self.operation, "time_elapsed_ms": elapsed,
                "started": self.started, "pid": os.getpid(), "data_total": self.total,
                "data_processed": self.processed, "data_remaining": max(self.total - self.processed, 0)}

    def __enter__(self) -> "Job":
        ensure_dir(_dir(self.state), check=False)
        unlink_quiet(_path(self.state, self.uuid, ".abort"))
        write_json(_path(self.state, self.uuid, ".json"), self._doc("unbounded"), sync=False)
        return self

    def progress(self, processed: int, total: int) -> None:
        self.processed, self.total = processed, total
        now = time.monotonic()
        if now - self._written >= _WRITE_EVERY:
            self._written = now
            write_json(_path(self.state, self.uuid, ".json"), self._doc("unbounded"), sync=False)

    def abort_requested(self) -> bool:
        return os.path.exists(_path(self.state, self.uuid, ".abort"))

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            kind = "completed"
            if self.total:
                self.processed = self.total
        else:
            kind = "cancelled" if self.cancelled else "failed"
        doc = self._doc(kind)
        doc.pop("pid")
        if exc is not None:
            doc["error"] = getattr(exc, "message", None) or str(exc)
        try:
            write_json(_path(self.state, self.uuid, ".completed.json"), doc, sync=False)
        finally:
            unlink_quiet(_path(self.state, self.uuid, ".json"))
            unlink_quiet(_path(self.state, self.uuid, ".abort"))


_NONE = {"type": "none"}


def current(state, uuid: str) -> dict | None:
    doc = read_json(_path(state, uuid, ".json"))
    if not doc or not _alive(doc.get("pid")):
        return None
    doc = dict(doc)
    doc.pop("pid", None)
    doc["time_elapsed_ms"] = int((time.time() - doc.pop("started", time.time())) * 1000)
    return doc


def info(state, uuid: str, *, completed: bool = False, keep_completed: bool = False) -> dict:
    if completed:
        path = _path(state, uuid, ".completed.json")
        doc = read_json(path)
        if not doc:
            return dict(_NONE)
        if not keep_completed:
            unlink_quiet(path)
        doc = dict(doc)
        doc.pop("started", None)
        return doc
    return current(state, uuid) or dict(_NONE)


def request_abort(state, uuid: str) -> bool:
    """Ask the job's owner to cancel it; False if no job runs."""
    if current(state, uuid) is None:
        return False
    ensure_dir(_dir(state), check=False)
    with open(_path(state, uuid, ".abort"), "w"):
        pass
    return True
