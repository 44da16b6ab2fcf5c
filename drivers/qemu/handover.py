"""Opening, for a confined QEMU, every file its command line names by
descriptor (``argv_files.Request``), and handing them over.

virtctl opens each file as root, after checking it is of the kind the
definition says (a disk ``type='file'`` must be a regular file, ``'block'`` a
block device, an RNG source a character device; a FIFO can never make a
start hang: everything is opened ``O_NONBLOCK``).  QEMU gets the descriptor
and nothing else: it cannot reopen the path, nor any other file of ours.
Nothing on the host changes owner or mode, so a crash of virtctl (or of
QEMU) leaves nothing to restore; the sockets, logs and pid file live in the
domain's own runtime directories, cleaned up like any run's.

Sockets: virtctl removes a stale socket file (never anything else: QEMU
would delete whatever is at a listening path), binds, listens; QEMU accepts.
"""
from __future__ import annotations

import errno
import os
import socket
import stat

from virtctl.errors import OperationFailed

_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


class Handover:
    """The open descriptors of one start; close it when QEMU has them."""

    def __init__(self, user):
        self.user = user
        self.fds: dict[int, int] = {}  # QEMU's number -> ours
        self.pidfile_fd: int | None = None  # QEMU's number of the pid file (locked by the child)
        self.vnc: list[socket.socket] = []  # listening sockets handed over after start
        self._socks: list[socket.socket] = []

    # --- opening ------------------------------------------------------------------------------
    def open(self, requests) -> "Handover":
        try:
            for req in requests:
                getattr(self, "_open_" + req.kind)(req)
        except BaseException:
            self.close()
            raise
        return self

    def _put(self, number: int, fd: int) -> None:
        self.fds[number] = fd

    def _open_image(self, req) -> None:
        want = stat.S_ISBLK if req.block else stat.S_ISREG
        kind = "a block device" if req.block else "a regular file"
        modes = (os.O_RDWR, os.O_RDONLY) if not req.read_only else (os.O_RDONLY,)
        for number, mode in zip(req.fds, modes):
            self._put(number, _open_checked(req.path, mode, want, kind, "disk image"))

    def _open_device(self, req) -> None:
        self._put(req.fds[0], _open_checked(req.path, os.O_RDONLY, stat.S_ISCHR, "a character device",
                                            "random number source"))

    def _open_output(self, req) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
        flags |= os.O_APPEND if req.append else os.O_TRUNC
        try:
            fd = os.open(req.path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a FIFO nobody reads (O_NONBLOCK: we never wait for one)
                raise OperationFailed(f"'{req.path}' (an output file of the domain) is not a regular file") from None
            raise OperationFailed(f"cannot open '{req.path}' for QEMU's output: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OperationFailed(f"'{req.path}' (an output file of the domain) is not a regular file")
        os.set_blocking(fd, True)
        self._put(req.fds[0], fd)

    def _open_pidfile(self, req) -> None:
        fd = os.open(req.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._put(req.fds[0], fd)
        self.pidfile_fd = req.fds[0]

    def _open_kernel(self, req) -> None:
        fd = _open_checked(req.path, os.O_RDONLY, stat.S_ISREG, "a regular file", "kernel/initrd")
        if not _readable_by(os.fstat(fd), self.user) or _has_acl(fd):
            # QEMU reopens /proc/self/fd/N, and that checks the file's own mode:
            # give it a sealed copy it may read (lives as long as that QEMU)
            fd = _sealed_copy(fd, req.path)
        self._put(req.fds[0], fd)

    def _open_listen(self, req) -> None:
        self._put(req.fds[0], self._listen(req.path).fileno())

    def _open_connect(self, req) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socks.append(s)
        s.settimeout(10)
        try:
            s.connect(req.path)
        except OSError as exc:
            raise OperationFailed(f"cannot connect to the unix socket '{req.path}': {exc.strerror or exc}") from None
        s.setblocking(True)
        self._put(req.fds[0], s.fileno())

    def _open_vnc(self, req) -> None:
        self.vnc.append(self._listen(req.path))

    def _listen(self, path: str) -> socket.socket:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise OperationFailed(f"'{path}' exists and is not a socket: refusing to replace it "
                                      "with the domain's socket")
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socks.append(s)
        try:
            s.bind(path)
            s.listen(16)
        except OSError as exc:
            raise OperationFailed(f"cannot listen on the unix socket '{path}': {exc.strerror or exc}") from None
        return s

    # --- after QEMU is up ---------------------------------------------------------------------
    def after_start(self, q) -> None:
        """Hand over what the command line cannot carry: the VNC socket."""
        from virtctl.drivers.qemu.qmp import QMPError

        for i, s in enumerate(self.vnc):
            name = f"virtctl-vnc{i}"
            try:
                q.command("getfd", {"fdname": name}, fds=[s.fileno()])
                q.command("display-update", {"type": "vnc", "addresses": [{"type": "fd", "str": name}]})
            except (QMPError, OSError) as exc:
                raise OperationFailed(f"handing the VNC socket to QEMU failed: {exc}") from None

    def release(self) -> None:
        """Close our copies of what QEMU now holds (all but the VNC sockets)."""
        vnc = self.vnc
        self.vnc = []
        self._socks = [s for s in self._socks if s not in vnc]
        self.close()
        self._socks = list(vnc)
        self.vnc = vnc

    def close(self) -> None:
        """Close our copies (QEMU has its own)."""
        socks = {s.fileno() for s in self._socks}
        for fd in self.fds.values():
            if fd not in socks:
                try:
                    os.close(fd)
                except OSError:
                    pass
        for s in self._socks:
            s.close()
        self.fds.clear()
        self._socks.clear()
        self.vnc.clear()


def _open_checked(path: str, mode: int, want, kind: str, what: str) -> int:
    try:
        fd = os.open(path, mode | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise OperationFailed(f"cannot open the {what} '{path}': {exc.strerror}") from None
    try:
        if not want(os.fstat(fd).st_mode):
            raise OperationFailed(f"the {what} '{path}' is not {kind}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _readable_by(st, user) -> bool:
    if user is None:
        return True
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid == user.gid or st.st_gid in user.groups:
        return bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IROTH)


def _has_acl(fd: int) -> bool:
    try:
        os.getxattr(fd, "system.posix_acl_access")
        return True
    except OSError:
        return False


def _sealed_copy(fd: int, path: str) -> int:
    """A read-only memfd holding the file's bytes (mode 0777 by nature, sealed
    against any change)."""
    import fcntl

    try:
        m = os.memfd_create("virtctl-kernel", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(m, view):]
            seals = 0
            for name in _SEALS:
                seals |= getattr(fcntl, name)
            fcntl.fcntl(m, fcntl.F_ADD_SEALS, seals)
            os.lseek(m, 0, os.SEEK_SET)
        except BaseException:
            os.close(m)
            raise
    except OSError as exc:
        raise OperationFailed(f"cannot copy '{path}' for the confined QEMU: {exc.strerror}") from None
    finally:
        os.close(fd)
    return m
