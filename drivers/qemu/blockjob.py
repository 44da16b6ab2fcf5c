"""Block jobs, block resize and block info of the QEMU driver (a mixin of
QemuDomainDriver): QMP ``block-commit``, ``block-stream``,
``blockdev-mirror``, ``block-job-set-speed``, ``query-block-jobs``,
``job-complete``, ``block-job-cancel``, ``job-dismiss`` and ``block_resize``.

The job is QEMU's; virtctl only starts it, asks about it and ends it.
Rules:

* one job per disk, ``job-id`` ``virtctl-<target>``, started with
  ``auto-dismiss: false``: a job that ends stays in ``query-block-jobs``
  (``concluded``, with its error if it failed) until a virtctl command sees
  it, so nothing is lost when the virtctl that started it is killed;
* what a job is for (type, destination nodes, whether a pivot was asked)
  is kept in the runtime record (``block_jobs``) before QEMU is asked, all
  under the domain lock;
* the command that finds a concluded job (blockjob --info, --abort, a
  --wait loop, the next block command on that disk) *reconciles*: it
  rewrites the disk's ``<source>`` and ``<backingStore>`` chain in the live
  definition from QEMU's own ``query-block`` (the truth after a commit,
  pull or pivot) and, where the persistent definition names the same
  image, there too (atomic writes), then dismisses the job;
* node names: the format node of each layer as ``query-named-block-nodes``
  lists it (argv_storage.py names them ``libvirt-N-format``); the copy
  destination's nodes are ``copy<n>-<target>-{storage,format}``.

Kill points (faults.py): ``blockjob:pivot-marked`` (the pivot is recorded,
QEMU not yet told), ``blockjob:synced`` (definitions rewritten, record not
yet cleared).

A confined connection (QEMU as another user, images passed as descriptors)
cannot reopen images by name: block jobs there are NOT_SUPPORTED.
"""
from __future__ import annotations

import os
import time

from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.faults import killpoint
from virtctl.errors import InvalidArg, OperationFailed, OperationInvalid, VirtError, not_supported

JOB_WAIT = 60.0  # how long a pivot or a synchronous cancel may take to conclude
_COPY_FORMATS = ("raw", "qcow2")


def find_disk(root, disk: str):
    from virtctl.drivers.test.blockjob import find_disk as find

    return find(root, disk)


def _job_id(target: str) -> str:
    return f"virtctl-{target}"


def _target(el) -> str:
    t = el.find("target")
    return t.get("dev") if t is not None else ""


def _source_path(el) -> str | None:
    src = el.find("source")
    if src is None:
        return None
    return src.get("file") or src.get("dev")


