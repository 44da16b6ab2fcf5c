"""Commands that change a domain's definition: define, undefine, autostart,
domrename, setmem, setmaxmem, setvcpus."""
from __future__ import annotations

import click

from virtctl.cli.options import (Number, ScaledSize, check_live_config, command, domain_arg, live_config_current,
                                 mutually_exclusive, option, positional, requires)
from virtctl.cli.session import pass_session
from virtctl.commands.domain_lifecycle import _read_xml
from virtctl.errors import InvalidArg


@command("define", help="""Define (create or update) a persistent domain from an XML file.

The XML is always validated against virtctl's schema: unknown elements and
attributes are errors, never silently dropped.

\b
Example:
  virtctl define web1.xml""")
@positional("file", help="file containing an XML domain description", completer="file")
@click.option("--validate", is_flag=True, help="validate the XML against the schema (always done)")
@pass_session
def define(session, file, validate):
    xml = _read_xml(session.value("file", file))
    with session.context("Failed to define domain from {file}", file=file):
        dom = session.conn.define_domain(xml, source=file)
    session.done(dom, "Domain '{name}' defined from {file}", "defined", file=file)


@command("undefine", help="""Remove a domain's persistent definition.

A running domain keeps running and becomes transient.  Disks are kept.

\b
Example:
  virtctl undefine web1""")
@domain_arg(completer="domain:persistent")
@click.option("--managed-save", is_flag=True, help="remove the domain's managed save image too")
@click.option("--snapshots-metadata", is_flag=True, help="remove the domain's snapshot metadata too")
@click.option("--nvram", is_flag=True, help="remove the domain's NVRAM file too")
@option("--storage", default=None, completer="none",
        help="remove associated storage volumes (comma separated list of targets or source paths)")
@click.option("--remove-all-storage", is_flag=True, help="remove all associated storage volumes (use with caution)")
@click.option("--wipe-storage", is_flag=True, help="wipe the data of the storage volumes it removes")
@click.option("--keep-nvram", is_flag=True, help="keep the domain's NVRAM file (the default)")
@mutually_exclusive("nvram", "keep-nvram")
@pass_session
def undefine(session, domain, managed_save, snapshots_metadata, nvram, storage, remove_all_storage,
             wipe_storage, keep_nvram):
    from virtctl.commands import domain_storage

    if wipe_storage and not (storage or remove_all_storage):
        from virtctl.errors import UsageError

        raise UsageError("'--wipe-storage' requires '--storage <string>' or '--remove-all-storage'")
    dom = session.domain(domain)
    volumes = domain_storage.plan(session, dom, storage, remove_all_storage)
    if dom.snapshot.managed_save and not managed_save:  # virsh's own check, in its words
        from virtctl.errors import OperationInvalid

        raise OperationInvalid("Refusing to undefine while domain managed save image exists",
                               detail={"domain": dom.name, "uuid": dom.uuid})
    with session.context("Failed to undefine domain '{domain}'", dom):
        dom.undefine(managed_save=managed_save, snapshots_metadata=snapshots_metadata, nvram=nvram)
    if session.json and (storage or remove_all_storage):
        session.done(dom, "", "undefined", volumes=domain_storage.remove(session, volumes, wipe=wipe_storage))
        return
    session.done(dom, "Domain '{domain}' has been undefined", "undefined")
    domain_storage.remove(session, volumes, wipe=wipe_storage)  # after the definition is gone, as virsh


@command("autostart", help="""Start a domain when the host boots (--disable to stop doing so).

\b
Example:
  virtctl autostart web1 --disable""")
@domain_arg(completer="domain:persistent")
@click.option("--disable", is_flag=True, help="disable autostarting")
@pass_session
def autostart(session, domain, disable):
    dom = session.domain(domain)
    word = "unmark" if disable else "mark"
    with session.context(f"Failed to {word} domain '{{domain}}' as autostarted", dom):
        dom.set_autostart(not disable)
    session.done(dom, f"Domain '{{domain}}' {word}ed as autostarted", "autostart", autostart=not disable)


