"""Storage pool and volume operations on a libvirt connection
(base.PoolDriver onto virStoragePool*/virStorageVol*), errors through errors.TABLE.

Records are built from libvirt's answers: a pool's type and target path from
its XML, a volume's format and backing store from its XML, sizes from
``info()``.  ``vol-dumpxml`` and ``pool-dumpxml`` print libvirt's own
documents.  Uploads and downloads go through a virStream (sparse ones through
libvirt's sparse streams: holes in a regular file are sent as holes, received
holes are left as holes in the file written)."""
from __future__ import annotations

import contextlib
import os

from virtctl.api.storage import PoolRecord, VolumeRecord
from virtctl.drivers.base import PoolDriver
from virtctl.drivers.libvirt.errors import mapped
from virtctl.drivers.libvirt.flags import flags as _flags
from virtctl.errors import InvalidArg, VirtError

_CHUNK = 256 * 1024
# virStorageVolType -> the name libvirt's XML uses
_VOL_TYPES = {0: "file", 1: "block", 2: "dir", 3: "network", 4: "netdir", 5: "ploop"}
_WIPE = {"zero": "ZERO", "nnsa": "NNSA", "dod": "DOD", "bsi": "BSI", "gutmann": "GUTMANN",
         "schneier": "SCHNEIER", "pfitzner7": "PFITZNER7", "pfitzner33": "PFITZNER33",
         "random": "RANDOM", "trim": "TRIM"}


def _parse(xml: str):
    import xml.etree.ElementTree as ET

    return ET.fromstring(xml)


