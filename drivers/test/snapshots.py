"""Snapshots of the test driver, in memory, as libvirt's test driver keeps them.

Every snapshot is internal (memory when the domain was active, every disk),
holds the domain's definition when it was taken, and reverting restarts the
domain from it (a new id, as libvirt's test driver does).  The options
libvirt's test driver refuses (--disk-only, --no-metadata, --reuse-external,
delete --metadata) are refused with its words.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from virtctl.api.snapshot import SnapshotRecord
from virtctl.api.types import DomainState, reason_number
from virtctl.drivers.base import SnapshotDriver
from virtctl.drivers.test.domains import refuse_flags
from virtctl.errors import InvalidArg, NoDomainSnapshot, OperationFailed, OperationInvalid

_STATE_NAMES = {DomainState.RUNNING: "running", DomainState.PAUSED: "paused", DomainState.SHUTOFF: "shutoff"}


@dataclass
class TestSnapshot:
    name: str
    description: str
    parent: str | None
    created: int
    state: str
    domain_xml: str  # the definition when taken, unindented
    memory: object  # <memory> element
    disks: list  # <disk> elements
    extra: list = field(default_factory=list)  # other elements, kept as given


def not_found(name: str) -> NoDomainSnapshot:
    return NoDomainSnapshot(f"Domain snapshot not found: no domain snapshot with matching name '{name}'",
                            detail={"snapshot": name})


class TestSnapshotDriver(SnapshotDriver):
    driver_name = "test"

    def __init__(self, domains):
        self._domains = domains  # the TestDomainDriver whose domains these belong to
        self._snaps: dict[str, dict[str, TestSnapshot]] = {}  # domain UUID -> name -> snapshot
        self._current: dict[str, str] = {}

    # --- helpers ------------------------------------------------------------------
    def count(self, uuid: str) -> int:
        return len(self._snaps.get(uuid, ()))

    def forget(self, uuid: str) -> None:
        """Drop every snapshot of a domain that is going away."""
        self._snaps.pop(uuid, None)
        self._current.pop(uuid, None)

    def _of(self, uuid: str) -> dict[str, TestSnapshot]:
        self._domains._get(uuid)  # NO_DOMAIN first
        return self._snaps.get(uuid, {})

    def _one(self, uuid: str, name: str) -> TestSnapshot:
        snap = self._of(uuid).get(name)
        if snap is None:
            raise not_found(name)
        return snap

    def _record(self, uuid: str, s: TestSnapshot) -> SnapshotRecord:
        return SnapshotRecord(name=s.name, domain_uuid=uuid, parent=s.parent, creation_time=s.created,
                              state=s.state, description=s.description,
                              current=self._current.get(uuid) == s.name)

    # --- reading --------------------------------------------------------------------
    def list(self, uuid: str) -> list[SnapshotRecord]:
        snaps = self._of(uuid)
        kids: dict[str | None, list[TestSnapshot]] = {}
        for s in snaps.values():
            kids.setdefault(s.parent, []).append(s)
        out: list[SnapshotRecord] = []

        def walk(parent: str | None) -> None:
            for s in kids.get(parent, []):
                out.append(self._record(uuid, s))
                walk(s.name)
        walk(None)
        return out

    def get(self, uuid: str, name: str) -> SnapshotRecord:
        return self._record(uuid, self._one(uuid, name))

    def get_xml(self, uuid: str, name: str, *, security_info: bool = False) -> str:
        from virtctl.xml import xmlapi

        s = self._one(uuid, name)
        root = xmlapi.element("domainsnapshot")
        xmlapi.sub(root, "name", text=s.name)
        if s.description:
            xmlapi.sub(root, "description", text=s.description)
        xmlapi.sub(root, "state", text=s.state)
        if s.parent is not None:
            xmlapi.sub(xmlapi.sub(root, "parent"), "name", text=s.parent)
        xmlapi.sub(root, "creationTime", text=str(s.created))
        root.append(xmlapi.copy(s.memory))
        disks = xmlapi.sub(root, "disks")
        for d in s.disks:
            disks.append(xmlapi.copy(d))
        for el in s.extra:
            root.append(xmlapi.copy(el))
        root.append(xmlapi.parse(s.domain_xml, "<snapshot domain>"))
        return xmlapi.tostring(root)

    # --- changing -------------------------------------------------------------------
    def create(self, uuid: str, xml: str, *, source: str = "<input>", redefine: bool = False,
               current: bool = False, no_metadata: bool = False, halt: bool = False,
               disk_only: bool = False, reuse_external: bool = False, quiesce: bool = False,
               atomic: bool = False, live: bool = False, validate: bool = False) -> str:
        from virtctl.xml import validate as schema
        from virtctl.xml import xmlapi

        refuse_flags("snapshot-create", "testDomainSnapshotCreateXML",
                     (no_metadata, 0x4, "--no-metadata"),
                     (disk_only, 0x10, "--disk-only"), (reuse_external, 0x20, "--reuse-external"),
                     (quiesce, 0x40, "--quiesce"))
        if current and not redefine:
            raise InvalidArg("Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag "
                             "'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'")
        d = self._domains._get(uuid)
        root = schema.parse_and_validate(xml, "domainsnapshot", source)
        name = root.findtext("name") or str(int(time.time()))
        snaps = self._snaps.setdefault(uuid, {})
        if redefine:
            return self._redefine(uuid, snaps, name, root, current)
        if name in snaps:
            raise OperationFailed(f"operation failed: domain moment {name} already exists",
                                  detail={"snapshot": name})
        definition = d.current
        targets = [disk.target for disk in definition.disks()]
        given = {el.get("name"): el for el in root.findall("disks/disk")}
        for disk_name in given:
            if disk_name not in targets:
                raise InvalidArg(f"unsupported configuration: no disk named '{disk_name}'",
                                 detail={"disk": disk_name})
        disks = []
        for disk in definition.disks():
            el = given.get(disk.target)
            if el is None:
                el = xmlapi.element("disk", {"name": disk.target, "snapshot": "internal"})
            el = xmlapi.copy(el)
            if el.find("source") is not None and el.get("type") is None:
                el.set("type", "file")
            disks.append(el)
        memory = root.find("memory")
        if memory is None:
            memory = xmlapi.element("memory", {"snapshot": "internal" if d.id is not None else "no"})
        dom_xml = self._domains.get_xml(uuid)
        dom_root = xmlapi.parse(dom_xml, "<domain>")
        dom_root.attrib.pop("id", None)
        parent = self._current.get(uuid)
        snaps[name] = TestSnapshot(
            name=name, description=root.findtext("description") or "", parent=parent,
            created=int(time.time()), state=_STATE_NAMES.get(d.state, "running"),
            domain_xml=xmlapi.tostring(dom_root), memory=xmlapi.copy(memory), disks=disks)
        self._current[uuid] = name
        if halt and d.id is not None:
            self._domains._shutoff_state(uuid, d, "from snapshot")
        return name

    def _redefine(self, uuid: str, snaps: dict, name: str, root, current: bool) -> str:
        """Replace the metadata of ``name`` (or add it) from ``root``."""
        from virtctl.xml import xmlapi

        old = snaps.get(name)
        parent = root.findtext("parent/name") or (old.parent if old else None)
        if parent is not None and (parent not in snaps or parent == name):
            raise not_found(parent)
        dom_el = root.find("domain")
        if dom_el is not None:
            dom_xml = xmlapi.tostring(dom_el)
        elif old is not None:
            dom_xml = old.domain_xml
        else:
            raise OperationFailed("operation failed: a redefined snapshot needs its <domain>")
        when = root.findtext("creationTime")
        snaps[name] = TestSnapshot(
            name=name, description=root.findtext("description") or "", parent=parent,
            created=int(when) if when and when.isdigit() else (old.created if old else int(time.time())),
            state=root.findtext("state") or (old.state if old else "running"), domain_xml=dom_xml,
            memory=xmlapi.copy(root.find("memory") if root.find("memory") is not None
                               else (old.memory if old else xmlapi.element("memory", {"snapshot": "no"}))),
            disks=[xmlapi.copy(d) for d in root.findall("disks/disk")] or (old.disks if old else []))
        if current:
            self._current[uuid] = name
        return name

    def set_current(self, uuid: str, name: str) -> None:
        self._one(uuid, name)
        self._current[uuid] = name

    def revert(self, uuid: str, name: str, *, running: bool = False, paused: bool = False,
               force: bool = False, reset_nvram: bool = False) -> None:
        refuse_flags("snapshot-revert", "testDomainRevertToSnapshot", (reset_nvram, 0x8, "--reset-nvram"))
        s = self._one(uuid, name)
        dom = self._domains
        d = dom._get(uuid)
        # as libvirt's test driver: a snapshot of a shut-off domain reverts to
        # shut off whatever --running/--paused say
        target = s.state if s.state == "shutoff" else "running" if running else "paused" if paused else s.state
        self._current[uuid] = name
        if d.id is not None:  # stopped, even when transient: it starts again below or stays defined
            d.live, d.id = None, None
            d.state, d.reason = DomainState.SHUTOFF, reason_number(DomainState.SHUTOFF, "from snapshot")
        if target in ("running", "paused"):
            dom._start_state(d, "from snapshot")
            if target == "paused":
                d.state = DomainState.PAUSED
                d.reason = reason_number(DomainState.PAUSED, "from snapshot")

    def delete(self, uuid: str, name: str, *, children: bool = False, children_only: bool = False,
               metadata_only: bool = False) -> None:
        refuse_flags("snapshot-delete", "testDomainSnapshotDelete", (metadata_only, 0x2, "--metadata"))
        snap = self._one(uuid, name)
        snaps = self._snaps[uuid]
        if children or children_only:
            doomed = self._descendants(snaps, name)
            if children:
                doomed.append(name)
            cur = self._current.get(uuid)
            for n in doomed:
                del snaps[n]
            if cur in doomed:
                self._set_or_clear(uuid, name if children_only else snap.parent)
            return
        for s in snaps.values():
            if s.parent == name:
                s.parent = snap.parent
        del snaps[name]
        if self._current.get(uuid) == name:
            self._set_or_clear(uuid, snap.parent)

    def _set_or_clear(self, uuid: str, name: str | None) -> None:
        if name is None:
            self._current.pop(uuid, None)
        else:
            self._current[uuid] = name

    @staticmethod
    def _descendants(snaps: dict[str, TestSnapshot], name: str) -> list[str]:
        out, todo = [], [name]
        while todo:
            parent = todo.pop()
            for s in snaps.values():
                if s.parent == parent:
                    out.append(s.name)
                    todo.append(s.name)
        return out

    def check_undefine(self, uuid: str, d, snapshots_metadata: bool) -> None:
        """libvirt's test driver refuses to undefine an inactive domain with snapshots."""
        n = self.count(uuid)
        if n and d.id is None and not snapshots_metadata:
            raise OperationInvalid(
                f"Requested operation is not valid: cannot delete inactive domain with {n} snapshots")
        if snapshots_metadata:
            self.forget(uuid)
