"""Domain network commands: domifaddr, domifstat."""
from __future__ import annotations

import click

from virtctl.cli.options import command, domain_arg, option, positional
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg

SOURCES = ("lease", "arp", "agent")


@command("domifaddr", help="""Show the IP addresses of a running domain's network interfaces.

--source lease (default): the DHCP leases of the networks the interfaces
are on (on qemu://, dnsmasq's lease file of a virtctl network); arp: the
host's ARP table; agent: the guest agent (not on qemu://).  libvirt's test
driver, and so virtctl's, answers the same fixed addresses for every source.

\b
JSON: {"domain", "interfaces": [{"name", "hwaddr", "addrs": [{"type", "addr", "prefix"}]}]}

\b
Examples:
  virtctl domifaddr web1
  virtctl domifaddr web1 --source arp --interface vnet0""")
@domain_arg(completer="domain:running")
@option("--interface", metavar="NAME", help="network interface name", completer="none", positional=True)
@click.option("--full", is_flag=True, help="always display names and MACs of interfaces")
@option("--source", metavar="SOURCE", help="address source: 'lease', 'arp' or 'agent'",
        completer="enum:lease|arp|agent")
@pass_session
def domifaddr(session, domain, interface, full, source):
    src = source or "lease"
    if src not in SOURCES:
        raise InvalidArg(f"Unknown data source '{src}'", detail={"source": src})
    dom = session.domain(domain)
    with session.context("Failed to query for interfaces addresses"):
        ifaces = dom.interface_addresses(src)
    if interface:
        ifaces = [i for i in ifaces if i.get("name") == interface]
    if session.json:
        session.emit({"domain": dom.name, "interfaces": ifaces})
        return
    lines = [f" {'Name':<10} {'MAC address':<20} {'Protocol':<8}     Address", "-" * 79]
    for i in ifaces:
        name, mac = i.get("name") or "-", i.get("hwaddr") or "-"
        if not i.get("addrs"):
            lines.append(f" {name:<10} {mac:<17}    {'N/A':<12} N/A")
        for j, a in enumerate(i.get("addrs") or []):
            shown = (name, mac) if j == 0 or full else ("-", "-")
            lines.append(f" {shown[0]:<10} {shown[1]:<17}    {a['type']:<12} {a['addr']}/{a['prefix']}")
    session.print("\n".join(lines) + "\n", end="")


_FIELDS = ("rx_bytes", "rx_packets", "rx_errs", "rx_drop", "tx_bytes", "tx_packets", "tx_errs", "tx_drop")


@command("domifstat", help="""Show a running domain's network interface counters.

INTERFACE is the interface's host device (target dev, e.g. vnet0) or its
MAC address.  The figures are the guest's view, as libvirt reports them:
rx is what the guest received (on qemu://, the tap device's tx counters
from /sys/class/net/TAP/statistics, and the other way round).

\b
JSON: {"domain", "interface", "rx_bytes", "rx_packets", "rx_errs", "rx_drop",
       "tx_bytes", "tx_packets", "tx_errs", "tx_drop"}

\b
Example:
  virtctl domifstat web1 vnet0""")
@domain_arg(completer="domain:running")
@positional("interface", help="interface device specified by name or MAC Address", completer="none")
@pass_session
def domifstat(session, domain, interface):
    dom = session.domain(domain)
    with session.context(f"Failed to get interface stats {domain} {interface}"):
        st = dom.interface_stats(interface)
    if session.json:
        session.emit({"domain": dom.name, "interface": interface, **st})
        return
    session.print("".join(f"{interface} {k} {st[k]}\n" for k in _FIELDS if k in st), end="")
