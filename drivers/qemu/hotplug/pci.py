"""A free PCI slot for a hotplugged device: on q35 a pcie-root-port with
nothing behind it (the root complex itself has no hotplug), on pc a free
slot of the root bus.  A clear error when there is none."""
from __future__ import annotations

from virtctl.errors import OperationFailed
from virtctl.xml import xmlapi


def family(definition) -> str:
    t = definition.root.find("os/type")
    machine = (t.get("machine") if t is not None else None) or "pc"
    return "q35" if "q35" in machine else "pc"


def place(q, definition, dev: dict, el) -> None:
    """Give ``dev`` (device_add arguments) a bus and slot unless its element
    has an address already; write the address into ``el`` (the live definition's)."""
    if "bus" in dev or not str(dev.get("driver", "")).endswith("-pci") and \
            dev.get("driver") not in ("e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet"):
        return
    busses = q.command("query-pci") or []
    if family(definition) == "q35":
        ports = {}
        for c in definition.root.findall("devices/controller[@type='pci']"):
            if c.get("model") == "pcie-root-port" and c.get("index"):
                ports[f"pci.{c.get('index')}"] = int(c.get("index"))
        used = set()
        for b in busses:
            for d in b.get("devices", []):
                br = d.get("pci_bridge")
                if d.get("qdev_id") in ports and br and br.get("devices"):
                    used.add(d["qdev_id"])
        for pending in definition.root.findall("devices/*/address[@type='pci']"):
            idx = int(pending.get("bus", "0"), 0)
            used.update(k for k, v in ports.items() if v == idx)
        free = sorted((v, k) for k, v in ports.items() if k not in used)
        if not free:
            raise OperationFailed(
                "no free PCI slot for hotplug: every pcie-root-port of the domain is in use (q35's root "
                "complex has no hotplug); add <controller type='pci' model='pcie-root-port'/> to the "
                "definition (effective at the next start) or detach a device",
                detail={"machine": "q35", "root_ports": len(ports)})
        index, bus = free[0]
        dev["bus"], dev["addr"] = bus, "0x0"
        _address(el, index, 0)
        return
    root = next((b for b in busses if b.get("bus") == 0), {"devices": []})
    taken = {d.get("slot") for d in root.get("devices", [])} | {0, 1}
    for a in definition.root.findall("devices/*/address[@type='pci']"):
        if int(a.get("bus", "0"), 0) == 0:
            taken.add(int(a.get("slot", "0"), 0))
    free = [s for s in range(2, 32) if s not in taken]
    if not free:
        raise OperationFailed("no free PCI slot for hotplug: all 32 slots of the pc machine's root bus "
                              "are in use; detach a device first", detail={"machine": "pc"})
    dev["bus"], dev["addr"] = "pci.0", f"{free[0]:#x}"
    _address(el, 0, free[0])


def _address(el, bus: int, slot: int) -> None:
    for a in el.findall("address"):
        el.remove(a)
    xmlapi.sub(el, "address", {"type": "pci", "domain": "0x0000", "bus": f"0x{bus:02x}",
                               "slot": f"0x{slot:02x}", "function": "0x0"})


SPARE_ROOT_PORTS = 4


def add_spare_root_ports(definition, count: int = SPARE_ROOT_PORTS) -> None:
    """A q35 definition without PCI controllers gets ``count`` pcie-root-ports
    (what virt-install and libvirt's defaults give), so that devices can be
    hotplugged into it out of the box: q35's root complex has no hotplug."""
    if family(definition) != "q35":
        return
    ctrls = definition.root.findall("devices/controller[@type='pci']")
    if any(c.get("index") not in (None, "0") for c in ctrls):
        return
    devs = definition.devices
    if not ctrls:
        xmlapi.sub(devs, "controller", {"type": "pci", "index": "0", "model": "pcie-root"})
    for i in range(1, count + 1):
        xmlapi.sub(devs, "controller", {"type": "pci", "index": str(i), "model": "pcie-root-port"})
    definition._order_devices()