class QemuBlockMixin:
    # --- helpers --------------------------------------------------------------------------
    def _no_confine(self, what: str) -> None:
        if getattr(self.state, "confine", None) is not None:
            raise not_supported("qemu", f"{what} on a confined connection (QEMU cannot reopen images by name)")

    def _disk_of(self, uuid: str, disk: str):
        live = self._live(uuid)
        el = find_disk(live.root, disk) if live is not None else None
        if el is None:
            raise InvalidArg(f"invalid argument: disk '{disk}' not found in domain", detail={"disk": disk})
        return live, el

    @staticmethod
    def _bj_call(q, name: str, args: dict | None = None, what: str | None = None):
        from virtctl.drivers.qemu.qmp import QMPError

        try:
            return q.command(name, args, timeout=30)
        except (QMPError, OSError) as exc:
            raise rt.qmp_error(exc, what or name) from None

    def _bj_device(self, q, el) -> dict:
        """The ``query-block`` entry of the disk (matched by its alias)."""
        alias_el = el.find("alias")
        alias = alias_el.get("name") if alias_el is not None else None
        for b in self._bj_call(q, "query-block") or []:
            qdev = b.get("qdev") or ""
            if alias and (qdev == alias or qdev.startswith(f"/machine/peripheral/{alias}/")):
                if not b.get("inserted"):
                    raise OperationInvalid(f"Requested operation is not valid: disk '{_target(el)}' has no medium")
                return b
        raise OperationFailed(f"operation failed: QEMU has no block device for disk '{_target(el)}'")

    def _bj_chain(self, q, el) -> list[dict]:
        """The disk's layers as QEMU has them, top first: ``{"path", "format", "node",
        "size"}`` (node: the format node's name)."""
        inserted = self._bj_device(q, el)["inserted"]
        nodes = self._bj_call(q, "query-named-block-nodes", {"flat": True}) or []
        by_file: dict[tuple[str, str], str] = {}
        for n in nodes:
            if n.get("drv") not in ("file", "host_device") and n.get("node-name"):
                by_file.setdefault((_plain_name(n.get("file")), n.get("drv")), n["node-name"])
        out, img = [], inserted.get("image") or {}
        first = True
        while img:
            path, fmt = _plain_name(img.get("filename")), img.get("format")
            node = inserted.get("node-name") if first else by_file.get((path, fmt))
            out.append({"path": path, "format": fmt, "node": node, "size": img.get("virtual-size", 0)})
            img, first = img.get("backing-image"), False
        return out

    def _reopen_rw(self, q, chain: list[dict], i: int) -> None:
        """Make layer ``i`` (a read-only backing image) writable: ``blockdev-reopen``
        of its storage and format nodes with the options they were opened with
        (argv_storage.py), ``read-only`` false, as libvirt does before a commit."""
        layer = chain[i]
        nodes = {n.get("node-name"): n for n in self._bj_call(q, "query-named-block-nodes", {"flat": True}) or []}
        fmt_info = nodes.get(layer["node"]) or {}
        if not fmt_info.get("ro"):
            return
        storage = layer["node"][:-len("-format")] + "-storage" if layer["node"].endswith("-format") else None
        st_info = nodes.get(storage)
        if st_info is None:
            raise OperationFailed(f"operation failed: cannot make '{layer['path']}' writable: QEMU has no "
                                  f"storage node for '{layer['node']}'")
        cache = fmt_info.get("cache") or {}
        common = {"read-only": False}
        if cache:
            common["cache"] = {"direct": bool(cache.get("direct")), "no-flush": bool(cache.get("no-flush"))}
        st = {"driver": st_info.get("drv"), "node-name": storage, "filename": st_info.get("file"), **common}
        fm = {"driver": layer["format"], "node-name": layer["node"], "file": storage, **common}
        if layer["format"] in ("qcow2", "qed", "vmdk"):
            fm["backing"] = chain[i + 1]["node"] if i + 1 < len(chain) else None
        dz = fmt_info.get("detect_zeroes")
        if dz and dz != "off":
            fm["detect-zeroes"] = dz
        self._bj_call(q, "blockdev-reopen", {"options": [st, fm]}, f"make '{layer['path']}' writable")

    @staticmethod
    def _bj_layer(chain: list[dict], path: str, target: str, what: str) -> int:
        real = os.path.realpath(path)
        for i, layer in enumerate(chain):
            if layer["path"] == path or os.path.realpath(layer["path"] or "") == real:
                return i
        raise InvalidArg(f"invalid argument: could not find image '{path}' in chain for '{target}'",
                         detail={what: path})

    def _bj_jobs(self, run) -> dict:
        return dict(run.record.get("block_jobs") or {})

    def _bj_set_job(self, run, target: str, entry: dict | None) -> None:
        jobs = self._bj_jobs(run)
        if entry is None:
            jobs.pop(target, None)
        else:
            jobs[target] = entry
        run.update(block_jobs=jobs or None)

    def _qemu_job(self, q, target: str) -> dict | None:
        for j in self._bj_call(q, "query-block-jobs") or []:
            if j.get("device") == _job_id(target):
                return j
        return None

    # --- reconciling a concluded job with the definitions -----------------------------------
    def _reconcile(self, run, q, el, target: str) -> dict | None:
        """The disk's job as QEMU has it now; a concluded one is finished here
        (definitions from QEMU, nodes of an abandoned copy removed, job
        dismissed) and returned with ``status`` completed/failed/cancelled."""
        job = self._qemu_job(q, target)
        entry = self._bj_jobs(run).get(target)
        if job is not None and job.get("status") not in ("concluded", "null"):
            return job
        # no job left, or a concluded one: dismissed first (QEMU 7.2 crashes listing the
        # nodes while a concluded stream job is kept), then the definitions follow QEMU
        status = None
        if job is not None:
            err = job.get("error")
            asked = (entry or {}).get("ended")
            status = "failed" if err and asked != "cancel" else (
                "cancelled" if asked == "cancel" else "completed")
            try:
                self._bj_call(q, "job-dismiss", {"id": _job_id(target)})
            except VirtError:
                pass
            job = {**job, "status": status, "error": err if status == "failed" else None}
        if entry and entry.get("type") == "copy" and entry.get("ended") != "pivot":
            self._drop_copy_nodes(q, entry)
            if entry.get("created") and status in ("cancelled", "failed"):
                try:  # a copy we created and that never finished is no copy: nothing half-written stays
                    os.unlink(entry["dest"])
                except OSError:
                    pass
        self._sync_disk(run, q, el)
        if entry and entry.get("nodes"):
            self._drop_unused_nodes(q, el, entry["nodes"], delete=entry.get("delete") or {})
        killpoint("blockjob:synced")
        if entry is not None:
            self._bj_set_job(run, target, None)
        return job

    def _drop_unused_nodes(self, q, el, before: list[str], *, delete: dict | None = None) -> None:
        """After a job (dismissed: see above), ``blockdev-del`` the layers of the
        chain it started from that the disk no longer uses (the overlay merged by
        an active commit and pivot, the source of a pivoted copy, the layers a
        commit or pull took out), format node then storage node. A node QEMU
        still uses refuses, and stays.  ``delete`` (blockcommit --delete: node ->
        file): a layer's file is removed once both its nodes are gone, so only
        what was committed and closed, never a layer still in the chain (a
        cancelled or failed commit keeps everything)."""
        now = {layer["node"] for layer in self._bj_chain(q, el)}
        for node in before:
            if not node or node in now:
                continue
            names = [node] + ([node[:-len("-format")] + "-storage"] if node.endswith("-format") else [])
            closed = True
            for name in names:
                try:
                    self._bj_call(q, "blockdev-del", {"node-name": name})
                except VirtError:
                    closed = False
                    break  # in use: and so is what is below it
            path = (delete or {}).get(node)
            if closed and path and os.path.isfile(path):
                try:
                    os.unlink(path)
                except OSError:
                    pass  # kept: the commit itself succeeded

    def _drop_copy_nodes(self, q, entry: dict) -> None:
        for node in (entry.get("format_node"), entry.get("storage_node")):
            if node:
                try:
                    self._bj_call(q, "blockdev-del", {"node-name": node})
                except VirtError:
                    pass

    def _sync_disk(self, run, q, el) -> None:
        """Rewrite the disk's source and backing chain in the live definition
        (and in the persistent one, where it names the same image) from QEMU."""
        from virtctl.drivers.qemu.backing import _insert, _new_layer

        uuid = run.uuid
        chain = self._bj_chain(q, el)
        if not chain:
            return
        live = self._live(uuid)
        lel = find_disk(live.root, _target(el))
        old_top = _source_path(lel)
        changed = self._apply_chain(lel, chain, _insert, _new_layer, keep_backing=True)
        if changed:
            self._save_live(uuid, live)
        config = self._config(uuid)
        if config is None:
            return
        cel = find_disk(config.root, _target(el))
        if cel is None or cel.get("type") not in ("file", "block", None):
            if cel is None or old_top == chain[0]["path"]:
                return  # a volume disk whose image stayed: its definition still names it rightly
        if cel.get("type") in ("file", "block", None) and _source_path(cel) not in (old_top, chain[0]["path"]):
            return  # the persistent definition names another image: not ours to change
        if self._apply_chain(cel, chain, _insert, _new_layer, keep_backing=cel.find("backingStore") is not None):
            self._write_config(config)

    @staticmethod
    def _apply_chain(disk_el, chain: list[dict], _insert, _new_layer, *, keep_backing: bool) -> bool:
        from virtctl.xml import xmlapi

        import stat

        top = chain[0]
        try:
            block = stat.S_ISBLK(os.stat(top["path"]).st_mode)
        except OSError:
            block = False
        old_src = disk_el.find("source")
        same = _source_path(disk_el) == top["path"] and disk_el.get("type", "file") == ("block" if block else "file")
        if not same:
            disk_el.set("type", "block" if block else "file")
            src = xmlapi.element("source", {"dev" if block else "file": top["path"]})
            if old_src is not None:
                old_src.addprevious(src)
                disk_el.remove(old_src)
            else:
                disk_el.append(src)
        drv = disk_el.find("driver")
        if drv is None:
            drv = xmlapi.element("driver", {"name": "qemu"})
            disk_el.insert(0, drv)
        changed = not same or drv.get("type") != top["format"]
        drv.set("type", top["format"])
        old_bs = disk_el.find("backingStore")
        old_text = _chain_text(old_bs)
        if old_bs is not None:
            disk_el.remove(old_bs)
        if keep_backing:
            parent, after = disk_el, disk_el.find("source")
            for layer in chain[1:]:
                new = _new_layer(layer["path"], layer["format"])
                _insert(parent, new, after)
                parent, after = new, None
            _insert(parent, xmlapi.element("backingStore"), after)
        return changed or old_text != _chain_text(disk_el.find("backingStore"))

    # --- domblkinfo ---------------------------------------------------------------------------
    def block_info(self, uuid: str, disk: str) -> dict:
        v = self._checked_view(uuid)
        cur = v.current
        if not v.probe.alive:
            from virtctl.drivers.qemu.storage.resolve import resolve

            try:
                cur = resolve(self.state, cur)  # a volume disk: its file
            except VirtError:
                pass
        el = find_disk(cur.root, disk)
        if el is None:
            raise InvalidArg(f"invalid argument: invalid path {disk} not assigned to domain", detail={"disk": disk})
        path = _source_path(el)
        if not path:
            raise InvalidArg(f"invalid argument: disk '{disk}' does not have source", detail={"disk": disk})
        drv = el.find("driver")
        fmt = (drv.get("type") if drv is not None else None) or "raw"
        capacity = allocation = None
        if v.probe.alive:
            try:
                with self._running(uuid) as run, run.qmp(timeout=30) as q:
                    live, lel = self._disk_of(uuid, disk)
                    inserted = self._bj_device(q, lel)["inserted"]
                    capacity = (inserted.get("image") or {}).get("virtual-size")
                    path = (inserted.get("image") or {}).get("filename") or path
                    fmt = (inserted.get("image") or {}).get("format") or fmt
                    if fmt != "raw":
                        for s in self._bj_call(q, "query-blockstats") or []:
                            if s.get("node-name") == inserted.get("node-name") or \
                                    (s.get("qdev") or "").startswith(f"/machine/peripheral/{lel.find('alias').get('name')}/"):
                                allocation = (s.get("stats") or {}).get("wr_highest_offset") or None
                                break
            except OperationInvalid:
                pass  # it stopped meanwhile: read the file
        try:
            st = os.stat(path)
        except OSError as exc:
            raise OperationFailed(f"cannot stat file '{path}': {exc.strerror}") from None
        import stat as stat_mod

        if stat_mod.S_ISBLK(st.st_mode):
            with open(path, "rb") as f:
                physical = f.seek(0, os.SEEK_END)
        else:
            physical = st.st_size
        if capacity is None:
            if fmt == "raw":
                capacity = physical
            else:
                from virtctl.drivers.qemu import qemu_img

                capacity = int(qemu_img.info(path, fmt).get("virtual-size") or 0)
        if allocation is None:
            allocation = physical if stat_mod.S_ISBLK(st.st_mode) else st.st_blocks * 512
        return {"capacity": int(capacity), "allocation": int(allocation), "physical": int(physical)}

    # --- blockresize ----------------------------------------------------------------------------
    def block_resize(self, uuid: str, disk: str, size: int) -> None:
        with self._running(uuid) as run, run.qmp(timeout=30) as q:
            _live, el = self._disk_of(uuid, disk)
            self._resize_locked(q, el, disk, size)

    def _resize_locked(self, q, el, disk: str, size: int) -> None:
        inserted = self._bj_device(q, el)["inserted"]
        if inserted.get("ro"):
            raise OperationInvalid(f"Requested operation is not valid: disk '{disk}' is read-only")
        size = (size + 511) // 512 * 512  # QEMU's images grow in sectors (as libvirt rounds)
        current = int((inserted.get("image") or {}).get("virtual-size") or 0)
        if size < current:
            raise InvalidArg(f"invalid argument: cannot shrink disk '{disk}' from {current} to {size} bytes "
                             "while the guest uses it (virtctl refuses to lose the guest's data)",
                             detail={"current": current, "size": size})
        if size == current:
            return
        self._bj_call(q, "block_resize", {"node-name": inserted["node-name"], "size": size}, "blockresize")

    # --- starting jobs ------------------------------------------------------------------------------
    def _job_start(self, uuid: str, disk: str, what: str):
        """(run, q, el, target, chain) with no job on the disk (a concluded one is finished first)."""
        self._no_confine(what)
        return _JobStart(self, uuid, disk, what)

    def block_commit(self, uuid: str, disk: str, *, base: str | None = None, top: str | None = None,
                     active: bool = False, shallow: bool = False, delete: bool = False,
                     keep_relative: bool = False, bandwidth: int = 0) -> None:
        with self._job_start(uuid, disk, "blockcommit") as (run, q, el, target, chain):
            self._commit_locked(run, q, target, chain, base=base, top=top, active=active, shallow=shallow,
                                delete=delete, bandwidth=bandwidth, keep_relative=keep_relative)

    def _commit_locked(self, run, q, target: str, chain: list[dict], *, base: str | None, top: str | None,
                       active: bool, shallow: bool = False, delete: bool = False, bandwidth: int = 0,
                       keep_relative: bool = False) -> None:
        """Start the commit job (domain lock held, no job on the disk): blockcommit,
        and snapshot-delete of an external snapshot (snapshot/extdelete.py)."""
        ti = self._bj_layer(chain, top, target, "top") if top else 0
        if ti == 0 and not active:
            raise InvalidArg(f"invalid argument: commit of '{target}' active layer requires active flag")
        if ti != 0 and active:
            raise InvalidArg(f"invalid argument: active commit requested but '{chain[ti]['path']}' is not active")
        if ti + 1 >= len(chain):
            raise InvalidArg(f"invalid argument: top '{chain[ti]['path']}' in chain for '{target}' "
                             "has no backing file")
        if base:
            bi = self._bj_layer(chain, base, target, "base")
            if bi <= ti:
                raise InvalidArg(f"invalid argument: could not find base image '{base}' beneath "
                                 f"'{chain[ti]['path']}' in chain for '{target}'")
            if shallow and bi != ti + 1:
                raise InvalidArg(f"invalid argument: base '{base}' is not immediately below "
                                 f"'{chain[ti]['path']}' in chain for '{target}'")
        else:
            bi = ti + 1 if shallow else len(chain) - 1
        missing = [chain[i]["path"] for i in (ti, bi) if not chain[i]["node"]]
        if missing:
            raise OperationFailed(f"operation failed: QEMU has no node for '{missing[0]}'")
        self._reopen_rw(q, chain, bi)
        if ti:
            self._reopen_rw(q, chain, ti - 1)  # the image above top gets a new backing file name
        kind = "active-commit" if ti == 0 else "commit"
        entry = {"type": kind, "top": chain[ti]["path"], "base": chain[bi]["path"],
                 "nodes": [layer["node"] for layer in chain]}
        if delete:  # the committed layers' files, removed once QEMU has closed them
            entry["delete"] = {layer["node"]: layer["path"] for layer in chain[ti:bi] if layer["node"]}
        self._bj_set_job(run, target, entry)
        args = {"job-id": _job_id(target), "device": chain[0]["node"], "base-node": chain[bi]["node"],
                "auto-dismiss": False}
        if ti:
            args["top-node"] = chain[ti]["node"]
            if keep_relative:  # the image above top names base as its chain did: relatively
                args["backing-file"] = _relative_backing(chain, ti - 1, ti, bi, target)
        # an active commit leaves no image above base: nothing to keep relative (as libvirt)
        if bandwidth:
            args["speed"] = bandwidth
        self._start_or_forget(run, q, target, "block-commit", args, "blockcommit")

    def _finish_job_locked(self, run, q, el, target: str, *, pivot: bool, timeout: float = 600.0) -> dict | None:
        """Wait (domain lock held) for the disk's job to conclude -- ``pivot``: to be
        ready, then ``job-complete`` -- and reconcile (definitions, nodes, files):
        the concluded job as _reconcile gives it."""
        deadline = time.monotonic() + timeout
        sent = False  # (a pivot marked by a killed virtctl is asked for again)
        while True:
            j = self._qemu_job(q, target)
            if j is None or j.get("status") in ("concluded", "null"):
                break
            if pivot and not sent and (j.get("ready") or j.get("status") == "ready"):
                entry = self._bj_jobs(run).get(target) or {}
                self._bj_set_job(run, target, {**entry, "ended": "pivot"})
                killpoint("blockjob:pivot-marked")
                self._bj_call(q, "job-complete", {"id": _job_id(target)}, "pivot")
                sent = True
            if time.monotonic() > deadline:
                raise OperationFailed(f"operation failed: the block job on '{target}' did not end in "
                                      f"{timeout:g} seconds (it goes on; 'blockjob --info' shows it)")
            time.sleep(0.05)
        return self._reconcile(run, q, el, target)

    def block_pull(self, uuid: str, disk: str, *, base: str | None = None, keep_relative: bool = False,
                   bandwidth: int = 0) -> None:
        if keep_relative and not base:
            raise InvalidArg("invalid argument: flag VIR_DOMAIN_BLOCK_REBASE_RELATIVE is valid only with "
                             "non-null base")
        with self._job_start(uuid, disk, "blockpull") as (run, q, el, target, chain):
            args = {"job-id": _job_id(target), "device": chain[0]["node"], "auto-dismiss": False}
            if base:
                bi = self._bj_layer(chain, base, target, "base")
                if bi == 0:
                    raise InvalidArg(f"invalid argument: base '{base}' is the active layer of '{target}'")
                args["base-node"] = chain[bi]["node"]
                if keep_relative:  # the top image names base as its chain did: relatively
                    args["backing-file"] = _relative_backing(chain, 0, 1, bi, target)
            if len(chain) < 2:
                raise InvalidArg(f"invalid argument: disk '{target}' has no backing chain to pull")
            if bandwidth:
                args["speed"] = bandwidth
            self._bj_set_job(run, target, {"type": "pull", "base": base, "nodes": [layer["node"] for layer in chain]})
            self._start_or_forget(run, q, target, "block-stream", args, "blockpull")

    def block_copy(self, uuid: str, disk: str, dest: str, *, format: str | None = None,  # noqa: A002
                   blockdev: bool = False, shallow: bool = False, reuse_external: bool = False,
                   bandwidth: int = 0, transient_job: bool = False, granularity: int = 0,
                   buf_size: int = 0, synchronous_writes: bool = False) -> None:
        from virtctl.drivers.qemu import qemu_img

        dest = os.path.abspath(dest)
        with self._job_start(uuid, disk, "blockcopy") as (run, q, el, target, chain):
            fmt = format or chain[0]["format"]
            if fmt not in _COPY_FORMATS:
                raise not_supported("qemu", f"blockcopy --format {fmt}", detail_formats=list(_COPY_FORMATS))
            if shallow and fmt != "qcow2":
                raise InvalidArg("invalid argument: a shallow copy needs a qcow2 destination (--format qcow2)")
            if any(os.path.realpath(layer["path"]) == os.path.realpath(dest) for layer in chain):
                raise InvalidArg(f"invalid argument: the destination '{dest}' is part of the disk's chain")
            exists = os.path.lexists(dest)
            if reuse_external and not exists:
                raise InvalidArg(f"invalid argument: --reuse-external: the destination '{dest}' does not exist")
            if not reuse_external and exists and not blockdev:
                raise OperationInvalid(f"Requested operation is not valid: the destination '{dest}' exists "
                                       "(give --reuse-external to copy into it)")
            if blockdev and not exists:
                raise InvalidArg(f"invalid argument: --blockdev: the block device '{dest}' does not exist")
            backing = chain[1] if shallow and len(chain) > 1 else None
            created = False
            if not exists:
                qemu_img.create(dest, fmt, chain[0]["size"], backing=backing["path"] if backing else None,
                                backing_fmt=backing["format"] if backing else None)
                created = True
            n = int(time.time() * 1000) % 10**6  # QEMU's node names have at most 31 characters
            storage, fmt_node = f"copy{n}-{target}-storage"[:31], f"copy{n}-{target}-format"[:31]
            entry = {"type": "copy", "dest": dest, "format": fmt, "created": created,
                     "storage_node": storage, "format_node": fmt_node,
                     "nodes": [layer["node"] for layer in chain]}
            self._bj_set_job(run, target, entry)
            try:
                self._bj_call(q, "blockdev-add", {"driver": "host_device" if blockdev else "file",
                                               "filename": dest, "node-name": storage}, "blockcopy")
                fnode: dict = {"driver": fmt, "node-name": fmt_node, "file": storage}
                if fmt == "qcow2":
                    fnode["backing"] = backing["node"] if backing else None
                self._bj_call(q, "blockdev-add", fnode, "blockcopy")
                args = {"job-id": _job_id(target), "device": chain[0]["node"], "target": fmt_node,
                        "sync": "top" if shallow else "full", "auto-dismiss": False}
                if bandwidth:
                    args["speed"] = bandwidth
                if granularity:
                    args["granularity"] = granularity
                if buf_size:
                    args["buf-size"] = buf_size
                if synchronous_writes:
                    args["copy-mode"] = "write-blocking"
                self._bj_call(q, "blockdev-mirror", args, "blockcopy")
            except BaseException:
                self._drop_copy_nodes(q, entry)
                if created:
                    try:
                        os.unlink(dest)
                    except OSError:
                        pass
                try:
                    self._bj_set_job(run, target, None)
                except (VirtError, OSError):
                    pass
                raise

    def _start_or_forget(self, run, q, target: str, command: str, args: dict, what: str) -> None:
        try:
            self._bj_call(q, command, args, what)
        except BaseException:
            try:
                self._bj_set_job(run, target, None)
            except (VirtError, OSError):
                pass
            raise

    # --- asking about and ending jobs --------------------------------------------------------------
    def block_job_info(self, uuid: str, disk: str) -> dict | None:
        with self._running(uuid) as run, run.qmp(timeout=30) as q:
            _live, el = self._disk_of(uuid, disk)
            target = _target(el)
            job = self._reconcile(run, q, el, target)
            if job is None:
                return None
            entry = self._bj_jobs(run).get(target) or {}
            kind = entry.get("type") or {"stream": "pull", "mirror": "copy"}.get(job.get("type"), job.get("type"))
            if job.get("status") in ("completed", "failed", "cancelled"):
                return {"type": kind, "status": job["status"], "error": job.get("error"),
                        "cur": int(job.get("offset") or 0), "end": int(job.get("len") or 0),
                        "bandwidth": int(job.get("speed") or 0), "ready": False}
            ready = bool(job.get("ready")) or job.get("status") == "ready"
            cur, end = int(job.get("offset") or 0), int(job.get("len") or 0)
            return {"type": kind, "status": job.get("status"), "error": None, "cur": cur, "end": end,
                    "bandwidth": int(job.get("speed") or 0), "ready": ready}

    def block_job_set_speed(self, uuid: str, disk: str, bandwidth: int) -> None:
        with self._running(uuid) as run, run.qmp(timeout=30) as q:
            _live, el = self._disk_of(uuid, disk)
            target = _target(el)
            job = self._reconcile(run, q, el, target)
            if job is None or job.get("status") in ("completed", "failed", "cancelled"):
                raise _no_job(target)
            self._bj_call(q, "block-job-set-speed", {"device": _job_id(target), "speed": bandwidth},
                       "blockjob --bandwidth")

    def block_job_abort(self, uuid: str, disk: str, *, pivot: bool = False, async_: bool = False) -> None:
        with self._running(uuid) as run, run.qmp(timeout=30) as q:
            _live, el = self._disk_of(uuid, disk)
            target = _target(el)
            job = self._reconcile(run, q, el, target)
            if job is None or job.get("status") in ("completed", "failed", "cancelled"):
                raise _no_job(target)
            entry = self._bj_jobs(run).get(target) or {}
            kind = entry.get("type") or job.get("type")
            if pivot:
                if kind not in ("copy", "active-commit"):
                    raise OperationInvalid(f"Requested operation is not valid: job type '{kind}' does not "
                                           f"support pivot (disk '{target}')")
                if not (job.get("ready") or job.get("status") == "ready"):
                    raise OperationInvalid(f"Requested operation is not valid: block job '{target}' not ready "
                                           "for pivot yet")
                self._bj_set_job(run, target, {**entry, "ended": "pivot"})
                killpoint("blockjob:pivot-marked")
                self._bj_call(q, "job-complete", {"id": _job_id(target)}, "blockjob --pivot")
            else:
                self._bj_set_job(run, target, {**entry, "ended": "cancel" if not job.get("ready") else "finish"})
                self._bj_call(q, "block-job-cancel", {"device": _job_id(target)}, "blockjob --abort")
            if async_:
                return
            deadline = time.monotonic() + JOB_WAIT
            while True:
                j = self._qemu_job(q, target)
                if j is None or j.get("status") in ("concluded", "null"):
                    break
                if time.monotonic() > deadline:
                    raise OperationFailed(f"operation failed: the block job on '{target}' did not end in "
                                          f"{JOB_WAIT:g} seconds (it goes on; 'blockjob --info' shows it)")
                time.sleep(0.05)
            done = self._reconcile(run, q, el, target)
            if pivot and done is not None and done.get("status") == "failed":
                raise OperationFailed(f"operation failed: pivot of disk '{target}' failed: {done.get('error')}")


