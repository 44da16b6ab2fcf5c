"""Finishing, undoing and checking snapshot operations against the images.

``pending.json`` (store.py) names an operation under way.  The next
snapshot command (domain lock held) looks at what the images really hold
and makes the metadata say it:

* create, internal: the tag is in every image (``qemu-img snapshot -l``, or
  ``query-block`` of the running QEMU after its job, which outlives a killed
  virtctl, has concluded and been dismissed) -> the metadata is written;
  otherwise the tags that are there are deleted and nothing is recorded;
* create, external: QEMU writes to the overlays (``query-block``) or the
  persistent definition names them -> both definitions are switched and the
  metadata written; otherwise the overlay nodes are removed from QEMU and the
  overlay files this command made are deleted;
* delete: the deletion is done again (each step can be done twice);
* revert: a memory revert whose job concluded is recorded (state, current);
  a disk revert is applied again;
* delete of an external snapshot (extdelete.py): the merges are finished
  (a commit only where the chain does not skip the overlay yet), then the
  metadata;
* revert to an external snapshot (extrevert.py): finished if the persistent
  definition names the new overlays, else the overlays made are removed.

``check_tags`` is what a revert runs first: a snapshot whose tag an image
lost is reported, naming the disk, and nothing is changed.
"""
from __future__ import annotations

import os

from virtctl.drivers.qemu.snapshot import external, internal
from virtctl.drivers.qemu.snapshot.plan import DiskPlan
from virtctl.errors import OperationFailed, VirtError


def node_of(nodes: dict, d) -> str:
    cur = nodes.get(d.path)
    if cur is None:
        raise OperationFailed(f"operation failed: disk {d.target}: QEMU does not have '{d.path}' open as "
                              "its top image (is it a backing file now?)", detail={"disk": d.target})
    return cur["node"]


def tags_now(run, disks) -> dict[str, list[str]]:
    if run is None:
        return {d.path: internal.img_tags(d.path) for d in disks}
    with run.qmp(timeout=30) as q:
        nodes = internal.block_nodes(q)
    # an image that is not a top one now (a backing file under an overlay) is read
    # with qemu-img info -U, as QEMU only has it open read-only
    return {d.path: nodes[d.path]["tags"] if d.path in nodes else internal.img_tags(d.path) for d in disks}


def vmstate_node(nodes: dict, disks, name: str) -> str | None:
    for d in disks:
        n = nodes.get(d.path)
        if n and n["vmstate"].get(name):
            return n["node"]
    return None


def disks_of(meta, definition=None) -> list[DiskPlan]:
    """The images holding ``meta``'s internal snapshot (from its own <domain>)."""
    root = definition.root if definition is not None else meta.root.find("domain")
    out = []
    for t in meta.internal_disks:
        el = None
        if root is not None:
            for cand in root.findall("devices/disk"):
                tgt = cand.find("target")
                if tgt is not None and tgt.get("dev") == t:
                    el = cand
        src = el.find("source") if el is not None else None
        if src is None or not src.get("file"):
            raise OperationFailed(f"snapshot '{meta.name}': its domain definition has no image for disk {t}")
        out.append(DiskPlan(t, "internal", src.get("file"), "qcow2", el))
    return out


def check_tags(run, meta, disks) -> None:
    have = tags_now(run, disks)
    for d in disks:
        if meta.name not in have.get(d.path, []):
            raise OperationFailed(
                f"operation failed: snapshot '{meta.name}' is not in disk {d.target} ('{d.path}') any more: "
                "the image does not list it; nothing was changed ('snapshot-delete --metadata' drops "
                "the metadata)", detail={"disk": d.target, "path": d.path, "snapshot": meta.name})


def compatible(live_def, snap_def, disks) -> bool:
    if live_def is None:
        return False

    def sources(defn):
        out = {}
        for el in defn.root.findall("devices/disk"):
            tgt, src = el.find("target"), el.find("source")
            out[tgt.get("dev") if tgt is not None else None] = src.get("file") if src is not None else None
        return out
    return sources(live_def) == sources(snap_def) and live_def.max_memory_kib == snap_def.max_memory_kib


def descendants(metas: dict, name: str) -> list[str]:
    out, todo = [], [name]
    while todo:
        parent = todo.pop()
        for m in metas.values():
            if m.parent == parent:
                out.append(m.name)
                todo.append(m.name)
    return out


