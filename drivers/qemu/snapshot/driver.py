"""The QEMU driver's SnapshotDriver (drivers/base.py): see the package docstring.

Every change holds the domain lock from the first check to the last write
and starts by finishing what a killed command left (repair.py).  An
operation on images is announced in ``pending.json`` first and the
metadata written after the images say it happened, so a crash anywhere
leaves the metadata matching the images once the next command has run.
"""
from __future__ import annotations

import os
import time

from virtctl.api.snapshot import SnapshotRecord
from virtctl.drivers.base import SnapshotDriver
from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.faults import killpoint
from virtctl.drivers.qemu.snapshot import external, internal, plan as planner, repair
from virtctl.drivers.qemu.snapshot.store import Meta, Store, check_name
from virtctl.errors import InvalidArg, NoDomainSnapshot, NotSupported, OperationFailed, OperationInvalid, \
    VirtError


def not_found(name: str) -> NoDomainSnapshot:
    return NoDomainSnapshot(f"Domain snapshot not found: no domain snapshot with matching name '{name}'",
                            detail={"snapshot": name})


def _ns(feature: str, why: str) -> NotSupported:
    return NotSupported(f"this function is not supported by the connection driver: {feature}: {why}",
                        detail={"driver": "qemu", "feature": feature})


class QemuSnapshotDriver(SnapshotDriver):
    driver_name = "qemu"

    def __init__(self, domains):
        self.d = domains
        self.state = domains.state

    # --- reading --------------------------------------------------------------------------
    def _metas(self, uuid: str, *, head: bool = False) -> tuple[Store, dict[str, Meta]]:
        self.d._checked_view(uuid, allow_corrupt=True)  # NO_DOMAIN first
        store = Store(self.state, uuid)
        if store.pending() is not None:
            with rt.domain_lock(self.state, uuid):
                repair.finish(self, uuid, store)
        return store, store.all(head=head)

    def _record(self, uuid: str, m: Meta, current: str | None) -> SnapshotRecord:
        return SnapshotRecord(name=m.name, domain_uuid=uuid, parent=m.parent, creation_time=m.created,
                              state=m.state, description=m.description, current=current == m.name,
                              location=m.location, disk_only=m.state == "disk-snapshot")

    def list(self, uuid: str) -> list[SnapshotRecord]:
        store, metas = self._metas(uuid, head=True)
        cur = store.current()
        kids: dict[str | None, list[Meta]] = {}
        for m in metas.values():
            kids.setdefault(m.parent if m.parent in metas else None, []).append(m)
        for v in kids.values():
            v.sort(key=lambda m: (m.created, m.name))
        out: list[SnapshotRecord] = []
        todo = list(reversed(kids.get(None, [])))
        while todo:
            m = todo.pop()
            out.append(self._record(uuid, m, cur))
            todo.extend(reversed(kids.get(m.name, [])))
        return out

    def get(self, uuid: str, name: str) -> SnapshotRecord:
        store = Store(self.state, uuid)
        self._metas_pending(uuid, store)
        m = store.load(name, head=True)
        if m is None:
            raise not_found(name)
        return self._record(uuid, m, store.current())

    def get_xml(self, uuid: str, name: str, *, security_info: bool = False) -> str:
        from virtctl.xml import xmlapi

        store = Store(self.state, uuid)
        self._metas_pending(uuid, store)
        m = store.load(name)
        if m is None:
            raise not_found(name)
        if m.revert:
            from virtctl.drivers.qemu.snapshot.extrevert import hide

            hide(m.root)
        return xmlapi.tostring(m.root)

    def _metas_pending(self, uuid: str, store: Store) -> None:
        self.d._checked_view(uuid, allow_corrupt=True)  # NO_DOMAIN first
        if store.pending() is not None:
            with rt.domain_lock(self.state, uuid):
                repair.finish(self, uuid, store)

    # --- helpers ----------------------------------------------------------------------------
    def _locked_view(self, uuid: str):
        store = Store(self.state, uuid)
        repair.finish(self, uuid, store)
        return self.d._checked_view(uuid, locked=True), store

    def running(self, uuid: str):
        """The RunningDomain of a live run (domain lock held), or None."""
        probe = rt.sync(self.state, uuid, locked=True)
        if probe.corrupt:
            raise OperationFailed(f"the state of domain {uuid} is corrupt: {probe.corrupt}")
        return rt.RunningDomain(self.state, uuid, probe.record) if probe.alive else None

    def stop(self, run, reason: str = "from snapshot") -> None:
        """End the run (domain lock held): as destroy does."""
        from virtctl.drivers.qemu import process
        from virtctl.drivers.qemu.locks import pidfile_holder

        rec = run.record
        run.update(stopping="destroy")
        pid, started = rec["pid"], rec.get("start_time")
        pidfile = self.state.pidfile(run.uuid)
        if not process.kill_and_wait(pid, started, term_timeout=10.0, kill_timeout=15.0,
                                     alive=lambda: pidfile_holder(pidfile) == pid):
            run.update(stopping=None)
            raise OperationFailed(f"operation failed: failed to terminate process {pid}")
        rt.cleanup(self.state, run.uuid, rec, reason)

    # --- create ------------------------------------------------------------------------------
    def create(self, uuid: str, xml: str, *, source: str = "<input>", redefine: bool = False,
               current: bool = False, no_metadata: bool = False, halt: bool = False,
               disk_only: bool = False, reuse_external: bool = False, quiesce: bool = False,
               atomic: bool = False, live: bool = False, validate: bool = False) -> str:
        from virtctl.xml import validate as schema

        root = schema.parse_and_validate(xml, "domainsnapshot", source)
        name = root.findtext("name") or str(int(time.time()))
        check_name(name)
        if current and not redefine:
            raise InvalidArg("Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag "
                             "'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'")
        if redefine and no_metadata:
            raise InvalidArg("--redefine and --no-metadata are mutually exclusive")
        self.d._checked_view(uuid)  # NO_DOMAIN before the lock
        with rt.domain_lock(self.state, uuid):
            v, store = self._locked_view(uuid)
            if not v.persistent:
                raise _ns("snapshot-create", "snapshots of a transient domain (define it first)")
            metas = store.all()
            if redefine:
                return self._redefine(uuid, v, store, metas, name, root, current)
            if name in metas:
                raise OperationFailed(f"operation failed: domain moment {name} already exists",
                                      detail={"snapshot": name})
            run = self.running(uuid)
            definition = self.d._live(uuid) if run is not None else v.config
            run_state = run.record.get("state", "running") if run is not None else None
            plan = planner.make(root, definition, run_state=run_state, disk_only=disk_only, live=live,
                                quiesce=quiesce)
            doc = self._document(root, name, plan, v.config, store.current())
            self._take(uuid, store, run, plan, doc, name, no_metadata=no_metadata, reuse=reuse_external)
            if halt and run is not None:
                self.stop(run)
        return name

    def _document(self, req, name: str, plan, config, parent: str | None):
        """The <domainsnapshot> as stored and shown (the test driver's order)."""
        from virtctl.xml import xmlapi

        root = xmlapi.element("domainsnapshot")
        xmlapi.sub(root, "name", text=name)
        desc = req.findtext("description")
        if desc:
            xmlapi.sub(root, "description", text=desc)
        xmlapi.sub(root, "state", text=plan.state)
        if parent is not None:
            xmlapi.sub(xmlapi.sub(root, "parent"), "name", text=parent)
        xmlapi.sub(root, "creationTime", text=str(int(time.time())))
        xmlapi.sub(root, "memory", {"snapshot": plan.memory})
        disks = xmlapi.sub(root, "disks")
        for d in plan.disks:
            el = xmlapi.sub(disks, "disk", {"name": d.target, "snapshot": d.mode})
            if d.mode == "external":
                el.set("type", "file")
                xmlapi.sub(el, "driver", {"type": "qcow2"})
                xmlapi.sub(el, "source", {"file": d.overlay})
        dom = xmlapi.parse(config.to_xml(), "<domain>")
        dom.attrib.pop("id", None)
        root.append(dom)
        return root

    def _take(self, uuid: str, store: Store, run, plan, doc, name: str, *, no_metadata: bool,
              reuse: bool) -> None:
        from virtctl.xml import xmlapi

        kind = plan.kind
        disks = plan.of(kind)
        pending = {"op": "create", "name": name, "kind": kind, "no_metadata": no_metadata,
                   "run_id": run.record.get("run_id") if run is not None else None,
                   "job": internal.job_id(name) if run is not None and kind == "internal" else None,
                   "disks": [{"target": d.target, "path": d.path, "fmt": d.fmt, "overlay": d.overlay,
                              "made": False} for d in disks],
                   "doc": xmlapi.tostring(doc)}
        # nothing may be there already: a tag of that name, an overlay file
        if kind == "internal":
            have = repair.tags_now(run, disks)
            for d in disks:
                if name in have.get(d.path, []):
                    raise OperationFailed(f"operation failed: disk {d.target} ('{d.path}') already holds an "
                                          f"internal snapshot named '{name}' (made without metadata?)",
                                          detail={"disk": d.target, "snapshot": name})
        else:
            for d in disks:
                external.check_new(d.overlay, d.target, reuse)
                if d.overlay == d.path:
                    raise InvalidArg(f"the overlay of disk {d.target} is its current image '{d.path}'")
        store.set_pending(pending)
        killpoint("snapshot:pending")
        try:
            if kind == "internal":
                self._internal(run, disks, name, plan, pending["job"])
            else:
                self._external(uuid, store, run, disks, pending, reuse)
            killpoint("snapshot:taken")
        except BaseException:
            try:
                repair.undo_create(self, uuid, store, pending)
            except (VirtError, OSError):
                pass  # pending.json stays: the next command finishes the undo
            raise
        repair.commit_create(self, uuid, store, pending)

    def _internal(self, run, disks, name: str, plan, jid: str | None) -> None:
        if run is None:
            for d in disks:
                internal.img_snapshot("-c", name, d.path)
                killpoint("snapshot:disk")
            return
        with run.qmp(timeout=30) as q:
            nodes = internal.block_nodes(q)
            devs = [repair.node_of(nodes, d) for d in disks]
            from virtctl.drivers.qemu.qmp import QMPError

            try:
                q.command("snapshot-save", {"job-id": jid, "tag": name, "vmstate": devs[0], "devices": devs})
            except (QMPError, OSError) as exc:
                raise rt.qmp_error(exc, "snapshot-save") from None
            killpoint("snapshot:job")
            err = internal.wait_job(q, jid, "snapshot-save")
            if err:
                raise OperationFailed(f"operation failed: QEMU could not take snapshot '{name}': {err}")

    def _external(self, uuid: str, store: Store, run, disks, pending: dict, reuse: bool) -> None:
        if run is None:
            for d, p in zip(disks, pending["disks"]):
                if not (reuse and os.path.exists(d.overlay)):
                    p["made"] = True
                    store.set_pending(pending)
                    external.create_overlay(d.overlay, d.path, d.fmt, None)
            killpoint("snapshot:overlays")
            repair.switch_definitions(self, uuid, pending, live=False)
            return
        with run.qmp(timeout=30) as q:
            nodes = internal.block_nodes(q)
            for d, p in zip(disks, pending["disks"]):
                repair.node_of(nodes, d)
                d.new_nodes = external.node_names()
                p["nodes"] = list(d.new_nodes)
            sizes = {b.get("inserted", {}).get("image", {}).get("filename"):
                     b.get("inserted", {}).get("image", {}).get("virtual-size")
                     for b in q.command("query-block") or [] if b.get("inserted")}
            for d, p in zip(disks, pending["disks"]):
                if not (reuse and os.path.exists(d.overlay)):
                    p["made"] = True
                    store.set_pending(pending)
                    external.create_overlay(d.overlay, d.path, d.fmt, sizes.get(d.path))
            store.set_pending(pending)
            killpoint("snapshot:overlays")
            external.live_snapshot(q, disks, nodes)
        killpoint("snapshot:switched")
        repair.switch_definitions(self, uuid, pending, live=True)

    def _redefine(self, uuid: str, v, store: Store, metas: dict, name: str, root, current: bool) -> str:
        from virtctl.xml import xmlapi

        old = metas.get(name)
        parent = root.findtext("parent/name")
        if parent is not None and (parent not in metas or parent == name):
            raise not_found(parent)
        doc = xmlapi.copy(root)
        if doc.find("creationTime") is None:
            xmlapi.sub(doc, "creationTime", text=str(old.created if old else int(time.time())))
        if doc.find("state") is None:
            xmlapi.sub(doc, "state", text=old.state if old else "shutoff")
        if doc.find("domain") is None:
            if old is not None and old.root.find("domain") is not None:
                doc.append(xmlapi.copy(old.root.find("domain")))
            else:
                doc.append(xmlapi.parse(v.config.to_xml(), "<domain>"))
        if old is not None and old.root.find("revertDisks") is not None and doc.find("revertDisks") is None:
            # the overlays a revert made stay recorded (dumpxml does not show them)
            rd = xmlapi.copy(old.root.find("revertDisks"))
            if doc.find("disks") is not None:
                doc.find("disks").addnext(rd)
            else:
                doc.find("domain").addprevious(rd)
        store.write(doc)
        if current:
            store.set_current(name)
        return name

    def set_current(self, uuid: str, name: str) -> None:
        with rt.domain_lock(self.state, uuid):
            _, store = self._locked_view(uuid)
            if store.load(name) is None:
                raise not_found(name)
            store.set_current(name)

    # --- revert ------------------------------------------------------------------------------
    def revert(self, uuid: str, name: str, *, running: bool = False, paused: bool = False,
               force: bool = False, reset_nvram: bool = False) -> None:
        if reset_nvram:
            raise _ns("snapshot-revert --reset-nvram", "not implemented")
        self.d._checked_view(uuid)
        with rt.domain_lock(self.state, uuid):
            v, store = self._locked_view(uuid)
            m = store.load(name)
            if m is None:
                raise not_found(name)
            if m.domain_xml is None:
                raise OperationInvalid(f"revert requires force: snapshot '{name}' lacks domain "
                                       f"'{v.config.name}' rollback info")
            if m.location == "external" or m.state == "disk-snapshot":
                self._revert_external(uuid, v, store, m, running=running, paused=paused, force=force)
                return
            snap_def = self.d._prepare(m.domain_xml, f"snapshot '{name}' (domain XML)")
            snap_def.name = v.config.name
            run = self.running(uuid)
            disks = [p for p in repair.disks_of(m, snap_def)]
            repair.check_tags(run, m, disks)  # the images still hold it, or a clear error
            if m.state in ("running", "paused"):
                target = "running" if running else "paused" if paused else m.state
                in_place = run is not None and repair.compatible(self.d._live(uuid), snap_def, disks)
                if run is not None and not in_place:
                    if not force:
                        raise OperationInvalid("revert requires force: target domain is not compatible "
                                               "with the running one (its disks or memory differ)")
                    self.stop(run)
                    run = None
            else:
                target = "running" if running else "paused" if paused else "shutoff"
                if run is not None and target != "shutoff" and not force:
                    raise OperationInvalid("revert requires force: must respawn guest to start inactive "
                                           "snapshot")
            pending = {"op": "revert", "name": name, "target": target}
            store.set_pending(pending)
            killpoint("snapshot:revert-pending")
            if m.state in ("running", "paused"):
                self.d._write_config(snap_def)
                if run is None:
                    self.d._start(uuid, snap_def.copy(), persistent=True, paused=True, autodestroy=False)
                    run = self.running(uuid)
                self._load(run, name, disks, target)
            else:
                if run is not None:
                    self.stop(run)
                for d in disks:
                    internal.img_snapshot("-a", name, d.path)
                    killpoint("snapshot:revert-disk")
                self.d._write_config(snap_def)
                if target != "shutoff":
                    self.d._start(uuid, snap_def.copy(), persistent=True, paused=target == "paused",
                                  autodestroy=False)
            store.set_current(name)
            store.set_pending(None)

    def _revert_external(self, uuid: str, v, store: Store, m, *, running: bool, paused: bool,
                         force: bool) -> None:
        """extrevert.py: new overlays on the snapshot's images (domain lock held)."""
        from virtctl.drivers.qemu.snapshot import extrevert

        name = m.name
        if m.memory != "no" or m.state not in ("disk-snapshot", "shutoff", "shutdown", "crashed"):
            raise _ns("snapshot-revert", f"reverting to the external snapshot '{name}' with memory "
                      f"(state {m.state}, memory {m.memory}) is not implemented")
        snap_def = self.d._prepare(m.domain_xml, f"snapshot '{name}' (domain XML)")
        snap_def.name = v.config.name
        run = self.running(uuid)
        target = "running" if running else "paused" if paused else "shutoff"
        if run is not None:
            if target != "shutoff" and not force:
                raise OperationInvalid("revert requires force: must respawn guest to start inactive snapshot")
            if run.record.get("block_jobs"):
                raise OperationInvalid("Requested operation is not valid: domain has active block job")
        disks, abandon = extrevert.plan(m, snap_def, v.config, store.all())
        pending = {"op": "revert-external", "name": name, "target": target, "disks": disks,
                   "abandon": abandon}
        store.set_pending(pending)
        killpoint("snapshot:revert-ext-pending")
        try:
            if run is not None:
                self.stop(run)
            for p in disks:
                p["made"] = True
                store.set_pending(pending)
                external.create_overlay(p["overlay"], p["backing"], p["fmt"], None)
                killpoint("snapshot:revert-ext-overlay")
            extrevert.switch(snap_def, disks)
            self.d._write_config(snap_def)
        except BaseException:
            if not extrevert.done(self, uuid, pending):
                try:
                    extrevert.undo(store, pending)
                except (VirtError, OSError):
                    pass  # pending.json stays: the next command finishes the undo
            raise
        killpoint("snapshot:revert-ext-defined")
        extrevert.finish(store, pending)
        if target != "shutoff":
            self.d._start(uuid, snap_def.copy(), persistent=True, paused=target == "paused", autodestroy=False)
            run = self.running(uuid)
            if run is not None:
                run.update(state=target, reason="from snapshot")

    def _load(self, run, name: str, disks, target: str) -> None:
        from virtctl.drivers.qemu.qmp import QMPError

        with run.qmp(timeout=30) as q:
            nodes = internal.block_nodes(q)
            devs = [repair.node_of(nodes, d) for d in disks]
            vm = repair.vmstate_node(nodes, disks, name) or devs[0]
            jid = internal.job_id("load-" + name)
            internal.run_job(q, "snapshot-load", {"job-id": jid, "tag": name, "vmstate": vm, "devices": devs},
                             f"reverting to snapshot '{name}'")
            try:
                status = (q.command("query-status") or {}).get("status")
                if target == "running" and status != "running":
                    q.command("cont")
                elif target == "paused" and status == "running":
                    q.command("stop")
            except (QMPError, OSError) as exc:
                raise rt.qmp_error(exc, "snapshot-revert") from None
        run.update(state=target, reason="from snapshot")

    # --- delete ------------------------------------------------------------------------------
    def delete(self, uuid: str, name: str, *, children: bool = False, children_only: bool = False,
               metadata_only: bool = False) -> None:
        self.d._checked_view(uuid)
        with rt.domain_lock(self.state, uuid):
            v, store = self._locked_view(uuid)
            metas = store.all()
            if name not in metas:
                raise not_found(name)
            doomed = [name]
            if children or children_only:
                doomed = repair.descendants(metas, name)
                if children:
                    doomed.append(name)
            pending = {"op": "delete", "names": doomed, "metadata_only": metadata_only,
                       "reparent_to": metas[name].parent if not (children or children_only) else None,
                       "deleted": name, "current_to": name if children_only else metas[name].parent}
            if not metadata_only:
                ext = [n for n in doomed if metas[n].location == "external"]
                if ext and (children or children_only):
                    raise _ns("snapshot-delete", f"deleting external snapshots with --children or "
                              f"--children-only ('{ext[0]}') is not supported: delete them one by one, or "
                              "give --metadata")
                run = self.running(uuid)
                if ext:
                    self._delete_external(uuid, v, store, metas, metas[name], run, pending)
                    return
                if run is not None:
                    self._check_deletable(run, [metas[n] for n in doomed if metas[n].location == "internal"])
            store.set_pending(pending)
            killpoint("snapshot:delete-pending")
            repair.finish_delete(self, uuid, store, pending)

    def _delete_external(self, uuid: str, v, store: Store, metas: dict, m, run, pending: dict) -> None:
        """extdelete.py: the snapshot's overlays merged by block commits (domain lock held)."""
        from virtctl.drivers.qemu.snapshot import extdelete

        if run is not None and run.record.get("block_jobs"):
            raise _ns("snapshot-delete", "cannot delete external snapshots when there is another active "
                      "block job")
        disks = extdelete.plan(self, uuid, metas, m, run, v.config)
        pending.update(op="delete-external", disks=disks,
                       run_id=run.record.get("run_id") if run is not None else None)
        store.set_pending(pending)
        killpoint("snapshot:delete-pending")
        try:
            extdelete.run_pending(self, uuid, store, pending, fresh=True)
        except VirtError:
            # a commit that failed changed nothing the definitions see (and a disk
            # merged before it stays merged: a new snapshot-delete plans afresh)
            store.set_pending(None)
            raise

    @staticmethod
    def _check_deletable(run, metas) -> None:
        """A running QEMU deletes internal snapshots from its top images only: one
        held in an image now under an overlay (opened read-only) is refused before
        anything is deleted."""
        with run.qmp(timeout=30) as q:
            nodes = internal.block_nodes(q)
        for m in metas:
            for d in repair.disks_of(m):
                if d.path not in nodes and m.name in internal.img_tags(d.path):
                    raise OperationInvalid(
                        f"Requested operation is not valid: snapshot '{m.name}' is in '{d.path}' (disk "
                        f"{d.target}), which the running domain only reads now (an overlay is on top of "
                        "it): shut the domain off to delete it, or give --metadata",
                        detail={"disk": d.target, "path": d.path, "snapshot": m.name})

    # --- undefine ---------------------------------------------------------------------------
    def forget(self, uuid: str) -> None:
        pass  # the metadata lives in the config directory, which undefine removes

