"""Disks and interfaces in and out of a running QEMU.

Attach: the pending step goes into the runtime record first (``hotplug``),
then ``blockdev-add`` (or ``netdev_add``), ``device_add``; a refusal undoes
what was added; a kill -9 in between is finished by the next command
(repair.py).  Detach: ``device_del`` then the ``DEVICE_DELETED`` event
(the guest must let go: ACPI / PCIe hotplug), then ``blockdev-del`` (or
``netdev_del``); a guest that does not let go within the timeout leaves the
device attached, recorded as ``unplugs`` so that a later command finishes
the removal when it is gone.

On a confined QEMU the images go over QMP as descriptors (``add-fd``, one fd
set per image, then ``blockdev-add`` of ``/dev/fdset/N``); the fd sets are
removed with the block nodes."""
from __future__ import annotations

import os

from virtctl.drivers.qemu import faults
from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import NotSupported, OperationFailed, OperationTimeout, VirtError
from virtctl.xml import devices, xmlapi

HOTPLUG_BUSES = ("virtio", "scsi", "usb")


def unplug_timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("VIRTCTL_UNPLUG_TIMEOUT", "10")))
    except ValueError:
        return 10.0


def _set_alias(el, name: str) -> None:
    for a in el.findall("alias"):
        el.remove(a)
    addr = el.find("address")
    xmlapi.sub(el, "alias", {"name": name}, index=list(el).index(addr) if addr is not None else None)


def _undo_nodes(q, names) -> list[str]:
    """Delete the block nodes ``names`` from the last to the first; returns
    those QEMU would not delete, in the order given."""
    left = []
    for n in reversed(list(names)):
        try:
            q.command("blockdev-del", {"node-name": n})
        except Exception as exc:  # noqa: BLE001 - best effort: the error that matters is raised by the caller
            if "find node" not in str(exc):  # one that is gone already is done
                left.append(n)
    return left[::-1]


def attach_disk(state, run, new_live, el) -> None:
    """Plug the disk ``el`` designates (already in ``new_live``) into QEMU;
    ``new_live``'s element gets its alias, address and resolved chain."""
    from virtctl.drivers.qemu.hotplug import pci, plan
    from virtctl.drivers.qemu.qmp import QMPError

    target = devices.disk_target(el)
    live_el = devices.find_disk_target(new_live.root, target)
    tgt = live_el.find("target")
    bus = tgt.get("bus") if tgt is not None else None
    if live_el.get("device", "disk") in devices.REMOVABLE or bus not in HOTPLUG_BUSES:
        raise NotSupported(f"unsupported configuration: disk bus '{bus}' cannot be hotplugged."
                           if live_el.get("device", "disk") not in devices.REMOVABLE else
                           f"unsupported configuration: a {live_el.get('device')} drive cannot be hotplugged "
                           "(define it with the domain; change-media changes its media)",
                           detail={"driver": "qemu", "feature": f"attach-disk bus {bus}"})
    conf = getattr(state, "confine", None)
    files = user = None
    if conf is not None:  # QEMU opens no host path: the images go over QMP as descriptors
        from virtctl.drivers.qemu.argv_files import HostFiles

        files, user = HostFiles(passed=True), conf.user(new_live)
    annotated, blockdevs, dev = plan.disk_objects(state, run.uuid, new_live, target, files=files, user=user)
    prefix = plan.node_prefix(dev["id"]) if dev is not None else None
    with run.qmp() as q:
        try:
            pci.place(q, new_live, dev, annotated)
        except QMPError as exc:
            raise rt.qmp_error(exc, "attach-disk") from None
        _set_alias(annotated, dev["id"])
        live_el.getparent().replace(live_el, xmlapi.copy(annotated))
        nodes = [b["node-name"] for b in blockdevs]
        run.update(hotplug={"op": "attach", "id": dev["id"], "nodes": nodes,
                            "fdsets": prefix if files is not None else None,
                            "device": xmlapi.tostring(annotated)})
        added: list[str] = []
        try:
            if files is not None:
                blockdevs = plan.rewrite(blockdevs, _pass_images(q, files, user, prefix))
                faults.killpoint("hotplug:fd-added")
            for b in blockdevs:
                q.command("blockdev-add", b)
                added.append(b["node-name"])
            faults.killpoint("hotplug:blockdev-added")
            q.command("device_add", dev)
            faults.killpoint("hotplug:device-added")
        except (QMPError, OSError, VirtError) as exc:
            _undo_nodes(q, added)
            if files is not None:
                plan.remove_fdsets(q, plan.fdsets_of(q, prefix))
            run.update(hotplug=None)
            if isinstance(exc, VirtError):
                raise
            raise rt.qmp_error(exc, f"attach disk {target}") from None


