"""Host statistics and capabilities: nodecpustats, nodememstats,
capabilities, domcapabilities, maxvcpus, sysinfo, freecell."""
from __future__ import annotations

import click

from virtctl.cli.options import command, option, positional, virsh_int
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg

_CPU_FIELDS = ("user", "system", "idle", "iowait")


@command("nodecpustats", help="""Show the host's CPU time (ns): user, system, idle, iowait; of one CPU
with --cpu N.  --percent: the shares of the next second instead.

\b
Examples:
  virtctl nodecpustats
  virtctl nodecpustats --cpu 0 --percent""")
@option("--cpu", metavar="NUMBER", help="prints specified cpu statistics only.", completer="none",
        positional=True)
@click.option("--percent", is_flag=True, help="prints by percentage during 1 second.")
@pass_session
def nodecpustats(session, cpu, percent):
    n = virsh_int(cpu, "cpu")
    if n is not None and n < 0:
        n = None  # virsh: -1 is every CPU
    first = session.conn.node_cpu_stats(n)
    if not percent:
        session.emit({"cpu": n, **first}, "".join(f"{f + ':':<15} {first[f]:>20}\n" for f in _CPU_FIELDS if f in first))
        return
    import time

    time.sleep(1)
    second = session.conn.node_cpu_stats(n)
    delta = {f: second.get(f, 0) - first.get(f, 0) for f in _CPU_FIELDS}
    total = sum(delta.values())

    def pct(v: int) -> float:
        return v * 100.0 / total if total else float("nan")

    shares = {"usage": pct(delta["user"] + delta["system"]), **{f: pct(delta[f]) for f in _CPU_FIELDS}}
    if session.json:
        session.emit({"cpu": n, **{k: (None if v != v else round(v, 1)) for k, v in shares.items()}})
        return
    # C's printf of 0.0/0.0 on x86 shows "-nan"
    session.print("".join(f"{k + ':':<15} {('-nan' if v != v else f'{v:5.1f}'):>5}%\n" for k, v in shares.items()),
                  end="")


@command("nodememstats", help="""Show the host's memory figures (KiB): total, free, buffers, cached;
of one NUMA cell with --cell N.

\b
Example:
  virtctl nodememstats""")
@option("--cell", metavar="NUMBER", help="prints specified cell statistics only.", completer="none",
        positional=True)
@pass_session
def nodememstats(session, cell):
    n = virsh_int(cell, "cell")
    if n is not None and n < 0:
        n = None
    with session.context("Unable to get number of memory stats"):
        stats = session.conn.node_memory_stats(n)
    session.emit({"cell": n, **stats}, "".join(f"{k:<7}: {v:>20} KiB\n" for k, v in stats.items()))


@command("capabilities", help="""Print the hypervisor's capabilities as libvirt's capabilities XML
(host CPU and NUMA topology, guest architectures, machine types, emulators).

\b
Example:
  virtctl -c qemu:///session capabilities""")
@pass_session
def capabilities(session):
    xml = session.conn.capabilities()
    session.emit({"xml": xml}, xml + "\n")  # virsh: the XML (ending in a newline), then a newline


@command("domcapabilities", help="""Print what domains of one emulator, architecture, machine type and
virtualization type can have (libvirt's domain capabilities XML).

\b
Examples:
  virtctl -c qemu:///session domcapabilities
  virtctl -c qemu:///session domcapabilities --machine q35 --virttype qemu""")
@option("--virttype", metavar="STRING", help="virtualization type (/domain/@type)", completer="enum:qemu|kvm")
@option("--emulatorbin", metavar="STRING", help="path to emulator binary (/domain/devices/emulator)",
        completer="file")
@option("--arch", metavar="STRING", help="domain architecture (/domain/os/type/@arch)", completer="none")
@option("--machine", metavar="STRING", help="machine type (/domain/os/type/@machine)", completer="none")
@pass_session
def domcapabilities(session, virttype, emulatorbin, arch, machine):
    with session.context("failed to get emulator capabilities"):
        xml = session.conn.domain_capabilities(virttype=virttype, emulatorbin=emulatorbin, arch=arch,
                                               machine=machine)
    session.emit({"xml": xml}, xml + "\n")


@command("maxvcpus", help="""Print the most virtual CPUs a guest may have (of virtualization type --type).

\b
Example:
  virtctl maxvcpus --type kvm""")
@option("--type", "type_", metavar="STRING", help="domain type", completer="enum:qemu|kvm|test")
@pass_session
def maxvcpus(session, type_):
    n = session.conn.max_vcpus(type_)
    session.emit({"type": type_, "max_vcpus": n}, f"{n}\n")


@command("sysinfo", help="""Print the host's SMBIOS information as libvirt's <sysinfo> XML.

\b
Example:
  virtctl sysinfo""")
@pass_session
def sysinfo(session):
    xml = session.conn.sysinfo()
    session.emit({"xml": xml}, xml if xml.endswith("\n") else xml + "\n")


@command("freecell", help="""Show the host's free memory: in total, of NUMA cell --cellno N, or of
every cell (--all).

\b
Examples:
  virtctl freecell
  virtctl freecell --all""")
@positional("cellno", required=False, help="NUMA cell number", completer="none", metavar="NUMBER")
@click.option("--all", "all_", is_flag=True, help="show free memory for all NUMA cells")
@pass_session
def freecell(session, cellno, all_):
    from virtctl.errors import OperationFailed

    if all_ and cellno is not None:
        raise click.UsageError("Options --all and --cellno are mutually exclusive")
    n = virsh_int(cellno, "cellno")
    if all_:
        cells = session.conn.cells_free_memory()
        total = sum(cells)
        if session.json:
            session.emit({"cells": [{"cell": i, "free_kib": b // 1024} for i, b in enumerate(cells)],
                          "total_kib": total // 1024})
            return
        text = "".join(f"{i:>5}: {b // 1024:>10} KiB\n" for i, b in enumerate(cells))
        session.print(text + "--------------------\n" + f"{'Total':>5}: {total // 1024:>10} KiB\n", end="")
        return
    if n is not None:
        if n < 0:
            raise InvalidArg("startCell in virNodeGetCellsFreeMemory must be zero or greater")
        free = session.conn.cells_free_memory(n, 1)[0]
        session.emit({"cell": n, "free_kib": free // 1024}, f"{n}: {free // 1024} KiB\n")
        return
    free = session.conn.free_memory()
    if not free:
        raise OperationFailed("An error occurred, but the cause is unknown")
    session.emit({"free_kib": free // 1024}, f"Total: {free // 1024} KiB\n")
