"""Network commands (virsh's "Networking" group): net-list, net-info,
net-dumpxml, net-define, net-create, net-undefine, net-start, net-destroy,
net-autostart, net-edit, net-uuid, net-name, net-dhcp-leases, net-update,
and virtctl's own net-create-as."""
from __future__ import annotations

import click

from virtctl.cli import output
from virtctl.cli.options import command, mutually_exclusive, option, positional
from virtctl.cli.session import pass_session


def network_arg(completer: str = "network:all", help: str = "network name or uuid"):
    return positional("network", help=help, completer=completer)


def _lookup(session, key: str, *, by_uuid: bool = True, by_name: bool = True):
    """The network ``key`` names, with virsh's first error line."""
    session.value("network", key)
    with session.context(f"failed to get network '{key}'"):
        return session.conn.lookup_network(key, by_uuid=by_uuid, by_name=by_name)


def _done(session, net, message: str, action: str, **data) -> None:
    """virsh's message, or ``{"network", "uuid", "action", ..., "result": "ok"}``."""
    if session.json:
        session.out.write(output.to_json({"network": net.name, "uuid": net.uuid, "action": action,
                                          **data, "result": "ok"}))
    else:
        session.extra(message.format(name=net.name, **data))


def _tri(yes: bool, no: bool) -> bool | None:
    """A yes/no filter pair: None (either) when both or neither are given."""
    return yes if yes != no else None


@command("net-list", help="""List networks (active ones unless --all or --inactive).

Filters of one kind add up (--persistent --transient lists both); filters of
different kinds must all hold.

\b
JSON: {"networks": [{"name", "uuid", "active", "persistent", "autostart", "bridge"}]}

\b
Examples:
  virtctl net-list --all
  virtctl net-list --inactive --name
  virtctl --json net-list --all --autostart""")
@click.option("--inactive", is_flag=True, help="list inactive networks")
@click.option("--all", "all_", is_flag=True, help="list inactive and active networks")
@click.option("--persistent", is_flag=True, help="list persistent networks")
@click.option("--transient", is_flag=True, help="list transient networks")
@click.option("--autostart", is_flag=True, help="list networks with autostart enabled")
@click.option("--no-autostart", is_flag=True, help="list networks with autostart disabled")
@click.option("--uuid", is_flag=True, help="list uuid's only")
@click.option("--name", is_flag=True, help="list network names only")
@click.option("--table", is_flag=True, help="list table (default)")
@mutually_exclusive("table", "name", "uuid")
@pass_session
def net_list(session, inactive, all_, persistent, transient, autostart, no_autostart, uuid, name, table):
    active = None if all_ else (not inactive)
    nets = session.conn.networks(active=active, persistent=_tri(persistent, transient),
                                 autostart=_tri(autostart, no_autostart))
    recs = [n.snapshot for n in nets]
    for r in recs:
        if r.warning and not session.json:
            import sys

            sys.stderr.write(f"warning: network '{r.name}': {r.warning}\n")
    if session.json:
        session.emit({"networks": [r.to_json() for r in recs]})
        return
    if name or uuid:
        session.print("".join((r.name if name else r.uuid) + "\n" for r in recs), end="")
        return
    yn = {True: "yes", False: "no"}
    rows = [[r.name, "active" if r.active else "inactive", yn[r.autostart], yn[r.persistent]] for r in recs]
    session.print(output.table(["Name", "State", "Autostart", "Persistent"], rows, header=not session.quiet), end="")


@command("net-info", help="""Show basic information about a network.

\b
JSON: {"name", "uuid", "active", "persistent", "autostart", "bridge"}, plus
"warning" when a running network has a problem (qemu: its dnsmasq died;
net-start restarts it)

\b
Example:
  virtctl net-info default""")
@network_arg()
@pass_session
def net_info(session, network):
    rec = _lookup(session, network).info()
    yn = {True: "yes", False: "no"}
    pairs = [("Name", rec.name), ("UUID", rec.uuid), ("Active", yn[rec.active]),
             ("Persistent", yn[rec.persistent]), ("Autostart", yn[rec.autostart])]
    if rec.bridge:
        pairs.append(("Bridge", rec.bridge))
    if rec.warning:
        pairs.append(("Warning", rec.warning))
    session.emit(rec.to_json(), output.key_values(pairs, width=16))


