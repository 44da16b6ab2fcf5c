"""DomainSnapshot: a handle on one snapshot of one domain, by domain and name.

Like Domain, a handle re-reads from the driver on every call; ``record`` is
what was seen when the handle was made.  The tree (parent, children,
descendants) and the listing filters are computed here from the driver's one
list, so every driver filters alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virtctl.api.domain import Domain


@dataclass(frozen=True)
class SnapshotRecord:
    """One snapshot as a driver reports it."""

    name: str
    domain_uuid: str
    parent: str | None
    creation_time: int  # seconds since the epoch
    state: str  # the domain's state when taken: running, paused, shutoff, disk-snapshot
    description: str = ""
    current: bool = False
    location: str = "internal"  # internal, external or none (of memory and disks together)
    disk_only: bool = False
    metadata: bool = True

    @property
    def active(self) -> bool:
        """Taken of a running domain with its memory (libvirt's ACTIVE filter)."""
        return self.state in ("running", "paused")

    def to_json(self) -> dict:
        return {"name": self.name, "parent": self.parent, "creation_time": self.creation_time,
                "state": self.state, "description": self.description, "current": self.current,
                "location": self.location, "disk_only": self.disk_only, "metadata": self.metadata}


class UnlistedSnapshot:
    """What ``create_snapshot(..., no_metadata=True)`` returns: the snapshot was
    made (its disks or memory hold it) but no metadata names it, so it has no
    record and cannot be looked up, as libvirt's handle of such a snapshot."""
    __slots__ = ("domain", "name")
    record = None

    def __init__(self, domain: "Domain", name: str):
        self.domain, self.name = domain, name

    def __repr__(self) -> str:
        return f"<UnlistedSnapshot {self.domain.name}/{self.name}>"


class DomainSnapshot:
    __slots__ = ("domain", "name", "record")

    def __init__(self, domain: "Domain", record: SnapshotRecord):
        self.domain = domain
        self.name = record.name
        self.record = record

    def __repr__(self) -> str:
        return f"<DomainSnapshot {self.domain.name}/{self.name}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, DomainSnapshot) and (other.domain, other.name) == (self.domain, self.name)

    def __hash__(self) -> int:
        return hash((self.domain.uuid, self.name))

    @property
    def _drv(self):
        return self.domain._conn._driver.snapshots

    def info(self) -> SnapshotRecord:
        self.record = self._drv.get(self.domain.uuid, self.name)
        return self.record

    def xml(self, *, security_info: bool = False) -> str:
        return self._drv.get_xml(self.domain.uuid, self.name, security_info=security_info)

    def parent(self) -> "DomainSnapshot | None":
        p = self.info().parent
        return None if p is None else self.domain.snapshot_lookup(p)

    def children(self) -> list["DomainSnapshot"]:
        return select(self.domain, from_=self.name)

    def descendants(self) -> list["DomainSnapshot"]:
        return select(self.domain, from_=self.name, descendants=True)

    def set_current(self) -> None:
        self.domain._write("snapshot-current")
        self._drv.set_current(self.domain.uuid, self.name)

    def revert(self, *, running: bool = False, paused: bool = False, force: bool = False,
               reset_nvram: bool = False) -> None:
        from virtctl.errors import InvalidArg

        if running and paused:
            raise InvalidArg("Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' and "
                             "'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' are mutually exclusive")
        self.domain._write("snapshot-revert")
        self._drv.revert(self.domain.uuid, self.name, running=running, paused=paused, force=force,
                         reset_nvram=reset_nvram)

    def delete(self, *, children: bool = False, children_only: bool = False, metadata_only: bool = False) -> None:
        from virtctl.errors import InvalidArg

        if children and children_only:
            raise InvalidArg("Options --children and --children-only are mutually exclusive")
        self.domain._write("snapshot-delete")
        self._drv.delete(self.domain.uuid, self.name, children=children, children_only=children_only,
                         metadata_only=metadata_only)


def _wanted(rec: SnapshotRecord, kids: dict, f: dict) -> bool:
    has_kids = bool(kids.get(rec.name))
    checks = (
        (f.get("leaves"), not has_kids), (f.get("no_leaves"), has_kids),
        (f.get("metadata"), rec.metadata), (f.get("no_metadata"), not rec.metadata),
    )
    if any(on and not ok for on, ok in checks):
        return False
    # state and location filters: within a group, any one given matches
    states = [k for k in ("inactive", "active", "disk_only") if f.get(k)]
    if states:
        mine = "disk_only" if rec.disk_only else ("active" if rec.active else "inactive")
        if mine not in states:
            return False
    locs = [k for k in ("internal", "external") if f.get(k)]
    if locs and rec.location not in locs:
        return False
    return True


def select(domain: "Domain", *, roots: bool = False, leaves: bool = False, no_leaves: bool = False,
           current: bool = False, from_: str | None = None, descendants: bool = False,
           internal: bool = False, external: bool = False, disk_only: bool = False,
           active: bool = False, inactive: bool = False, metadata: bool = False,
           no_metadata: bool = False, topological: bool = False) -> list[DomainSnapshot]:
    """The domain's snapshots matching every filter (see Domain.snapshots)."""
    from virtctl.errors import InvalidArg, OperationInvalid

    records = domain._conn._driver.snapshots.list(domain.uuid)  # topological
    by_name = {r.name: r for r in records}
    kids: dict[str, list[str]] = {}
    for r in records:
        if r.parent is not None:
            kids.setdefault(r.parent, []).append(r.name)
    if roots and (from_ is not None or current):
        raise InvalidArg("--roots and --from are mutually exclusive")
    if current:
        cur = next((r.name for r in records if r.current), None)
        if cur is None:
            raise OperationInvalid(f"domain '{domain.name}' has no current snapshot")
        from_ = cur
    if from_ is not None:
        if from_ not in by_name:
            from virtctl.errors import NoDomainSnapshot

            raise NoDomainSnapshot(f"Domain snapshot not found: no domain snapshot with matching name '{from_}'",
                                   detail={"snapshot": from_})
        chosen: list[str] = []

        def walk(name: str) -> None:
            # newest child first, as libvirt walks a snapshot's children
            for k in reversed(kids.get(name, [])):
                chosen.append(k)
                if descendants:
                    walk(k)
        walk(from_)
        names = chosen
    elif roots:
        names = [r.name for r in records if r.parent is None]
    else:
        names = []

        def walk_all(name: str) -> None:
            names.append(name)
            for k in reversed(kids.get(name, [])):
                walk_all(k)
        for r in records:
            if r.parent is None:
                walk_all(r.name)
    filters = dict(leaves=leaves, no_leaves=no_leaves, metadata=metadata, no_metadata=no_metadata,
                   internal=internal, external=external, disk_only=disk_only, active=active,
                   inactive=inactive)
    out = [by_name[n] for n in names if _wanted(by_name[n], kids, filters)]
    if not topological:
        out.sort(key=lambda r: r.name.casefold())
    return [DomainSnapshot(domain, r) for r in out]
