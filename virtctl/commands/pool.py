"""Storage pool commands: pool-list, pool-info, pool-dumpxml, pool-define(-as),
pool-create(-as), pool-build, pool-start, pool-destroy, pool-delete,
pool-undefine, pool-autostart, pool-refresh, pool-uuid, pool-name."""
from __future__ import annotations

import click

from virtctl.cli import output
from virtctl.cli.options import command, exclusive, option, positional
from virtctl.cli.session import pass_session


POOL_TYPES = "enum:dir|fs|netfs|logical|disk|iscsi|iscsi-direct|scsi|mpath|rbd|sheepdog|gluster|zfs|vstorage"


def pretty_size(n: int) -> str:
    """virsh's vshPrettyCapacity: two decimals in the largest binary unit below the value."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    i, v = 0, float(n)
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    return f"{v:.2f} {units[i]}"


def get_pool(session, key: str, *, option: str = "pool", by_uuid: bool = True, by_name: bool = True):
    session.value(option, key)
    return session.conn.lookup_pool(key, by_uuid=by_uuid, by_name=by_name)


def pool_arg(help: str = "pool name or uuid"):
    return positional("pool", help=help, completer="pool")


def _done(session, pool, message: str, action: str) -> None:
    if session.json:
        session.emit({"pool": pool.name, "uuid": pool.uuid, "action": action, "result": "ok"})
    else:
        session.extra(message.format(name=pool.name) + "\n", end="")


def _tri(yes: bool, no: bool) -> bool | None:
    if yes == no:
        return None
    return yes


@command("pool-list", help="""List storage pools.

By default only active pools are listed; --all adds inactive ones.

