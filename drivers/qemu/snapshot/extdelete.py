"""Deleting an external disk-only snapshot (not ``--metadata``), as libvirt
9.7+ does: the snapshot's overlay X of each disk -- the image made when it
was taken, or by the last revert to it (``<revertDisks>``) -- is merged
into the image below it, P (the one the snapshot's ``<domain>`` names: its
state), by a block commit, and removed; the snapshots and definitions that
named X name P after.

* X is the active layer (the usual case: the current snapshot): shut off,
  ``qemu-img commit`` and the persistent definition names P; running, QMP
  ``block-commit`` of the active layer and a pivot (blockjob.py, which
  rewrites both definitions from QEMU and ``blockdev-del``\\s X's nodes).
* X is deeper in the chain (a snapshot with one child, on the way to the
  current state): ``qemu-img commit`` then ``qemu-img rebase -u`` of the image
  above onto P, or QMP ``block-commit`` with ``top-node`` (QEMU rewrites the
  image above).
* Other images that had X as backing file (the state of other snapshots,
  off the current chain) are rebased onto P (``-u``: same contents).
* A leaf off the current chain (after a revert elsewhere) has no overlay to
  merge: its state P goes with it when virtctl made P (a recorded overlay)
  and nothing else uses it; an image virtctl did not make is never removed.

Refused, NOT_SUPPORTED naming the disk, before anything is touched: a
snapshot whose parent for that disk is internal (libvirt's rule), one with
several children, one with children whose overlay is not in the current
chain, one whose P is another snapshot's state or some other image's
backing file (committing into P would change what they hold), and
``--children``/``--children-only`` over external snapshots.

Crash safety: ``pending.json`` (op ``delete-external``) first.  Shut off,
each disk is done in the order commit -> rebases -> switch (definition or
the image above now naming P) -> remove X; the next command sees whether
the switch happened (then the commit is not done again: P may have been
written since) and finishes.  Running, the job is QEMU's: the next command
waits for it (pivots an active one that is ready), reconciles, finishes.
Kill points: ``snapshot:delete-ext-committed`` (shut off, one disk
committed, not yet switched), ``snapshot:delete-ext-merged`` (all disks
merged, metadata not yet written).
"""
from __future__ import annotations

import os

from virtctl.drivers.qemu.faults import killpoint
from virtctl.drivers.qemu.snapshot import external
from virtctl.errors import NotSupported, OperationFailed, OperationInvalid


def _ns(why: str, **detail) -> NotSupported:
    return NotSupported(f"this function is not supported by the connection driver: snapshot-delete: {why}",
                        detail={"driver": "qemu", "feature": "snapshot-delete", **detail})


def _rp(p: str | None) -> str:
    return os.path.realpath(p) if p else ""


def _source(el) -> str | None:
    src = el.find("source") if el is not None else None
    return src.get("file") if src is not None else None


def _disk_in(root, target: str):
    for el in root.findall("devices/disk") if root is not None else []:
        tgt = el.find("target")
        if tgt is not None and tgt.get("dev") == target:
            return el
    return None


def _fmt(el) -> str:
    drv = el.find("driver") if el is not None else None
    return (drv.get("type") if drv is not None else None) or "raw"


def backing_of(path: str) -> tuple[str | None, str | None]:
    """(backing file, its format) an image names, or (None, None)."""
    from virtctl.drivers.qemu import qemu_img

    try:
        info = qemu_img.info(path, None, what=f"inspect '{path}'")
    except OperationFailed:
        return None, None
    nxt = info.get("full-backing-filename") or info.get("backing-filename")
    if nxt and not os.path.isabs(nxt):
        nxt = os.path.join(os.path.dirname(path), nxt)
    return nxt, info.get("backing-filename-format")


def img_chain(path: str, fmt: str) -> list[tuple[str, str]]:
    """The chain of an image, top first, from the images (``qemu-img info -U``)."""
    out: list[tuple[str, str]] = []
    seen = set()
    while path and len(out) < 64 and _rp(path) not in seen and os.path.exists(path):
        seen.add(_rp(path))
        out.append((path, fmt))
        path, nfmt = backing_of(path)
        fmt = nfmt or "raw"
    return out


def _chain_now(drv, uuid: str, run, config, target: str) -> list[tuple[str, str]]:
    if run is not None:
        from virtctl.drivers.test.blockjob import find_disk

        live = drv.d._live(uuid)
        el = find_disk(live.root, target) if live is not None else None
        if el is None:
            return []
        with run.qmp(timeout=30) as q:
            return [(layer["path"], layer["format"]) for layer in drv.d._bj_chain(q, el)]
    el = external.disk_el(config, target) if config is not None else None
    return img_chain(_source(el), _fmt(el)) if _source(el) else []


