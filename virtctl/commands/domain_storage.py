"""``undefine --storage vda,vdb`` and ``--remove-all-storage``: which of a
domain's disks are storage volumes, found as virsh finds them (a
``type='volume'`` disk by its pool and volume, a file or block disk by its
path), and removing them after the definition is gone."""
from __future__ import annotations

from virtctl.errors import NoStoragePool, NoStorageVol, OperationInvalid, VirtError


def plan(session, dom, storage: str | None, remove_all: bool) -> list[tuple[str, str, object]]:
    """``[(target, source as virsh prints it, StorageVolume)]`` to remove;
    disks that are no volume get virsh's "not managed" line on stderr."""
    if not storage and not remove_all:
        return []
    if dom.info().active:
        raise OperationInvalid("Storage volume deletion is supported only on stopped domains",
                               detail={"domain": dom.name})
    from virtctl.xml import xmlapi

    root = xmlapi.parse(dom.xml(inactive=True))
    disks = []
    for d in root.findall("devices/disk"):
        tgt = d.find("target")
        src = d.find("source")
        target = tgt.get("dev", "") if tgt is not None else ""
        if src is None:
            continue
        if d.get("type") == "volume":
            disks.append((target, src.get("volume") or "", d.get("type"), src.get("pool")))
        else:
            path = src.get("file") or src.get("dev")
            if path:
                disks.append((target, path, d.get("type"), None))
    chosen = disks
    if storage:
        wanted = [w for w in storage.split(",") if w]
        for w in wanted:
            if not any(w in (t, s) for t, s, _ty, _p in disks):
                raise VirtError(f"Volume '{w}' was not found in domain's definition.",
                                code="INVALID_ARG", detail={"volume": w})
        chosen = [x for x in disks if x[0] in wanted or x[1] in wanted]
    out = []
    for target, source, type_, pool in chosen:
        try:
            if type_ == "volume":
                vol = session.conn.lookup_pool(pool, by_uuid=False).volume_by_name(source)
            else:
                vol = session.conn.lookup_volume(source)
        except (NoStorageVol, NoStoragePool):
            if not session.json:
                session.err.write(f"error: Storage volume '{target}'({source}) is not managed by virtctl. "
                                  "Remove it manually.\n\n")
            continue
        out.append((target, source, vol))
    return out


def remove(session, volumes, *, wipe: bool = False) -> list[dict]:
    """Delete the planned volumes after the undefine; virsh's line for each."""
    done = []
    for target, source, vol in volumes:
        try:
            vol.delete(wipe=wipe)
        except VirtError as exc:
            if not session.json:
                session.err.write(f"error: Failed to remove storage volume '{target}'({source})\n"
                                  f"error: {exc.message}\n")
            done.append({"target": target, "source": source, "removed": False, "error": exc.code})
            continue
        if not session.json:
            session.extra(f"Volume '{target}'({source}) removed.")
        done.append({"target": target, "source": source, "removed": True})
    return done
