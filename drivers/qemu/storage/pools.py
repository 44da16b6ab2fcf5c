"""QemuPoolDriver: directory pools and their volumes, for real.

* Definitions: ``<config>/storage/<uuid>.xml`` (atomic writes, state.py),
  ``<uuid>.autostart``; a pool is active while ``<run>/storage/<uuid>.active``
  exists.  Pools of any type but ``dir`` are NOT_SUPPORTED, naming the type.
* The ``default`` pool exists without setup: ``$XDG_DATA_HOME/virtctl/images``
  (qemu:///session), ``/var/lib/virtctl/images`` (qemu:///system),
  ``ROOT/images`` (qemu:///embed?root=ROOT); always active.
* Volumes are the regular files of the directory (symbolic links and
  anything else are not volumes); key = path.  Capacity and allocation as
  libvirt reports them: raw: size and blocks used; qcow2: qemu-img's virtual
  size and the file's blocks used.
* Safety: names are one file name (names.py); a volume is written under a
  temporary name and linked to its final name only when complete (an
  existing name is never replaced); ENOSPC is a clear error, the temporary
  file removed.  vol-upload writes a complete new copy of the volume under a
  temporary name (the old bytes it does not overwrite copied first, sparsely)
  and renames it over the volume: a kill or ENOSPC leaves the old volume
  intact, never a half-written one.
* Locks (locks.py): ``<run>/locks/pool-<uuid>.lock`` is held shared by every
  change to one volume (create, clone, delete, wipe, resize, upload) and
  exclusively by pool-refresh, pool-destroy, pool-delete and pool-undefine;
  ``pool-<uuid>-vol-<sha1 of name>.lock`` is held exclusively by a change to
  that volume.  Two processes changing the same volume serialise; changes to
  different volumes run side by side; reading (vol-list, vol-download) takes
  no lock (a rename never shows a half-written file).
"""
from __future__ import annotations

import os
import uuid as uuidlib

from virtctl.api.storage import PoolRecord, VolumeRecord
from virtctl.api.storage import xml_escape as _esc
from virtctl.drivers.base import PoolDriver
from virtctl.drivers.qemu import qemu_img
from virtctl.drivers.qemu.faults import killpoint
from virtctl.drivers.qemu.state import atomic_write, ensure_dir, fsync_dir, unlink_quiet
from virtctl.drivers.qemu.storage.names import TEMP_PREFIX, check_volume_name
from virtctl.errors import (InvalidArg, NoStoragePool, NoStorageVol, OperationFailed, OperationInvalid,
                            SystemError_, XMLError, not_supported)

DEFAULT_POOL = "default"
FORMATS = ("raw", "qcow2")
_QCOW_MAGIC = b"QFI\xfb"
_CHUNK = 1 << 20
LOCK_TIMEOUT = 300.0
# virsh's vol-wipe algorithms; the QEMU driver does the first two (the others are
# scrub(1)'s multi-pass patterns, and trim needs a block device)
WIPE_DONE = ("zero", "random")
WIPE_ALGORITHMS = WIPE_DONE + ("nnsa", "dod", "bsi", "gutmann", "schneier", "pfitzner7", "pfitzner33", "trim")


def _extents(fd: int, size: int, pos: int = 0):
    """(start, end) of the data of a file from ``pos`` (its holes skipped:
    SEEK_DATA/SEEK_HOLE; all of it where the file system cannot tell)."""
    import errno

    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return  # only a hole is left
            yield pos, size
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end


def _write_all(fd: int, buf) -> None:
    view = memoryview(buf)
    while view:
        view = view[os.write(fd, view):]


_GRANULE = 64 << 10  # --sparse: zeros of this size (aligned) become holes


_ZERO = bytes(_GRANULE)
_ZCHUNK = bytes(_CHUNK)
_NO_KERNEL_COPY = (18, 22, 38, 95)  # EXDEV, EINVAL, ENOSYS, EOPNOTSUPP: copy_file_range cannot here


