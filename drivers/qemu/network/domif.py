"""domifaddr and domifstat for the QEMU driver: addresses from the
networks' dnsmasq leases (``lease``) or the host's ARP table (``arp``),
counters from the tap device (``/sys/class/net/TAP/statistics``, swapped:
what the tap sends the guest receives, as libvirt reports them)."""
from __future__ import annotations

from virtctl.errors import InvalidArg, not_supported


def _ifaces(live_def):
    for el in live_def.root.findall("devices/interface") if live_def is not None else []:
        tgt, mac, src = el.find("target"), el.find("mac"), el.find("source")
        yield (el, tgt.get("dev") if tgt is not None else None,
               (mac.get("address") or "").lower() if mac is not None else None, src)


def _arp() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    try:
        with open("/proc/net/arp") as f:
            next(f, None)
            for line in f:
                w = line.split()
                if len(w) >= 4 and w[3] != "00:00:00:00:00:00":
                    out.setdefault(w[3].lower(), []).append(w[0])
    except OSError:
        pass
    return out


def addresses(state, live_def, source: str) -> list[dict]:
    if source == "agent":
        raise not_supported("qemu", "domifaddr --source agent (no guest agent channel)")
    if source not in ("lease", "arp"):
        raise InvalidArg(f"Unknown data source '{source}'")
    out = []
    if source == "arp":
        table = _arp()
        for _el, dev, mac, _src in _ifaces(live_def):
            addrs = [{"type": "ipv4", "addr": a, "prefix": 0} for a in table.get(mac or "", [])]
            if addrs:
                out.append({"name": dev, "hwaddr": mac, "addrs": addrs})
        return out
    from virtctl.drivers.qemu.network.driver import QemuNetworkDriver

    nets = QemuNetworkDriver(state)
    by_name = {r.name: r for r in nets.list() if r.active}
    for el, dev, mac, src in _ifaces(live_def):
        if el.get("type") != "network" or src is None or src.get("network") not in by_name:
            continue
        leases = nets.dhcp_leases(by_name[src.get("network")].uuid, mac=mac)
        addrs = [{"type": "ipv4", "addr": x["address"], "prefix": x["prefix"]} for x in leases]
        if addrs:
            out.append({"name": dev, "hwaddr": mac, "addrs": addrs})
    return out


def _active_networks(state):
    from virtctl.drivers.qemu.network.driver import QemuNetworkDriver

    nets = QemuNetworkDriver(state)
    return nets, {r.name: r for r in nets.list() if r.active}


def lease_hostname(state, live_def) -> str | None:
    """domhostname --source lease: the first hostname in the leases of the
    domain's network interfaces (by MAC), as libvirt's qemuDomainGetHostnameLease."""
    nets, by_name = _active_networks(state)
    for el, _dev, mac, src in _ifaces(live_def):
        if el.get("type") != "network" or src is None or src.get("network") not in by_name:
            continue
        for lease in nets.dhcp_leases(by_name[src.get("network")].uuid, mac=mac):
            if lease.get("hostname"):
                return lease["hostname"]
    return None


def agent_interfaces(entries: list) -> list[dict]:
    """guest-network-get-interfaces' answer as domifaddr's shape (``name``,
    ``hwaddr``, ``addrs``), an alias (``eth0:1``) merged into its interface,
    in the agent's order (libvirt's qemuAgentGetInterfaces)."""
    from virtctl.drivers.qemu.agent import malformed

    cmd = "guest-network-get-interfaces"
    out: list[dict] = []
    by_name: dict[str, dict] = {}
    for e in entries:
        name = e.get("name") if isinstance(e, dict) else None
        if not isinstance(name, str):
            raise malformed(cmd, "qemu agent didn't provide 'name' field")
        base = name.split(":", 1)[0]
        it = by_name.get(base)
        if it is None:
            hw = e.get("hardware-address")
            it = by_name[base] = {"name": base, "hwaddr": hw if isinstance(hw, str) else None, "addrs": []}
            out.append(it)
        for a in e.get("ip-addresses") or []:
            kind, addr, prefix = (a.get("ip-address-type"), a.get("ip-address"), a.get("prefix")) \
                if isinstance(a, dict) else (None, None, None)
            if not isinstance(kind, str):
                raise malformed(cmd, f"qemu agent didn't provide 'ip-address-type' field for interface '{name}'")
            if kind not in ("ipv4", "ipv6"):
                raise malformed(cmd, f"unknown ip address type '{kind}'")
            if not isinstance(addr, str):
                raise malformed(cmd, f"qemu agent didn't provide 'ip-address' field for interface '{name}'")
            if not isinstance(prefix, int) or isinstance(prefix, bool) or prefix < 0:
                raise malformed(cmd, "malformed 'prefix' field")
            it["addrs"].append({"type": kind, "addr": addr, "prefix": prefix})
    return out


# the guest's counter -> the tap's (what the tap sends, the guest receives)
GUEST_FROM_TAP = (("rx_bytes", "tx_bytes"), ("rx_packets", "tx_packets"), ("rx_errs", "tx_errors"),
                  ("rx_drop", "tx_dropped"), ("tx_bytes", "rx_bytes"), ("tx_packets", "rx_packets"),
                  ("tx_errs", "rx_errors"), ("tx_drop", "rx_dropped"))


def tap_counters(dev: str) -> dict[str, int] | None:
    """The guest's view of tap ``dev``'s counters (domifstat's names; domstats
    renames them), or None when the device is gone.  One reader for both
    commands: the swap is easy to get backwards twice."""
    out = {}
    for key, host in GUEST_FROM_TAP:
        try:
            with open(f"/sys/class/net/{dev}/statistics/{host}") as f:
                out[key] = int(f.read())
        except (OSError, ValueError):
            return None
    return out


def stats(live_def, device: str) -> dict:
    for _el, dev, mac, _src in _ifaces(live_def):
        if device in (dev, mac) or (mac and device.lower() == mac):
            break
    else:
        raise InvalidArg(f"invalid argument: '{device}' is not a known interface", detail={"device": device})
    if not dev:
        raise InvalidArg(f"invalid argument: interface '{device}' has no host device (user networking): no "
                         "statistics", detail={"device": device})
    out = tap_counters(dev)
    if out is None:
        raise InvalidArg(f"invalid argument: the tap device '{dev}' of '{device}' is gone")
    return out