def plan(drv, uuid: str, metas: dict, m, run, config) -> list[dict]:
    """What deleting ``m`` does to each of its external disks (or a refusal)."""
    from virtctl.drivers.qemu.snapshot.extrevert import recorded_overlays

    children = sorted(c.name for c in metas.values() if c.parent == m.name)
    others = [o for o in metas.values() if o.name != m.name]
    dom = m.root.find("domain")
    out = []
    in_use_cache: set[str] | None = None
    for t, d in m.disks.items():
        if d["snapshot"] != "external":
            continue
        par = metas.get(m.parent) if m.parent else None
        while par is not None:
            pd = par.disks.get(t)
            if pd is not None and pd["snapshot"] != "no":
                if pd["snapshot"] == "internal":
                    raise _ns(f"disk {t}: deleting the external snapshot '{m.name}' whose parent '{par.name}' is "
                              "an internal snapshot is not supported (give --metadata to drop only its "
                              "metadata)", disk=t, snapshot=m.name)
                break
            par = metas.get(par.parent) if par.parent else None
        el = _disk_in(dom, t)
        base = _source(el)
        if base is None:
            raise OperationFailed(f"operation failed: snapshot '{m.name}': its domain definition has no image "
                                  f"for disk {t}", detail={"disk": t, "snapshot": m.name})
        cands = {_rp(x) for x in (m.revert.get(t), d.get("file")) if x}
        chain = _chain_now(drv, uuid, run, config, t)
        idx = next((i for i in range(len(chain) - 1)
                    if _rp(chain[i][0]) in cands and _rp(chain[i + 1][0]) == _rp(base)), None)
        if idx is None:
            if children:
                raise _ns(f"disk {t}: the overlay of snapshot '{m.name}' ({', '.join(sorted(cands))}) is not in "
                          f"the disk's current backing chain, and snapshot(s) {', '.join(children)} depend on "
                          "it: revert to it or delete them first, or give --metadata", disk=t, snapshot=m.name)
            if in_use_cache is None:
                in_use_cache = _in_use(drv, uuid, run, config, others)
            files = [base] if (_rp(base) in recorded_overlays(metas) and _rp(base) not in in_use_cache
                               and os.path.isfile(base)) else []
            out.append({"target": t, "mode": "drop", "files": files})
            continue
        if len(children) > 1:
            raise _ns(f"disk {t}: snapshot '{m.name}' has {len(children)} children ({', '.join(children)}): its "
                      "overlay cannot be merged into more than one chain (delete all but one first, or give "
                      "--metadata)", disk=t, snapshot=m.name)
        top = chain[idx][0]
        rebase = []
        for o in others:
            odom = o.root.find("domain")
            imgs = [_source(e) for e in (odom.findall("devices/disk") if odom is not None else [])]
            imgs += list(o.revert.values())
            for img in imgs:
                if not img or not os.path.exists(img) or _rp(img) == _rp(top):
                    continue
                if _rp(img) == _rp(base):
                    raise _ns(f"disk {t}: '{base}' is also the state of snapshot '{o.name}': merging the overlay "
                              f"of '{m.name}' into it would change that snapshot (give --metadata)",
                              disk=t, snapshot=m.name)
                b, _bf = backing_of(img)
                if _rp(b) == _rp(base) and (idx == 0 or _rp(img) != _rp(chain[idx - 1][0])):
                    raise _ns(f"disk {t}: '{base}' is the backing file of '{img}' (snapshot '{o.name}'): merging "
                              f"the overlay of '{m.name}' into it would change what that image holds "
                              "(give --metadata)", disk=t, snapshot=m.name)
                if _rp(b) == _rp(top) and (idx == 0 or _rp(img) != _rp(chain[idx - 1][0])):
                    rebase.append(img)
        out.append({"target": t, "mode": "merge", "top": top, "top_fmt": chain[idx][1], "base": base,
                    "base_fmt": chain[idx + 1][1], "active": idx == 0,
                    "above": chain[idx - 1][0] if idx else None, "above_fmt": chain[idx - 1][1] if idx else None,
                    "rebase": sorted(set(rebase))})
    return out


def _in_use(drv, uuid: str, run, config, others) -> set[str]:
    from virtctl.drivers.qemu.snapshot.extrevert import state_images

    used = set()
    if config is not None:
        for el in config.root.findall("devices/disk"):
            tgt = el.find("target")
            if tgt is not None and _source(el):
                used.update(_rp(p) for p, _f in _chain_now(drv, uuid, run, config, tgt.get("dev")))
                used.update(_rp(p) for p, _f in img_chain(_source(el), _fmt(el)))
    states = state_images({o.name: o for o in others})
    used |= states
    for s in list(states):
        if os.path.exists(s):
            b, _f = backing_of(s)
            if b:
                used.add(_rp(b))
    return used


# --- doing it ----------------------------------------------------------------------------------------
def _rebase(img: str, base: str, base_fmt: str) -> None:
    from virtctl.drivers.qemu import qemu_img

    qemu_img.run(["rebase", "-q", "-u", "-f", "qcow2", "-b", base, "-F", base_fmt, "--", img],
                 what=f"rebase '{img}' onto '{base}'")


def _switched(drv, uuid: str, e: dict) -> bool:
    """Does the chain go from above X straight to P now (the point after which
    the commit is not done again)?"""
    if e["active"]:
        cfg = drv.d._config(uuid)
        return _rp(_source(external.disk_el(cfg, e["target"]))) == _rp(e["base"])
    b, _f = backing_of(e["above"])
    return _rp(b) == _rp(e["base"])


