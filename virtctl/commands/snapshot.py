"""Snapshot commands (virsh's "Snapshot" group): snapshot-create, -create-as,
-list, -info, -dumpxml, -current, -parent, -edit, -revert, -delete.

JSON shapes (--json), documented in the README's Snapshots section:
a snapshot is ``{"name", "domain", "parent", "creation_time", "state",
"description", "current", "location", "disk_only", "metadata"}`` (+ "children"
and "descendants" in snapshot-info); actions answer
``{"domain", "uuid", "action", "snapshot", ..., "result": "ok"}``.
"""
from __future__ import annotations

import click

from virtctl.cli.options import argument, command, domain_arg, mutually_exclusive, option, positional
from virtctl.cli.session import pass_session
from virtctl.errors import UsageError

SNAP_COMPLETER = "snapshot"


def _name_arg(required: bool = False, help: str = "snapshot name"):
    return positional("snapshotname", required=required, help=help, completer=SNAP_COMPLETER)


def _lookup(session, dom, name: str | None, current: bool):
    """The snapshot named, or the current one (``--current``), in virsh's words."""
    if name is not None and current:
        raise UsageError("--snapshotname and --current are mutually exclusive")
    if name is None and not current:
        raise UsageError("--snapshotname or --current is required")
    if current:
        snap = dom.current_snapshot()
        if snap is None:
            from virtctl.errors import OperationInvalid

            raise OperationInvalid(f"domain '{dom.name}' has no current snapshot", detail={"domain": dom.name})
        return snap
    return dom.snapshot_lookup(session.value("snapshotname", name))


def _json(snap, **more) -> dict:
    return {**snap.record.to_json(), "domain": snap.domain.name, **more}


def _done(session, dom, message: str, action: str, snapshot: str, **data) -> None:
    """Like session.done, but ``message`` ends its own line or not: virsh's
    messages here are printed as they are, and the engine's empty line after
    each command ends the unended ones."""
    if session.json:
        session.done(dom, message, action, snapshot=snapshot, **data)
    else:
        session.extra(message.format_map(session._words(dom, {"snapshot": snapshot, **data})), end="")


_CREATE_FLAGS = ("no_metadata", "halt", "disk_only", "reuse_external", "quiesce", "atomic", "live", "validate")


def _create_flags(f):
    for name, text in reversed((
            ("--no-metadata", "take snapshot but create no metadata"),
            ("--halt", "halt domain after snapshot is created"),
            ("--disk-only", "capture disk state but not vm state"),
            ("--reuse-external", "reuse any existing external files"),
            ("--quiesce", "quiesce guest's file systems"),
            ("--atomic", "require atomic operation"),
            ("--live", "take a live snapshot"),
            ("--validate", "validate the XML against the schema"))):
        f = click.option(name, is_flag=True, help=text)(f)
    return f


@command("snapshot-create", help="""Create a snapshot of a domain from a <domainsnapshot> XML file.

Without --xmlfile the snapshot gets the default name (the time) and
everything else from the domain.  --redefine replaces (or restores) the
metadata of a snapshot, with --current making it the current one.

\b
Examples:
  virtctl snapshot-create web1 snap.xml
  virtctl snapshot-create web1 saved-snap.xml --redefine --current""")
@domain_arg()
@positional("xmlfile", required=False, help="domain snapshot XML", completer="file")
@click.option("--redefine", is_flag=True, help="redefine metadata for existing snapshot")
@click.option("--current", is_flag=True, help="with redefine, set current snapshot")
@_create_flags
@pass_session
def snapshot_create(session, domain, xmlfile, redefine, current, **flags):
    dom = session.domain(domain)
    if xmlfile is None:
        xml, source = "<domainsnapshot/>", "<default>"
    else:
        from virtctl.xml import xmlapi

        xml = xmlapi.read_file(session.value("xmlfile", xmlfile)).decode("utf-8", "surrogateescape")
        source = xmlfile
    snap = dom.create_snapshot(xml, source=source, redefine=redefine, current=current,
                               **{k: flags[k] for k in _CREATE_FLAGS})
    if xmlfile is not None:  # virsh says "created" after --redefine too
        msg = "Domain snapshot {snapshot} created from '{file}'"
    else:
        msg = "Domain snapshot {snapshot} created"
    _done(session, dom, msg, "snapshot-created", snap.name, file=xmlfile)