\b
Examples:
  virtctl pool-list --all --details
  virtctl --json pool-list --all""")
@click.option("--inactive", is_flag=True, help="list inactive pools")
@click.option("--all", "all_", is_flag=True, help="list inactive & active pools")
@click.option("--transient", is_flag=True, help="list transient pools")
@click.option("--persistent", is_flag=True, help="list persistent pools")
@click.option("--autostart", is_flag=True, help="list pools with autostart enabled")
@click.option("--no-autostart", is_flag=True, help="list pools with autostart disabled")
@option("--type", "types", default=None, help="only list pool of specified type(s) (if supported)",
        completer=POOL_TYPES)
@click.option("--details", is_flag=True, help="display extended details")
@click.option("--uuid", is_flag=True, help="list UUID of active pools only")
@click.option("--name", is_flag=True, help="list name of active pools only")
@pass_session
def pool_list(session, inactive, all_, transient, persistent, autostart, no_autostart, types,
              details, uuid, name):
    exclusive(details=details, uuid=uuid)
    exclusive(details=details, name=name)
    active = None if all_ or (inactive and not all_ and False) else (False if inactive else True)
    if all_:
        active = None
    pools = session.conn.pools(active=active, persistent=_tri(persistent, transient),
                               autostart=_tri(autostart, no_autostart),
                               types=[t for t in types.split(",") if t] if types else None)
    recs = [p.snapshot for p in pools]
    if session.json:
        session.emit({"pools": [r.to_json() for r in recs]})
        return
    if uuid or name:
        for r in recs:
            if uuid and name:
                session.print(f"{r.uuid}  {r.name}")
            elif uuid:
                session.print(r.uuid)
            else:
                session.print(f"{r.name:<20}")
        return
    if details:
        headers = ["Name", "State", "Autostart", "Persistent", "Capacity", "Allocation", "Available"]
        rows = [[r.name, r.state_text, "yes" if r.autostart else "no", "yes" if r.persistent else "no",
                 *([pretty_size(r.capacity), pretty_size(r.allocation), pretty_size(r.available)]
                   if r.active else ["-", "-", "-"])] for r in recs]
    else:
        headers = ["Name", "State", "Autostart"]
        rows = [[r.name, "active" if r.active else "inactive", "yes" if r.autostart else "no"] for r in recs]
    session.print(output.table(headers, rows, header=not session.quiet), end="")


@command("pool-info", help="Show basic information about a storage pool.\n\n\b\nExample:\n  virtctl pool-info default-pool")
@pool_arg()
@click.option("--bytes", "in_bytes", is_flag=True, help="Reture pool info in bytes")
@pass_session
def pool_info(session, pool, in_bytes):
    r = get_pool(session, pool).info()
    fmt = (lambda n: str(n)) if in_bytes else pretty_size
    pairs = [("Name", r.name), ("UUID", r.uuid), ("State", r.state_text),
             ("Persistent", "yes" if r.persistent else "no"), ("Autostart", "yes" if r.autostart else "no")]
    if r.active:
        pairs += [("Capacity", fmt(r.capacity)), ("Allocation", fmt(r.allocation)),
                  ("Available", fmt(r.available))]
    session.emit(r.to_json(), output.key_values(pairs, width=16))


@command("pool-dumpxml", help="Print a storage pool's XML definition.\n\n\b\nExample:\n  virtctl pool-dumpxml default-pool")
@pool_arg()
@click.option("--inactive", is_flag=True, help="show inactive defined XML")
@pass_session
def pool_dumpxml(session, pool, inactive):
    xml = get_pool(session, pool).xml(inactive=inactive)
    session.emit({"xml": xml}, xml)


def _read(session, file: str) -> str:
    from virtctl.commands.domain_lifecycle import _read_xml

    return _read_xml(session.value("file", file))


@command("pool-define", help="Define a persistent (inactive) storage pool from an XML file.\n\n\b\nExample:\n  virtctl pool-define pool.xml")
@positional("file", help="file containing an XML pool description", completer="file")
@click.option("--validate", is_flag=True, help="validate the XML against the schema (always done)")
@pass_session
def pool_define(session, file, validate):
    xml = _read(session, file)
    with session.context(f"Failed to define pool from {file}"):
        p = session.conn.define_pool(xml, source=file)
    _done(session, p, f"Pool {{name}} defined from {file}", "defined")


@command("pool-create", help="Create and start a transient storage pool from an XML file.\n\n\b\nExample:\n  virtctl pool-create pool.xml")
@positional("file", help="file containing an XML pool description", completer="file")
@click.option("--build", is_flag=True, help="build the pool as normal")
@click.option("--validate", is_flag=True, help="validate the XML against the schema (always done)")
@pass_session
def pool_create(session, file, build, validate):
    xml = _read(session, file)
    with session.context(f"Failed to create pool from {file}"):
        p = session.conn.create_pool(xml, source=file, build=build)
    _done(session, p, f"Pool {{name}} created from {file}", "created")


def as_xml(name: str, type_: str, target: str | None, source_path: str | None = None,
           source_host: str | None = None, source_dev: str | None = None,
           source_name: str | None = None, source_format: str | None = None) -> str:
    from xml.sax.saxutils import escape, quoteattr

    src = ""
    if source_host:
        src += f"    <host name={quoteattr(source_host)}/>\n"
    if source_path:
        src += f"    <dir path={quoteattr(source_path)}/>\n"
    if source_dev:
        src += f"    <device path={quoteattr(source_dev)}/>\n"
    if source_format:
        src += f"    <format type={quoteattr(source_format)}/>\n"
    if source_name:
        src += f"    <name>{escape(source_name)}</name>\n"
    out = f"<pool type={quoteattr(type_)}>\n  <name>{escape(name)}</name>\n"
    if src:
        out += f"  <source>\n{src}  </source>\n"
    if target:
        out += f"  <target>\n    <path>{escape(target)}</path>\n  </target>\n"
    return out + "</pool>\n"


def _as_options(f):
    for opt, hlp in reversed([("--source-host", "source-host for underlying storage"),
                              ("--source-path", "source path for underlying storage"),
                              ("--source-dev", "source device for underlying storage"),
                              ("--source-name", "source name for underlying storage"),
                              ("--target", "target for underlying storage"),
                              ("--source-format", "format for underlying storage")]):
        f = option(opt, opt[2:].replace("-", "_"), default=None, help=hlp,
                   completer="file" if opt in ("--target", "--source-path", "--source-dev") else "none")(f)
    f = click.option("--print-xml", is_flag=True, help="print XML document, but don't define/create")(f)
    f = positional("type", help="type of the pool", completer=POOL_TYPES)(f)
    f = positional("name", help="name of the pool", completer="none")(f)
    return f


@command("pool-define-as", help="""Define a persistent storage pool from its type and target.

\b
Example:
  virtctl pool-define-as images dir --target /srv/images""")
@_as_options
@pass_session
def pool_define_as(session, name, type, print_xml, **src):
    xml = as_xml(session.value("name", name), session.value("type", type), **src)
    if print_xml:
        session.emit({"xml": xml}, xml)
        return
    p = session.conn.define_pool(xml)
    _done(session, p, "Pool {name} defined", "defined")


@command("pool-create-as", help="""Create and start a transient storage pool from its type and target.

