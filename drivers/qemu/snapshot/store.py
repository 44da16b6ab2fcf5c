"""Snapshot metadata on disk, per domain (see the package docstring).

``<config>/domains/<uuid>/snapshots/``:

* ``<name>.xml``: the snapshot as ``snapshot-dumpxml`` shows it (libvirt's
  ``<domainsnapshot>`` with ``<name>``, ``<parent>``, ``<state>``,
  ``<creationTime>``, ``<memory>``, ``<disks>`` and the ``<domain>`` as it
  was defined then);
* ``current``: the name of the current snapshot (one file, so changing the
  current snapshot is one atomic write; libvirt marks it inside each file);
* ``pending.json``: an operation under way (repair.py), written before any
  image is touched and removed after the metadata says what was done.

Every write is ``state.atomic_write`` (temp file, fsync, rename, fsync of the
directory); the caller holds the domain lock for anything that changes.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from virtctl.drivers.qemu.state import atomic_write, ensure_dir, fsync_dir, read_bytes, read_json, \
    unlink_quiet, write_json
from virtctl.errors import InvalidArg, OperationFailed, OperationInvalid

SUFFIX = ".xml"
_DOMAIN_TAG = re.compile(rb"<domain[\s>]")
MAX_NAME = 200


def check_name(name: str) -> None:
    """A snapshot name must make one file name: no '/', no NUL, not empty, no leading '.'."""
    if not name:
        raise InvalidArg("invalid snapshot name '': a name can't be empty")
    if "/" in name:
        raise InvalidArg(f"invalid snapshot name '{name}': name can't contain '/'", detail={"snapshot": name})
    if name.startswith("."):
        raise InvalidArg(f"invalid snapshot name '{name}': name can't start with '.'", detail={"snapshot": name})
    if any(ord(c) < 32 for c in name) or len(name.encode()) > MAX_NAME:
        raise InvalidArg(f"invalid snapshot name {name!r}: control characters or over {MAX_NAME} bytes",
                         detail={"snapshot": name})


@dataclass
class Meta:
    """One snapshot's metadata: the parsed document and what listing needs."""

    name: str
    parent: str | None
    created: int
    state: str
    description: str
    memory: str  # internal, external, no
    disks: dict  # target -> {"snapshot": internal|external|no, "file": path or None, "driver": fmt}
    root: object  # the <domainsnapshot> element
    # external: the overlays the last revert to this snapshot made (target -> file),
    # from <revertDisks> (kept in the metadata file, not shown by snapshot-dumpxml)
    revert: dict = field(default_factory=dict)

    @property
    def location(self) -> str:
        kinds = {d["snapshot"] for d in self.disks.values()} | {self.memory}
        if "external" in kinds:
            return "external"
        if "internal" in kinds:
            return "internal"
        return "none"

    @property
    def internal_disks(self) -> list[str]:
        return [t for t, d in self.disks.items() if d["snapshot"] == "internal"]

    @property
    def domain_xml(self) -> str | None:
        from virtctl.xml import xmlapi

        dom = self.root.find("domain")
        return None if dom is None else xmlapi.tostring(dom)


def meta_of(root) -> Meta:
    disks = {}
    for el in root.findall("disks/disk"):
        src = el.find("source")
        drv = el.find("driver")
        disks[el.get("name")] = {"snapshot": el.get("snapshot", "internal"),
                                 "file": src.get("file") if src is not None else None,
                                 "driver": drv.get("type") if drv is not None else None}
    revert = {}
    for el in root.findall("revertDisks/disk"):
        src = el.find("source")
        if src is not None and src.get("file"):
            revert[el.get("name")] = src.get("file")
    mem = root.find("memory")
    when = root.findtext("creationTime") or "0"
    return Meta(name=root.findtext("name"), parent=root.findtext("parent/name"),
                created=int(when) if when.isdigit() else 0, state=root.findtext("state") or "shutoff",
                description=root.findtext("description") or "",
                memory=mem.get("snapshot", "no") if mem is not None else "no", disks=disks, root=root,
                revert=revert)


class Store:
    def __init__(self, state, uuid: str):
        self.dir = os.path.join(state.config_dir(uuid), "snapshots")

    def _path(self, name: str) -> str:
        check_name(name)
        return os.path.join(self.dir, name + SUFFIX)

    # --- reading --------------------------------------------------------------------------
    def names(self) -> list[str]:
        try:
            entries = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(e[:-len(SUFFIX)] for e in entries if e.endswith(SUFFIX) and not e.startswith("."))

    def count(self) -> int:
        return len(self.names())

    def load(self, name: str, *, head: bool = False) -> Meta | None:
        """The metadata of ``name`` (None if none).  ``head``: without the
        <domain> (what listing needs; a tenth of the parsing)."""
        from virtctl.xml import xmlapi

        try:
            path = self._path(name)
        except InvalidArg:
            return None  # no snapshot can have that name
        try:
            data = read_bytes(path)
        except Exception as exc:  # noqa: BLE001 - named below
            raise OperationFailed(f"cannot read snapshot metadata '{path}': {exc}") from None
        if data is None:
            return None
        if head:
            # text and attribute values are escaped: "<domain" followed by a space or
            # '>' can only be the start tag of the <domain> element
            cut = _DOMAIN_TAG.search(data)
            if cut is not None:
                data = data[:cut.start()] + b"</domainsnapshot>"
        try:
            root = xmlapi.parse(data, path)
        except Exception as exc:  # noqa: BLE001
            raise OperationFailed(f"snapshot metadata '{path}' is corrupt: {exc}") from None
        return meta_of(root)

    def all(self, *, head: bool = False) -> dict[str, Meta]:
        out = {}
        for n in self.names():
            m = self.load(n, head=head)
            if m is not None:
                out[n] = m
        return out

    def current(self) -> str | None:
        data = read_bytes(os.path.join(self.dir, "current"))
        name = data.decode("utf-8", "replace").strip() if data else ""
        return name or None

    def pending(self) -> dict | None:
        return read_json(os.path.join(self.dir, "pending.json"))

    # --- writing (domain lock held) -------------------------------------------------------
    def write(self, root) -> None:
        from virtctl.xml import xmlapi

        ensure_dir(self.dir, check=False)
        atomic_write(self._path(root.findtext("name")), xmlapi.tostring(root) + "\n")

    def remove(self, name: str) -> None:
        unlink_quiet(self._path(name))

    def set_current(self, name: str | None) -> None:
        path = os.path.join(self.dir, "current")
        if name is None:
            unlink_quiet(path)
            if os.path.isdir(self.dir):
                fsync_dir(self.dir)
            return
        ensure_dir(self.dir, check=False)
        atomic_write(path, name + "\n")

    def set_pending(self, op: dict | None) -> None:
        path = os.path.join(self.dir, "pending.json")
        if op is None:
            unlink_quiet(path)
            fsync_dir(self.dir)
            return
        ensure_dir(self.dir, check=False)
        write_json(path, op)

    def sync(self) -> None:
        if os.path.isdir(self.dir):
            fsync_dir(self.dir)


def undefine_check(state, uuid: str, snapshots_metadata: bool, *, active: bool) -> None:
    """undefine refuses a domain with snapshot metadata unless --snapshots-metadata
    (libvirt's words; an active domain too: its metadata lives with its definition)."""
    n = Store(state, uuid).count()
    if n and not snapshots_metadata:
        state_word = "active" if active else "inactive"
        raise OperationInvalid(f"Requested operation is not valid: cannot delete {state_word} domain "
                               f"with {n} snapshots", detail={"snapshots": n})