def _spec(text: str, what: str, first: str) -> dict[str, str]:
    """``vda,snapshot=external,file=/x`` as {"name"/"file": "vda", "snapshot": ...}:
    commas doubled are literal, as virsh parses them."""
    parts, cur, i = [], "", 0
    while i < len(text):
        if text[i] == "," and text[i + 1:i + 2] == ",":
            cur, i = cur + ",", i + 2
            continue
        if text[i] == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += text[i]
        i += 1
    parts.append(cur)
    out: dict[str, str] = {}
    for n, p in enumerate(parts):
        key, eq, value = p.partition("=")
        if not eq:
            if n == 0:
                out[first] = p
                continue
            raise UsageError(f"unable to parse {what}: {text}")
        if n == 0 and key not in ("file", "snapshot", "name") or key in out:
            raise UsageError(f"unable to parse {what}: {text}")
        out[key] = value
    return out


def snapshot_xml(name, description, memspec, diskspecs) -> str:
    """The <domainsnapshot> document snapshot-create-as makes (what --print-xml shows)."""
    from virtctl.xml import xmlapi

    root = xmlapi.element("domainsnapshot")
    if name is not None:
        xmlapi.sub(root, "name", text=name)
    if description is not None:
        xmlapi.sub(root, "description", text=description)
    if memspec is not None:
        spec = _spec(memspec, "memspec", "file")
        attrs = {k: spec[k] for k in ("snapshot", "file") if k in spec}
        if set(spec) - {"snapshot", "file"}:
            raise UsageError(f"unable to parse memspec: {memspec}")
        xmlapi.sub(root, "memory", attrs)
    if diskspecs:
        disks = xmlapi.sub(root, "disks")
        for text in diskspecs:
            spec = _spec(text, "diskspec", "name")
            if "name" not in spec or set(spec) - {"name", "snapshot", "driver", "stype", "file"}:
                raise UsageError(f"unable to parse diskspec: {text}")
            attrs = {"name": spec["name"]}
            if "snapshot" in spec:
                attrs["snapshot"] = spec["snapshot"]
            if "stype" in spec:
                attrs["type"] = spec["stype"]
            el = xmlapi.sub(disks, "disk", attrs)
            if "driver" in spec:
                xmlapi.sub(el, "driver", {"type": spec["driver"]})
            if "file" in spec:
                xmlapi.sub(el, "source", {"file": spec["file"]})
    return xmlapi.tostring(root)


@command("snapshot-create-as", help="""Create a snapshot of a domain from options.

A running domain's snapshot holds its memory too (unless --disk-only).
--diskspec DISK[,snapshot=internal|external|no][,driver=TYPE][,file=PATH]
may be repeated; --memspec [file=]PATH[,snapshot=TYPE].  --print-xml shows
the <domainsnapshot> document instead of creating it.

\b
Examples:
  virtctl snapshot-create-as web1 before-upgrade --description 'pre 2.0'
  virtctl snapshot-create-as web1 --name s1 --print-xml""")
@domain_arg()
@positional("name", required=False, help="name of snapshot", completer="none")
@option("--description", help="description of snapshot", completer="none", empty_ok=True)
@click.option("--print-xml", is_flag=True, help="print XML document rather than create")
@_create_flags
@option("--memspec", help="memory attributes: [file=]name[,snapshot=type]", completer="none")
@argument("diskspec", nargs=-1, completer="none")
@pass_session
def snapshot_create_as(session, domain, name, description, print_xml, memspec, diskspec, **flags):
    xml = snapshot_xml(name, description, memspec, list(diskspec))
    if print_xml:
        session.emit({"xml": xml}, xml + "\n")
        return
    dom = session.domain(domain)
    snap = dom.create_snapshot(xml, source="<snapshot-create-as>", **{k: flags[k] for k in _CREATE_FLAGS})
    _done(session, dom, "Domain snapshot {snapshot} created", "snapshot-created", snap.name)


