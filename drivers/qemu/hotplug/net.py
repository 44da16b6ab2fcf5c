"""Interfaces: ``netdev_add`` + ``device_add``, ``device_del`` + ``netdev_del``.

:func:`netdev_args` is the one place that says what backs an interface in
QEMU; a tap on a network's bridge (type network/bridge) plugs in there."""
from __future__ import annotations

from virtctl.errors import NotSupported, OperationFailed

NIC_MODELS = {"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e",
              "rtl8139": "rtl8139", "ne2k_pci": "ne2k_pci", "pcnet": "pcnet"}


def netdev_args(state, run, el, netdev_id: str) -> tuple[dict, str | None]:
    """``netdev_add`` arguments for interface ``el`` (of the new live
    definition), and the name of the tap virtctl must make for it (None: none).

    type network/bridge: ``el`` is resolved in place as at start (bridge, a
    MAC not used on it, as root a free tap name); the caller records the tap
    before making it (taps.create), so that a kill -9 leaves nothing behind
    that the next command or the guest's stop does not remove."""
    itype = el.get("type")
    if itype == "user":
        return {"type": "user", "id": netdev_id}, None
    if itype in ("network", "bridge"):
        from virtctl.drivers.qemu.network import resolve, taps

        root = el.getroottree().getroot()
        domain = (root.findtext("name") or run.uuid).strip()
        own = {(m.get("address") or "").lower() for i in root.findall("devices/interface") if i is not el
               for m in i.findall("mac")}
        resolve.resolve_interface(state, el, domain, run.uuid, seen_macs=own)
        return taps.netdev(el, netdev_id), (taps.target(el)[0] if taps.privileged() else None)
    raise NotSupported(f"this function is not supported by the connection driver: <interface type='{itype}'>",
                       detail={"driver": "qemu", "feature": f"attach-interface {itype}"})


def make_tap(state, run, el, tap: str) -> None:
    """Record the tap in the run's record (``taps``: removed when the guest
    stops), then make it on its bridge, owned by the QEMU user when confined."""
    from virtctl.drivers.qemu.network import hostnet, taps

    run.update(taps=[t for t in run.record.get("taps") or [] if t != tap] + [tap],
               netns=run.record.get("netns") or hostnet.netns_id())
    uid = (run.record.get("qemu_user") or {}).get("uid")
    root = el.getroottree().getroot()
    taps.create(state, el, (root.findtext("name") or run.uuid).strip(), uid=uid)


def drop_taps(rec: dict, names) -> list:
    """Remove the taps ``names`` (only tun/tap devices) and return the record's
    ``taps`` without them."""
    from virtctl.drivers.qemu.network import taps

    names = [n for n in names if n]
    for n in names:
        taps.remove(n)
    return [t for t in rec.get("taps") or [] if t not in names]


def free_index(live_root) -> int:
    used = set()
    for el in live_root.findall("devices/interface/alias"):
        name = el.get("name", "")
        if name.startswith("net") and name[3:].isdigit():
            used.add(int(name[3:]))
    n = 0
    while n in used:
        n += 1
    return n


def device_args(el, index: int) -> dict:
    m = el.find("model")
    model = m.get("type") if m is not None else "rtl8139"  # libvirt's x86 default
    if model not in NIC_MODELS:
        raise NotSupported(f"unsupported configuration: <model type='{model}'>",
                           detail={"driver": "qemu", "feature": f"interface model {model}"})
    dev = {"driver": NIC_MODELS[model], "netdev": f"hostnet{index}", "id": f"net{index}"}
    mac = el.find("mac")
    if mac is not None and mac.get("address"):
        dev["mac"] = mac.get("address")
    return dev


def netdev_of(alias: str) -> str:
    if not (alias.startswith("net") and alias[3:].isdigit()):
        raise OperationFailed(f"operation failed: interface alias '{alias}' is not one virtctl made")
    return f"host{alias}"