\b
Example:
  virtctl pool-create-as scratch dir --target /tmp/scratch""")
@_as_options
@click.option("--build", is_flag=True, help="build the pool as normal")
@pass_session
def pool_create_as(session, name, type, print_xml, build, **src):
    xml = as_xml(session.value("name", name), session.value("type", type), **src)
    if print_xml:
        session.emit({"xml": xml}, xml)
        return
    p = session.conn.create_pool(xml, build=build)
    _done(session, p, "Pool {name} created", "created")


def _simple(name: str, action: str, message: str, failed: str, helptext: str, call):
    @command(name, help=helptext)
    @pool_arg()
    @pass_session
    def cmd(session, pool):
        p = get_pool(session, pool)
        with session.context(failed.format(pool=pool)):
            call(p)
        _done(session, p, message, action)
    cmd.__name__ = name.replace("-", "_")
    return cmd


pool_destroy = _simple("pool-destroy", "destroyed", "Pool {name} destroyed", "Failed to destroy pool {pool}",
                       "Stop (deactivate) a storage pool; its data is kept.\n\n\b\nExample:\n  virtctl pool-destroy images",
                       lambda p: p.destroy())
pool_delete = _simple("pool-delete", "deleted", "Pool {name} deleted", "Failed to delete pool {pool}",
                      "Delete an inactive pool's underlying storage (its directory).\n\n\b\nExample:\n  virtctl pool-delete images",
                      lambda p: p.delete())
pool_undefine = _simple("pool-undefine", "undefined", "Pool {name} has been undefined",
                        "Failed to undefine pool {pool}",
                        "Remove an inactive pool's persistent definition.\n\n\b\nExample:\n  virtctl pool-undefine images",
                        lambda p: p.undefine())
pool_refresh = _simple("pool-refresh", "refreshed", "Pool {name} refreshed", "Failed to refresh pool {pool}",
                       "Rescan an active pool for volumes.\n\n\b\nExample:\n  virtctl pool-refresh images",
                       lambda p: p.refresh())


@command("pool-build", help="Build a storage pool (for dir: create its directory).\n\n\b\nExample:\n  virtctl pool-build images")
@pool_arg()
@click.option("--overwrite", is_flag=True, help="overwrite any existing data")
@click.option("--no-overwrite", is_flag=True, help="do not overwrite any existing data")
@pass_session
def pool_build(session, pool, overwrite, no_overwrite):
    p = get_pool(session, pool)
    with session.context(f"Failed to build pool {pool}"):
        p.build(overwrite=overwrite, no_overwrite=no_overwrite)
    _done(session, p, "Pool {name} built", "built")


@command("pool-start", help="Start (activate) an inactive storage pool.\n\n\b\nExample:\n  virtctl pool-start images")
@pool_arg(help="name or uuid of the inactive pool")
@click.option("--build", is_flag=True, help="build the pool as normal")
@click.option("--overwrite", is_flag=True, help="build the pool without overwriting the existing pool data")
@click.option("--no-overwrite", is_flag=True, help="build the pool and overwrite the existing pool data")
@pass_session
def pool_start(session, pool, build, overwrite, no_overwrite):
    p = get_pool(session, pool)
    with session.context(f"Failed to start pool {p.name}"):
        p.start(build=build, overwrite=overwrite, no_overwrite=no_overwrite)
    _done(session, p, "Pool {name} started", "started")


@command("pool-autostart", help="Start a pool when the host (or first connection) starts.\n\n\b\nExample:\n  virtctl pool-autostart images --disable")
@pool_arg()
@click.option("--disable", is_flag=True, help="disable autostarting")
@pass_session
def pool_autostart(session, pool, disable):
    p = get_pool(session, pool)
    with session.context(f"failed to {'un' if disable else ''}mark pool {pool} as autostarted"):
        p.set_autostart(not disable)
    _done(session, p, "Pool {name} unmarked as autostarted" if disable else "Pool {name} marked as autostarted",
          "autostart-disabled" if disable else "autostart-enabled")


@command("pool-uuid", help="Print the UUID of a storage pool given by name.\n\n\b\nExample:\n  virtctl pool-uuid default-pool")
@positional("pool", help="pool name", completer="pool")
@pass_session
def pool_uuid(session, pool):
    p = get_pool(session, pool, by_uuid=False)
    session.emit({"uuid": p.uuid}, p.uuid + "\n")


@command("pool-name", help="Print the name of a storage pool given by UUID.\n\n\b\nExample:\n  virtctl pool-name dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566")
@positional("pool", help="pool uuid", completer="none")
@pass_session
def pool_name(session, pool):
    p = get_pool(session, pool, by_name=False)
    session.emit({"name": p.name}, p.name + "\n")


@command("pool-capabilities", help="Show the storage pool types and volume formats the connection supports.\n\n\b\nExample:\n  virtctl -c qemu:///session pool-capabilities")
@pass_session
def pool_capabilities(session):
    with session.context("failed to get storage pool capabilities"):
        xml = session.conn.pool_capabilities()
    session.emit({"xml": xml}, xml)


@command("pool-edit", help="""Edit a storage pool's XML in $VISUAL or $EDITOR, then redefine it.

The edited XML is validated on save; on an error the problem is shown and, on a
terminal, you may edit again.  Without a change nothing is redefined.  An
active pool keeps its definition until it is stopped.

\b
Example:
  EDITOR=nano virtctl pool-edit images""")
@pool_arg()
@pass_session
def pool_edit(session, pool):
    from virtctl.commands.xml_tools import edit_document

    p = get_pool(session, pool)
    new = edit_document(session, p.xml(), prefix=f"virtctl-pool-{p.uuid}-", kind="pool", current=p.xml,
                        define=lambda text, path: session.conn.define_pool(text, source=path),
                        what=f"pool '{p.name}'")
    if new is None:
        _done(session, p, "Pool {name} XML configuration not changed.", "edit")
        return
    _done(session, new, "Pool {name} XML configuration edited.", "edited")
