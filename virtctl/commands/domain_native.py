"""domxml-to-native: show the QEMU command line a domain definition becomes."""
from __future__ import annotations

import shlex


from virtctl.cli.options import command, mutually_exclusive, option, positional
from virtctl.cli.session import pass_session
from virtctl.errors import NotSupported, UsageError

FORMATS = ("qemu-argv",)
PLACEHOLDER_DIR = "/run/virtctl"  # display only: the driver picks the real runtime directory


def placeholder_paths(uuid: str):
    """RuntimePaths for display: a fixed directory keyed by UUID (nothing is created)."""
    from virtctl.drivers.qemu.paths import RuntimePaths

    base = f"{PLACEHOLDER_DIR}/{uuid}"
    return RuntimePaths(qmp=f"{base}/qmp.sock", qmp_monitor=f"{base}/monitor.sock",
                        pidfile=f"{base}/qemu.pid", chardev_dir=f"{base}/chardev",
                        vnc_socket=f"{base}/vnc.sock", log=f"{base}/qemu.log")


@command("domxml-to-native", help="""Convert a domain definition to a QEMU command line.

Builds the argv the qemu driver would run (without starting anything) from
an XML file (--xml) or a defined domain (--domain).  Runtime files (QMP
sockets, pid file, serial sockets) are shown under /run/virtctl/UUID/; the
driver chooses the real directory at start.  The output is one shell-quoted
line; --json gives {"argv": [...]}.

\b
Examples:
  virtctl domxml-to-native qemu-argv --xml web1.xml
  virtctl domxml-to-native qemu-argv --domain web1""")
@positional("format", help="target format: qemu-argv", metavar="FORMAT", completer="enum:qemu-argv")
@option("--xml", "xml_file", metavar="FILE", help="domain XML file to convert", completer="file",
        positional=True)
@option("--domain", metavar="DOMAIN", help="convert the inactive definition of this domain",
        completer="domain:all")
@mutually_exclusive("domain", "xml")
@pass_session
def domxml_to_native(session, format, xml_file, domain):
    if format not in FORMATS:
        raise NotSupported(f"unsupported config type {format} (supported: {', '.join(FORMATS)})",
                           detail={"feature": f"domxml-to-native {format}"})
    if (xml_file is None) == (domain is None):
        raise UsageError("exactly one of --xml and --domain is required")
    from virtctl.drivers.qemu.argv import build_argv, emulator_path
    from virtctl.xml import xmlapi
    from virtctl.xml.domain import DomainDef

    if xml_file is not None:
        definition = DomainDef.parse(xmlapi.read_file(xml_file), source=xml_file)
    else:
        text = session.domain(domain).xml(inactive=True)
        definition = DomainDef.parse(text, source=f"domain '{domain}'")
    definition.normalize()
    argv = build_argv(definition, placeholder_paths(definition.uuid), emulator=emulator_path(definition))
    session.emit({"argv": argv}, shlex.join(argv) + "\n")
