"""domif-getlink and domif-setlink: an interface's ``<link state>``."""
from __future__ import annotations

import click

from virtctl.cli.options import command, domain_arg, positional
from virtctl.cli.session import pass_session


@command("domif-getlink", help="""Get the link state of a domain's virtual interface.

INTERFACE is the interface's target device name (vnet0) or its MAC address.
The state is that of the running domain (--config: of its persistent definition);
an interface without <link state> is up.

\b
Examples:
  virtctl domif-getlink web1 52:54:00:12:34:56
  virtctl --json domif-getlink web1 vnet0 --config""")
@domain_arg()
@positional("interface", help="interface device (MAC Address)", completer="interface")
@click.option("--config", is_flag=True, help="Get persistent interface state")
@pass_session
def domif_getlink(session, domain, interface, config):
    dom = session.domain(domain)
    state = dom.interface_link(session.value("interface", interface), config=config)
    session.emit({"interface": interface, "state": state}, f"{interface} {state}")


@command("domif-setlink", help="""Set the link state of a domain's virtual interface (up or down).

INTERFACE is the interface's target device name (vnet0) or its MAC address.
Without --config the running guest sees the change at once (its carrier goes
down or up) and the live definition records <link state>; --config changes the
persistent definition (the next boot), as does the command on a domain that is
not running.  --print-xml prints the interface's XML with the new state instead.

\b
Examples:
  virtctl domif-setlink web1 52:54:00:12:34:56 down
  virtctl domif-setlink web1 vnet0 up --config""")
@domain_arg()
@positional("interface", help="interface device (MAC Address)", completer="interface")
@positional("state", help="new state of the device", completer="enum:up|down")
@click.option("--config", is_flag=True, help="affect next boot")
@click.option("--print-xml", is_flag=True, help="print XML document rather than set the interface link state")
@pass_session
def domif_setlink(session, domain, interface, state, config, print_xml):
    from virtctl.errors import InvalidArg

    dom = session.domain(domain)
    session.value("interface", interface)
    if state not in ("up", "down"):
        raise InvalidArg(f"invalid link state '{state}'")
    if print_xml:
        xml = dom.interface_xml(interface, state, config=config)
        session.emit({"interface": interface, "state": state, "xml": xml}, xml)
        return
    dom.interface_xml(interface, state, config=config)  # virsh looks the interface up first
    with session.context("Failed to update interface link state"):
        dom.set_interface_link(interface, state, config=config)
    if session.json:
        session.done(dom, "", "link-set", interface=interface, state=state, config=config)
    else:
        session.print("Device updated successfully\n", end="")
