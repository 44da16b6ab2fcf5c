"""CD-ROM and floppy media of a running domain: the new image is opened
(``blockdev-add``, checked as at start), then the tray opened
(``blockdev-open-tray``), the old medium removed, the new one inserted and
the tray closed; the old image's nodes are deleted last.  On a confined
QEMU the new image goes over QMP as descriptors (``add-fd``), and the old
medium's fd sets are removed with its nodes."""
from __future__ import annotations

from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import OperationFailed, VirtError
from virtctl.xml import devices


def change(state, run, new_live, old_el, *, force: bool) -> None:
    from virtctl.drivers.qemu.hotplug import plan
    from virtctl.drivers.qemu.hotplug.disk import _set_alias, _undo_nodes
    from virtctl.drivers.qemu.qmp import QMPError

    target = devices.disk_target(old_el)
    alias = devices.alias_of(old_el)
    if not alias:
        raise OperationFailed(f"operation failed: disk {target} has no alias in the live definition")
    live_el = devices.find_disk_target(new_live.root, target)
    inserting = devices.disk_source(live_el) is not None
    blockdevs: list[dict] = []
    conf = getattr(state, "confine", None)
    files = user = None
    if conf is not None and inserting:  # QEMU opens no host path: the image goes over QMP (add-fd)
        from virtctl.drivers.qemu.argv_files import HostFiles

        files, user = HostFiles(passed=True), conf.user(new_live)
    prefix = plan.node_prefix(alias) + f"-m{_generation(run)}"
    if inserting:
        annotated, blockdevs, _dev = plan.disk_objects(state, run.uuid, new_live, target, files=files, user=user)
        blockdevs = _renamed(blockdevs, plan.node_prefix(alias), prefix)  # not the old medium's names
        live_el.getparent().replace(live_el, annotated)
        live_el = annotated
    _set_alias(live_el, alias)
    with run.qmp() as q:
        added: list[str] = []
        try:
            old_top = plan.drive_of(q, alias)
            old_nodes = plan.chain_nodes(q, old_top) if old_top else []
            old_sets = _old_fdsets(q, old_el, alias) if conf is not None else []
            if files is not None:
                from virtctl.drivers.qemu.hotplug.disk import _pass_images

                blockdevs = plan.rewrite(blockdevs, _pass_images(q, files, user, prefix))
            for b in blockdevs:
                q.command("blockdev-add", b)
                added.append(b["node-name"])
            q.command("blockdev-open-tray", {"id": alias, "force": True if force else False})
            if old_top:
                try:
                    q.command("blockdev-remove-medium", {"id": alias})
                except QMPError:
                    if not force:
                        raise OperationFailed(f"operation failed: the guest keeps the tray of {target} locked "
                                              "(use --force)", detail={"target": target}) from None
                    raise
            if blockdevs:
                q.command("blockdev-insert-medium", {"id": alias, "node-name": blockdevs[-1]["node-name"]})
            q.command("blockdev-close-tray", {"id": alias})
        except (QMPError, OSError, VirtError) as exc:
            _undo_nodes(q, added)
            if files is not None:
                plan.remove_fdsets(q, plan.fdsets_of(q, prefix))
            if isinstance(exc, VirtError):
                raise
            raise rt.qmp_error(exc, f"change-media {target}") from None
        if not _undo_nodes(q, reversed(old_nodes)):
            plan.remove_fdsets(q, old_sets)  # the old medium's descriptors (confined QEMU)
    run.update(media_generation=_generation(run) + 1)


def _generation(run) -> int:
    return int(run.record.get("media_generation") or 0)


def _old_fdsets(q, old_el, alias: str) -> list[int]:
    """The fd sets holding the current medium of a confined QEMU's drive
    ``alias``: those virtctl added at an earlier change-media (``opaque``
    ``hp-ALIAS-mN:path``), or at start (``image:path`` of the chain)."""
    from virtctl.drivers.qemu.hotplug import plan

    paths = {s.get("file") or s.get("dev") for s in old_el.iter("source")} - {None}
    mine = plan.node_prefix(alias) + "-m"
    out = []
    for s in q.command("query-fdsets") or []:
        ops = [str(f.get("opaque", "")) for f in s.get("fds", [])]
        if any(o.startswith(mine) or (o.startswith("image:") and o[len("image:"):] in paths) for o in ops):
            out.append(s["fdset-id"])
    return out


def _renamed(obj, old: str, new: str):
    """Node names ``OLD-...`` (what plan.disk_objects gives) as ``NEW-...``."""
    if isinstance(obj, dict):
        return {k: _renamed(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renamed(v, old, new) for v in obj]
    if isinstance(obj, str) and obj.startswith(old + "-"):
        return new + obj[len(old):]
    return obj