def _same_run(drv, uuid: str, pending: dict):
    run = drv.running(uuid)
    if run is not None and pending.get("run_id") and run.record.get("run_id") != pending["run_id"]:
        return None
    return run


# --- create ---------------------------------------------------------------------------------
def commit_create(drv, uuid: str, store, pending: dict) -> None:
    from virtctl.xml import xmlapi

    if not pending.get("no_metadata"):
        doc = xmlapi.parse(pending["doc"], "<pending snapshot>")
        store.write(doc)
        store.set_current(pending["name"])
    store.set_pending(None)


def _disks(pending: dict) -> list[DiskPlan]:
    out = []
    for p in pending["disks"]:
        d = DiskPlan(p["target"], pending["kind"], p["path"], p["fmt"], None, p.get("overlay"))
        d.new_nodes = tuple(p.get("nodes") or ())
        out.append(d)
    return out


def _settled_nodes(q, pending: dict) -> dict:
    """The block nodes (and their snapshot tags) once the interrupted
    ``snapshot-save`` job, if any, has ended: what QEMU really holds."""
    if pending.get("job"):
        internal.wait_job(q, pending["job"], "snapshot-save")
    return internal.block_nodes(q)


def undo_create(drv, uuid: str, store, pending: dict) -> None:
    name, disks = pending["name"], _disks(pending)
    run = _same_run(drv, uuid, pending) if pending.get("run_id") else None
    if pending["kind"] == "internal":
        if run is not None:
            with run.qmp(timeout=30) as q:
                nodes = _settled_nodes(q, pending)
                devs = [nodes[d.path]["node"] for d in disks if name in nodes.get(d.path, {}).get("tags", [])]
                if devs:
                    internal.run_job(q, "snapshot-delete", {"job-id": internal.job_id("undo-" + name),
                                                            "tag": name, "devices": devs},
                                     f"removing the unfinished snapshot '{name}'")
        elif drv.running(uuid) is None:
            for d in disks:
                if os.path.exists(d.path) and name in internal.img_tags(d.path):
                    internal.img_snapshot("-d", name, d.path)
    else:
        if run is not None:
            from virtctl.drivers.qemu.qmp import QMPError

            with run.qmp(timeout=30) as q:
                present = {n.get("node-name") for n in q.command("query-named-block-nodes") or []}
                for d in disks:
                    for node in reversed(d.new_nodes):
                        if node in present:
                            try:
                                q.command("blockdev-del", {"node-name": node})
                            except (QMPError, OSError):
                                pass
        for d, p in zip(disks, pending["disks"]):
            if p.get("made") and d.overlay and os.path.exists(d.overlay):
                os.unlink(d.overlay)
    store.set_pending(None)


def switch_definitions(drv, uuid: str, pending: dict, *, live: bool) -> None:
    cfg = drv.d._config(uuid)
    changed = False
    for p in pending["disks"]:
        el = external.disk_el(cfg, p["target"]) if cfg is not None else None
        if el is not None and el.find("source").get("file") != p["overlay"]:
            external.switch_config(el, p["overlay"])
            changed = True
    if changed:
        drv.d._write_config(cfg)
    if live:
        lv = drv.d._live(uuid)
        changed = False
        for p in pending["disks"]:
            el = external.disk_el(lv, p["target"]) if lv is not None else None
            if el is not None and el.find("source").get("file") != p["overlay"]:
                external.switch_live(el, p["overlay"])
                changed = True
        if changed:
            drv.d._save_live(uuid, lv)


def _create_done(drv, uuid: str, pending: dict) -> bool:
    name, disks = pending["name"], _disks(pending)
    run = _same_run(drv, uuid, pending) if pending.get("run_id") else None
    if pending["kind"] == "internal":
        if run is not None:
            with run.qmp(timeout=30) as q:
                nodes = _settled_nodes(q, pending)
            return all(name in nodes.get(d.path, {}).get("tags", []) for d in disks)
        if drv.running(uuid) is not None:
            return False  # another run: cannot tell; undone conservatively below
        return all(os.path.exists(d.path) and name in internal.img_tags(d.path) for d in disks)
    if run is not None:
        with run.qmp(timeout=30) as q:
            nodes = internal.block_nodes(q)
        return all(d.overlay in nodes for d in disks)
    cfg = drv.d._config(uuid)
    return all((external.disk_el(cfg, d.target).find("source").get("file") == d.overlay) for d in disks)