def _pass_images(q, files, user, prefix: str) -> dict:
    """Open the images a confined QEMU needs (checked as at start:
    handover.py) and give them to it with ``add-fd`` (SCM_RIGHTS), one new
    fd set per image, as libvirt does; returns ``{"/dev/fdset/S": "/dev/fdset/N"}``
    (the builder's set numbers -> QEMU's)."""
    from virtctl.drivers.qemu.handover import Handover

    images = [r for r in files.requests if r.kind == "image"]  # (the rest: the built-alone domain's own)
    mapping = {}
    h = Handover(user).open(images)
    try:
        for req in images:
            sid = None
            for number in req.fds:
                args = {"opaque": f"{prefix}:{req.path}"}
                if sid is not None:
                    args["fdset-id"] = sid
                sid = q.command("add-fd", args, fds=[h.fds[number]])["fdset-id"]
            mapping[f"/dev/fdset/{req.fdset}"] = f"/dev/fdset/{sid}"
    finally:
        h.close()  # QEMU has its own copies
    return mapping


def attach_interface(state, run, new_live, el) -> None:
    from virtctl.drivers.qemu.hotplug import net, pci
    from virtctl.drivers.qemu.qmp import QMPError

    live_el = devices.find_match(new_live.root, el)
    index = net.free_index(new_live.root)
    netdev, tap = net.netdev_args(state, run, live_el, f"hostnet{index}")
    dev = net.device_args(live_el, index)
    with run.qmp() as q:
        try:
            pci.place(q, new_live, dev, live_el)
        except QMPError as exc:
            raise rt.qmp_error(exc, "attach-interface") from None
        _set_alias(live_el, dev["id"])
        run.update(hotplug={"op": "attach", "id": dev["id"], "netdev": netdev["id"], "tap": tap,
                            "device": xmlapi.tostring(live_el)})
        added = False
        try:
            if tap:
                try:
                    net.make_tap(state, run, live_el, tap)
                except BaseException:
                    run.update(hotplug=None, taps=net.drop_taps(run.record, [tap]) or None)
                    raise
                faults.killpoint("hotplug:tap-made")
            q.command("netdev_add", netdev)
            added = True
            faults.killpoint("hotplug:netdev-added")
            q.command("device_add", dev)
        except (QMPError, OSError) as exc:
            if added:
                try:
                    q.command("netdev_del", {"id": netdev["id"]})
                except Exception:  # noqa: BLE001
                    pass
            run.update(hotplug=None, **({"taps": net.drop_taps(run.record, [tap]) or None} if tap else {}))
            raise rt.qmp_error(exc, "attach interface") from None


