"""Reverting to an external disk-only snapshot, as libvirt 9.7+ does it:
nothing of the snapshot is discarded or rewritten; each of its disks gets a
NEW qcow2 overlay on top of the image the snapshot's own ``<domain>`` names
(the image its state is in, read-only since the snapshot was taken), and the
domain's definition becomes the snapshot's with those overlays as sources.

* The overlays are recorded in the snapshot's metadata as ``<revertDisks>``
  (libvirt's name; kept in the metadata file, not shown by
  ``snapshot-dumpxml``, whose output stays valid for ``--redefine``); the
  next revert to it records its own.
* The image the domain wrote to until then (the top of each reverted disk)
  is removed only when it is provably nobody's state: the metadata records it
  as an overlay (a snapshot's ``<disks>`` or ``<revertDisks>``) and no
  snapshot's ``<domain>`` names it (then no snapshot lives in it or on top
  of it).  Any other image -- a base after a blockcommit, a file the operator
  put there -- is left alone.
* No memory: the domain is shut off after (started afresh with
  ``--running``/``--paused``; a running domain is stopped first, and a
  running one reverted to ``--running``/``--paused`` needs ``--force``, as
  for every snapshot without memory).

Crash safety (``pending.json``, op ``revert-external``): written before
anything is touched; each overlay is marked ``made`` before ``qemu-img
create``; the persistent definition is switched in one atomic write; only
after it the metadata is written and the abandoned images removed.  The
next snapshot command (repair.py) looks at the persistent definition: if it
names every new overlay the revert happened and is finished (metadata,
removals: each step can be done twice); if not, the overlays made are
removed and the definition, which still names the old images, is kept.
Kill points: ``snapshot:revert-ext-pending``, ``snapshot:revert-ext-overlay``
(one overlay made), ``snapshot:revert-ext-defined`` (definition written,
metadata not yet).
"""
from __future__ import annotations

import os
import time

from virtctl.drivers.qemu.snapshot import external
from virtctl.errors import OperationFailed


def _source(el) -> str | None:
    src = el.find("source") if el is not None else None
    return src.get("file") if src is not None else None


def state_images(metas: dict) -> set[str]:
    """Every image a snapshot's ``<domain>`` names: some snapshot's state is in it."""
    out = set()
    for m in metas.values():
        dom = m.root.find("domain")
        if dom is None:
            continue
        for el in dom.findall("devices/disk"):
            f = _source(el)
            if f:
                out.add(os.path.realpath(f))
    return out


def recorded_overlays(metas: dict) -> set[str]:
    out = set()
    for m in metas.values():
        for d in m.disks.values():
            if d["snapshot"] == "external" and d.get("file"):
                out.add(os.path.realpath(d["file"]))
        out.update(os.path.realpath(f) for f in m.revert.values())
    return out


def new_name(backing: str, taken: set[str]) -> str:
    """Like libvirt's default: the image's name with a time stamp as extension."""
    stem, now = os.path.splitext(backing)[0], int(time.time())
    name, k = f"{stem}.{now}", 1
    while os.path.lexists(name) or name in taken:
        name, k = f"{stem}.{now}-{k}", k + 1
    return name


def plan(meta, snap_def, config, metas: dict) -> tuple[list[dict], list[str]]:
    """(disks, abandon): for each external disk of ``meta`` ``{"target", "backing",
    "fmt", "overlay", "made"}``; the current tops (of ``config``) to remove after."""
    from virtctl.drivers.qemu import qemu_img

    disks, taken = [], set()
    for t, d in meta.disks.items():
        if d["snapshot"] != "external":
            continue
        el = external.disk_el(snap_def, t)
        backing = _source(el)
        if backing is None:
            raise OperationFailed(f"operation failed: snapshot '{meta.name}': its domain definition has no "
                                  f"image for disk {t}", detail={"disk": t, "snapshot": meta.name})
        drv = el.find("driver")
        fmt = (drv.get("type") if drv is not None else None) or "raw"
        try:
            qemu_img.info(backing, fmt, what=f"open the image of disk {t} in snapshot '{meta.name}' ('{backing}')")
        except OperationFailed as exc:
            raise OperationFailed(f"operation failed: cannot revert to snapshot '{meta.name}': disk {t}: "
                                  f"{exc.message}; nothing was changed",
                                  detail={"disk": t, "path": backing, "snapshot": meta.name}) from None
        overlay = new_name(backing, taken)
        taken.add(overlay)
        disks.append({"target": t, "backing": backing, "fmt": fmt, "overlay": overlay, "made": False})
    if not disks:
        raise OperationFailed(f"operation failed: snapshot '{meta.name}' has no external disk")
    keep = state_images(metas)
    known = recorded_overlays(metas)
    abandon = []
    for p in disks:
        top = _source(external.disk_el(config, p["target"])) if config is not None else None
        if top is None:
            continue
        real = os.path.realpath(top)
        if real in known and real not in keep and real != os.path.realpath(p["backing"]) and os.path.isfile(top):
            abandon.append(top)
    return disks, abandon


def switch(snap_def, disks: list[dict]) -> None:
    """The definition the domain gets: the snapshot's, each reverted disk on its new overlay."""
    for p in disks:
        external.switch_config(external.disk_el(snap_def, p["target"]), p["overlay"])


def done(drv, uuid: str, pending: dict) -> bool:
    """Was the definition switched (the point of no return)?"""
    cfg = drv.d._config(uuid)
    if cfg is None:
        return False
    return all(_source(external.disk_el(cfg, p["target"])) == p["overlay"] for p in pending["disks"])


def undo(store, pending: dict) -> None:
    for p in pending["disks"]:
        if p.get("made") and os.path.isfile(p["overlay"]):
            os.unlink(p["overlay"])
    store.set_pending(None)


def finish(store, pending: dict) -> None:
    """After the definition names the new overlays: the metadata says so, the
    abandoned images go, the snapshot is the current one (each step idempotent)."""
    from virtctl.xml import xmlapi

    metas = store.all()
    name = pending["name"]
    gone = {os.path.realpath(f) for f in pending.get("abandon") or []}
    m = metas.get(name)
    if m is not None:
        old = m.root.find("revertDisks")
        if old is not None:
            m.root.remove(old)
        rd = xmlapi.element("revertDisks")
        for p in pending["disks"]:
            el = xmlapi.sub(rd, "disk", {"name": p["target"], "snapshot": "external", "type": "file"})
            xmlapi.sub(el, "driver", {"type": "qcow2"})
            xmlapi.sub(el, "source", {"file": p["overlay"]})
        anchor = m.root.find("disks")
        if anchor is not None:
            anchor.addnext(rd)
        else:
            m.root.append(rd)
        store.write(m.root)
    for other in metas.values():
        if other.name == name:
            continue
        rd = other.root.find("revertDisks")
        if rd is None:
            continue
        drop = [el for el in rd.findall("disk") if os.path.realpath(_source(el) or "") in gone]
        if drop:
            for el in drop:
                rd.remove(el)
            if not len(rd):
                other.root.remove(rd)
            store.write(other.root)
    for f in pending.get("abandon") or []:
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
    store.set_current(name)
    store.set_pending(None)


def hide(root) -> None:
    """``snapshot-dumpxml`` shows the snapshot without ``<revertDisks>``."""
    rd = root.find("revertDisks")
    if rd is not None:
        root.remove(rd)
