"""``<interface type='network'|'bridge'>`` at domain start: the live
definition gets the bridge (``<source network='N' bridge='B'/>``), a MAC
(52:54:00:xx:xx:xx when none is given) and, as root, the tap name
(``<target dev='vnetN'/>``: the first free, or the one given)."""
from __future__ import annotations

import secrets

from virtctl.drivers.qemu.network import hostnet, taps
from virtctl.errors import NoNetwork, OperationFailed, OperationInvalid


def has_network_interfaces(definition) -> bool:
    return any(i.get("type") in ("network", "bridge") for i in definition.root.findall("devices/interface"))


def _bridge_of(state, el, domain: str) -> str:
    src = el.find("source")
    if el.get("type") == "bridge":
        br = src.get("bridge") if src is not None else None
        if not br:
            raise OperationFailed(f"domain '{domain}': <interface type='bridge'> needs <source bridge=...>")
        if not hostnet.is_bridge(br):
            raise OperationFailed(f"domain '{domain}': '{br}' is not a bridge on this host", detail={"bridge": br})
        return br
    name = src.get("network") if src is not None else None
    if not name:
        raise OperationFailed(f"domain '{domain}': <interface type='network'> needs <source network=...>")
    from virtctl.drivers.qemu.network.driver import QemuNetworkDriver

    drv = QemuNetworkDriver(state)
    bridges = drv.active_bridges()
    if name not in bridges:
        if not any(d.name == name for d, _ in drv._defs().values()):
            raise NoNetwork(f"Network not found: no network with matching name '{name}'", detail={"network": name})
        raise OperationInvalid(f"Requested operation is not valid: network '{name}' is not active",
                               detail={"network": name})
    return bridges[name]


def running_macs(state, bridge: str, skip_uuid: str | None = None) -> dict[str, str]:
    """mac -> domain name, for the running domains' interfaces on ``bridge``."""
    from virtctl.drivers.qemu.domains import QemuDomainDriver

    out = {}
    doms = QemuDomainDriver(state)
    for rec, root in _live_roots(doms):
        if rec.uuid == skip_uuid:
            continue
        for i in root.findall("devices/interface"):
            src, mac = i.find("source"), i.find("mac")
            if src is not None and mac is not None and src.get("bridge") == bridge:
                out[(mac.get("address") or "").lower()] = rec.name
    return out


def _live_roots(doms):
    from virtctl.xml import xmlapi

    for rec in doms.list():
        if not rec.active:
            continue
        try:
            yield rec, xmlapi.parse(doms.get_xml(rec.uuid))
        except Exception:  # noqa: BLE001 - a domain that just went away uses nothing
            continue


def network_users(doms, name: str, bridge: str | None) -> list[str]:
    users = []
    for rec, root in _live_roots(doms):
        for i in root.findall("devices/interface"):
            src = i.find("source")
            if src is None:
                continue
            if (i.get("type") == "network" and src.get("network") == name) or (bridge and src.get("bridge") == bridge):
                users.append(rec.name)
                break
    return users


def resolve(state, definition):
    """``definition`` itself when no interface needs a bridge, else a live copy."""
    if not has_network_interfaces(definition):
        return definition
    live = definition.copy()
    root = live.root
    domain = (root.findtext("name") or "?").strip()
    uuid = (root.findtext("uuid") or "").strip().lower() or None
    taken = set(hostnet.links())
    seen_macs: set[str] = set()
    for el in root.findall("devices/interface"):
        if el.get("type") in ("network", "bridge"):
            resolve_interface(state, el, domain, uuid, taken, seen_macs)
    return live


def resolve_interface(state, el, domain: str, uuid: str | None, taken: set[str] | None = None,
                      seen_macs: set[str] | None = None) -> None:
    """Resolve one ``<interface type='network'|'bridge'>`` in place (at start,
    and for hotplug): its bridge, a MAC not used on that bridge, and as root
    a free tap name (``taken``: the host's links, and names given out already)."""
    from virtctl.xml import xmlapi

    taken = set(hostnet.links()) if taken is None else taken
    seen_macs = set() if seen_macs is None else seen_macs
    br = _bridge_of(state, el, domain)
    src = el.find("source")
    src.set("bridge", br)
    mac_el = el.find("mac")
    if mac_el is None:
        mac_el = xmlapi.element("mac", {"address": "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))})
        el.insert(0, mac_el)
    mac = (mac_el.get("address") or "").lower()
    others = running_macs(state, br, skip_uuid=uuid)
    if mac in others or mac in seen_macs:
        who = others.get(mac, domain)
        raise OperationFailed(f"domain '{domain}': the MAC address {mac} is already used on the bridge '{br}' "
                              f"by domain '{who}'", detail={"mac": mac, "domain": who, "bridge": br})
    seen_macs.add(mac)
    if not taps.privileged():
        taps.bridge_helper(br)  # the clear error now, before QEMU
        return
    tgt = el.find("target")
    dev = tgt.get("dev") if tgt is not None else None
    if dev:
        hostnet.check_ifname(dev, "tap device")
        if dev in taken:
            raise OperationFailed(f"domain '{domain}': the tap device '{dev}' already exists",
                                  detail={"dev": dev})
    else:
        n = 0
        while f"vnet{n}" in taken:
            n += 1
        dev = f"vnet{n}"
        if tgt is None:  # libvirt's place: right after <source>
            tgt = xmlapi.element("target", {})
            el.insert(list(el).index(src) + 1, tgt)
    tgt.set("dev", dev)
    taken.add(dev)