def tree_lines(names: list[str], parent_of: dict[str, str | None]) -> list[str]:
    """virsh's tree: each root, then its children as '+- name' under a '|'."""
    kids: dict[str | None, list[str]] = {}
    for n in names:
        kids.setdefault(parent_of.get(n), []).append(n)
    out: list[str] = []

    def node(name: str, prefix: str, root: bool, last: bool) -> None:
        out.append(prefix + ("" if root else "+- ") + name)
        p = prefix if root else prefix + (" " if last else "|") + " "
        mine = kids.get(name, [])
        if mine:
            out.append(p + "  |")
        for i, k in enumerate(mine):
            node(k, p + "  ", False, i == len(mine) - 1)
        if not mine and last:
            out.append(p)

    for r in kids.get(None, []):
        node(r, "", True, True)
    return out


@command("snapshot-list", help="""List a domain's snapshots.

Sorted by name unless --topological (parents before children).  Filters
combine: --roots, --leaves/--no-leaves, --from SNAP or --current (its
children, all descendants with --descendants), --active/--inactive/--disk-only,
--internal/--external, --metadata/--no-metadata.

\b
Examples:
  virtctl snapshot-list web1 --tree
  virtctl snapshot-list web1 --leaves --name""")
@domain_arg()
@click.option("--parent", is_flag=True, help="add a column showing parent snapshot")
@click.option("--roots", is_flag=True, help="list only snapshots without parents")
@click.option("--leaves", is_flag=True, help="list only snapshots without children")
@click.option("--no-leaves", is_flag=True, help="list only snapshots that are not leaves (with children)")
@click.option("--metadata", is_flag=True, help="list only snapshots that have metadata that would prevent undefine")
@click.option("--no-metadata", is_flag=True, help="list only snapshots that have no metadata managed by libvirt")
@click.option("--inactive", is_flag=True, help="filter by snapshots taken while inactive")
@click.option("--active", is_flag=True, help="filter by snapshots taken while active (full system snapshots)")
@click.option("--disk-only", is_flag=True, help="filter by disk-only snapshots")
@click.option("--internal", is_flag=True, help="filter by internal snapshots")
@click.option("--external", is_flag=True, help="filter by external snapshots")
@click.option("--tree", is_flag=True, help="list snapshots in a tree")
@option("--from", "from_", help="limit list to children of given snapshot", completer=SNAP_COMPLETER)
@click.option("--current", is_flag=True, help="limit list to children of current snapshot")
@click.option("--descendants", is_flag=True, help="with --from, list all descendants")
@click.option("--name", is_flag=True, help="list snapshot names only")
@click.option("--topological", is_flag=True, help="sort list topologically rather than by name")
@mutually_exclusive("parent", "roots")
@mutually_exclusive("parent", "tree")
@mutually_exclusive("roots", "tree")
@mutually_exclusive("roots", "from")
@mutually_exclusive("roots", "current")
@mutually_exclusive("tree", "name")
@pass_session
def snapshot_list(session, domain, parent, roots, leaves, no_leaves, metadata, no_metadata, inactive, active,
                  disk_only, internal, external, tree, from_, current, descendants, name, topological):
    if from_ is not None and current:
        raise UsageError("--from and --current are mutually exclusive")
    if descendants and from_ is None and not current:
        raise UsageError("--descendants requires either --from or --current")
    dom = session.domain(domain)
    start = None
    if current or from_ is not None:
        start = _lookup(session, dom, from_, current)
    filters = dict(leaves=leaves, no_leaves=no_leaves, metadata=metadata, no_metadata=no_metadata,
                   inactive=inactive, active=active, disk_only=disk_only, internal=internal,
                   external=external, topological=topological)
    if start is not None:
        filters.update(from_=start.name, descendants=descendants)
    snaps = dom.snapshots(roots=roots, **filters)
    if tree and start is not None:
        snaps = [start, *snaps]
    if session.json:
        session.emit([_json(s) for s in snaps])
        return
    if tree:
        names = [s.name for s in snaps]
        shown = set(names)
        parent_of = {s.name: (s.record.parent if s.record.parent in shown and s != start else None) for s in snaps}
        session.print("".join(f"{line}\n" for line in tree_lines(names, parent_of)), end="")
        return
    if name:
        session.print("".join(f"{s.name}\n" for s in snaps), end="")
        return
    import time as _time

    from virtctl.cli import output

    headers = ["Name", "Creation Time", "State"] + (["Parent"] if parent else [])
    rows = []
    for s in snaps:
        r = s.record
        when = _time.strftime("%Y-%m-%d %H:%M:%S %z", _time.localtime(r.creation_time))
        rows.append([r.name, when, r.state] + ([r.parent or ""] if parent else []))
    session.print(output.table(headers, rows, header=not session.quiet), end="")