def merge_offline(drv, uuid: str, store, pending: dict) -> None:
    from virtctl.drivers.qemu import qemu_img

    for e in pending["disks"]:
        if e["mode"] != "merge":
            continue
        if not _switched(drv, uuid, e):
            if not os.path.exists(e["top"]):
                raise OperationFailed(f"operation failed: disk {e['target']}: the overlay '{e['top']}' is gone "
                                      "but the chain still names it", detail={"disk": e["target"]})
            qemu_img.run(["commit", "-q", "-f", e["top_fmt"], "-d", "--", e["top"]],
                         what=f"commit '{e['top']}' into '{e['base']}' (disk {e['target']})",
                         timeout=qemu_img.QEMU_IMG_COPY_TIMEOUT)
            killpoint("snapshot:delete-ext-committed")
            for img in e["rebase"]:
                _rebase(img, e["base"], e["base_fmt"])
            if e["active"]:
                cfg = drv.d._config(uuid)
                el = external.disk_el(cfg, e["target"])
                el.find("source").set("file", e["base"])
                bs = el.find("backingStore")
                if bs is not None:
                    el.remove(bs)
                drv_el = el.find("driver")
                if drv_el is None:
                    from virtctl.xml import xmlapi

                    drv_el = xmlapi.element("driver", {"name": "qemu"})
                    el.insert(0, drv_el)
                drv_el.set("type", e["base_fmt"])
                drv.d._write_config(cfg)
            else:
                _rebase(e["above"], e["base"], e["base_fmt"])
        _unlink(e["top"])


def merge_running(drv, uuid: str, run, pending: dict) -> None:
    from virtctl.drivers.test.blockjob import find_disk

    with run.qmp(timeout=30) as q:
        for e in pending["disks"]:
            if e["mode"] != "merge":
                continue
            t = e["target"]
            live = drv.d._live(uuid)
            el = find_disk(live.root, t)
            chain = drv.d._bj_chain(q, el)
            if any(_rp(layer["path"]) == _rp(e["top"]) for layer in chain):
                job = drv.d._qemu_job(q, t)
                if job is None:
                    drv.d._commit_locked(run, q, t, chain, base=e["base"], top=None if e["active"] else e["top"],
                                         active=e["active"], delete=True)
                done = drv.d._finish_job_locked(run, q, el, t, pivot=e["active"])
                chain = drv.d._bj_chain(q, el)
                if any(_rp(layer["path"]) == _rp(e["top"]) for layer in chain):
                    err = (done or {}).get("error") or (done or {}).get("status") or "the overlay is still in use"
                    raise OperationFailed(f"operation failed: disk {t}: merging '{e['top']}' into '{e['base']}' "
                                          f"failed: {err}", detail={"disk": t})
            else:
                drv.d._finish_job_locked(run, q, el, t, pivot=e["active"])  # a job of a killed delete
            for img in e["rebase"]:
                _rebase(img, e["base"], e["base_fmt"])
            _unlink(e["top"])


def _unlink(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def finish_metadata(drv, uuid: str, store, pending: dict) -> None:
    """After the merges: every snapshot's <domain> naming an X names its P; the
    dropped images go; then the deletion itself (re-parenting, current)."""
    from virtctl.drivers.qemu.snapshot import repair

    killpoint("snapshot:delete-ext-merged")
    moved = {_rp(e["top"]): e for e in pending["disks"] if e["mode"] == "merge"}
    if moved:
        for o in store.all().values():
            if o.name == pending["deleted"]:
                continue
            dom = o.root.find("domain")
            changed = False
            for el in dom.findall("devices/disk") if dom is not None else []:
                e = moved.get(_rp(_source(el)))
                if e is not None:
                    el.find("source").set("file", e["base"])
                    drv_el = el.find("driver")
                    if drv_el is not None:
                        drv_el.set("type", e["base_fmt"])
                    changed = True
            if changed:
                store.write(o.root)
    for e in pending["disks"]:
        for f in e.get("files") or []:
            _unlink(f)
    repair.finish_delete(drv, uuid, store, pending)


def run_pending(drv, uuid: str, store, pending: dict, *, fresh: bool) -> None:
    """Do (``fresh``) or finish (after a kill) what ``pending`` says."""
    run = drv.running(uuid)
    if pending.get("run_id"):
        if run is None or run.record.get("run_id") != pending["run_id"]:
            if fresh:
                raise OperationInvalid("Requested operation is not valid: the domain stopped during snapshot-delete")
            # the run that had the job is gone: what it did is not known for sure; nothing
            # is redone (give snapshot-delete again: it looks at the images afresh)
            store.set_pending(None)
            return
        merge_running(drv, uuid, run, pending)
    else:
        if run is not None:
            if fresh:
                raise OperationInvalid("Requested operation is not valid: the domain started during snapshot-delete")
            store.set_pending(None)
            return
        merge_offline(drv, uuid, store, pending)
    finish_metadata(drv, uuid, store, pending)
