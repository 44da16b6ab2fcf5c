"""Storage pools and volumes: opaque handles and the records drivers return.

A pool is keyed by UUID; a volume by its key (for file volumes, its path).
Volumes are found as virsh finds them (see ``Connection.lookup_volume``): by
name within a pool, then by key, then by path.  Every method re-reads from
the driver; ``snapshot`` is the record seen when the handle was made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virtctl.api.connection import Connection




def xml_escape(s: str) -> str:
    """Text or a single-quoted attribute value, escaped as libvirt writes them."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")


@dataclass
class PoolRecord:
    uuid: str
    name: str
    type: str
    active: bool
    persistent: bool
    autostart: bool
    capacity: int  # bytes
    allocation: int
    available: int
    target_path: str = ""

    @property
    def state_text(self) -> str:
        return "running" if self.active else "inactive"

    def to_json(self) -> dict:
        return {"name": self.name, "uuid": self.uuid, "type": self.type,
                "state": self.state_text, "active": self.active, "persistent": self.persistent,
                "autostart": self.autostart,
                "capacity": self.capacity if self.active else None,
                "allocation": self.allocation if self.active else None,
                "available": self.available if self.active else None,
                "path": self.target_path}


@dataclass
class VolumeRecord:
    key: str
    name: str
    path: str
    pool_uuid: str
    pool_name: str
    type: str = "file"
    format: str = "raw"
    capacity: int = 0  # bytes
    allocation: int = 0
    backing: dict | None = field(default=None)  # {"path": ..., "format": ...}

    def to_json(self) -> dict:
        return {"name": self.name, "key": self.key, "path": self.path, "pool": self.pool_name,
                "type": self.type, "format": self.format, "capacity": self.capacity,
                "allocation": self.allocation, "backing": self.backing}

    def to_xml(self) -> str:
        """``vol-dumpxml``'s document, laid out as libvirt formats a volume
        (the same for every driver)."""
        back = ""
        if self.backing:
            fmt = (f"    <format type='{xml_escape(self.backing['format'])}'/>\n"
                   if self.backing.get("format") else "")
            back = f"  <backingStore>\n    <path>{xml_escape(self.backing['path'])}</path>\n{fmt}  </backingStore>\n"
        return (f"<volume type='{xml_escape(self.type)}'>\n  <name>{xml_escape(self.name)}</name>\n"
                f"  <key>{xml_escape(self.key)}</key>\n"
                f"  <capacity unit='bytes'>{self.capacity}</capacity>\n"
                f"  <allocation unit='bytes'>{self.allocation}</allocation>\n"
                f"  <target>\n    <path>{xml_escape(self.path)}</path>\n    <format type='{xml_escape(self.format)}'/>\n"
                f"  </target>\n{back}</volume>\n")