@command("snapshot-info", help="""Show information about a snapshot (or the current one, --current).

\b
Example:
  virtctl snapshot-info web1 before-upgrade""")
@domain_arg()
@_name_arg()
@click.option("--current", is_flag=True, help="info on current snapshot")
@pass_session
def snapshot_info(session, domain, snapshotname, current):
    dom = session.domain(domain)
    snap = _lookup(session, dom, snapshotname, current)
    r = snap.info()
    kids = len(snap.children())
    desc = len(snap.descendants())
    if session.json:
        session.emit(_json(snap, children=kids, descendants=desc))
        return
    from virtctl.cli import output

    session.print(output.key_values([
        ("Name", r.name), ("Domain", dom.name), ("Current", "yes" if r.current else "no"),
        ("State", r.state), ("Location", r.location), ("Parent", r.parent or "-"),
        ("Children", str(kids)), ("Descendants", str(desc)), ("Metadata", "yes" if r.metadata else "no"),
    ], width=16), end="")


def _print_xml(session, text: str, xpath: str | None, wrap: bool) -> None:
    if xpath is None:
        session.emit({"xml": text}, text)
        return
    from virtctl.commands.dumpxml_xpath import render
    from virtctl.xml import xmlapi

    session.value("xpath", xpath)
    result = render(xmlapi.parse(text), xpath, wrap)
    if result.warning:
        session.err.write(result.warning)
    session.emit({"results": result.results}, result.text)


@command("snapshot-dumpxml", help="""Show a snapshot's XML (with the domain's definition when taken).

\b
Example:
  virtctl snapshot-dumpxml web1 before-upgrade --xpath //description""")
@domain_arg()
@_name_arg(required=True)
@click.option("--security-info", is_flag=True, help="include security sensitive information in XML dump")
@option("--xpath", metavar="EXPR", help="xpath expression to filter the XML document", completer="none")
@click.option("--wrap", is_flag=True, help="wrap xpath results in an common root element")
@pass_session
def snapshot_dumpxml(session, domain, snapshotname, security_info, xpath, wrap):
    dom = session.domain(domain)
    snap = dom.snapshot_lookup(session.value("snapshotname", snapshotname))
    _print_xml(session, snap.xml(security_info=security_info), xpath, wrap)


@command("snapshot-current", help="""Show the current snapshot's XML (--name: its name), or make one current.

\b
Examples:
  virtctl snapshot-current web1 --name
  virtctl snapshot-current web1 --snapshotname before-upgrade""")
@domain_arg()
@click.option("--name", is_flag=True, help="list the name, rather than the full xml")
@click.option("--security-info", is_flag=True, help="include security sensitive information in XML dump")
@_name_arg(help="name of existing snapshot to make current")
@mutually_exclusive("name", "snapshotname")
@pass_session
def snapshot_current(session, domain, name, security_info, snapshotname):
    dom = session.domain(domain)
    if snapshotname is not None:
        snap = dom.snapshot_lookup(session.value("snapshotname", snapshotname))
        snap.set_current()
        _done(session, dom, "Snapshot {snapshot} set as current", "snapshot-current", snap.name)
        return
    snap = _lookup(session, dom, None, True)
    if name:
        session.emit(_json(snap), snap.name)
    else:
        session.emit({"xml": snap.xml(security_info=security_info)},
                     snap.xml(security_info=security_info))


@command("snapshot-parent", help="""Show the name of a snapshot's parent.

\b
Example:
  virtctl snapshot-parent web1 --current""")
@domain_arg()
@_name_arg(help="find parent of snapshot name")
@click.option("--current", is_flag=True, help="find parent of current snapshot")
@pass_session
def snapshot_parent(session, domain, snapshotname, current):
    dom = session.domain(domain)
    snap = _lookup(session, dom, snapshotname, current)
    parent = snap.info().parent
    if parent is None:
        from virtctl.errors import OperationInvalid

        raise OperationInvalid(f"snapshot '{snap.name}' has no parent", detail={"snapshot": snap.name})
    session.emit({"snapshot": snap.name, "parent": parent}, parent)