def _no_job(target: str) -> OperationInvalid:
    return OperationInvalid(f"Requested operation is not valid: disk '{target}' does not have an active block job",
                            detail={"disk": target})


def _plain_name(name: str | None) -> str | None:
    """A layer's file name: QEMU shows a ``json:{...}`` pseudo-name for a node whose
    backing file is not the one its header names verbatim (a relative name, say);
    the image's file is in it."""
    if not name or not name.startswith("json:"):
        return name
    import json

    try:
        spec = json.loads(name[5:])
    except ValueError:
        return name
    f = spec.get("file") if isinstance(spec, dict) else None
    if isinstance(f, dict) and f.get("filename"):
        return f["filename"]
    return f if isinstance(f, str) else name


def _relative_backing(chain: list[dict], above: int, first: int, bi: int, target: str) -> str:
    """The backing file name the image ``chain[above]`` gets for base ``chain[bi]``,
    relative to its directory: only where every layer from ``chain[first]`` (the
    commit's top, the layer under a pull's top) down to base named its backing file
    relatively (libvirt's rule), else OPERATION_INVALID."""
    from virtctl.drivers.qemu import qemu_img

    for layer in chain[first:bi]:
        name = qemu_img.info(layer["path"], layer["format"]).get("backing-filename") or ""
        if not name or os.path.isabs(name):
            raise OperationInvalid(f"Requested operation is not valid: can't keep relative backing relationship "
                                   f"(disk '{target}': '{layer['path']}' names its backing file "
                                   f"'{name}' absolutely)", detail={"disk": target, "path": layer["path"]})
    return os.path.relpath(chain[bi]["path"], os.path.dirname(chain[above]["path"]))