class LibvirtPoolDriver(PoolDriver):
    driver_name = "libvirt"

    def __init__(self, lv, conn):
        self.lv, self.conn = lv, conn

    # --- records ------------------------------------------------------------------
    def _is(self, exc, *names: str) -> bool:
        return exc.get_error_code() in {getattr(self.lv, n) for n in names if hasattr(self.lv, n)}

    def _pool(self, uuid: str):
        with mapped(self.lv):
            return self.conn.storagePoolLookupByUUIDString(uuid)

    def _pool_record(self, p) -> PoolRecord:
        with mapped(self.lv):
            root = _parse(p.XMLDesc(0))
            _state, capacity, allocation, available = p.info()
            persistent = bool(p.isPersistent())
            return PoolRecord(uuid=p.UUIDString(), name=p.name(), type=root.get("type", ""),
                              active=bool(p.isActive()), persistent=persistent,
                              autostart=bool(p.autostart()) if persistent else False,
                              capacity=capacity, allocation=allocation, available=available,
                              target_path=(root.findtext("target/path") or "").strip())

    def _vol(self, key: str):
        with mapped(self.lv):
            return self.conn.storageVolLookupByKey(key)

    def _vol_record(self, v) -> VolumeRecord:
        with mapped(self.lv):
            root = _parse(v.XMLDesc(0))
            vtype, capacity, allocation = v.info()
            p = v.storagePoolLookupByVolume()
            fmt = root.find("target/format")
            backing = None
            bpath = (root.findtext("backingStore/path") or "").strip()
            if bpath:
                bfmt = root.find("backingStore/format")
                backing = {"path": bpath, "format": bfmt.get("type") if bfmt is not None else None}
            return VolumeRecord(key=v.key(), name=v.name(), path=v.path(), pool_uuid=p.UUIDString(),
                                pool_name=p.name(), type=root.get("type") or _VOL_TYPES.get(vtype, "file"),
                                format=fmt.get("type", "raw") if fmt is not None else "raw",
                                capacity=capacity, allocation=allocation, backing=backing)

    # --- pools --------------------------------------------------------------------
    def list(self) -> list[PoolRecord]:
        with mapped(self.lv):
            pools = self.conn.listAllStoragePools(0)
        out = []
        for p in pools:
            try:
                out.append(self._pool_record(p))
            except VirtError as exc:  # gone between the two calls (mapped errors are VirtError with a code)
                if exc.code != "NO_STORAGE_POOL":
                    raise
        return out

    def get(self, uuid: str) -> PoolRecord:
        return self._pool_record(self._pool(uuid))

    def get_xml(self, uuid: str, *, inactive: bool = False) -> str:
        p = self._pool(uuid)
        with mapped(self.lv):
            return p.XMLDesc(_flags(self.lv, (inactive, "VIR_STORAGE_XML_INACTIVE")))

    def define(self, xml: str, *, source: str = "<input>") -> PoolRecord:
        with mapped(self.lv):
            p = self.conn.storagePoolDefineXML(xml, 0)
        return self._pool_record(p)

    def create_xml(self, xml: str, *, source: str = "<input>", build: bool = False) -> PoolRecord:
        with mapped(self.lv):
            p = self.conn.storagePoolCreateXML(xml, _flags(self.lv, (build, "VIR_STORAGE_POOL_CREATE_WITH_BUILD")))
        return self._pool_record(p)

    def start(self, uuid: str, *, build: bool = False, overwrite: bool = False,
              no_overwrite: bool = False) -> None:
        p = self._pool(uuid)
        # as virsh passes them (libvirt refuses overwrite with no_overwrite)
        flags = _flags(self.lv, (build, "VIR_STORAGE_POOL_CREATE_WITH_BUILD"),
                       (overwrite, "VIR_STORAGE_POOL_CREATE_WITH_BUILD_OVERWRITE"),
                       (no_overwrite, "VIR_STORAGE_POOL_CREATE_WITH_BUILD_NO_OVERWRITE"))
        with mapped(self.lv):
            p.create(flags)

    def build(self, uuid: str, *, overwrite: bool = False, no_overwrite: bool = False) -> None:
        p = self._pool(uuid)
        with mapped(self.lv):
            p.build(_flags(self.lv, (overwrite, "VIR_STORAGE_POOL_BUILD_OVERWRITE"),
                           (no_overwrite, "VIR_STORAGE_POOL_BUILD_NO_OVERWRITE")))

    def destroy(self, uuid: str) -> None:
        p = self._pool(uuid)
        with mapped(self.lv):
            p.destroy()

    def delete(self, uuid: str) -> None:
        p = self._pool(uuid)
        with mapped(self.lv):
            p.delete(0)

    def undefine(self, uuid: str) -> None:
        p = self._pool(uuid)
        with mapped(self.lv):
            p.undefine()

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        p = self._pool(uuid)
        with mapped(self.lv):
            p.setAutostart(1 if enabled else 0)

    def refresh(self, uuid: str) -> None:
        p = self._pool(uuid)
        with mapped(self.lv):
            p.refresh(0)

    def capabilities(self) -> str:
        with mapped(self.lv):
            return self.conn.getStoragePoolCapabilities(0)

    # --- volumes ------------------------------------------------------------------
    def volumes(self, uuid: str) -> list[VolumeRecord]:
        p = self._pool(uuid)
        with mapped(self.lv):
            vols = p.listAllVolumes(0)
        out = []
        for v in vols:
            try:
                out.append(self._vol_record(v))
            except VirtError as exc:  # deleted between the two calls
                if exc.code != "NO_STORAGE_VOL":
                    raise
        return out

    def find_volume(self, *, name=None, pool_uuid=None, key=None, path=None):
        lv = self.lv
        try:
            if name is not None:
                if pool_uuid is None:
                    return None  # a name means nothing without its pool
                v = self.conn.storagePoolLookupByUUIDString(pool_uuid).storageVolLookupByName(name)
            elif key is not None:
                v = self.conn.storageVolLookupByKey(key)
            elif path is not None:
                v = self.conn.storageVolLookupByPath(path)
            else:
                return None
        except lv.libvirtError as exc:
            # not there, or its pool is inactive (virsh then goes on looking, as
            # Connection.lookup_volume does)
            if self._is(exc, "VIR_ERR_NO_STORAGE_VOL", "VIR_ERR_NO_STORAGE_POOL", "VIR_ERR_OPERATION_INVALID"):
                return None
            with mapped(lv):
                raise
        try:
            return self._vol_record(v)
        except VirtError as exc:
            if exc.code != "NO_STORAGE_VOL":
                raise
            return None

    def volume_by_key(self, key: str) -> VolumeRecord:
        return self._vol_record(self._vol(key))

    def volume_by_name(self, uuid: str, name: str) -> VolumeRecord:
        p = self._pool(uuid)
        with mapped(self.lv):
            v = p.storageVolLookupByName(name)
        return self._vol_record(v)

    def volume_xml(self, key: str) -> str:
        v = self._vol(key)
        with mapped(self.lv):
            return v.XMLDesc(0)

    def create_volume(self, uuid: str, xml: str, *, source: str = "<input>",
                      prealloc_metadata: bool = False, clone_key: str | None = None) -> VolumeRecord:
        p = self._pool(uuid)
        flags = _flags(self.lv, (prealloc_metadata, "VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA"))
        src = self._vol(clone_key) if clone_key is not None else None
        with mapped(self.lv):
            v = p.createXMLFrom(xml, src, flags) if src is not None else p.createXML(xml, flags)
        return self._vol_record(v)

    def delete_volume(self, key: str, *, wipe: bool = False) -> None:
        v = self._vol(key)
        with mapped(self.lv):
            v.delete(_flags(self.lv, (wipe, "VIR_STORAGE_VOL_DELETE_ZEROED")))

    def wipe_volume(self, key: str, *, algorithm: str = "zero") -> None:
        if algorithm not in _WIPE:
            raise InvalidArg(f"Unsupported algorithm '{algorithm}'")
        v = self._vol(key)
        with mapped(self.lv):
            if algorithm == "zero":  # virsh's vol-wipe without --algorithm: virStorageVolWipe
                v.wipe(0)
            else:
                v.wipePattern(getattr(self.lv, "VIR_STORAGE_VOL_WIPE_ALG_" + _WIPE[algorithm]), 0)

    def resize_volume(self, key: str, capacity: int, *, delta: bool = False, shrink: bool = False,
                      allocate: bool = False) -> None:
        v = self._vol(key)
        with mapped(self.lv):
            v.resize(capacity, _flags(self.lv, (allocate, "VIR_STORAGE_VOL_RESIZE_ALLOCATE"),
                                      (delta, "VIR_STORAGE_VOL_RESIZE_DELTA"),
                                      (shrink, "VIR_STORAGE_VOL_RESIZE_SHRINK")))

    def upload_volume(self, key: str, src, *, offset: int = 0, length: int = 0,
                      sparse: bool = False, progress=None) -> None:
        """``src``'s bytes (all of them, or ``length``) at ``offset`` of the
        volume, through a stream; ``sparse``: the holes of a regular file go
        as holes (virStorageVolUpload with the sparse-stream flag)."""
        lv = self.lv
        v = self._vol(key)
        fd = None
        if sparse:
            try:
                fd = src.fileno()
                pos = src.tell()
                os.lseek(fd, pos, os.SEEK_DATA if pos < os.fstat(fd).st_size else os.SEEK_SET)
            except (AttributeError, OSError, ValueError):
                raise InvalidArg("vol-upload --sparse needs a regular file to read holes from") from None
        total = length or _left(src)
        with _stream(lv, self.conn) as st:
            v.upload(st, offset, length, _flags(lv, (sparse, "VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM")))
            if sparse:
                _sparse_send(lv, st, fd, pos, length, progress, total)
                return
            done = 0
            while not length or done < length:
                buf = src.read(_CHUNK if not length else min(_CHUNK, length - done))
                if not buf:
                    break
                st.send(buf)
                done += len(buf)
                if progress is not None:
                    progress(done, total)

    def download_volume(self, key: str, dst, *, offset: int = 0, length: int = 0,
                        sparse: bool = False, progress=None) -> None:
        """The volume's bytes from ``offset`` (all, or ``length``) into the
        binary file ``dst``; ``sparse``: the holes libvirt reports stay holes."""
        lv = self.lv
        v = self._vol(key)
        total = length
        if not total:
            try:
                with mapped(lv):
                    _t, _cap, physical = v.infoFlags(lv.VIR_STORAGE_VOL_GET_PHYSICAL)
                total = max(0, physical - offset)
            except (VirtError, TypeError, ValueError):  # the total only feeds the progress bar
                total = 0
        done = [0]

        def tick(n):
            done[0] += n
            if progress is not None:
                progress(done[0], total)
        with _stream(lv, self.conn) as st:
            v.download(st, offset, length, _flags(lv, (sparse, "VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM")))
            if sparse:
                def data(_st, buf, _opaque):
                    dst.write(buf)
                    tick(len(buf))
                    return 0

                def hole(_st, n, _opaque):
                    dst.seek(n, os.SEEK_CUR)
                    tick(n)
                    return 0
                st.sparseRecvAll(data, hole, None)
                dst.truncate(dst.tell())  # a hole at the end still counts
                return
            while True:
                buf = st.recv(_CHUNK)
                if not buf:
                    break
                dst.write(buf)
                tick(len(buf))