def _kernel_copy(src_fd: int, dst_fd: int, count: int, src_off: int, dst_off: int | None, progress, total) -> int:
    """Up to ``count`` bytes with copy_file_range (no copy through Python; a
    reflink where the file system can); the bytes copied.  Raises
    NotImplementedError if the kernel cannot copy between these two files."""
    done = 0
    while done < count:
        try:
            n = os.copy_file_range(src_fd, dst_fd, min(8 << 20, count - done), src_off + done,
                                   None if dst_off is None else dst_off + done)
        except OSError as exc:
            if done == 0 and exc.errno in _NO_KERNEL_COPY:
                raise NotImplementedError from None
            raise
        if n <= 0:
            break
        done += n
        if progress is not None:
            progress(done, total)
    return done


def _pieces(buf: bytes):
    """(offset, piece, all zeros?) of ``buf`` in granules, runs merged."""
    view = memoryview(buf)
    if buf == (_ZCHUNK if len(buf) == _CHUNK else bytes(len(buf))):  # memcmp; bytes.strip is slow
        yield 0, view, True
        return
    start, zero = 0, None
    for off in range(0, len(buf), _GRANULE):
        piece = buf[off:off + _GRANULE]
        z = piece == (_ZERO if len(piece) == _GRANULE else bytes(len(piece)))
        if zero is None:
            zero = z
        elif z != zero:
            yield start, view[start:off], zero
            start, zero = off, z
    if buf:
        yield start, view[start:], zero


def _copy_sparse(src: str, dst_fd: int, size: int) -> None:
    """The data of ``src`` into ``dst_fd`` at the same offsets; holes stay holes."""
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        for start, end in _extents(sfd, size):
            pos = start
            while pos < end:
                try:
                    n = os.copy_file_range(sfd, dst_fd, end - pos, pos, pos)
                except OSError:
                    n = 0
                if n <= 0:  # not on this file system: read and write
                    os.lseek(sfd, pos, os.SEEK_SET)
                    os.lseek(dst_fd, pos, os.SEEK_SET)
                    buf = os.read(sfd, min(_CHUNK, end - pos))
                    if not buf:
                        break
                    _write_all(dst_fd, buf)
                    n = len(buf)
                pos += n
        os.ftruncate(dst_fd, size)
    finally:
        os.close(sfd)