def detach(state, run, removed) -> None:
    """Unplug the device ``removed`` (the live definition's element, with
    its alias); returns once QEMU has deleted it and its backend."""
    from virtctl.drivers.qemu.hotplug import plan
    from virtctl.drivers.qemu.qmp import QMPError, QMPTimeout

    alias = devices.alias_of(removed)
    if removed.tag not in ("disk", "interface", "rng", "channel"):
        raise NotSupported(f"this function is not supported by the connection driver: live detach of <{removed.tag}>",
                           detail={"driver": "qemu", "feature": f"detach-device {removed.tag}"})
    if removed.tag == "disk" and removed.get("device", "disk") in devices.REMOVABLE:
        raise NotSupported(f"unsupported configuration: a {removed.get('device')} drive cannot be unplugged "
                           "(eject its media with change-media)",
                           detail={"driver": "qemu", "feature": "detach-disk cdrom"})
    if not alias:
        raise OperationFailed("operation failed: the device has no alias in the live definition")
    timeout = unplug_timeout()
    with run.qmp() as q:
        try:
            if removed.tag == "disk":
                top = plan.drive_of(q, alias)
                backend = {"nodes": plan.chain_nodes(q, top) if top else []}
                if getattr(state, "confine", None) is not None:
                    backend["fdsets"] = plan.node_prefix(alias)
            elif removed.tag in ("rng", "channel"):
                from virtctl.drivers.qemu.hotplug import chardev

                backend = chardev.backend_of(q, removed, alias)
                if removed.tag == "channel":
                    backend["socket"] = chardev.own_socket(state, run, removed, backend["chardev"])
            else:
                from virtctl.drivers.qemu.hotplug import net

                tap = removed.find("target")
                tap = tap.get("dev") if tap is not None else None
                backend = {"netdev": net.netdev_of(alias),
                           "tap": tap if tap in (run.record.get("taps") or []) else None}  # only one we made
            pending = list(run.record.get("unplugs") or [])
            pending = [p for p in pending if p.get("id") != alias] + [{"id": alias, **backend}]
            run.update(unplugs=pending)
            q.command("device_del", {"id": alias})
            q.wait_event("DEVICE_DELETED", timeout=timeout,
                         match=lambda ev: (ev.get("data") or {}).get("device") == alias)
        except QMPTimeout:
            raise OperationTimeout(
                f"the guest did not release device '{alias}' within {timeout:g} s: it stays attached "
                "(dumpxml shows it) and is removed from the definition when the guest lets it go",
                detail={"alias": alias, "timeout": timeout}) from None
        except (QMPError, OSError) as exc:
            run.update(unplugs=[p for p in run.record.get("unplugs") or [] if p.get("id") != alias])
            raise rt.qmp_error(exc, f"detach {devices.describe(removed)}") from None
        left = release(q, backend)
    others = [p for p in run.record.get("unplugs") or [] if p.get("id") != alias]
    taps_left = {"taps": [t for t in run.record.get("taps") or [] if t != backend["tap"]] or None} \
        if backend.get("tap") else {}
    if left and (backend.get("object") or backend.get("chardev")):  # the next command deletes it
        left_rec = {"id": alias, **{k: backend.get(k) for k in ("object", "chardev", "socket")}}
    else:
        left_rec = {"id": alias, "nodes": left[::-1], "fdsets": backend.get("fdsets")}
    run.update(unplugs=others + ([left_rec] if left else []) or None, **taps_left)


def release(q, backend: dict, settle: float = 3.0) -> list[str]:
    """Delete what backed a device QEMU has removed (its block nodes, its
    netdev); returns the block nodes still in use.

    QEMU lets go of a removed device's drive only when the device object is
    finalized, which may come after DEVICE_DELETED and after qom-list stops
    listing the device (RCU-deferred): "in use" is retried a short while, and
    what is still held is left for a later command (the ``unplugs`` record)."""
    import time

    left = _undo_nodes(q, reversed(backend.get("nodes") or []))
    deadline = time.monotonic() + settle
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _undo_nodes(q, left)
    if backend.get("fdsets") and not left:  # a confined QEMU's image descriptors, once no node uses them
        from virtctl.drivers.qemu.hotplug import plan

        plan.remove_fdsets(q, plan.fdsets_of(q, backend["fdsets"]))
    if backend.get("object") or backend.get("chardev"):
        from virtctl.drivers.qemu.hotplug import chardev

        if not chardev.release(q, backend, settle=settle):
            left.append(backend.get("object") or backend.get("chardev"))
    if backend.get("netdev"):
        try:
            q.command("netdev_del", {"id": backend["netdev"]})
        except Exception:  # noqa: BLE001 - gone already
            pass
    if backend.get("tap"):  # after netdev_del: QEMU has let go of it
        from virtctl.drivers.qemu.network import taps

        taps.remove(backend["tap"])
    return left
