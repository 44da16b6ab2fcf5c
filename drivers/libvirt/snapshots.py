"""Domain snapshot operations on a libvirt connection (base.SnapshotDriver
onto virDomainSnapshot*), errors through errors.TABLE.

Records are read from each snapshot's XML (name, parent, creation time,
state, description, where memory and disks went) and libvirt's isCurrent and
hasMetadata.  ``list`` gives libvirt's topological order with each parent's
children oldest first, as drivers/test/snapshots.py keeps them (libvirt keeps
them newest first; api/snapshot.py's select walks them newest first again).
"""
from __future__ import annotations

from virtctl.api.snapshot import SnapshotRecord
from virtctl.drivers.base import SnapshotDriver
from virtctl.drivers.libvirt.errors import mapped

# libvirt's flag values, for bindings older than the flag (the name is looked up first)
_FALLBACK = {"VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM": 8, "VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE": 256}


def _flags(lv, *pairs: tuple[bool, str]) -> int:
    out = 0
    for on, name in pairs:
        if on:
            out |= getattr(lv, name, None) or _FALLBACK[name]
    return out


def _location(root) -> str:
    """internal or external, as libvirt's INTERNAL/EXTERNAL filters and virsh's
    snapshot-info (external when memory or any disk went to its own file)."""
    mem = root.find("memory")
    snaps = [mem.get("snapshot")] if mem is not None else []
    snaps += [d.get("snapshot") for d in root.findall("disks/disk")]
    return "external" if "external" in snaps else "internal"


class LibvirtSnapshotDriver(SnapshotDriver):
    driver_name = "libvirt"

    def __init__(self, lv, conn):
        self.lv, self.conn = lv, conn

    # --- helpers ----------------------------------------------------------------------
    def _dom(self, uuid: str):
        with mapped(self.lv):
            return self.conn.lookupByUUIDString(uuid)

    def _snap(self, uuid: str, name: str):
        d = self._dom(uuid)
        with mapped(self.lv):
            return d.snapshotLookupByName(name, 0)

    def _record(self, uuid: str, s) -> SnapshotRecord:
        from virtctl.xml import xmlapi

        with mapped(self.lv):
            xml = s.getXMLDesc(0)
            current = bool(s.isCurrent(0))
            metadata = bool(s.hasMetadata(0))
        root = xmlapi.parse(xml, "<domainsnapshot>")
        when = root.findtext("creationTime") or "0"
        state = root.findtext("state") or "running"
        return SnapshotRecord(
            name=root.findtext("name") or s.getName(), domain_uuid=uuid,
            parent=root.findtext("parent/name") or None,
            creation_time=int(when) if when.isdigit() else 0, state=state,
            description=root.findtext("description") or "", current=current,
            location=_location(root), disk_only=state == "disk-snapshot", metadata=metadata)

    # --- reading ------------------------------------------------------------------------
    def list(self, uuid: str) -> list[SnapshotRecord]:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            snaps = d.listAllSnapshots(lv.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
        records = []
        for s in snaps:
            try:
                records.append(self._record(uuid, s))
            except Exception as exc:  # deleted between the two calls: gone
                if getattr(exc, "code", None) != "NO_DOMAIN_SNAPSHOT":
                    raise
        names = {r.name for r in records}
        kids: dict[str | None, list[SnapshotRecord]] = {}
        for r in records:
            kids.setdefault(r.parent if r.parent in names else None, []).append(r)
        out: list[SnapshotRecord] = []

        def walk(parent: str | None) -> None:
            for r in reversed(kids.get(parent, [])):
                out.append(r)
                walk(r.name)
        walk(None)
        return out

    def get(self, uuid: str, name: str) -> SnapshotRecord:
        return self._record(uuid, self._snap(uuid, name))

    def get_xml(self, uuid: str, name: str, *, security_info: bool = False) -> str:
        s = self._snap(uuid, name)
        with mapped(self.lv):
            return s.getXMLDesc(_flags(self.lv, (security_info, "VIR_DOMAIN_SNAPSHOT_XML_SECURE")))

    # --- changing -------------------------------------------------------------------------
    def create(self, uuid: str, xml: str, *, source: str = "<input>", redefine: bool = False,
               current: bool = False, no_metadata: bool = False, halt: bool = False,
               disk_only: bool = False, reuse_external: bool = False, quiesce: bool = False,
               atomic: bool = False, live: bool = False, validate: bool = False) -> str:
        lv, d = self.lv, self._dom(uuid)
        p = "VIR_DOMAIN_SNAPSHOT_CREATE_"
        flags = _flags(lv, (redefine, p + "REDEFINE"), (current, p + "CURRENT"),
                       (no_metadata, p + "NO_METADATA"), (halt, p + "HALT"), (disk_only, p + "DISK_ONLY"),
                       (reuse_external, p + "REUSE_EXT"), (quiesce, p + "QUIESCE"), (atomic, p + "ATOMIC"),
                       (live, p + "LIVE"), (validate, p + "VALIDATE"))
        with mapped(lv):
            return d.snapshotCreateXML(xml, flags).getName()

    def set_current(self, uuid: str, name: str) -> None:
        # as virsh's snapshot-current NAME: redefine the snapshot from its own XML as current
        lv, d = self.lv, self._dom(uuid)
        s = self._snap(uuid, name)
        with mapped(lv):
            xml = s.getXMLDesc(lv.VIR_DOMAIN_SNAPSHOT_XML_SECURE)
            d.snapshotCreateXML(xml, lv.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE | lv.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT)

    def revert(self, uuid: str, name: str, *, running: bool = False, paused: bool = False,
               force: bool = False, reset_nvram: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            s = d.snapshotLookupByName(name, 0)
        p = "VIR_DOMAIN_SNAPSHOT_REVERT_"
        flags = _flags(lv, (running, p + "RUNNING"), (paused, p + "PAUSED"), (force, p + "FORCE"),
                       (reset_nvram, p + "RESET_NVRAM"))
        with mapped(lv):
            d.revertToSnapshot(s, flags)

    def delete(self, uuid: str, name: str, *, children: bool = False, children_only: bool = False,
               metadata_only: bool = False) -> None:
        lv = self.lv
        s = self._snap(uuid, name)
        p = "VIR_DOMAIN_SNAPSHOT_DELETE_"
        flags = _flags(lv, (children, p + "CHILDREN"), (children_only, p + "CHILDREN_ONLY"),
                       (metadata_only, p + "METADATA_ONLY"))
        with mapped(lv):
            s.delete(flags)