@command("net-dumpxml", help="""Print a network's XML definition.

\b
JSON: {"network", "uuid", "xml"}

\b
Example:
  virtctl net-dumpxml default""")
@network_arg()
@click.option("--inactive", is_flag=True, help="the definition the network will have when next started")
@pass_session
def net_dumpxml(session, network, inactive):
    net = _lookup(session, network)
    xml = net.xml(inactive=inactive)
    session.emit({"network": net.name, "uuid": net.uuid, "xml": xml}, xml)


def _read_xml(session, file: str) -> str:
    from virtctl.commands.domain_lifecycle import _read_xml as read

    return read(session.value("file", file))


@command("net-define", help="""Define (create or update) a persistent network from an XML file.

The XML is validated against the network schema; errors name the element
and line.

\b
JSON: {"network", "uuid", "action": "defined", "file", "result": "ok"}

\b
Example:
  virtctl net-define mynet.xml""")
@positional("file", help="file containing an XML network description", completer="file")
@click.option("--validate", is_flag=True, help="validate the XML against the schema (always done)")
@pass_session
def net_define(session, file, validate):
    xml = _read_xml(session, file)
    with session.context(f"Failed to define network from {file}"):
        net = session.conn.define_network(xml, source=file)
    _done(session, net, "Network {name} defined from {file}", "defined", file=file)


@command("net-create", help="""Create and start a transient network from an XML file.

\b
JSON: {"network", "uuid", "action": "created", "file", "result": "ok"}

\b
Example:
  virtctl net-create mynet.xml""")
@positional("file", help="file containing an XML network description", completer="file")
@click.option("--validate", is_flag=True, help="validate the XML against the schema (always done)")
@pass_session
def net_create(session, file, validate):
    xml = _read_xml(session, file)
    with session.context(f"Failed to create network from {file}"):
        net = session.conn.create_network(xml, source=file)
    _done(session, net, "Network {name} created from {file}", "created", file=file)


def _action(name: str, method: str, completer: str, failed: str, message: str, action: str, doc: str):
    @command(name, help=doc)
    @network_arg(completer=completer)
    @pass_session
    def cmd(session, network):
        net = _lookup(session, network)
        with session.context(failed.format(network=network)):
            getattr(net, method)()
        _done(session, net, message.replace("{network}", network), action)
    return cmd


net_start = _action("net-start", "start", "network:inactive", "Failed to start network {network}",
                    "Network {network} started", "started", """Start an inactive (defined) network.

\b
JSON: {"network", "uuid", "action": "started", "result": "ok"}

\b
Example:
  virtctl net-start default""")
@command("net-destroy", help="""Stop a network (a transient one disappears).

On qemu:// a network with running domains attached is refused unless
--force is given (beyond virsh; their interfaces then lose the network).

\b
JSON: {"network", "uuid", "action": "destroyed", "result": "ok"}

\b
Examples:
  virtctl net-destroy default
  virtctl net-destroy lab --force""")
@network_arg(completer="network:active")
@click.option("--force", is_flag=True, help="even with running domains attached (beyond virsh)")
@pass_session
def net_destroy(session, network, force):
    net = _lookup(session, network)
    with session.context(f"Failed to destroy network {network}"):
        net.destroy(force=force)
    _done(session, net, f"Network {network} destroyed", "destroyed")


net_undefine = _action("net-undefine", "undefine", "network:persistent", "Failed to undefine network {network}",
                       "Network {network} has been undefined", "undefined",
                       """Remove an inactive network's persistent definition.

\b
JSON: {"network", "uuid", "action": "undefined", "result": "ok"}

\b
Example:
  virtctl net-undefine mynet""")


@command("net-autostart", help="""Mark a network to be started at boot (or, with --disable, not).

\b
JSON: {"network", "uuid", "action": "autostart", "autostart": BOOL, "result": "ok"}

\b
Examples:
  virtctl net-autostart default
  virtctl net-autostart default --disable""")
