"""Interfaces: ``netdev_add`` + ``device_add``, ``device_del`` + ``netdev_del``.

:func:`netdev_args` is the one place that says what backs an interface in
QEMU; a tap on a network's bridge (type network/bridge) plugs in there."""
from __future__ import annotations

from virtctl.errors import NotSupported, OperationFailed

NIC_MODELS = {"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e",
              "rtl8139": "rtl8139", "ne2k_pci": "ne2k_pci", "pcnet": "pcnet"}


def netdev_args(state, uuid: str, el, netdev_id: str) -> dict:
    """``netdev_add`` arguments for interface ``el``: user networking now;
    network and bridge need a tap made on the bridge (not wired yet)."""
    itype = el.get("type")
    if itype == "user":
        return {"type": "user", "id": netdev_id}
    if itype in ("network", "bridge"):
        raise NotSupported(f"this function is not supported by the connection driver: hotplug of "
                           f"<interface type='{itype}'> (a tap on the bridge) is not available yet; "
                           "use type 'user'", detail={"driver": "qemu", "feature": f"attach-interface {itype}"})
    raise NotSupported(f"this function is not supported by the connection driver: <interface type='{itype}'>",
                       detail={"driver": "qemu", "feature": f"attach-interface {itype}"})


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
