"""The domain side of networking on a libvirt connection (domifaddr,
domifstat, domif-setlink): a mixin of domains.LibvirtDomainDriver, which
gives ``self.lv``, ``self.conn`` and ``self._dom(uuid)``."""
from __future__ import annotations

from virtctl.drivers.libvirt.errors import mapped

_SOURCES = {"lease": "LEASE", "agent": "AGENT", "arp": "ARP"}
_STATS = ("rx_bytes", "rx_packets", "rx_errs", "rx_drop", "tx_bytes", "tx_packets", "tx_errs", "tx_drop")


class DomainNetMixin:
    def interface_addresses(self, uuid: str, source: str = "lease") -> list[dict]:
        from virtctl.errors import InvalidArg

        lv = self.lv
        if source not in _SOURCES:
            raise InvalidArg(f"invalid argument: unknown data source '{source}'", detail={"source": source})
        d = self._dom(uuid)
        with mapped(lv):
            ifaces = d.interfaceAddresses(getattr(lv, "VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_" + _SOURCES[source]), 0)
        out = []
        for name, info in (ifaces or {}).items():
            addrs = [{"type": "ipv6" if a.get("type") == lv.VIR_IP_ADDR_TYPE_IPV6 else "ipv4",
                      "addr": a.get("addr"), "prefix": a.get("prefix")} for a in info.get("addrs") or []]
            out.append({"name": name, "hwaddr": info.get("hwaddr"), "addrs": addrs})
        return out

    def interface_stats(self, uuid: str, device: str) -> dict:
        d = self._dom(uuid)
        with mapped(self.lv):
            figures = d.interfaceStats(device)
        # libvirt reports -1 for a figure it does not have; virsh leaves those out
        return {k: v for k, v in zip(_STATS, figures) if v >= 0}

    def set_interface_link(self, uuid: str, interface: str, state: str, *, config: bool) -> None:
        """As virsh's domif-setlink: the interface's XML with ``<link state>``
        set, through virDomainUpdateDeviceFlags (the persistent definition
        with ``config`` or when the domain is not running, else the live one)."""
        from virtctl.errors import InvalidArg
        from virtctl.xml import iflink, xmlapi

        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            if not d.isActive():
                config = True
            xml = d.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE if config else 0)
        found = iflink.find(xmlapi.parse(xml, "<libvirt>"), interface)
        if found is None:
            raise InvalidArg(f"interface '{interface}' not found", detail={"interface": interface})
        el = found[1]
        iflink.set_state(el, state)
        with mapped(lv):
            d.updateDeviceFlags(xmlapi.tostring(el),
                                lv.VIR_DOMAIN_AFFECT_CONFIG if config else lv.VIR_DOMAIN_AFFECT_LIVE)