def _overwrite(path: str, algorithm: str) -> None:
    """Zeros (or random bytes) over every byte of data of the file, in place;
    holes, which hold nothing, stay holes."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        zeros = bytes(_CHUNK)
        for start, end in list(_extents(fd, size)):
            os.lseek(fd, start, os.SEEK_SET)
            left = end - start
            while left > 0:
                n = min(_CHUNK, left)
                _write_all(fd, zeros[:n] if algorithm == "zero" else os.urandom(n))
                left -= n
        os.fsync(fd)
    finally:
        os.close(fd)


def _src_size(src) -> int:
    """Bytes left in ``src`` if it is a regular file, else 0 (unknown)."""
    import stat

    try:
        st = os.fstat(src.fileno())
        return max(0, st.st_size - src.tell()) if stat.S_ISREG(st.st_mode) else 0
    except (AttributeError, OSError, ValueError):
        return 0


def default_pool_dir(state) -> str:
    if state.kind == "system":
        return "/var/lib/virtctl/images"
    if state.kind == "embed":
        return os.path.join(state.config, "images")
    home = os.path.expanduser("~")
    data = os.environ.get("XDG_DATA_HOME")
    if not data or not os.path.isabs(data):
        data = os.path.join(home, ".local", "share")
    return os.path.join(data, "virtctl", "images")


def _enospc(what: str, exc: OSError):
    import errno

    if exc.errno == errno.ENOSPC:
        return OperationFailed(f"cannot {what}: no space left on the device (nothing was kept)",
                               detail={"errno": "ENOSPC"})
    return SystemError_(f"cannot {what}: {exc.strerror}", detail={"errno": exc.errno})


def _remove_if_stale(path: str, name: str) -> None:
    """A temporary volume whose writer died (kill -9 during vol-create-as or
    vol-clone) is removed; one whose writer still runs is left alone."""
    pid = name[len(TEMP_PREFIX):].split("-", 1)[0]
    if not pid.isdigit():
        return
    try:
        os.kill(int(pid), 0)
        return  # still being written
    except ProcessLookupError:
        pass
    except PermissionError:
        return  # alive, someone else's
    unlink_quiet(path)



def _emit(state, d, event: str | None, detail: str | None = None, *, kind: str = "lifecycle") -> None:
    """A pool event into the connection's journal (virsh pool-event's names):
    a lifecycle ``event`` (Defined, Started, ...), or ``kind="refresh"``."""
    from virtctl.drivers.qemu import events

    if kind != "lifecycle":
        events.emit(state, "pool", d.name, d.uuid, kind, detail)
        return
    events.emit(state, "pool", d.name, d.uuid, "lifecycle", detail, lifecycle=event)

class _Def:
    __slots__ = ("uuid", "name", "type", "target")

    def __init__(self, uuid, name, type_, target):
        self.uuid, self.name, self.type, self.target = uuid, name, type_, target

    def xml(self) -> str:
        return (f"<pool type='{_esc(self.type)}'>\n  <name>{_esc(self.name)}</name>\n  <uuid>{self.uuid}</uuid>\n"
                f"  <target>\n    <path>{_esc(self.target)}</path>\n  </target>\n</pool>\n")


def _parse_pool(xml: str, source: str) -> _Def:
    from virtctl.api.connection import canonical_uuid
    from virtctl.xml import validate, xmlapi

    root = xmlapi.parse(xml, source)
    type_ = root.get("type", "") if root.tag == "pool" else ""
    if root.tag == "pool" and type_ != "dir":  # before the schema: the type is the reason
        raise not_supported("qemu", f"storage pool type '{type_}' (only 'dir' pools are)", type=type_)
    validate.validate(root, "pool", source=source, text=xml)
    name = (root.findtext("name") or "").strip()
    if not name or "/" in name or name.startswith("."):
        raise XMLError(f"{source}: invalid pool name '{name}'")
    target = (root.findtext("target/path") or "").strip()
    if not os.path.isabs(target):
        raise XMLError(f"{source}: a dir pool needs an absolute <target><path>, not '{target}'")
    u = (root.findtext("uuid") or "").strip()
    u = canonical_uuid(u) if u else str(uuidlib.uuid4())
    return _Def(u, name, type_, os.path.normpath(target))


class QemuPoolDriver(PoolDriver):
    driver_name = "qemu"

    def __init__(self, state, users=None):
        self.state = state
        # users(path, pool name, volume name) -> names of running domains using it
        self._users = users or (lambda path, pool, name: [])
        self.conf_dir = os.path.join(state.config, "storage")
        self.run_dir = os.path.join(state.run, "storage")
        self._default = None

    @property
    def default(self) -> _Def:
        """The pool that exists without setup; its UUID is derived from its
        directory (computed on first use: uuid5 costs hashlib's import)."""
        if self._default is None:
            d = default_pool_dir(self.state)
            self._default = _Def(str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "virtctl-default-pool:" + d)),
                                 DEFAULT_POOL, "dir", d)
        return self._default

    # --- locks
    def _pool_lock(self, d: _Def, *, shared: bool):
        from virtctl.drivers.qemu.locks import FileLock

        ensure_dir(self.state.locks_dir)
        lock = FileLock(os.path.join(self.state.locks_dir, f"pool-{d.uuid}.lock"), shared=shared,
                        what=f"lock of storage pool '{d.name}' (another command is changing it)")
        lock.acquire(LOCK_TIMEOUT)
        return lock

    def _locked(self, d: _Def, name: str | None = None):
        """The pool's lock (shared when ``name`` is given) and that volume's lock,
        as one context manager."""
        import contextlib
        import hashlib

        from virtctl.drivers.qemu.locks import FileLock

        stack = contextlib.ExitStack()
        stack.enter_context(self._pool_lock(d, shared=name is not None))
        if name is not None:
            h = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()
            vl = FileLock(os.path.join(self.state.locks_dir, f"pool-{d.uuid}-vol-{h}.lock"),
                          what=f"lock of volume '{name}' (another command is changing it)")
            try:
                vl.acquire(LOCK_TIMEOUT)
            except BaseException:
                stack.close()
                raise
            stack.enter_context(vl)
        return stack

    def _tmp(self, d: _Def, name: str) -> str:
        return os.path.join(d.target, f"{TEMP_PREFIX}{os.getpid()}-{name}"[:255])

    # --- definitions on disk
    def _defs(self) -> list[_Def]:
        out = [self.default]
        try:
            names = sorted(os.listdir(self.conf_dir))
        except FileNotFoundError:
            names = []
        for n in names:
            if n.endswith(".xml"):
                try:
                    with open(os.path.join(self.conf_dir, n)) as f:
                        d = _parse_pool(f.read(), os.path.join(self.conf_dir, n))
                except (OSError, XMLError):
                    continue  # a damaged definition is skipped, never fatal for the others
                out.append(d)
        return out

    def _def(self, uuid: str) -> _Def:
        for d in self._defs():
            if d.uuid == uuid:
                return d
        raise NoStoragePool(f"Storage pool not found: no storage pool with matching uuid '{uuid}'")

    def _is_default(self, d: _Def) -> bool:
        return d.uuid == self.default.uuid

    def _active_flag(self, d: _Def) -> str:
        return os.path.join(self.run_dir, d.uuid + ".active")

    def _is_active(self, d: _Def) -> bool:
        return self._is_default(d) or os.path.exists(self._active_flag(d))

    def _record(self, d: _Def) -> PoolRecord:
        active = self._is_active(d)
        cap = alloc = avail = 0
        if active:
            if self._is_default(d):
                ensure_dir(d.target, check=False)
            try:
                st = os.statvfs(d.target)
                cap, avail = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
                alloc = (st.f_blocks - st.f_bfree) * st.f_frsize
            except OSError:
                pass
        auto = self._is_default(d) or os.path.exists(os.path.join(self.conf_dir, d.uuid + ".autostart"))
        return PoolRecord(uuid=d.uuid, name=d.name, type=d.type, active=active, persistent=True,
                          autostart=auto, capacity=cap, allocation=alloc, available=avail, target_path=d.target)

    def _active(self, uuid: str) -> _Def:
        d = self._def(uuid)
        if not self._is_active(d):
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{d.name}' is not active")
        return d

    def _not_default(self, d: _Def, what: str) -> None:
        if self._is_default(d):
            raise OperationInvalid(f"Requested operation is not valid: cannot {what} the default pool")

    # --- pools
    def list(self) -> list[PoolRecord]:
        return [self._record(d) for d in self._defs()]

    def get(self, uuid: str) -> PoolRecord:
        return self._record(self._def(uuid))

    def get_xml(self, uuid: str, *, inactive: bool = False) -> str:
        r = self._record(self._def(uuid))
        return (f"<pool type='dir'>\n  <name>{_esc(r.name)}</name>\n  <uuid>{r.uuid}</uuid>\n"
                f"  <capacity unit='bytes'>{r.capacity}</capacity>\n"
                f"  <allocation unit='bytes'>{r.allocation}</allocation>\n"
                f"  <available unit='bytes'>{r.available}</available>\n  <source>\n  </source>\n"
                f"  <target>\n    <path>{_esc(r.target_path)}</path>\n  </target>\n</pool>\n")

    def define(self, xml: str, *, source: str = "<input>") -> PoolRecord:
        d = _parse_pool(xml, source)
        for other in self._defs():
            if other.name == d.name and other.uuid != d.uuid:
                raise OperationFailed(f"operation failed: pool '{d.name}' already exists with uuid {other.uuid}")
            if other.uuid == d.uuid and other.name != d.name:
                raise OperationFailed(f"operation failed: pool '{other.name}' is already defined with uuid {d.uuid}")
        ensure_dir(self.conf_dir)
        existed = os.path.exists(os.path.join(self.conf_dir, d.uuid + ".xml"))
        atomic_write(os.path.join(self.conf_dir, d.uuid + ".xml"), d.xml())
        _emit(self.state, d, "Defined", "Updated" if existed else "Added")
        return self._record(d)

    def create_xml(self, xml: str, *, source: str = "<input>", build: bool = False) -> PoolRecord:
        raise not_supported("qemu", "pool-create (transient pools; use pool-define and pool-start)")

    def build(self, uuid: str, *, overwrite: bool = False, no_overwrite: bool = False) -> None:
        d = self._def(uuid)
        if os.path.lexists(d.target) and not os.path.isdir(d.target):
            raise OperationFailed(f"cannot build pool '{d.name}': '{d.target}' exists and is not a directory")
        try:
            os.makedirs(d.target, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise _enospc(f"create the directory '{d.target}'", exc) from None
        _emit(self.state, d, "Created")

    def start(self, uuid: str, *, build: bool = False, overwrite: bool = False,
              no_overwrite: bool = False) -> None:
        d = self._def(uuid)
        if self._is_active(d):
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{d.name}' is active")
        if build:
            self.build(uuid)
        if not os.path.isdir(d.target):
            raise OperationFailed(f"cannot start pool '{d.name}': its directory '{d.target}' does not exist "
                                  "(pool-build creates it)")
        ensure_dir(self.run_dir)
        atomic_write(self._active_flag(d), "", sync=False)
        _emit(self.state, d, "Started")

    def destroy(self, uuid: str) -> None:
        d = self._active(uuid)
        self._not_default(d, "destroy")
        with self._locked(d):
            unlink_quiet(self._active_flag(d))
            _emit(self.state, d, "Stopped")

    def delete(self, uuid: str) -> None:
        d = self._def(uuid)
        if self._is_active(d):
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{d.name}' is still active")
        try:
            with self._locked(d):
                os.rmdir(d.target)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OperationFailed(f"cannot delete pool '{d.name}': cannot remove '{d.target}': {exc.strerror}") from None
        _emit(self.state, d, "Deleted")

    def undefine(self, uuid: str) -> None:
        d = self._def(uuid)
        self._not_default(d, "undefine")
        if self._is_active(d):
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{d.name}' is still active")
        unlink_quiet(os.path.join(self.conf_dir, d.uuid + ".autostart"))
        unlink_quiet(os.path.join(self.conf_dir, d.uuid + ".xml"))
        _emit(self.state, d, "Undefined")

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        d = self._def(uuid)
        self._not_default(d, "change autostart of")
        flag = os.path.join(self.conf_dir, d.uuid + ".autostart")
        if enabled:
            atomic_write(flag, "")
        else:
            unlink_quiet(flag)

    def refresh(self, uuid: str) -> None:
        """Volumes are read from the directory every time; a refresh waits for
        the changes under way and removes what dead writers left."""
        d = self._active(uuid)
        with self._locked(d):
            self.volumes(uuid)
        _emit(self.state, d, None, kind="refresh")

    # --- volumes
    def _vol(self, d: _Def, name: str) -> VolumeRecord | None:
        import stat

        path = os.path.join(d.target, name)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or name.startswith(TEMP_PREFIX):
            return None
        try:
            with open(path, "rb") as f:
                magic = f.read(4)
        except OSError:
            magic = b""
        rec = VolumeRecord(key=path, name=name, path=path, pool_uuid=d.uuid, pool_name=d.name,
                           format="raw", capacity=st.st_size, allocation=st.st_blocks * 512)
        if magic == _QCOW_MAGIC:
            rec.format = "qcow2"
            try:
                info = qemu_img.info(path, "qcow2")
                rec.capacity = int(info.get("virtual-size", st.st_size))
                if info.get("backing-filename"):
                    rec.backing = {"path": info.get("full-backing-filename") or info["backing-filename"],
                                   "format": info.get("backing-filename-format")}
            except OperationFailed:
                pass
        return rec

    def volumes(self, uuid: str) -> list[VolumeRecord]:
        d = self._active(uuid)
        try:
            names = os.listdir(d.target)
        except OSError as exc:
            raise SystemError_(f"cannot read the pool directory '{d.target}': {exc.strerror}") from None
        for n in names:
            if n.startswith(TEMP_PREFIX):
                _remove_if_stale(os.path.join(d.target, n), n)
        return [v for v in (self._vol(d, n) for n in sorted(names)) if v is not None]

    def find_volume(self, *, name=None, pool_uuid=None, key=None, path=None):
        for d in self._defs():
            if not self._is_active(d) or (pool_uuid is not None and d.uuid != pool_uuid):
                continue
            if name is not None:
                if "/" in name or name in (".", "..") or "\0" in name:
                    continue
                v = self._vol(d, name)
            else:
                p = os.path.normpath(key if key is not None else path)
                if os.path.dirname(p) != d.target:
                    continue
                v = self._vol(d, os.path.basename(p))
            if v is not None:
                return v
        return None

    def _v(self, key: str) -> tuple[_Def, VolumeRecord]:
        p = os.path.normpath(key)
        for d in self._defs():
            if os.path.dirname(p) == d.target and self._is_active(d):
                v = self._vol(d, os.path.basename(p))
                if v is not None:
                    return d, v
        raise NoStorageVol(f"Storage volume not found: no storage vol with matching key {key}")

    def volume_by_key(self, key: str) -> VolumeRecord:
        return self._v(key)[1]

    def volume_by_name(self, uuid: str, name: str) -> VolumeRecord:
        v = self._vol(self._active(uuid), check_volume_name(name))
        if v is None:
            raise NoStorageVol(f"Storage volume not found: no storage vol with matching name '{name}'")
        return v

    def volume_xml(self, key: str) -> str:
        return self._v(key)[1].to_xml()

    def create_volume(self, uuid: str, xml: str, *, source: str = "<input>",
                      prealloc_metadata: bool = False, clone_key: str | None = None) -> VolumeRecord:
        from virtctl.xml import validate
        from virtctl.xml.units import unit_factor

        d = self._active(uuid)
        root = validate.parse_and_validate(xml, "volume", source=source)
        name = check_volume_name((root.findtext("name") or "").strip())

        def size(tag):
            el = root.find(tag)
            if el is None or not (el.text or "").strip():
                return None
            f = unit_factor(el.get("unit") or "bytes")
            return int(el.text.strip()) * f if f else None
        cap, alloc = size("capacity"), size("allocation")
        fmt_el = root.find("target/format")
        fmt = fmt_el.get("type", "raw") if fmt_el is not None else "raw"
        if fmt not in FORMATS:
            raise not_supported("qemu", f"volume format '{fmt}' (raw and qcow2 are)", format=fmt)
        if cap is None or cap <= 0:
            raise InvalidArg(f"invalid capacity for volume '{name}': it must be a positive size")
        if prealloc_metadata and fmt != "qcow2":
            raise InvalidArg("--prealloc-metadata needs --format qcow2")
        with self._locked(d, name):
            self._create_locked(d, name, root, fmt, cap, alloc, prealloc_metadata, clone_key)
        return self._vol(d, name)

    def _create_locked(self, d, name, root, fmt, cap, alloc, prealloc_metadata, clone_key) -> None:
        final = os.path.join(d.target, name)
        if os.path.lexists(final):
            raise OperationFailed(f"operation failed: storage vol '{name}' already exists")
        backing = root.findtext("backingStore/path")
        bfmt_el = root.find("backingStore/format")
        tmp = self._tmp(d, name)
        try:
            if clone_key is not None:
                src = self._v(clone_key)[1]
                qemu_img.convert(src.path, src.format, tmp, fmt)
            else:
                if backing and fmt != "qcow2":
                    raise InvalidArg("a backing volume needs --format qcow2")
                qemu_img.create(tmp, fmt, cap, backing=backing.strip() if backing else None,
                                backing_fmt=bfmt_el.get("type") if bfmt_el is not None else None,
                                prealloc_metadata=prealloc_metadata)
                want = cap if alloc is None else min(alloc, cap)
                if fmt == "raw" and want:
                    fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW)
                    try:
                        os.posix_fallocate(fd, 0, want)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            os.link(tmp, final)  # never replaces: a name taken meanwhile fails here
        except FileExistsError:
            raise OperationFailed(f"operation failed: storage vol '{name}' already exists") from None
        except OSError as exc:
            raise _enospc(f"create the volume '{name}'", exc) from None
        finally:
            unlink_quiet(tmp)

    def _check_unused(self, v: VolumeRecord, what: str) -> None:
        users = self._users(v.path, v.pool_name, v.name)
        if users:
            raise OperationInvalid(f"Requested operation is not valid: cannot {what} volume '{v.name}': "
                                   f"it is in use by running domain{'s' if len(users) > 1 else ''} "
                                   + ", ".join(f"'{u}'" for u in users), detail={"domains": users})

    def delete_volume(self, key: str, *, wipe: bool = False) -> None:
        d, v = self._v(key)
        with self._locked(d, v.name):
            d, v = self._v(key)  # as it is now that no one else changes it
            self._check_unused(v, "delete")
            try:
                os.unlink(v.path)
            except OSError as exc:
                raise SystemError_(f"cannot delete volume '{v.name}': {exc.strerror}") from None

    def wipe_volume(self, key: str, *, algorithm: str = "zero") -> None:
        """``zero``: zeros written over every byte of data of the file (holes,
        which hold nothing, stay holes); ``random``: random bytes instead.  A
        qcow2 volume is then made anew, empty, at its capacity (its backing file
        kept), under a temporary name then renamed over the overwritten file;
        libvirt leaves the overwritten bytes, which are no longer a qcow2 image."""
        if algorithm not in WIPE_ALGORITHMS:
            raise InvalidArg(f"Unsupported algorithm '{algorithm}'")
        if algorithm not in WIPE_DONE:
            why = ("needs a block device" if algorithm == "trim"
                   else "a multi-pass pattern of scrub(1); zero and random are done")
            raise not_supported("qemu", f"vol-wipe --algorithm {algorithm} ({why})", algorithm=algorithm)
        d, v = self._v(key)
        with self._locked(d, v.name):
            d, v = self._v(key)
            self._check_unused(v, "wipe")
            tmp = self._tmp(d, v.name)
            try:
                if v.format != "raw":  # the new empty image first: ENOSPC then changes nothing
                    b = v.backing or {}
                    qemu_img.create(tmp, v.format, v.capacity, backing=b.get("path"), backing_fmt=b.get("format"))
                _overwrite(v.path, algorithm)
                if v.format != "raw":
                    os.replace(tmp, v.path)
            except OSError as exc:
                raise _enospc(f"wipe volume '{v.name}'", exc) from None
            finally:
                unlink_quiet(tmp)

    def capabilities(self) -> str:
        return ("<storagepoolCapabilities>\n  <pool type='dir' supported='yes'>\n"
                "    <volOptions>\n      <defaultFormat type='raw'/>\n      <enum name='targetFormatType'>\n"
                + "".join(f"        <value>{f}</value>\n" for f in FORMATS)
                + "      </enum>\n    </volOptions>\n  </pool>\n</storagepoolCapabilities>\n")

    def resize_volume(self, key: str, capacity: int, *, delta: bool = False, shrink: bool = False,
                      allocate: bool = False) -> None:
        d, v = self._v(key)
        with self._locked(d, v.name):
            self._resize_locked(key, capacity, delta, shrink, allocate)

    def _resize_locked(self, key, capacity, delta, shrink, allocate) -> None:
        d, v = self._v(key)
        new = v.capacity - capacity if (delta and shrink) else (v.capacity + capacity if delta else capacity)
        if new < v.capacity and not shrink:
            raise InvalidArg("invalid argument: Can't shrink capacity below current capacity unless "
                             "shrink flag explicitly specified")
        if new <= 0:
            raise InvalidArg("invalid argument: a volume cannot shrink to nothing")
        users = self._users(v.path, v.pool_name, v.name)
        if users:
            if new < v.capacity:
                self._check_unused(v, "shrink")
            if getattr(self, "live_resize", None) is None or allocate:
                raise not_supported("qemu", "vol-resize of a volume a running domain uses (blockresize)"
                                    if not allocate else "vol-resize --allocate of a volume in use")
            # grown by the QEMU that has it open (QMP block_resize): the guest sees it at once
            self.live_resize(v.path, v.pool_name, v.name, new)
            return
        if allocate and v.format != "raw":
            raise not_supported("qemu", "vol-resize --allocate of a qcow2 volume")
        qemu_img.resize(v.path, v.format, new, shrink=new < v.capacity)
        if allocate:
            fd = os.open(v.path, os.O_WRONLY | os.O_NOFOLLOW)
            try:
                os.posix_fallocate(fd, 0, new)
            except OSError as exc:
                raise _enospc(f"allocate volume '{v.name}'", exc) from None
            finally:
                os.close(fd)

    def upload_volume(self, key: str, src, *, offset: int = 0, length: int = 0, sparse: bool = False,
                      progress=None) -> None:
        """The bytes of ``src`` at ``offset`` of the volume (libvirt's
        semantics: the bytes around them kept, the file extended if they go
        past its end), written into a complete new copy that replaces the
        volume only once written and synced."""
        import stat

        d, v = self._v(key)
        with self._locked(d, v.name):
            d, v = self._v(key)
            self._check_unused(v, "upload to")
            total = length or _src_size(src)
            tmp = self._tmp(d, v.name)
            try:
                st = os.lstat(v.path)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    os.fchmod(fd, stat.S_IMODE(st.st_mode))
                    try:
                        os.fchown(fd, st.st_uid, st.st_gid)
                    except PermissionError:
                        pass
                    known = _src_size(src)  # a regular file: what it will give is known
                    whole = offset == 0 and known > 0 and min(length or known, known) >= st.st_size
                    if not whole:  # the old bytes the upload does not cover
                        _copy_sparse(v.path, fd, st.st_size)
                    os.lseek(fd, offset, os.SEEK_SET)
                    left = length or None
                    done = 0
                    if known and not sparse:  # a regular file: the kernel copies
                        try:
                            pos = src.tell()
                            done = _kernel_copy(src.fileno(), fd, min(length or known, known), pos, offset,
                                                progress, total)
                            left = 0
                        except NotImplementedError:
                            pass
                    while left is None or left > 0:
                        buf = src.read(_CHUNK if left is None else min(_CHUNK, left))
                        if not buf:
                            break
                        if left is not None:
                            left -= len(buf)
                        done += len(buf)
                        if sparse and whole:  # a hole in a new file reads as zeros
                            for _, piece, zero in _pieces(buf):
                                if zero:
                                    os.lseek(fd, len(piece), os.SEEK_CUR)
                                else:
                                    _write_all(fd, piece)
                        else:
                            _write_all(fd, buf)
                        if progress is not None:
                            progress(done, total)
                    end = offset + done
                    if end > os.fstat(fd).st_size:  # a sparse tail still sets the size
                        os.ftruncate(fd, end)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                killpoint("upload:written")
                os.replace(tmp, v.path)
                fsync_dir(d.target)
            except OSError as exc:
                raise _enospc(f"upload to volume '{v.name}'", exc) from None
            finally:
                unlink_quiet(tmp)

    def download_volume(self, key: str, dst, *, offset: int = 0, length: int = 0, sparse: bool = False,
                        progress=None) -> None:
        d, v = self._v(key)
        fd = os.open(v.path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            size = os.fstat(fd).st_size
            total = length or max(0, size - offset)
            os.lseek(fd, offset, os.SEEK_SET)
            left = length or None
            done = 0
            if sparse:  # only the data is read: holes are skipped, not read as zeros
                stop_at = min(size, offset + total)
                for start, stop in _extents(fd, stop_at, offset):
                    pos = start
                    while pos < stop:
                        buf = os.pread(fd, min(_CHUNK, stop - pos), pos)
                        if not buf:
                            break
                        dst.seek(pos - offset)
                        for _, piece, zero in _pieces(buf):
                            if zero:
                                dst.seek(len(piece), os.SEEK_CUR)
                            else:
                                dst.write(piece)
                        pos += len(buf)
                        if progress is not None:
                            progress(pos - offset, total)
                dst.truncate(max(0, stop_at - offset))  # the holes up to the end still count
                return
            try:
                dst.flush()
                done = _kernel_copy(fd, dst.fileno(), total, offset, None, progress, total)
                left = 0
            except (NotImplementedError, AttributeError, ValueError):
                pass  # not a file the kernel copies into: read and write
            while left is None or left > 0:
                buf = os.read(fd, _CHUNK if left is None else min(_CHUNK, left))
                if not buf:
                    break
                if left is not None:
                    left -= len(buf)
                done += len(buf)
                dst.write(buf)
                if progress is not None:
                    progress(done, total)
        finally:
            os.close(fd)
