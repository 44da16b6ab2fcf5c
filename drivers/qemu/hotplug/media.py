"""CD-ROM and floppy media of a running domain: the new image is opened
(``blockdev-add``, checked as at start), then the tray opened
(``blockdev-open-tray``), the old medium removed, the new one inserted and
the tray closed; the old image's nodes are deleted last."""
from __future__ import annotations

from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import OperationFailed
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
    if inserting:
        annotated, blockdevs, _dev = plan.disk_objects(state, run.uuid, new_live, target)
        blockdevs = plan._rename(blockdevs, plan.node_prefix(alias) + f"-m{_generation(run)}")
        live_el.getparent().replace(live_el, annotated)
        live_el = annotated
    _set_alias(live_el, alias)
    with run.qmp() as q:
        added: list[str] = []
        try:
            old_top = plan.drive_of(q, alias)
            old_nodes = plan.chain_nodes(q, old_top) if old_top else []
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
        except (QMPError, OSError) as exc:
            _undo_nodes(q, added)
            raise rt.qmp_error(exc, f"change-media {target}") from None
        _undo_nodes(q, reversed(old_nodes))
    run.update(media_generation=_generation(run) + 1)


def _generation(run) -> int:
    return int(run.record.get("media_generation") or 0)
