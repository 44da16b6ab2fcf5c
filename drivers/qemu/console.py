"""The serial console of a running QEMU domain (a mixin of QemuDomainDriver).

Each ``<serial>``/``<console>`` of type pty is a QEMU unix socket server
(``argv.serial_socket(paths, N)``, one client at a time).  ``open_console``
connects to it and returns a :class:`ConsoleStream`.  A session holds a
flock on ``<run>/domains/<uuid>/console<N>.lock`` whose file names the
holder (pid and start time): a second session is refused ("Active console
session exists for this domain") unless ``force``, which asks the holder to
leave (SIGTERM: the holder reports that it was taken over and exits
non-zero) and takes over.  Devices are named as libvirt's aliases:
``serial0``, ``serial1``, ... and ``console0`` (= serial0); an unknown name
is INVALID_ARG (libvirt: an internal error).
"""
from __future__ import annotations

import os
import re
import time

from virtctl.drivers.qemu.locks import FileLock, try_lock
from virtctl.errors import InvalidArg, OperationFailed, OperationInvalid
from virtctl.lazy import lazy

socket = lazy("socket")  # only for the console itself


class ConsoleStream:
    """A connected console socket plus the session lock; close() releases both."""

    def __init__(self, sock: socket.socket, lock: FileLock | None = None):
        self._sock, self._lock = sock, lock

    def fileno(self) -> int:
        return self._sock.fileno()

    def recv(self, n: int) -> bytes:
        return self._sock.recv(n)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


class QemuConsoleMixin:
    def _console_port(self, definition, devname: str | None) -> int:
        ports = []
        for el in definition.root.findall("devices/serial"):
            tgt = el.find("target")
            if el.get("type", "pty") == "pty":
                ports.append(int(tgt.get("port", len(ports))) if tgt is not None and
                             (tgt.get("port") or "").isdigit() else len(ports))
        if devname is None or devname == "console0":
            if ports:
                return ports[0]
        else:
            m = re.fullmatch(r"serial(\d+)", devname)
            if m and int(m.group(1)) in ports:
                return int(m.group(1))
        if devname is None:
            raise OperationInvalid(f"Requested operation is not valid: domain '{definition.name}' has no "
                                   "serial console")
        # libvirt: "internal error: cannot find character device X"; the name is a bad argument
        raise InvalidArg(f"invalid argument: cannot find character device {devname}")

    def open_console(self, uuid: str, *, devname: str | None = None, force: bool = False,
                     safe: bool = False):
        from virtctl.drivers.qemu.argv import serial_socket

        with self._running(uuid) as run:
            live_def = self._live(uuid)
            port = self._console_port(live_def, devname)
            from virtctl.drivers.qemu.paths import RuntimePaths

            paths = RuntimePaths(**run.paths)
            path = serial_socket(paths, port)
            lock_path = os.path.join(self.state.run_dir(uuid), f"console{port}.lock")
            lock = try_lock(lock_path, "console lock")
            if lock is None:
                if not force:
                    raise OperationFailed("operation failed: Active console session exists for this domain")
                lock = self._take_console(lock_path)
            try:
                _write_owner(lock_path)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                try:
                    sock.settimeout(10)
                    sock.connect(path)
                    sock.settimeout(None)
                except OSError as exc:
                    sock.close()
                    raise OperationFailed(f"operation failed: cannot connect to the console of domain "
                                          f"{uuid}: {exc.strerror or exc}") from None
            except BaseException:
                lock.release()
                raise
            return ConsoleStream(sock, lock)

    @staticmethod
    def _take_console(lock_path: str) -> FileLock:
        """--force: ask the session holding the console to leave, then take it.

        The holder is named by pid *and* start time in the lock file: a stale
        entry (a holder that died before writing its own) never leads to a
        signal to an unrelated process that reused the pid."""
        from virtctl.drivers.qemu import process

        try:
            with open(lock_path) as f:
                words = f.read().split()
            pid, started = int(words[0]), int(words[1])
        except (OSError, ValueError, IndexError):
            pid, started = 0, None
        if pid > 0 and pid != os.getpid() and process.is_running(pid, started):
            try:
                os.kill(pid, 15)  # SIGTERM: the session says it was taken over and exits non-zero
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while True:
            lock = try_lock(lock_path, "console lock")
            if lock is not None:
                return lock
            if time.monotonic() > deadline:
                raise OperationFailed("operation failed: the active console session did not close")
            time.sleep(0.05)


def _write_owner(lock_path: str) -> None:
    from virtctl.drivers.qemu import process

    try:
        fd = os.open(lock_path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {process.start_time(os.getpid())}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        pass