@command("domrename", help="""Rename an inactive domain.

\b
Example:
  virtctl domrename web1 web2""")
@domain_arg(completer="domain:inactive")
@positional("new-name", help="the new name", completer="none")
@pass_session
def domrename(session, domain, new_name):
    dom = session.domain(domain)
    old = dom.name
    dom.rename(session.value("new-name", new_name))
    session.done(dom, "Domain successfully renamed", "renamed", name=old, new_name=new_name)


def _set_size(session, domain: str, kib: int, method: str, key: str, live: bool, config: bool,
              failed: str | None = None) -> None:
    """setmem/setmaxmem: apply SIZE (KiB, parsed by the ScaledSize type), report (JSON only)."""
    from virtctl.errors import Context

    dom = session.domain(domain)
    with Context(failed):  # (None: no context line)
        getattr(dom, method)(kib, live=live, config=config)
    session.done(dom, "", "changed", **{key: kib})



@command("setmem", help="""Change the memory a domain uses (its balloon), up to its maximum.

SIZE is in KiB unless it has a unit: 512M, 2GiB, 1000000KB.

\b
Example:
  virtctl setmem web1 1G --live""")
@domain_arg()
@positional("size", type=ScaledSize(), help="new memory size, as scaled integer (default KiB)", completer="none")
@live_config_current
@pass_session
def setmem(session, domain, size, config, live, current):
    live, config = check_live_config(current, live, config)
    if not (live or config or current):
        live = True  # virsh's legacy call without a flag (virDomainSetMemory) is live-only
    _set_size(session, domain, size, "set_memory", "memory_kib", live, config)


@command("setmaxmem", help="""Change the maximum memory of a domain.

SIZE is in KiB unless it has a unit.  Most hypervisors allow this only
for the persistent definition (--config) or an inactive domain.

\b
Example:
  virtctl setmaxmem web1 4G --config""")
@domain_arg()
@positional("size", type=ScaledSize(), help="new maximum memory size, as scaled integer (default KiB)",
            completer="none")
@live_config_current
@pass_session
def setmaxmem(session, domain, size, config, live, current):
    live, config = check_live_config(current, live, config)
    # (virsh's legacy call without a flag, virDomainSetMaxMemory, is --current)
    _set_size(session, domain, size, "set_max_memory", "max_memory_kib", live, config,
              failed="Unable to change MaxMemorySize")


@command("setvcpus", help="""Change the number of virtual CPUs of a domain.

\b
Examples:
  virtctl setvcpus web1 2 --config
  virtctl setvcpus web1 8 --maximum --config""")
@domain_arg()
@positional("count", type=Number(minimum=0, maximum=2**32 - 1), help="number of virtual CPUs", completer="none")
@click.option("--maximum", is_flag=True, help="set the maximum limit on the number of vCPUs")
@live_config_current
@click.option("--guest", is_flag=True, help="change the count from the guest's point of view")
@click.option("--hotpluggable", is_flag=True, help="make the added vCPUs hot-unpluggable")
@mutually_exclusive("guest", "config")
@requires("maximum", "config")
@pass_session
def setvcpus(session, domain, count, maximum, config, live, current, guest, hotpluggable):
    # no option at all: virsh's legacy call (virDomainSetVcpus), live only
    legacy = not (live or config or current or maximum or guest or hotpluggable)
    live, config = check_live_config(current, live, config)
    dom = session.domain(domain)
    n = count  # an unsigned int (the Number type refused the rest in virsh's words)
    if n == 0:
        raise InvalidArg("Can't set 0 processors for a VM")
    if legacy:
        live = True
    dom.set_vcpus(n, live=live, config=config, maximum=maximum, guest=guest, hotpluggable=hotpluggable)
    session.done(dom, "", "changed", vcpus=n)
