"""domxml-to-native: show the QEMU command line a domain definition becomes."""
from __future__ import annotations

import shlex

from virtctl.cli.options import command, mutually_exclusive, option, positional
from virtctl.cli.session import pass_session
from virtctl.errors import NotSupported, UsageError

FORMATS = ("qemu-argv",)


@command("domxml-to-native", help="""Convert a domain definition to a QEMU command line.

Prints the argv the qemu driver's 'start' would run (without starting
anything), runtime paths (QMP sockets, pid file, serial sockets, log)
included, for an XML file (--xml, as 'define' would store it) or a
defined domain (--domain, its persistent definition).  The output is one
shell-quoted line; --json gives {"argv": [...]}.  Drivers that run no
command (test:///) answer NOT_SUPPORTED, as libvirt's do.

\b
Examples:
  virtctl -c qemu:///session domxml-to-native qemu-argv --xml web1.xml
  virtctl domxml-to-native qemu-argv --domain web1""")
@positional("format", help="target format: qemu-argv", metavar="FORMAT", completer="enum:qemu-argv")
@option("--xml", "xml_file", metavar="FILE", help="domain XML file to convert", completer="file",
        positional=True)
@option("--domain", metavar="DOMAIN", help="convert the persistent definition of this domain",
        completer="domain:all")
@mutually_exclusive("domain", "xml")
@pass_session
def domxml_to_native(session, format, xml_file, domain):
    if format not in FORMATS:
        raise NotSupported(f"unsupported config type {format} (supported: {', '.join(FORMATS)})",
                           detail={"feature": f"domxml-to-native {format}"})
    if (xml_file is None) == (domain is None):
        raise UsageError("exactly one of --xml and --domain is required")
    if xml_file is not None:
        from virtctl.commands.domain_lifecycle import _read_xml

        argv = session.conn.native_argv(_read_xml(xml_file), source=xml_file)
    else:
        argv = session.domain(domain).native_argv()
    session.emit({"argv": argv}, shlex.join(argv) + "\n")
