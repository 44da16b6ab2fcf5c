"""What a snapshot request asks of each disk and of the memory; everything
that cannot be done is refused here, before anything is touched, with
NOT_SUPPORTED (or INVALID_ARG for a bad request) naming the disk."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from virtctl.errors import InvalidArg, NotSupported, OperationInvalid


def _ns(feature: str, why: str, **detail) -> NotSupported:
    return NotSupported(f"this function is not supported by the connection driver: {feature}: {why}",
                        detail={"driver": "qemu", "feature": feature, **detail})


@dataclass
class DiskPlan:
    target: str
    mode: str  # internal, external, no
    path: str | None  # the image now
    fmt: str  # its format
    el: object  # the <disk> of the definition the plan was made from
    overlay: str | None = None  # external: the new top image


@dataclass
class Plan:
    memory: str  # internal, no
    state: str  # running, paused, shutoff, disk-snapshot
    disks: list[DiskPlan] = field(default_factory=list)

    @property
    def kind(self) -> str:
        modes = {d.mode for d in self.disks}
        return "external" if "external" in modes else "internal"

    def of(self, mode: str) -> list[DiskPlan]:
        return [d for d in self.disks if d.mode == mode]


def make(root, definition, *, run_state: str | None, disk_only: bool, live: bool, quiesce: bool) -> Plan:
    """``root``: the request's <domainsnapshot>; ``definition``: the domain's
    current definition (live if running); ``run_state``: running, paused or
    None (shut off)."""
    if quiesce:
        raise _ns("snapshot-create --quiesce", "it needs a guest agent, which the QEMU driver does not talk to")
    mem_el = root.find("memory")
    mem = mem_el.get("snapshot") if mem_el is not None else None
    if mem_el is not None and (mem == "external" or (mem is None and mem_el.get("file"))):
        raise _ns("snapshot-create --memspec", "external memory snapshots are not implemented "
                  "(take an internal one: no --memspec, or --disk-only)")
    if mem == "manual":
        raise _ns("snapshot-create --memspec snapshot=manual", "not implemented")
    given = {}
    for el in root.findall("disks/disk"):
        given[el.get("name")] = el
    targets = {}
    for el in definition.root.findall("devices/disk"):
        tgt = el.find("target")
        if tgt is not None:
            targets[tgt.get("dev")] = el
    for name in given:
        if name not in targets:
            src_match = [t for t, el in targets.items()
                         if el.find("source") is not None and el.find("source").get("file") == name]
            if not src_match:
                raise InvalidArg(f"unsupported configuration: no disk named '{name}'", detail={"disk": name})
            given[src_match[0]] = given.pop(name)
    explicit_external = any(el.get("snapshot") == "external" or
                            (el.get("snapshot") is None and el.find("source") is not None)
                            for el in given.values())
    if disk_only or explicit_external:
        default = "external"
    else:
        default = "internal"
    disks = []
    for t, el in targets.items():
        drv = el.find("driver")
        fmt = (drv.get("type") if drv is not None else None) or "raw"
        src = el.find("source")
        path = src.get("file") if src is not None and el.get("type", "file") == "file" else None
        req = given.get(t)
        ro = el.get("device") in ("cdrom", "floppy") or el.find("readonly") is not None
        mode = req.get("snapshot") if req is not None else None
        if mode is None:
            if req is not None and req.find("source") is not None:
                mode = "external"
            else:
                mode = "no" if ro else (el.get("snapshot") or default)
        if mode not in ("internal", "external", "no"):
            raise _ns(f"snapshot-create --diskspec {t},snapshot={mode}", "only internal, external and no are")
        if mode != "no" and ro:
            raise _ns(f"snapshot of disk '{t}'", "a read-only disk or CD-ROM cannot be snapshotted "
                      f"(give --diskspec {t},snapshot=no)", disk=t)
        if mode != "no" and path is None:
            raise _ns(f"snapshot of disk '{t}'", f"only a <disk type='file'> with a source can be "
                      f"snapshotted (give --diskspec {t},snapshot=no)", disk=t)
        if mode == "internal" and fmt != "qcow2":
            raise _ns(f"internal snapshot of disk '{t}'", f"its format is '{fmt}' ('{path}'): only qcow2 "
                      f"images hold internal snapshots (use --disk-only for an external one, or "
                      f"--diskspec {t},snapshot=no)", disk=t, path=path)
        dp = DiskPlan(t, mode, path, fmt, el)
        if mode == "external":
            sel = req.find("source") if req is not None else None
            file = sel.get("file") if sel is not None else None
            rdrv = req.find("driver") if req is not None else None
            if rdrv is not None and rdrv.get("type") not in (None, "qcow2"):
                raise _ns(f"external snapshot of disk '{t}'", f"overlay format '{rdrv.get('type')}': "
                          "only qcow2 overlays are made", disk=t)
            if req is not None and req.get("type") not in (None, "file"):
                raise _ns(f"external snapshot of disk '{t}'", f"stype '{req.get('type')}': only file "
                          "overlays are made", disk=t)
            dp.overlay = os.path.abspath(file) if file else f"{os.path.splitext(path)[0]}.{root.findtext('name')}"
        disks.append(dp)
    modes = {d.mode for d in disks}
    if {"internal", "external"} <= modes:
        raise _ns("snapshot-create", "mixing internal and external targets for a snapshot is not supported")
    if "external" in modes:
        if mem == "internal":
            raise _ns("snapshot-create", "an internal memory snapshot needs internal disk snapshots")
        if not disk_only and run_state is not None and mem is None:
            disk_only = True  # disks only, as the request says
        memory, state = "no", "disk-snapshot"
    elif disk_only:
        raise _ns("snapshot-create --disk-only", "disk-only snapshots are external: no disk to snapshot "
                  "externally" if not modes - {"no"} else "a disk-only snapshot cannot be internal")
    else:
        if run_state is None:
            if mem == "internal":
                raise OperationInvalid("Requested operation is not valid: cannot take a memory snapshot "
                                       "of an inactive domain")
            memory, state = "no", "shutoff"
        else:
            if mem == "no":
                raise _ns("snapshot-create --memspec snapshot=no", "an internal snapshot of a running domain "
                          "holds its memory (or use --disk-only)")
            memory, state = "internal", run_state
            _check_memory(definition)
            for d in disks:
                ro = d.el.get("device") in ("cdrom", "floppy") or d.el.find("readonly") is not None
                if d.mode == "no" and not ro:
                    # the guest's memory would not match that disk after a revert
                    raise _ns(f"snapshot of disk '{d.target}'", "a snapshot with the memory of a running "
                              "domain must include every writable disk (or use --disk-only)", disk=d.target)
        if not [d for d in disks if d.mode == "internal"]:
            raise _ns("snapshot-create", "no qcow2 disk to hold an internal snapshot"
                      + (" and the memory" if memory == "internal" else ""))
    if live and not (memory == "external"):
        raise _ns("snapshot-create --live", "live snapshot creation is supported only during "
                  "full system snapshots with external memory")
    return Plan(memory, state, disks)


def _check_memory(definition) -> None:
    os_el = definition.root.find("os")
    if os_el is None:
        return
    loader = os_el.find("loader")
    if (loader is not None and loader.get("type") == "pflash") or os_el.find("nvram") is not None:
        raise _ns("snapshot-create (memory)", "a domain with pflash firmware or NVRAM cannot have "
                  "an internal snapshot with its memory (QEMU cannot snapshot the flash); "
                  "use --disk-only")
