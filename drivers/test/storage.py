"""The test driver's storage pools and volumes, as libvirt's test driver has
them: every pool starts active with 100 GiB capacity and nothing allocated;
a volume's allocation counts against its pool; volume key = path =
``<pool target path>/<name>``; no file is ever touched."""
from __future__ import annotations

from dataclasses import dataclass, field

from virtctl.api.storage import PoolRecord, VolumeRecord
from virtctl.api.storage import xml_escape as _esc
from virtctl.drivers.base import PoolDriver
from virtctl.errors import (InvalidArg, NoStoragePool, NoStorageVol, OperationFailed,
                            OperationInvalid, XMLError, unsupported_flags)

POOL_CAPACITY = 107374182400  # libvirt's test driver: 100 GiB, nothing allocated


def _bytes(el, tag: str, source: str) -> int | None:
    from virtctl.xml.units import unit_factor

    sub = el.find(tag)
    if sub is None or not (sub.text or "").strip():
        return None
    try:
        n = int(sub.text.strip())
    except ValueError:
        raise XMLError(f"{source}: malformed <{tag}> '{sub.text}'") from None
    factor = unit_factor(sub.get("unit") or "bytes")
    if factor is None or n < 0:
        raise XMLError(f"{source}: invalid <{tag}> unit or value")
    return n * factor


@dataclass
class _Pool:
    uuid: str
    name: str
    type: str
    target: str
    source_xml: str = ""  # the <source> children, formatted
    perms_xml: str = ""
    active: bool = True
    persistent: bool = True
    autostart: bool = False
    allocation: int = 0
    vols: dict = field(default_factory=dict)  # name -> VolumeRecord
    pending: "_Pool | None" = None  # a definition given while active: applied when it stops

    def record(self) -> PoolRecord:
        return PoolRecord(uuid=self.uuid, name=self.name, type=self.type, active=self.active,
                          persistent=self.persistent, autostart=self.autostart,
                          capacity=POOL_CAPACITY, allocation=self.allocation,
                          available=POOL_CAPACITY - self.allocation, target_path=self.target)


def _parse_pool(el, source: str) -> _Pool:
    from virtctl.xml import xmlapi
    from virtctl.xml.domain import new_uuid

    name = (el.findtext("name") or "").strip()
    if not name:
        raise XMLError(f"{source}: missing pool source name element")
    uuid = (el.findtext("uuid") or "").strip() or new_uuid()
    from virtctl.api.connection import canonical_uuid

    try:
        uuid = canonical_uuid(uuid)
    except InvalidArg:
        raise XMLError(f"{source}: malformed uuid element") from None
    def block(e) -> str:  # ``e`` formatted, each line indented by four spaces
        return "".join("    " + line + "\n" for line in xmlapi.tostring(e).strip("\n").split("\n"))

    src = el.find("source")
    src_xml = "".join(block(c) for c in src if xmlapi.is_element(c)) if src is not None else ""
    perms = el.find("target/permissions")
    perms_xml = block(perms) if perms is not None else ""
    return _Pool(uuid=uuid, name=name, type=el.get("type", ""),
                 target=(el.findtext("target/path") or "").strip(), source_xml=src_xml, perms_xml=perms_xml)


def _parse_volume(el, pool: _Pool, source: str) -> VolumeRecord:
    name = (el.findtext("name") or "").strip()
    if not name:
        raise XMLError(f"{source}: missing volume name element")
    if "/" in name:
        raise InvalidArg(f"volume name '{name}' cannot contain '/'")
    cap = _bytes(el, "capacity", source)
    if cap is None:
        raise XMLError(f"{source}: missing capacity element")
    alloc = _bytes(el, "allocation", source)
    fmt = el.find("target/format")
    backing = None
    bpath = (el.findtext("backingStore/path") or "").strip()
    if bpath:
        bfmt = el.find("backingStore/format")
        backing = {"path": bpath, "format": bfmt.get("type") if bfmt is not None else None}
    path = f"{pool.target}/{name}"
    return VolumeRecord(key=path, name=name, path=path, pool_uuid=pool.uuid, pool_name=pool.name,
                        format=fmt.get("type", "raw") if fmt is not None else "raw", capacity=cap,
                        allocation=cap if alloc is None else alloc, backing=backing)


