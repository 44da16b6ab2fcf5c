"""Locks of the QEMU driver: ``flock`` on lock files, and QEMU's pid-file lock.

Lock order (documented in the README; never take them the other way round):

1. the connection's global lock (``run/locks/global.lock``): name/UUID
   uniqueness during define, create, rename and undefine;
2. one domain's lock (``run/locks/<uuid>.lock``), held for a whole operation
   on that domain (start, destroy, shutdown request, setmem, ...);
3. leaf locks, held for one read-modify-write and nothing else inside them:
   the domain-id counter (``run/next-id``).

A *try*-lock (:func:`try_lock`: never waits, so it cannot deadlock) of a
domain lock may be taken while holding anything: readers such as ``list``
take one to repair what a dead process left (runtime.sync) and give up when
the lock is busy.  Whoever holds a lock may remove the temp files its
writers leave (state.clean_stale): none of them can be live.

``flock`` (not ``fcntl.lockf``): POSIX record locks vanish when the process
closes *any* descriptor of the file, flock locks belong to the open file
description and the kernel drops them when the holder dies.  Lock files are
never deleted (deleting a lock file while someone waits on it splits the lock
in two).

QEMU's ``-pidfile`` is locked by QEMU with a POSIX write lock for as long as
it lives (released by the kernel even on SIGKILL).  :func:`pidfile_holder`
asks the kernel who holds it (``F_GETLK``) without taking it, so checking
liveness can never make a starting QEMU fail with "Cannot lock pid file".
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct
import time

from virtctl.errors import OperationTimeout, SystemError_

# struct flock on Linux/x86_64 and aarch64: short, short, off_t, off_t, pid_t (+ padding)
_FLOCK = "hhqqi4x"


class FileLock:
    """An exclusive (or shared) ``flock`` on ``path``; a context manager.

    ``timeout=None`` waits forever, ``0`` tries once.  Raises
    OPERATION_TIMEOUT naming ``what`` when the lock stays busy.
    """

    def __init__(self, path: str, *, what: str = "lock", shared: bool = False):
        self.path, self.what, self.shared = path, what, shared
        self.fd: int | None = None

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock; True on success, False if busy and ``timeout == 0``."""
        if self.fd is not None:
            raise RuntimeError(f"{self.path}: lock already held")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SystemError_(f"cannot open lock file '{self.path}': {exc.strerror}") from None
        op = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            if timeout is None:
                fcntl.flock(fd, op)
            else:
                deadline = time.monotonic() + timeout
                delay = 0.002
                while True:
                    try:
                        fcntl.flock(fd, op | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                            raise
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        if timeout == 0:
                            return False
                        raise OperationTimeout(
                            f"timed out after {timeout:g}s waiting for the {self.what}",
                            detail={"lock": self.path})
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
        except BaseException:
            try:
                os.close(fd)
            except OSError:
                pass
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> "FileLock":
        if self.fd is None:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_lock(path: str, what: str = "lock") -> FileLock | None:
    """The lock if it is free now, else None."""
    lock = FileLock(path, what=what)
    return lock if lock.acquire(timeout=0) else None


def pidfile_holder(path: str) -> int | None:
    """The pid holding a write lock on QEMU's pid file, None if nobody does.

    Returns -1 if the holder is unknown (an open-file-description lock).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        l_type, _, _, _, l_pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    finally:
        os.close(fd)
    if l_type == fcntl.F_UNLCK:
        return None
    return l_pid if l_pid > 0 else -1
