"""The header of a save image (``virtctl save``), shared by every driver.

Layout (all integers big-endian)::

    0   8 bytes   magic  b"VCTLSAVE"
    8   4 bytes   format version (1)
    12  4 bytes   length of the domain XML in bytes (at most 10 MiB)
    16  4 bytes   flags: bit 0 = start running on restore (else paused)
    20  4 bytes   length of the driver name
    24  ...       driver name (ASCII), the domain XML (UTF-8), zero padding to
                  a 4 KiB boundary; then the driver's payload (QEMU: its
                  migration stream) to the end of the file

Reading checks every field before trusting it (a save file is input like
any other: RELIABILITY.md rule 1 applies to the XML inside).
"""
from __future__ import annotations

import os
import struct

from virtctl.errors import InvalidArg, OperationFailed, SystemError_

MAGIC = b"VCTLSAVE"
VERSION = 1
MAX_XML = 10 * 1024 * 1024
ALIGN = 4096
_FIXED = struct.Struct(">8sIIII")
FLAG_RUNNING = 1


class Header:
    __slots__ = ("driver", "xml", "running", "payload_offset")

    def __init__(self, driver: str, xml: str, running: bool, payload_offset: int = 0):
        self.driver, self.xml, self.running, self.payload_offset = driver, xml, running, payload_offset

    def to_bytes(self) -> bytes:
        x, d = self.xml.encode("utf-8"), self.driver.encode("ascii")
        if len(x) > MAX_XML:
            raise OperationFailed(f"the domain XML is over {MAX_XML} bytes")
        head = _FIXED.pack(MAGIC, VERSION, len(x), FLAG_RUNNING if self.running else 0, len(d)) + d + x
        return head + b"\0" * (-len(head) % ALIGN)


def write_header(fd: int, header: Header) -> int:
    """Write ``header`` at the start of ``fd``; returns the payload offset."""
    data = header.to_bytes()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return len(data)


def _bad(path: str, why: str) -> InvalidArg:
    return InvalidArg(f"'{path}' is not a virtctl save image: {why}", detail={"path": path})


def read_header(fd: int, path: str) -> Header:
    """Read and check the header from the start of ``fd`` (left at the payload)."""
    def read_exact(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = os.read(fd, n - len(out))
            if not chunk:
                raise _bad(path, "it is truncated")
            out += chunk
        return out

    try:
        magic, version, xml_len, flags, drv_len = _FIXED.unpack(read_exact(_FIXED.size))
        if magic != MAGIC:
            raise _bad(path, "wrong magic")
        if version != VERSION:
            raise _bad(path, f"unsupported format version {version}")
        if xml_len == 0 or xml_len > MAX_XML:
            raise _bad(path, f"XML length {xml_len} out of range")
        if drv_len == 0 or drv_len > 64:
            raise _bad(path, "bad driver name length")
        driver = read_exact(drv_len).decode("ascii", errors="replace")
        xml = read_exact(xml_len)
    except OSError as exc:
        raise SystemError_(f"cannot read '{path}': {exc.strerror}") from None
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(path, "the domain XML is not UTF-8") from None
    used = _FIXED.size + drv_len + xml_len
    offset = used + (-used % ALIGN)
    os.lseek(fd, offset, os.SEEK_SET)
    return Header(driver, text, bool(flags & FLAG_RUNNING), offset)


def load_header(path: str, driver: str) -> Header:
    """The header of the save image at ``path``, which ``driver`` must have
    written (INVALID_ARG otherwise)."""
    fd = open_image(path)
    try:
        header = read_header(fd, path)
    finally:
        os.close(fd)
    if header.driver != driver:
        raise InvalidArg(f"'{path}' was saved by the {header.driver} driver, not the {driver} driver")
    return header


def open_image(path: str) -> int:
    """Open a save image for reading (NO_FILE if missing; SYSTEM_ERROR otherwise)."""
    from virtctl.errors import VirtError

    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise VirtError(f"cannot open save image '{path}': No such file or directory", code="NO_FILE") from None
    except OSError as exc:
        raise SystemError_(f"cannot open save image '{path}': {exc.strerror}") from None


def temp_name(path: str) -> str:
    """The name of a new temp file beside ``path`` (``.NAME.<hex>.part``)."""
    import secrets

    d, base = os.path.split(os.path.abspath(path))
    if not base:
        raise InvalidArg(f"invalid save file name '{path}'")
    return os.path.join(d, f".{base}.{secrets.token_hex(6)}.part")


def create_temp(path: str, tmp: str | None = None) -> tuple[int, str]:
    """A new temp file beside ``path`` (O_EXCL|O_NOFOLLOW, 0600): (fd, temp path).

    ``tmp``: its name, chosen beforehand with :func:`temp_name` (so that a
    caller can record it first, and remove it if it dies)."""
    tmp = tmp or temp_name(path)
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise SystemError_(f"cannot create '{path}': {exc.strerror}") from None
    return fd, tmp


def commit(fd: int, tmp: str, path: str) -> None:
    """fsync, rename ``tmp`` to ``path`` and fsync the directory (removes tmp on failure)."""
    try:
        os.fsync(fd)
        os.replace(tmp, path)
    except OSError as exc:
        discard(tmp)
        raise SystemError_(f"cannot write '{path}': {exc.strerror}") from None
    try:
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def write_file(path: str, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically (temp file beside it, fsync,
    rename); nothing is left behind on failure.  ``mode`` is masked by the
    umask, as open(2) would."""
    fd, tmp = create_temp(path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if mode != 0o600:
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(fd, mode & ~umask)
        except OSError as exc:
            discard(tmp)
            raise SystemError_(f"cannot write '{path}': {exc.strerror}") from None
        commit(fd, tmp, path)
    finally:
        os.close(fd)