class TestPoolDriver(PoolDriver):
    driver_name = "test"

    def __init__(self):
        self._pool_map: dict[str, _Pool] = {}
        self._pending = None  # (elements or a callable giving them, source), parsed on first use

    def load(self, elements, source: str = "<node>") -> None:
        """Pools of the node document (inline volumes are the pool's; a
        pool from a file has none, as in libvirt's test driver).  ``elements``
        may be a callable: test:///default parses its pools only when a
        command needs them (a one-shot ``list`` never does)."""
        self._pending = (elements, source)
        if not callable(elements):  # a node file's errors belong to connecting
            self._pools  # noqa: B018

    @property
    def _pools(self) -> dict[str, _Pool]:
        if self._pending is not None:
            elements, source = self._pending
            self._pending = None
            for el in (elements() if callable(elements) else elements):
                p = _parse_pool(el, source)
                self._pool_map[p.uuid] = p
                for v in el.findall("volume"):
                    self._add_volume(p, _parse_volume(v, p, source))
        return self._pool_map

    # --- pools
    def _p(self, uuid: str) -> _Pool:
        try:
            return self._pools[uuid]
        except KeyError:
            raise NoStoragePool(f"Storage pool not found: no storage pool with matching uuid '{uuid}'") from None

    def _active(self, uuid: str) -> _Pool:
        p = self._p(uuid)
        if not p.active:
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{p.name}' is not active")
        return p

    def list(self) -> list[PoolRecord]:
        return [p.record() for p in self._pools.values()]

    def get(self, uuid: str) -> PoolRecord:
        return self._p(uuid).record()

    def get_xml(self, uuid: str, *, inactive: bool = False) -> str:
        p = self._p(uuid)
        if inactive:  # libvirt's test driver takes no flags here
            raise unsupported_flags("test", "pool-dumpxml --inactive", 1, "testStoragePoolGetXMLDesc")
        return (f"<pool type='{_esc(p.type)}'>\n  <name>{_esc(p.name)}</name>\n  <uuid>{p.uuid}</uuid>\n"
                f"  <capacity unit='bytes'>{POOL_CAPACITY}</capacity>\n"
                f"  <allocation unit='bytes'>{p.allocation}</allocation>\n"
                f"  <available unit='bytes'>{POOL_CAPACITY - p.allocation}</available>\n"
                f"  <source>\n{p.source_xml}  </source>\n  <target>\n    <path>{_esc(p.target)}</path>\n"
                f"{p.perms_xml}  </target>\n</pool>\n")

    def _new(self, xml: str, source: str) -> _Pool:
        from virtctl.xml import validate

        root = validate.parse_and_validate(xml, "pool", source=source)
        p = _parse_pool(root, source)
        for other in self._pools.values():
            if other.name == p.name and other.uuid != p.uuid:
                raise OperationFailed(f"operation failed: pool '{p.name}' already exists with uuid {other.uuid}")
            if other.uuid == p.uuid and other.name != p.name:
                raise OperationFailed(f"operation failed: pool '{other.name}' is already defined with uuid {p.uuid}")
        return p

    def define(self, xml: str, *, source: str = "<input>") -> PoolRecord:
        p = self._new(xml, source)
        old = self._pools.get(p.uuid)
        if old is not None:
            if old.active:  # the new definition waits for the pool to stop, as in libvirt
                old.pending = p
                return old.record()
            p.autostart, p.vols, p.allocation = old.autostart, old.vols, old.allocation
        p.active = False
        self._pools[p.uuid] = p
        return p.record()

    def create_xml(self, xml: str, *, source: str = "<input>", build: bool = False) -> PoolRecord:
        p = self._new(xml, source)
        if p.uuid in self._pools:
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{p.name}' already exists")
        p.persistent = False
        self._pools[p.uuid] = p
        return p.record()

    def start(self, uuid: str, *, build: bool = False, overwrite: bool = False,
              no_overwrite: bool = False) -> None:
        p = self._p(uuid)
        if p.active:
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{p.name}' is active")
        p.active = True

    def build(self, uuid: str, *, overwrite: bool = False, no_overwrite: bool = False) -> None:
        p = self._p(uuid)
        if p.active:
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{p.name}' is active")

    def destroy(self, uuid: str) -> None:
        p = self._active(uuid)
        p.active = False
        if not p.persistent:
            del self._pools[uuid]
        # a definition given while active (``pending``) is kept, never shown: libvirt's
        # test driver shows the running definition after the pool stops too

    def delete(self, uuid: str) -> None:
        p = self._p(uuid)
        if p.active:
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{p.name}' is still active")

    def undefine(self, uuid: str) -> None:
        p = self._p(uuid)
        if p.active:
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{p.name}' is still active")
        if not p.persistent:
            raise OperationInvalid(f"Requested operation is not valid: storage pool '{p.name}' is transient")
        del self._pools[uuid]

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        p = self._p(uuid)
        if not p.persistent:
            raise OperationInvalid("Requested operation is not valid: cannot set autostart for transient pool")
        p.autostart = enabled

    def refresh(self, uuid: str) -> None:
        self._active(uuid)

    # --- volumes
    def _add_volume(self, p: _Pool, v: VolumeRecord) -> None:
        if v.name in p.vols:
            raise OperationFailed("operation failed: storage vol already exists", detail={"vol": v.name})
        if p.allocation + v.allocation > POOL_CAPACITY:
            raise OperationFailed(f"operation failed: Not enough free space in pool for volume '{v.name}'")
        p.vols[v.name] = v
        p.allocation += v.allocation

    def volumes(self, uuid: str) -> list[VolumeRecord]:
        p = self._p(uuid)
        if not p.active:
            raise OperationInvalid("Requested operation is not valid: storage pool is not active",
                                   detail={"pool": p.name}, context="Failed to list volumes")
        return list(p.vols.values())

    def find_volume(self, *, name=None, pool_uuid=None, key=None, path=None):
        for p in self._pools.values():
            if not p.active or (pool_uuid is not None and p.uuid != pool_uuid):
                continue
            for v in p.vols.values():
                if (name is not None and v.name == name) or (key is not None and v.key == key) \
                        or (path is not None and v.path == path):
                    return v
        return None

    def _v(self, key: str) -> tuple[_Pool, VolumeRecord]:
        for p in self._pools.values():
            for v in p.vols.values():
                if v.key == key:
                    if not p.active:
                        raise OperationInvalid(
                            f"Requested operation is not valid: storage pool '{p.name}' is not active")
                    return p, v
        raise NoStorageVol(f"Storage volume not found: no storage vol with matching key {key}")

    def volume_by_key(self, key: str) -> VolumeRecord:
        return self._v(key)[1]

    def volume_by_name(self, uuid: str, name: str) -> VolumeRecord:
        v = self._active(uuid).vols.get(name)
        if v is None:
            raise NoStorageVol(f"Storage volume not found: no storage vol with matching name '{name}'")
        return v

    def volume_xml(self, key: str) -> str:
        return self._v(key)[1].to_xml()

    def create_volume(self, uuid: str, xml: str, *, source: str = "<input>",
                      prealloc_metadata: bool = False, clone_key: str | None = None) -> VolumeRecord:
        from virtctl.xml import validate

        if prealloc_metadata:
            raise unsupported_flags("test", "vol-create --prealloc-metadata", 1,
                                    "testStorageVolCreateXMLFrom" if clone_key else "testStorageVolCreateXML")
        p = self._active(uuid)
        root = validate.parse_and_validate(xml, "volume", source=source)
        v = _parse_volume(root, p, source)
        if clone_key is not None:
            self._v(clone_key)  # the source must exist; the new volume is the XML's, as in libvirt
        self._add_volume(p, v)
        return v

    def delete_volume(self, key: str, *, wipe: bool = False) -> None:
        p, v = self._v(key)
        del p.vols[v.name]
        p.allocation -= v.allocation