@command("snapshot-edit", help="""Edit a snapshot's XML in $VISUAL or $EDITOR, then redefine it.

Without a change nothing is redefined.

\b
Example:
  EDITOR=nano virtctl snapshot-edit web1 before-upgrade""")
@domain_arg()
@_name_arg()
@click.option("--current", is_flag=True, help="also set edited snapshot as current")
@click.option("--rename", is_flag=True, help="allow renaming an existing snapshot")
@click.option("--clone", is_flag=True, help="allow cloning to new name")
@mutually_exclusive("rename", "clone")
@pass_session
def snapshot_edit(session, domain, snapshotname, current, rename, clone):
    from virtctl.commands.xml_tools import edit_document
    from virtctl.errors import InvalidArg

    dom = session.domain(domain)
    snap = _lookup(session, dom, snapshotname, current and snapshotname is None)

    def redefine(text: str, path: str):
        from virtctl.xml import xmlapi

        new_name = xmlapi.parse(text, source=path).findtext("name")
        if new_name != snap.name and not (rename or clone):
            raise InvalidArg(f"cannot change snapshot name from '{snap.name}' to '{new_name}' without --rename "
                             f"or --clone", detail={"snapshot": snap.name})
        return dom.create_snapshot(text, source=path, redefine=True, current=current or snap.record.current)

    new = edit_document(session, snap.xml(security_info=True), prefix=f"virtctl-snap-{dom.uuid}-",
                        kind="domainsnapshot", current=lambda: snap.xml(security_info=True),
                        define=redefine, what=f"snapshot '{snap.name}'")
    if new is None:
        _done(session, dom, "Snapshot {snapshot} XML configuration not changed.\n", "snapshot-edit",
              snap.name, changed=False)
        return
    if rename and new.name != snap.name:
        snap.delete(metadata_only=True)
    _done(session, dom, "Snapshot {snapshot} edited.\n", "snapshot-edit", new.name, changed=True)


@command("snapshot-revert", help="""Revert a domain to a snapshot (its disks, memory and state).

The domain ends in the snapshot's state unless --running or --paused.
The current state of the domain is lost: take a snapshot first to keep it.

\b
Example:
  virtctl snapshot-revert web1 before-upgrade --running""")
@domain_arg()
@_name_arg()
@click.option("--current", is_flag=True, help="revert to current snapshot")
@click.option("--running", is_flag=True, help="after reverting, change state to running")
@click.option("--paused", is_flag=True, help="after reverting, change state to paused")
@click.option("--force", is_flag=True, help="try harder on risky reverts")
@click.option("--reset-nvram", is_flag=True, help="re-initialize NVRAM from its pristine template")
@pass_session
def snapshot_revert(session, domain, snapshotname, current, running, paused, force, reset_nvram):
    dom = session.domain(domain)
    snap = _lookup(session, dom, snapshotname, current)
    with session.context("Failed to revert snapshot {snapshot}", dom, snapshot=snap.name):
        snap.revert(running=running, paused=paused, force=force, reset_nvram=reset_nvram)
    _done(session, dom, "Domain snapshot {snapshot} reverted\n", "snapshot-reverted", snap.name)


@command("snapshot-delete", help="""Delete a snapshot; its children move to its parent.

--children deletes its descendants too, --children-only only them.

\b
Example:
  virtctl snapshot-delete web1 before-upgrade --children""")
@domain_arg()
@_name_arg()
@click.option("--current", is_flag=True, help="delete current snapshot")
@click.option("--children", is_flag=True, help="delete snapshot and all children")
@click.option("--children-only", is_flag=True, help="delete children but not snapshot")
@click.option("--metadata", is_flag=True, help="delete only libvirt metadata, leaving snapshot contents behind")
@pass_session
def snapshot_delete(session, domain, snapshotname, current, children, children_only, metadata):
    dom = session.domain(domain)
    snap = _lookup(session, dom, snapshotname, current)
    with session.context("Failed to delete snapshot {snapshot}", dom, snapshot=snap.name):
        snap.delete(children=children, children_only=children_only, metadata_only=metadata)
    msg = "Domain snapshot {snapshot} children deleted\n" if children_only else "Domain snapshot {snapshot} deleted\n"
    _done(session, dom, msg, "snapshot-deleted", snap.name, children=children, children_only=children_only)