@network_arg(completer="network:persistent")
@click.option("--disable", is_flag=True, help="disable autostarting")
@pass_session
def net_autostart(session, network, disable):
    net = _lookup(session, network)
    verb = "unmark" if disable else "mark"
    with session.context(f"failed to {verb} network {network} as autostarted"):
        net.set_autostart(not disable)
    msg = f"Network {network} {'unmarked' if disable else 'marked'} as autostarted"
    _done(session, net, msg, "autostart", autostart=not disable)


@command("net-uuid", help="""Print the UUID of a network given by name.

\b
JSON: {"uuid"}

\b
Example:
  virtctl net-uuid default""")
@network_arg(help="network name")
@pass_session
def net_uuid(session, network):
    net = _lookup(session, network, by_uuid=False)
    session.emit({"uuid": net.uuid}, net.uuid + "\n")


@command("net-name", help="""Print the name of a network given by UUID.

\b
JSON: {"name"}

\b
Example:
  virtctl net-name dd8fe884-6c02-601e-7551-cca97df1c5df""")
@network_arg(help="network uuid")
@pass_session
def net_name(session, network):
    net = _lookup(session, network, by_name=False)
    session.emit({"name": net.name}, net.name + "\n")


@command("net-dhcp-leases", help="""Print a network's DHCP leases (optionally only those of one MAC).

\b
JSON: {"network", "leases": [{"expiry", "mac", "protocol", "address", "prefix", "hostname", "client_id"}]}

\b
Example:
  virtctl net-dhcp-leases default --mac 52:54:00:12:34:56""")
@network_arg(completer="network:active")
@option("--mac", completer="none", help="MAC address")
@pass_session
def net_dhcp_leases(session, network, mac):
    net = _lookup(session, network)
    with session.context(f"Failed to get leases info for {network}"):
        leases = net.dhcp_leases(mac=mac)
    if session.json:
        session.emit({"network": net.name, "leases": leases})
        return
    rows = [[lease["expiry"], lease["mac"], lease["protocol"], f"{lease['address']}/{lease['prefix']}",
             lease.get("hostname") or "-", lease.get("client_id") or "-"] for lease in leases]
    session.print(output.table(["Expiry Time", "MAC address", "Protocol", "IP address", "Hostname",
                                "Client ID or DUID"], rows), end="")


@command("net-update", help="""Change one part of a network's definition, live and/or in its
persistent configuration.

COMMAND is add (= add-last), add-first, delete or modify; SECTION is
ip-dhcp-host, ip-dhcp-range or dns-host; XML is the element itself
(<host .../>, <range .../>) or a file holding it.

\b
JSON: {"network", "uuid", "action": "updated", "command", "section", "live", "config", "result": "ok"}

\b
Examples:
  virtctl net-update default add ip-dhcp-host "<host mac='52:54:00:00:00:01' ip='192.168.122.5'/>"
  virtctl net-update default delete dns-host "<host ip='192.168.122.5'/>" --config""")
@network_arg()
@positional("command", help="type of update (add-first, add-last (add), delete, or modify)",
            completer="enum:add|add-first|add-last|delete|modify")
@positional("section", help="which section of network configuration to update",
            completer="enum:ip-dhcp-host|ip-dhcp-range|dns-host")
@positional("xml", help="name of file containing xml (or, if it starts with '<', the complete xml element)",
            completer="file")
@option("--parent-index", type=int, default=None, completer="none",
        help="which parent object to search through")
@click.option("--config", is_flag=True, help="affect next network startup")
@click.option("--live", is_flag=True, help="affect running network")
@click.option("--current", is_flag=True, help="affect current state of network")
@mutually_exclusive("current", "live")
@mutually_exclusive("current", "config")
@pass_session
def net_update(session, network, command, section, xml, parent_index, config, live, current):
    net = _lookup(session, network)
    text = xml if xml.lstrip().startswith("<") else _read_xml(session, xml)
    was_active = net.snapshot.active
    with session.context(f"Failed to update network {network}"):
        net.update(command, section, text, parent_index=parent_index, live=live, config=config)
    if not live and not config:
        live, config = was_active, not was_active
    state = {(True, True): "persistent config and live state", (False, True): "persistent config",
             (True, False): "live state"}[(live, config)]
    _done(session, net, f"Updated network {network} {state}", "updated", command=command, section=section,
          live=live, config=config)