@contextlib.contextmanager
def _stream(lv, conn):
    """A libvirt stream for one transfer: finished when the block ends (a
    ``return`` inside included), aborted when it raises, so that a transfer
    cut half-way is never committed by libvirt; libvirt's errors inside are
    virtctl's (errors.mapped)."""
    with mapped(lv):
        st = conn.newStream(0)
    try:
        with mapped(lv):
            yield st
            st.finish()
    except BaseException:
        try:
            st.abort()
        except lv.libvirtError:
            pass
        raise


def _left(src) -> int:
    """What a regular file has left to read (0 when unknown)."""
    try:
        st = os.fstat(src.fileno())
        import stat

        return max(0, st.st_size - src.tell()) if stat.S_ISREG(st.st_mode) else 0
    except (AttributeError, OSError, ValueError):
        return 0


def _sparse_send(lv, st, fd: int, start: int, length: int, progress, total: int) -> None:
    """Send ``fd`` from ``start`` (``length`` bytes, 0: to its end) as data and
    holes (SEEK_DATA/SEEK_HOLE)."""
    end = os.fstat(fd).st_size
    if length:
        end = min(end, start + length)
    state = {"pos": start}

    def section():  # (in data, length) of what is at pos
        pos = state["pos"]
        if pos >= end:
            return True, 0
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: nothing but a hole up to the end
            data = end
        if data > pos:
            return False, min(data, end) - pos
        hole = os.lseek(fd, pos, os.SEEK_HOLE)
        return True, min(hole, end) - pos

    def hole_handler(_st, _opaque):
        in_data, n = section()
        return [in_data, n]

    def skip_handler(_st, n, _opaque):
        state["pos"] += n
        if progress is not None:
            progress(state["pos"] - start, total)
        return 0

    def handler(_st, nbytes, _opaque):
        pos = state["pos"]
        n = min(nbytes, end - pos)
        if n <= 0:
            return b""
        buf = os.pread(fd, n, pos)
        state["pos"] = pos + len(buf)
        if progress is not None:
            progress(state["pos"] - start, total)
        return buf

    st.sparseSendAll(handler, hole_handler, skip_handler, None)