# --- the entry point: before every snapshot command ---------------------------------------------
def finish(drv, uuid: str, store) -> None:
    """Finish or undo what ``pending.json`` names (domain lock held)."""
    pending = store.pending()
    if pending is None:
        return
    op = pending.get("op")
    try:
        if op == "create":
            if _create_done(drv, uuid, pending):
                if pending["kind"] == "external":
                    switch_definitions(drv, uuid, pending,
                                       live=_same_run(drv, uuid, pending) is not None and bool(pending.get("run_id")))
                commit_create(drv, uuid, store, pending)
            else:
                undo_create(drv, uuid, store, pending)
        elif op == "delete":
            finish_delete(drv, uuid, store, pending)
        elif op == "revert":
            _finish_revert(drv, uuid, store, pending)
        elif op == "delete-external":
            from virtctl.drivers.qemu.snapshot import extdelete

            try:
                extdelete.run_pending(drv, uuid, store, pending, fresh=False)
            except VirtError:
                store.set_pending(None)  # reported once; a new snapshot-delete plans afresh
                raise
        elif op == "revert-external":
            from virtctl.drivers.qemu.snapshot import extrevert

            if extrevert.done(drv, uuid, pending):
                extrevert.finish(store, pending)
            else:
                extrevert.undo(store, pending)
        else:
            store.set_pending(None)
    except VirtError as exc:
        raise OperationFailed(f"an earlier snapshot operation ({op} '{pending.get('name') or pending.get('deleted')}')"
                              f" was interrupted and cannot be finished: {exc.message}") from None


def _finish_revert(drv, uuid: str, store, pending: dict) -> None:
    name = pending["name"]
    meta = store.load(name)
    if meta is None:
        store.set_pending(None)
        return
    run = drv.running(uuid)
    if meta.state in ("running", "paused"):
        if run is not None:
            with run.qmp(timeout=30) as q:
                err = internal.wait_job(q, internal.job_id("load-" + name), "snapshot-load")
                status = (q.command("query-status") or {}).get("status")
            if not err:
                run.update(state="paused" if status != "running" else "running", reason="from snapshot")
                store.set_current(name)
    else:
        if run is None:
            for d in disks_of(meta):
                internal.img_snapshot("-a", name, d.path)
            drv.d._write_config(drv.d._prepare(meta.domain_xml, f"snapshot '{name}' (domain XML)"))
            store.set_current(name)
    store.set_pending(None)


# --- delete -------------------------------------------------------------------------------------
def finish_delete(drv, uuid: str, store, pending: dict) -> None:
    from virtctl.xml import xmlapi

    metas = store.all()
    names = [n for n in pending["names"] if n in metas]
    if not pending.get("metadata_only"):
        run = drv.running(uuid)
        for n in names:
            m = metas[n]
            if m.location != "internal":
                continue
            disks = disks_of(m)
            if run is None:
                for d in disks:
                    if os.path.exists(d.path) and n in internal.img_tags(d.path):
                        internal.img_snapshot("-d", n, d.path)
                continue
            with run.qmp(timeout=30) as q:
                nodes = internal.block_nodes(q)
                devs = [nodes[d.path]["node"] for d in disks if n in nodes.get(d.path, {}).get("tags", [])]
                if devs:
                    internal.run_job(q, "snapshot-delete", {"job-id": internal.job_id("del-" + n), "tag": n,
                                                            "devices": devs}, f"deleting snapshot '{n}'")
    # the children of a deleted snapshot get its parent
    gone = set(pending["names"])
    for m in metas.values():
        if m.name in gone or m.parent not in gone:
            continue
        new = pending.get("reparent_to")
        par = m.root.find("parent")
        if new is None:
            if par is not None:
                m.root.remove(par)
        else:
            if par is None:
                par = xmlapi.element("parent")
                m.root.find("state").addnext(par)
                xmlapi.sub(par, "name")
            par.find("name").text = new
        store.write(m.root)
    if store.current() in gone:
        store.set_current(pending.get("current_to") if pending.get("current_to") not in gone else None)
    for n in names:
        store.remove(n)
    store.sync()
    store.set_pending(None)