def _chain_text(bs) -> str:
    out = []
    while bs is not None:
        src = bs.find("source")
        fmt = bs.find("format")
        out.append(f"{src.get('file') or src.get('dev') if src is not None else ''}:"
                   f"{fmt.get('type') if fmt is not None else ''}")
        bs = bs.find("backingStore")
    return "|".join(out)


class _JobStart:
    """``with``: the domain lock, QMP, the disk, no job on it, its chain."""

    def __init__(self, drv, uuid: str, disk: str, what: str):
        self.drv, self.uuid, self.disk, self.what = drv, uuid, disk, what
        self._run_cm = self._q_cm = None

    def __enter__(self):
        drv = self.drv
        self._run_cm = drv._running(self.uuid)
        run = self._run_cm.__enter__()
        try:
            self._q_cm = run.qmp(timeout=30)
            q = self._q_cm.__enter__()
            _live, el = drv._disk_of(self.uuid, self.disk)
            target = _target(el)
            job = drv._reconcile(run, q, el, target)
            if job is not None and job.get("status") not in ("completed", "failed", "cancelled"):
                raise OperationInvalid(f"Requested operation is not valid: disk '{target}' already in active "
                                       "block job", detail={"disk": target})
            if el.find("readonly") is not None:
                raise OperationInvalid(f"Requested operation is not valid: disk '{target}' is read-only")
            chain = drv._bj_chain(q, el)
            return run, q, el, target, chain
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(self, *exc):
        try:
            if self._q_cm is not None:
                self._q_cm.__exit__(*exc)
                self._q_cm = None
        finally:
            if self._run_cm is not None:
                cm, self._run_cm = self._run_cm, None
                cm.__exit__(*exc)
        return False
