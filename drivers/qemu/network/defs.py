"""A network definition of the QEMU driver: the validated XML and what
net-start needs from it (bridge, forward mode, IPv4 address, DHCP, DNS)."""
from __future__ import annotations

import ipaddress
import uuid as uuidlib

from virtctl.drivers.qemu.network.hostnet import check_ifname
from virtctl.errors import XMLError, not_supported

MODES = ("nat", "route", "open", "isolated")  # isolated: no <forward>


class DhcpHost:
    __slots__ = ("mac", "ip", "name")

    def __init__(self, mac, ip, name):
        self.mac, self.ip, self.name = mac, ip, name


class NetDef:
    """What one ``<network>`` says, checked."""

    def __init__(self, root):
        self.root = root
        self.name = root.findtext("name").strip()
        self.uuid = root.findtext("uuid").strip().lower()
        br = root.find("bridge")
        self.bridge = br.get("name") if br is not None else None
        fwd = root.find("forward")
        self.mode = "isolated" if fwd is None else fwd.get("mode", "nat")
        self.address = None  # ipaddress.IPv4Interface of the bridge
        self.ranges: list[tuple[str, str]] = []
        self.hosts: list[DhcpHost] = []
        self.dns_hosts: list[tuple[str, list[str]]] = []

    @property
    def subnet(self):
        return self.address.network if self.address is not None else None

    def xml(self) -> str:
        from virtctl.drivers.test.networks import _format

        return _format(self.root)


def parse(xml: str, source: str) -> NetDef:
    """Validate (schema), normalise as libvirt formats it, and check what
    the QEMU driver can build: XML_ERROR / NOT_SUPPORTED naming the part."""
    from virtctl.drivers.test.networks import _normalise, _parse

    root = _parse(xml, source)
    _normalise(root)
    d = NetDef(root)
    if d.mode not in MODES:
        raise not_supported("qemu", f"<forward mode='{d.mode}'> (the qemu driver builds nat, route, open "
                            "and isolated networks)", mode=d.mode)
    fwd = root.find("forward")
    if fwd is not None and (fwd.get("dev") or fwd.find("interface") is not None):
        raise not_supported("qemu", "<forward dev=...> (forwarding is not restricted to one interface)")
    if d.bridge is not None:
        check_ifname(d.bridge, "bridge")
    ips = root.findall("ip")
    for ip_el in ips:
        if ip_el.get("family", "ipv4") != "ipv4" or ":" in (ip_el.get("address") or ""):
            raise not_supported("qemu", "IPv6 addresses on a network")
    if len(ips) > 1:
        raise not_supported("qemu", "more than one <ip> on a network")
    if not ips and d.mode in ("nat", "route"):
        raise XMLError(f"{source}: a <forward mode='{d.mode}'> network needs an <ip address=... prefix=...>")
    if ips:
        el = ips[0]
        addr = el.get("address")
        prefix = el.get("prefix")
        if prefix is None and el.get("netmask"):
            try:
                prefix = str(ipaddress.IPv4Network(f"0.0.0.0/{el.get('netmask')}").prefixlen)
            except ValueError:
                raise XMLError(f"{source}: invalid netmask '{el.get('netmask')}'") from None
        try:
            d.address = ipaddress.IPv4Interface(f"{addr}/{prefix or 24}")
        except ValueError:
            raise XMLError(f"{source}: invalid <ip address='{addr}' prefix='{prefix}'>") from None
        net = d.address.network
        if d.address.ip in (net.network_address, net.broadcast_address) and net.prefixlen < 31:
            raise XMLError(f"{source}: <ip address='{addr}'> is the network's own or broadcast address")
        for r in el.findall("dhcp/range"):
            s, e = r.get("start"), r.get("end")
            try:
                a, b = ipaddress.IPv4Address(s), ipaddress.IPv4Address(e)
            except ValueError:
                raise XMLError(f"{source}: invalid DHCP range '{s}' - '{e}'") from None
            if a not in net or b not in net:
                raise XMLError(f"{source}: DHCP range '{s}' - '{e}' is not entirely within the network {net}",
                               detail={"start": s, "end": e, "subnet": str(net)})
            if a > b:
                raise XMLError(f"{source}: DHCP range '{s}' - '{e}': the start is after the end")
            d.ranges.append((s, e))
        for h in el.findall("dhcp/host"):
            hip = h.get("ip")
            if hip is not None:
                try:
                    ok = ipaddress.IPv4Address(hip) in net
                except ValueError:
                    ok = False
                if not ok:
                    raise XMLError(f"{source}: DHCP host address '{hip}' is not in the network {net}")
            d.hosts.append(DhcpHost(h.get("mac"), hip, h.get("name")))
    for h in root.findall("dns/host"):
        names = [(n.text or "").strip() for n in h.findall("hostname") if (n.text or "").strip()]
        if h.get("ip") and names:
            d.dns_hosts.append((h.get("ip"), names))
    return d


def new_uuid() -> str:
    return str(uuidlib.uuid4())
