"""What a hotplug command killed half-way left, finished by the next command
(runtime.sync calls :func:`finish` under the domain lock):

* ``hotplug`` (an attach under way): if QEMU has the device, the attach
  happened and the device goes into the live definition; else the block
  nodes (or netdev, or an rng's object, a channel's chardev) added for it
  are deleted — neither is left half done;
* ``unplugs`` (a detach waiting for the guest): a device QEMU no longer has
  leaves the live definition and its block nodes (or netdev) are deleted; one
  it still has stays recorded."""
from __future__ import annotations

from virtctl.drivers.qemu.state import atomic_write, read_bytes


def _peripherals(q) -> set[str]:
    return {p.get("name") for p in q.command("qom-list", {"path": "/machine/peripheral"}) or []}


def finish(state, uuid: str, rec: dict) -> dict:
    from virtctl.drivers.qemu import runtime as rt
    from virtctl.drivers.qemu.hotplug.disk import _undo_nodes, release
    from virtctl.drivers.qemu.qmp import QMPError
    from virtctl.errors import VirtError
    from virtctl.xml import devices

    pending = rec.get("hotplug")
    unplugs = list(rec.get("unplugs") or [])
    try:
        with rt.connect_qmp(rec, timeout=10.0) as q:
            present = _peripherals(q)
            live = _load_live(state, uuid)
            changed = False
            gone_taps: list = []
            if pending:
                if pending.get("id") in present:
                    if live is not None and devices.find_alias(live.root, pending["id"]) is None:
                        live.devices.append(devices.parse_device(pending["device"]))
                        live._order_devices()
                        live._order_disks()
                        changed = True
                else:
                    _undo_nodes(q, pending.get("nodes") or [])
                    if pending.get("fdsets"):  # a confined QEMU's image descriptors (add-fd)
                        from virtctl.drivers.qemu.hotplug import plan

                        plan.remove_fdsets(q, plan.fdsets_of(q, pending["fdsets"]))
                    if pending.get("object") or pending.get("chardev"):
                        from virtctl.drivers.qemu.hotplug import chardev

                        chardev.release(q, {k: pending.get(k) for k in ("object", "chardev", "socket")},
                                        settle=1.0)
                    if pending.get("netdev") or pending.get("tap"):
                        release(q, {"netdev": pending.get("netdev"), "tap": pending.get("tap")})
                        gone_taps.append(pending.get("tap"))
            still = []
            for u in unplugs:
                if u.get("id") in present:
                    still.append(u)
                    continue
                left = release(q, u)
                gone_taps.append(u.get("tap"))
                if left:  # QEMU still holds them: the next command deletes them
                    if u.get("object") or u.get("chardev"):
                        still.append({k: u.get(k) for k in ("id", "object", "chardev", "socket")})
                    else:
                        still.append({"id": u["id"], "nodes": left[::-1], "fdsets": u.get("fdsets")})
                el = devices.find_alias(live.root, u["id"]) if live is not None else None
                if el is not None:
                    el.getparent().remove(el)
                    changed = True
            if changed and live is not None:
                atomic_write(state.live_xml(uuid), live.to_xml(), sync=False)
    except (QMPError, OSError, VirtError):
        return rec  # QEMU does not answer: the next command tries again
    taps = {"taps": [t for t in rec.get("taps") or [] if t not in gone_taps] or None} if any(gone_taps) else {}
    return rt.update_record(state, uuid, rec, hotplug=None, unplugs=still or None, **taps)


def _load_live(state, uuid: str):
    from virtctl.xml.domain import DomainDef

    data = read_bytes(state.live_xml(uuid))
    return DomainDef.parse(data, source=state.live_xml(uuid), validate=False) if data is not None else None
