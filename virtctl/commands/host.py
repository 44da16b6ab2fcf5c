"""Commands about the host and the connection: nodeinfo, uri, hostname, version."""
from __future__ import annotations

from virtctl.cli import output
from virtctl.cli.options import command
from virtctl.cli.session import pass_session


@command("nodeinfo", help="Show basic information about the host (CPUs, memory).\n\n\b\nExample:\n  virtctl --json nodeinfo")
@pass_session
def nodeinfo(session):
    n = session.conn.node_info()
    pairs = [
        ("CPU model", n.model), ("CPU(s)", str(n.cpus)), ("CPU frequency", f"{n.mhz} MHz"),
        ("CPU socket(s)", str(n.sockets)), ("Core(s) per socket", str(n.cores)),
        ("Thread(s) per core", str(n.threads)), ("NUMA cell(s)", str(n.nodes)),
        ("Memory size", f"{n.memory_kib} KiB"),
    ]
    session.emit(n.to_json(), output.key_values(pairs, width=21))


@command("uri", help="Print the URI of the current connection.\n\n\b\nExample:\n  virtctl uri")
@pass_session
def uri(session):
    u = session.conn.uri
    session.emit({"uri": u}, u + "\n")


@command("hostname", help="Print the hypervisor host's name.\n\n\b\nExample:\n  virtctl -c qemu:///system hostname")
@pass_session
def hostname(session):
    h = session.conn.hostname()
    session.emit({"hostname": h}, h + "\n")


@command("version", help="""Show the versions of virtctl and of the hypervisor.

virsh names libvirt here; virtctl names itself, since it does not use libvirt.

\b
Example:
  virtctl -c qemu:///session version""")
@pass_session
def version(session):
    v = session.conn.version()
    text = (f"Compiled against library: virtctl {v.library}\n"
            f"Using library: virtctl {v.library}\n"
            f"Using API: {v.api_driver} {v.library}\n"
            f"Running hypervisor: {v.hypervisor}\n")
    session.emit(v.to_json(), text)