_FORWARDS = ("nat", "route", "open", "none")


def network_xml(name: str, subnet: str, forward: str, bridge: str | None = None) -> str:
    """The definition net-create-as makes: the first host address is the
    bridge's, DHCP hands out the rest of the subnet."""
    import ipaddress

    from virtctl.errors import InvalidArg

    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise InvalidArg(f"invalid subnet '{subnet}': expected an IPv4 network such as 10.77.0.0/24",
                         detail={"subnet": subnet}) from None
    if net.version != 4 or net.prefixlen > 30:
        raise InvalidArg(f"invalid subnet '{subnet}': expected an IPv4 network of at most /30",
                         detail={"subnet": subnet})
    hosts = list(net.hosts()) if net.num_addresses <= 1024 else None
    first = net.network_address + 1
    start = net.network_address + 2
    end = net.broadcast_address - 1 if hosts is None else hosts[-1]
    from xml.sax.saxutils import quoteattr

    lines = ["<network>", f"  <name>{_esc(name)}</name>"]
    if forward != "none":
        lines.append(f"  <forward mode='{forward}'/>")
    if bridge:
        lines.append(f"  <bridge name={quoteattr(bridge)}/>")
    lines += [f"  <ip address='{first}' netmask='{net.netmask}'>", "    <dhcp>",
              f"      <range start='{start}' end='{end}'/>", "    </dhcp>", "  </ip>", "</network>", ""]
    return "\n".join(lines)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@command("net-create-as", help="""Make a network from a name and a subnet, without writing XML
(virtctl's own: virsh has no such command).

The first address of the subnet is the bridge's, DHCP hands out the rest.
Creates and starts a transient network; --define defines a persistent one
instead (start it with net-start); --print-xml prints the XML only.

\b
JSON: {"network", "uuid", "action": "created"|"defined", "result": "ok"} (--print-xml: {"xml"})

\b
Examples:
  virtctl net-create-as lab --subnet 10.77.0.0/24
  virtctl net-create-as lab --subnet 10.77.0.0/24 --forward route --define""")
@positional("name", help="name of the new network", completer="none")
@option("--subnet", required=True, completer="none", help="IPv4 subnet, e.g. 10.77.0.0/24")
@click.option("--forward", type=click.Choice(_FORWARDS), default="nat", show_default=True,
              help="how traffic leaves the network (none: isolated)")
@option("--bridge", completer="none", help="bridge name (default: chosen by the driver)")
@click.option("--define", "define_", is_flag=True, help="define a persistent network instead of creating one")
@click.option("--print-xml", is_flag=True, help="print the XML, do not create anything")
@pass_session
def net_create_as(session, name, subnet, forward, bridge, define_, print_xml):
    xml = network_xml(session.value("name", name), subnet, forward, bridge)
    if print_xml:
        session.emit({"xml": xml}, xml)
        return
    if define_:
        with session.context(f"Failed to define network {name}"):
            net = session.conn.define_network(xml, source="net-create-as")
        _done(session, net, "Network {name} defined", "defined")
    else:
        with session.context(f"Failed to create network {name}"):
            net = session.conn.create_network(xml, source="net-create-as")
        _done(session, net, "Network {name} created", "created")


@command("net-edit", help="""Edit a network's XML definition in $VISUAL / $EDITOR, then define it.

The edited XML is validated; on an error you are asked whether to edit again.

\b
JSON: {"network", "uuid", "action": "edit", "changed": BOOL, "result": "ok"}

\b
Example:
  EDITOR=nano virtctl net-edit default""")
@network_arg(completer="network:persistent")
@pass_session
def net_edit(session, network):
    from virtctl.commands.xml_tools import edit_document

    net = _lookup(session, network)
    original = net.xml()
    new = edit_document(session, original, prefix=f"virtctl-net-{net.uuid}-", kind="network",
                        current=net.xml,
                        define=lambda text, path: session.conn.define_network(text, source=path),
                        what=f"network '{net.name}'")
    if new is None:
        _done(session, net, "Network {name} XML configuration not changed.", "edit", changed=False)
    else:
        _done(session, new, "Network {name} XML configuration edited.", "edit", changed=True)
