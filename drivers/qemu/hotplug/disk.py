"""Disks and interfaces in and out of a running QEMU.

Attach: the pending step goes into the runtime record first (``hotplug``),
then ``blockdev-add`` (or ``netdev_add``), ``device_add``; a refusal undoes
what was added; a kill -9 in between is finished by the next command
(repair.py).  Detach: ``device_del`` then the ``DEVICE_DELETED`` event
(the guest must let go: ACPI / PCIe hotplug), then ``blockdev-del`` (or
``netdev_del``); a guest that does not let go within the timeout leaves the
device attached, recorded as ``unplugs`` so that a later command finishes
the removal when it is gone."""
from __future__ import annotations

import os

from virtctl.drivers.qemu import faults
from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import NotSupported, OperationFailed, OperationTimeout
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
    if getattr(state, "confine", None) is not None:
        raise NotSupported("this function is not supported by the connection driver: disk hotplug on a "
                           "confined QEMU (qemu:///system) is not available yet",
                           detail={"driver": "qemu", "feature": "attach-disk confined"})
    annotated, blockdevs, dev = plan.disk_objects(state, run.uuid, new_live, target)
    with run.qmp() as q:
        try:
            pci.place(q, new_live, dev, annotated)
        except QMPError as exc:
            raise rt.qmp_error(exc, "attach-disk") from None
        _set_alias(annotated, dev["id"])
        live_el.getparent().replace(live_el, xmlapi.copy(annotated))
        nodes = [b["node-name"] for b in blockdevs]
        run.update(hotplug={"op": "attach", "id": dev["id"], "nodes": nodes,
                            "device": xmlapi.tostring(annotated)})
        added: list[str] = []
        try:
            for b in blockdevs:
                q.command("blockdev-add", b)
                added.append(b["node-name"])
            faults.killpoint("hotplug:blockdev-added")
            q.command("device_add", dev)
            faults.killpoint("hotplug:device-added")
        except (QMPError, OSError) as exc:
            _undo_nodes(q, added)
            run.update(hotplug=None)
            raise rt.qmp_error(exc, f"attach disk {target}") from None


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
    if removed.tag not in ("disk", "interface"):
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
    run.update(unplugs=others + ([{"id": alias, "nodes": left[::-1]}] if left else []) or None, **taps_left)


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
    if backend.get("netdev"):
        try:
            q.command("netdev_del", {"id": backend["netdev"]})
        except Exception:  # noqa: BLE001 - gone already
            pass
    if backend.get("tap"):  # after netdev_del: QEMU has let go of it
        from virtctl.drivers.qemu.network import taps

        taps.remove(backend["tap"])
    return left
