"""External disk-only snapshots: each disk gets a new qcow2 overlay (backing
file: the image it had, ``-F`` its format) which becomes its source.

Running: ``qemu-img create -u`` (the running image is not opened again;
the size is QEMU's), ``blockdev-add`` of the overlay's file and format nodes
(``backing: null``), then one ``transaction`` of ``blockdev-snapshot``
actions (all the disks or none); the nodes and files are removed again if
it fails.  Shut off: ``qemu-img create`` only.  Either way the definitions
are switched after: the persistent one names the overlay (its chain is
completed from the images at the next start, backing.py), the live one
shows the chain as ``<backingStore>``.
"""
from __future__ import annotations

import os
import secrets

from virtctl.errors import OperationFailed


def create_overlay(overlay: str, backing: str, fmt: str, size: int | None) -> None:
    from virtctl.drivers.qemu import qemu_img

    args = ["create", "-q", "-f", "qcow2", "-b", backing, "-F", fmt]
    if size is not None:
        args.append("-u")
    args += ["--", overlay] + ([str(size)] if size is not None else [])
    qemu_img.run(args, what=f"create the overlay '{overlay}'")


def check_new(overlay: str, target: str, reuse: bool) -> None:
    if os.path.lexists(overlay) and not reuse:
        raise OperationFailed(f"operation failed: external snapshot file for disk {target} already exists "
                              f"and is not a block device: {overlay}", detail={"disk": target, "path": overlay})
    if not os.path.isdir(os.path.dirname(overlay) or "."):
        raise OperationFailed(f"operation failed: cannot create external snapshot file for disk {target}: "
                              f"no directory '{os.path.dirname(overlay)}'", detail={"disk": target})


def node_names() -> tuple[str, str]:
    tag = secrets.token_hex(4)
    return f"snap-{tag}-storage", f"snap-{tag}-format"


def live_snapshot(q, disks: list, nodes: dict) -> None:
    """``disks``: DiskPlans (external) with ``overlay`` made; ``nodes``: image
    path -> block_nodes() entry.  All disks switch, or none."""
    from virtctl.drivers.qemu import runtime as rt
    from virtctl.drivers.qemu.qmp import QMPError

    added, actions = [], []
    try:
        for d in disks:
            cur = nodes.get(d.path)
            if cur is None:
                raise OperationFailed(f"operation failed: QEMU does not have disk {d.target} ('{d.path}') open")
            storage, fmt = d.new_nodes
            q.command("blockdev-add", {"driver": "file", "filename": d.overlay, "node-name": storage})
            added.append(storage)
            q.command("blockdev-add", {"driver": "qcow2", "file": storage, "node-name": fmt, "backing": None})
            added.append(fmt)
            actions.append({"type": "blockdev-snapshot", "data": {"node": cur["node"], "overlay": fmt}})
        q.command("transaction", {"actions": actions})
    except (QMPError, OSError, OperationFailed) as exc:
        for node in reversed(added):
            try:
                q.command("blockdev-del", {"node-name": node})
            except (QMPError, OSError):
                pass
        if isinstance(exc, OperationFailed):
            raise
        raise rt.qmp_error(exc, "external snapshot") from None


def switch_live(el, overlay: str) -> None:
    """The live <disk>: the overlay on top, the old source (and its chain) under it."""
    from virtctl.xml import xmlapi

    src, drv = el.find("source"), el.find("driver")
    old_path = src.get("file")
    old_fmt = (drv.get("type") if drv is not None else None) or "raw"
    old_bs = el.find("backingStore")
    bs = xmlapi.element("backingStore", {"type": "file"})
    xmlapi.sub(bs, "format", {"type": old_fmt})
    xmlapi.sub(bs, "source", {"file": old_path})
    if old_bs is not None:
        el.remove(old_bs)
        bs.append(old_bs)
    else:
        xmlapi.sub(bs, "backingStore")
    src.addnext(bs)
    src.set("file", overlay)
    _set_qcow2(el)


def switch_config(el, overlay: str) -> None:
    """The persistent <disk>: the overlay is its source (chain read from the images at start)."""
    el.find("source").set("file", overlay)
    bs = el.find("backingStore")
    if bs is not None:
        el.remove(bs)
    _set_qcow2(el)


def _set_qcow2(el) -> None:
    from virtctl.xml import xmlapi

    drv = el.find("driver")
    if drv is None:
        drv = xmlapi.element("driver", {"name": "qemu"})
        el.insert(0, drv)
    drv.set("type", "qcow2")


def disk_el(definition, target: str):
    for el in definition.root.findall("devices/disk"):
        t = el.find("target")
        if t is not None and t.get("dev") == target:
            return el
    return None
