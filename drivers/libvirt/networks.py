"""Network operations on a libvirt connection (base.NetworkDriver onto
virNetwork*), errors through errors.TABLE."""
from __future__ import annotations

from virtctl.api.network import NetworkRecord
from virtctl.drivers.base import NetworkDriver
from virtctl.drivers.libvirt.errors import mapped

# virsh's net-update command names -> libvirt's VIR_NETWORK_UPDATE_COMMAND_* (virsh: add = add-last)
_COMMANDS = {"add": "ADD_LAST", "add-last": "ADD_LAST", "add-first": "ADD_FIRST", "delete": "DELETE",
             "modify": "MODIFY"}
# virsh's section names (virNetworkSection's, lower case with dashes)
_SECTIONS = ("none", "bridge", "domain", "ip", "ip-dhcp-host", "ip-dhcp-range", "forward",
             "forward-interface", "forward-pf", "portgroup", "dns-host", "dns-txt", "dns-srv")


def _bridge(xml: str) -> str | None:
    from virtctl.xml import xmlapi

    try:
        br = xmlapi.parse(xml, "<libvirt>").find("bridge")
    except Exception:  # libvirt's own XML: never expected, but a record must not fail on it
        return None
    return br.get("name") if br is not None else None


class LibvirtNetworkDriver(NetworkDriver):
    driver_name = "libvirt"

    def __init__(self, lv, conn):
        self.lv, self.conn = lv, conn

    def _net(self, uuid: str):
        with mapped(self.lv):
            return self.conn.networkLookupByUUIDString(uuid)

    def _record(self, n) -> NetworkRecord:
        with mapped(self.lv):
            persistent = bool(n.isPersistent())
            return NetworkRecord(uuid=n.UUIDString(), name=n.name(), active=bool(n.isActive()),
                                 persistent=persistent, autostart=bool(n.autostart()) if persistent else False,
                                 bridge=_bridge(n.XMLDesc(0)))

    def list(self) -> list[NetworkRecord]:
        with mapped(self.lv):
            nets = self.conn.listAllNetworks(0)
        out = []
        for n in nets:
            try:
                out.append(self._record(n))
            except Exception as exc:  # one that went away between the two calls is gone
                if getattr(exc, "code", None) != "NO_NETWORK":
                    raise
        return sorted(out, key=lambda r: r.name)

    def get(self, uuid: str) -> NetworkRecord:
        return self._record(self._net(uuid))

    def get_xml(self, uuid: str, *, inactive: bool = False) -> str:
        n = self._net(uuid)
        with mapped(self.lv):
            return n.XMLDesc(self.lv.VIR_NETWORK_XML_INACTIVE if inactive else 0)

    def define(self, xml: str, *, source: str = "<input>") -> NetworkRecord:
        with mapped(self.lv):
            return self._record(self.conn.networkDefineXML(xml))

    def create_xml(self, xml: str, *, source: str = "<input>") -> NetworkRecord:
        with mapped(self.lv):
            return self._record(self.conn.networkCreateXML(xml))

    def undefine(self, uuid: str) -> None:
        n = self._net(uuid)
        with mapped(self.lv):
            n.undefine()

    def start(self, uuid: str) -> None:
        n = self._net(uuid)
        with mapped(self.lv):
            n.create()

    def destroy(self, uuid: str, *, force: bool = False) -> None:
        # libvirt has no "in use" check to skip: force changes nothing here
        n = self._net(uuid)
        with mapped(self.lv):
            n.destroy()

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        n = self._net(uuid)
        with mapped(self.lv):
            n.setAutostart(1 if enabled else 0)

    def dhcp_leases(self, uuid: str, *, mac: str | None = None) -> list[dict]:
        import time

        lv, n = self.lv, self._net(uuid)
        with mapped(lv):
            leases = n.DHCPLeases(mac, 0)
        out = []
        for lease in leases:
            ts = lease.get("expirytime") or 0
            out.append({"expiry": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "never",
                        "mac": lease.get("mac"),
                        "protocol": "ipv6" if lease.get("type") == lv.VIR_IP_ADDR_TYPE_IPV6 else "ipv4",
                        "address": lease.get("ipaddr"), "prefix": lease.get("prefix"),
                        "hostname": lease.get("hostname") or None, "client_id": lease.get("clientid") or None})
        return out

    def update(self, uuid: str, command: str, section: str, xml: str, *, parent_index: int | None = None,
               live: bool = False, config: bool = False) -> None:
        from virtctl.errors import InvalidArg

        lv = self.lv
        if command not in _COMMANDS:
            raise InvalidArg(f"unrecognized command name '{command}'", detail={"command": command})
        if section not in _SECTIONS:
            raise InvalidArg(f"unrecognized section name '{section}'", detail={"section": section})
        cmd = getattr(lv, "VIR_NETWORK_UPDATE_COMMAND_" + _COMMANDS[command])
        sec = getattr(lv, "VIR_NETWORK_SECTION_" + section.replace("-", "_").upper())
        flags = 0
        if live:
            flags |= lv.VIR_NETWORK_UPDATE_AFFECT_LIVE
        if config:
            flags |= lv.VIR_NETWORK_UPDATE_AFFECT_CONFIG
        n = self._net(uuid)
        with mapped(lv):
            n.update(cmd, sec, -1 if parent_index is None else parent_index, xml, flags)