class StoragePool:
    __slots__ = ("_conn", "_uuid", "snapshot")

    def __init__(self, conn: "Connection", record: PoolRecord):
        self._conn, self._uuid, self.snapshot = conn, record.uuid, record

    def __repr__(self) -> str:
        return f"<StoragePool {self.snapshot.name} {self._uuid}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, StoragePool) and other._uuid == self._uuid

    def __hash__(self) -> int:
        return hash(self._uuid)

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        return self.snapshot.name

    @property
    def _drv(self):
        return self._conn._driver.pools

    def info(self) -> PoolRecord:
        return self._drv.get(self._uuid)

    def xml(self, *, inactive: bool = False) -> str:
        return self._drv.get_xml(self._uuid, inactive=inactive)

    def _w(self, what: str) -> None:
        self._conn._check_writable(what)

    def start(self, *, build: bool = False, overwrite: bool = False, no_overwrite: bool = False) -> None:
        self._w("starting a storage pool")
        self._drv.start(self._uuid, build=build, overwrite=overwrite, no_overwrite=no_overwrite)

    def build(self, *, overwrite: bool = False, no_overwrite: bool = False) -> None:
        self._w("building a storage pool")
        self._drv.build(self._uuid, overwrite=overwrite, no_overwrite=no_overwrite)

    def destroy(self) -> None:
        self._w("destroying a storage pool")
        self._drv.destroy(self._uuid)

    def delete(self) -> None:
        self._w("deleting a storage pool")
        self._drv.delete(self._uuid)

    def undefine(self) -> None:
        self._w("undefining a storage pool")
        self._drv.undefine(self._uuid)

    def set_autostart(self, enabled: bool) -> None:
        self._w("changing a storage pool's autostart")
        self._drv.set_autostart(self._uuid, enabled=enabled)

    def refresh(self) -> None:
        self._w("refreshing a storage pool")
        self._drv.refresh(self._uuid)

    # --- volumes
    def volumes(self) -> list["StorageVolume"]:
        """The pool's volumes, sorted by name (OPERATION_INVALID if inactive)."""
        return [StorageVolume(self._conn, r) for r in sorted(self._drv.volumes(self._uuid),
                                                             key=lambda r: r.name)]

    def volume_by_name(self, name: str) -> "StorageVolume":
        return StorageVolume(self._conn, self._drv.volume_by_name(self._uuid, name))

    def create_volume(self, xml: str, *, source: str = "<input>", prealloc_metadata: bool = False,
                      clone_from: "StorageVolume | None" = None) -> "StorageVolume":
        self._w("creating a storage volume")
        rec = self._drv.create_volume(self._uuid, xml, source=source, prealloc_metadata=prealloc_metadata,
                                      clone_key=clone_from.key if clone_from else None)
        return StorageVolume(self._conn, rec)


class StorageVolume:
    __slots__ = ("_conn", "_key", "snapshot")

    def __init__(self, conn: "Connection", record: VolumeRecord):
        self._conn, self._key, self.snapshot = conn, record.key, record

    def __repr__(self) -> str:
        return f"<StorageVolume {self.snapshot.name} {self._key}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, StorageVolume) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def key(self) -> str:
        return self._key

    @property
    def name(self) -> str:
        return self.snapshot.name

    @property
    def path(self) -> str:
        return self.snapshot.path

    @property
    def _drv(self):
        return self._conn._driver.pools

    def info(self) -> VolumeRecord:
        return self._drv.volume_by_key(self._key)

    def pool(self) -> StoragePool:
        return StoragePool(self._conn, self._drv.get(self.info().pool_uuid))

    def xml(self) -> str:
        return self._drv.volume_xml(self._key)

    def delete(self, *, wipe: bool = False) -> None:
        self._conn._check_writable("deleting a storage volume")
        self._drv.delete_volume(self._key, wipe=wipe)

    def wipe(self, *, algorithm: str = "zero") -> None:
        """Erase the volume's data (``algorithm``: virsh's names; the QEMU
        driver does ``zero`` and ``random``)."""
        self._conn._check_writable("wiping a storage volume")
        self._drv.wipe_volume(self._key, algorithm=algorithm)

    def resize(self, capacity: int, *, delta: bool = False, shrink: bool = False,
               allocate: bool = False) -> None:
        """``capacity`` in bytes (added to the current one with ``delta``)."""
        self._conn._check_writable("resizing a storage volume")
        self._drv.resize_volume(self._key, capacity, delta=delta, shrink=shrink, allocate=allocate)

    def upload(self, src, *, offset: int = 0, length: int = 0, sparse: bool = False, progress=None) -> None:
        """Write the readable binary file ``src`` into the volume (all of it,
        or ``length`` bytes) at ``offset``; ``progress(done, total)`` is
        called as bytes go (total 0 when unknown)."""
        self._conn._check_writable("uploading to a storage volume")
        self._drv.upload_volume(self._key, src, offset=offset, length=length, sparse=sparse, progress=progress)

    def download(self, dst, *, offset: int = 0, length: int = 0, sparse: bool = False, progress=None) -> None:
        self._drv.download_volume(self._key, dst, offset=offset, length=length, sparse=sparse,
                                  progress=progress)
