"""How QEMU's command line names the host files and sockets it uses (part of
the pure argv builder).

The builder asks :class:`HostFiles` for the argument of each file the
definition names (disk images and their backing files, kernel, initrd,
character-device files, logs and sockets, the RNG device, the QMP sockets,
the pid file).  Two modes:

* ``direct`` (QEMU runs as the caller): the path itself, as before;
* ``passed`` (a confined QEMU, ``confine.py``): QEMU can open no host path,
  so virtctl opens each file before exec and the argv names a descriptor:

  ==================  ======================================================
  disk image, RNG,    ``-add-fd fd=N,set=S`` and ``/dev/fdset/S`` (QEMU's
  chardev file, log   ``qemu_open`` dups the descriptor of the right access
                      mode from set S; a writable image gets a read-write
                      and a read-only descriptor in its set)
  listening socket    ``-chardev socket,fd=N,server=on``: virtctl binds and
  (QMP, serial, ...)  listens, QEMU accepts
  outgoing socket     ``-chardev socket,fd=N``: virtctl connects
  kernel, initrd      ``/proc/self/fd/N`` (loaded with a plain ``open()``,
                      which follows the magic link but checks the file's
                      own mode: ``handover.py`` copies a file the QEMU user
                      may not read into a sealed memfd)
  pid file            no ``-pidfile`` (QEMU resolves its path with
                      ``realpath()``, which fails in our 0700 directories):
                      the child locks it before exec, so the lock belongs to
                      QEMU's pid all the same
  VNC unix socket     ``-vnc none``; the listening socket is handed over
                      after start (``getfd`` + ``display-update``)
  ==================  ======================================================

Descriptor numbers are assigned in the order the builder asks, from 3 on:
the argv is the same at every call (``domxml-to-native`` shows what
``start`` runs).  :attr:`HostFiles.requests` lists what the starter must
open and where it must put it.
"""
from __future__ import annotations

import dataclasses

from virtctl.drivers.qemu.argv_common import esc, opt

FIRST_FD = 3


@dataclasses.dataclass(frozen=True)
class Request:
    """One file the starter opens for QEMU (``passed`` mode)."""
    kind: str  # image | output | listen | connect | kernel | device | pidfile | vnc
    path: str
    fds: tuple[int, ...] = ()  # QEMU's descriptor numbers (an image: read-write, then read-only)
    fdset: int | None = None
    read_only: bool = True
    block: bool = False  # image: a block device (<disk type='block'>)
    append: bool = False  # output: append (else truncate)


class HostFiles:
    def __init__(self, *, passed: bool = False):
        self.passed = passed
        self.requests: list[Request] = []
        self.add_fd_args: list[str] = []
        self._fd = FIRST_FD
        self._set = 0

    def _fds(self, n: int) -> tuple[int, ...]:
        out = tuple(range(self._fd, self._fd + n))
        self._fd += n
        return out

    def _fdset(self, kind: str, path: str, n: int, **kw) -> str:
        fds, s = self._fds(n), self._set
        self._set += 1
        for fd in fds:
            self.add_fd_args += ["-add-fd", opt(fd=fd, set=s, opaque=f"{kind}:{path}")]
        self.requests.append(Request(kind, path, fds, s, **kw))
        return f"/dev/fdset/{s}"

    # --- what the builder asks for -------------------------------------------------------
    def image(self, path: str, *, read_only: bool, block: bool) -> str:
        """``filename`` of a ``file``/``host_device`` -blockdev node."""
        if not self.passed:
            return path
        return self._fdset("image", path, 1 if read_only else 2, read_only=read_only, block=block)

    def device(self, path: str) -> str:
        """A character device QEMU reads (``rng-random``'s ``filename``)."""
        if not self.passed:
            return path
        return self._fdset("device", path, 1)

    def output(self, path: str, *, append: bool) -> str:
        """A file QEMU writes: a chardev ``path=`` of type file, or ``logfile=``."""
        if not self.passed:
            return path
        return self._fdset("output", path, 1, read_only=False, append=bool(append))

    def kernel(self, path: str) -> str:
        """``-kernel`` / ``-initrd``."""
        if not self.passed:
            return path
        (fd,) = self._fds(1)
        self.requests.append(Request("kernel", path, (fd,)))
        return f"/proc/self/fd/{fd}"

    def socket(self, path: str, *, listen: bool) -> dict:
        """The address options of a ``-chardev socket``: ``path=`` or ``fd=``."""
        if not self.passed:
            return {"path": path}
        (fd,) = self._fds(1)
        self.requests.append(Request("listen" if listen else "connect", path, (fd,)))
        return {"fd": fd}

    def pidfile(self, path: str) -> list[str]:
        """``-pidfile PATH``, or nothing (the child locks the file for QEMU)."""
        if not self.passed:
            return ["-pidfile", path]
        (fd,) = self._fds(1)
        self.requests.append(Request("pidfile", path, (fd,), read_only=False))
        return []

    def vnc_unix(self, path: str) -> str:
        """``-vnc`` for a unix socket."""
        if not self.passed:
            return "unix:" + esc(path)
        self.requests.append(Request("vnc", path))
        return "none"
