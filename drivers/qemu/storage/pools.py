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
  file removed.
"""
from __future__ import annotations

import os
import uuid as uuidlib

from virtctl.api.storage import PoolRecord, VolumeRecord
from virtctl.api.storage import xml_escape as _esc
from virtctl.drivers.base import PoolDriver
from virtctl.drivers.qemu import qemu_img
from virtctl.drivers.qemu.state import atomic_write, ensure_dir, unlink_quiet
from virtctl.drivers.qemu.storage.names import TEMP_PREFIX, check_volume_name
from virtctl.errors import (InvalidArg, NoStoragePool, NoStorageVol, OperationFailed, OperationInvalid,
                            SystemError_, XMLError, not_supported)

DEFAULT_POOL = "default"
FORMATS = ("raw", "qcow2")
_QCOW_MAGIC = b"QFI\xfb"
_CHUNK = 1 << 20


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



def _emit(state, d, event: str, detail: str | None = None) -> None:
    """A pool lifecycle event into the connection's journal (virsh pool-event's names)."""
    from virtctl.drivers.qemu import events

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
        unlink_quiet(self._active_flag(d))
        _emit(self.state, d, "Stopped")

    def delete(self, uuid: str) -> None:
        d = self._def(uuid)
        if self._is_active(d):
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{d.name}' is still active")
        try:
            os.rmdir(d.target)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OperationFailed(f"cannot delete pool '{d.name}': cannot remove '{d.target}': {exc.strerror}") from None

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
        self._active(uuid)  # volumes are read from the directory every time

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
        final = os.path.join(d.target, name)
        if os.path.lexists(final):
            raise OperationFailed(f"operation failed: storage vol '{name}' already exists")
        backing = root.findtext("backingStore/path")
        bfmt_el = root.find("backingStore/format")
        tmp = os.path.join(d.target, f"{TEMP_PREFIX}{os.getpid()}-{name}"[:255])
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
        return self._vol(d, name)

    def _check_unused(self, v: VolumeRecord, what: str) -> None:
        users = self._users(v.path, v.pool_name, v.name)
        if users:
            raise OperationInvalid(f"Requested operation is not valid: cannot {what} volume '{v.name}': "
                                   f"it is in use by running domain{'s' if len(users) > 1 else ''} "
                                   + ", ".join(f"'{u}'" for u in users), detail={"domains": users})

    def delete_volume(self, key: str, *, wipe: bool = False) -> None:
        d, v = self._v(key)
        self._check_unused(v, "delete")
        try:
            os.unlink(v.path)
        except OSError as exc:
            raise SystemError_(f"cannot delete volume '{v.name}': {exc.strerror}") from None

    def wipe_volume(self, key: str) -> None:
        """Zeros over a raw volume; a qcow2 volume made anew, empty, at its
        capacity (its backing file kept), under a temporary name then renamed."""
        d, v = self._v(key)
        self._check_unused(v, "wipe")
        try:
            if v.format == "raw":
                fd = os.open(v.path, os.O_WRONLY | os.O_NOFOLLOW)
                try:
                    zeros, left = bytes(_CHUNK), v.capacity
                    while left > 0:
                        left -= os.write(fd, zeros[:min(_CHUNK, left)])
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return
            tmp = os.path.join(d.target, f"{TEMP_PREFIX}{os.getpid()}-{v.name}"[:255])
            try:
                b = v.backing or {}
                qemu_img.create(tmp, v.format, v.capacity, backing=b.get("path"), backing_fmt=b.get("format"))
                os.replace(tmp, v.path)
            finally:
                unlink_quiet(tmp)
        except OSError as exc:
            raise _enospc(f"wipe volume '{v.name}'", exc) from None

    def capabilities(self) -> str:
        return ("<storagepoolCapabilities>\n  <pool type='dir' supported='yes'>\n"
                "    <volOptions>\n      <defaultFormat type='raw'/>\n      <enum name='targetFormatType'>\n"
                + "".join(f"        <value>{f}</value>\n" for f in FORMATS)
                + "      </enum>\n    </volOptions>\n  </pool>\n</storagepoolCapabilities>\n")

    def resize_volume(self, key: str, capacity: int, *, delta: bool = False, shrink: bool = False,
                      allocate: bool = False) -> None:
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
            raise not_supported("qemu", "vol-resize of a volume a running domain uses (blockresize)")
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

    def upload_volume(self, key: str, src, *, offset: int = 0, length: int = 0, sparse: bool = False) -> None:
        d, v = self._v(key)
        fd = os.open(v.path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            left = length or None
            while left is None or left > 0:
                buf = src.read(_CHUNK if left is None else min(_CHUNK, left))
                if not buf:
                    break
                if left is not None:
                    left -= len(buf)
                if sparse and not buf.strip(b"\0"):
                    os.lseek(fd, len(buf), os.SEEK_CUR)
                    continue
                view = memoryview(buf)
                while view:
                    view = view[os.write(fd, view):]
            end = os.lseek(fd, 0, os.SEEK_CUR)
            if end > os.fstat(fd).st_size:  # a sparse tail still sets the size
                os.ftruncate(fd, end)
            os.fsync(fd)
        except OSError as exc:
            raise _enospc(f"upload to volume '{v.name}'", exc) from None
        finally:
            os.close(fd)

    def download_volume(self, key: str, dst, *, offset: int = 0, length: int = 0, sparse: bool = False) -> None:
        d, v = self._v(key)
        fd = os.open(v.path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            left = length or None
            while left is None or left > 0:
                buf = os.read(fd, _CHUNK if left is None else min(_CHUNK, left))
                if not buf:
                    break
                if left is not None:
                    left -= len(buf)
                if sparse and not buf.strip(b"\0"):
                    dst.seek(len(buf), os.SEEK_CUR)  # a hole stays a hole
                    continue
                dst.write(buf)
            if sparse:
                dst.truncate(dst.tell())  # a trailing hole still sets the size
        finally:
            os.close(fd)
