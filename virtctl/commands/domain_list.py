"""``list``: the domains, with virsh's filters and output forms."""
from __future__ import annotations

import click

from virtctl.api.types import DomainState
from virtctl.cli import output
from virtctl.cli.options import command, exclusive, option
from virtctl.cli.session import pass_session

_FILTERS = [
    ("inactive", "list inactive domains"),
    ("all", "list inactive & active domains"),
    ("transient", "list transient domains"),
    ("persistent", "list persistent domains"),
    ("with-snapshot", "list domains with existing snapshot"),
    ("without-snapshot", "list domains without a snapshot"),
    ("state-running", "list domains in running state"),
    ("state-paused", "list domains in paused state"),
    ("state-shutoff", "list domains in shutoff state"),
    ("state-other", "list domains in other states"),
    ("autostart", "list domains with autostart enabled"),
    ("no-autostart", "list domains with autostart disabled"),
    ("with-managed-save", "list domains with managed save state"),
    ("without-managed-save", "list domains without managed save"),
    ("uuid", "list uuid's only"),
    ("name", "list domain names only"),
    ("id", "list domain IDs only"),
    ("table", "list table (default)"),
    ("managed-save", "mark inactive domains with managed save state"),
    ("title", "show domain title"),
]


def _sort_key(dom):
    rec = dom.snapshot
    # virsh: active domains by id first, then inactive ones by name (case-insensitive)
    return (0, rec.id, "") if rec.id is not None else (1, 0, rec.name.lower())


def _tri(yes: bool, no: bool) -> bool | None:
    if yes and no:
        return None
    return True if yes else (False if no else None)


def _list(session, o: dict, conn=None):
    exclusive(table=o["table"], name=o["name"])
    exclusive(table=o["table"], uuid=o["uuid"])
    exclusive(table=o["table"], id=o["id"])
    active: bool | None = True
    if o["inactive"]:
        active = False
    if o["all"]:
        active = None
    states = None
    if o["state_running"] or o["state_paused"] or o["state_shutoff"] or o["state_other"]:
        states = set()
        if o["state_running"]:
            states.add(DomainState.RUNNING)
        if o["state_paused"]:
            states.add(DomainState.PAUSED)
        if o["state_shutoff"]:
            states.add(DomainState.SHUTOFF)
        if o["state_other"]:
            states.update({DomainState.NOSTATE, DomainState.BLOCKED, DomainState.SHUTDOWN,
                           DomainState.CRASHED, DomainState.PMSUSPENDED})
        if not o["inactive"] and not o["all"]:
            # as virsh 9.0: without --all, --state-shutoff means --inactive (the
            # other states given with it then show nothing); the others are active
            active = not o["state_shutoff"]
    doms = (conn or session.conn).domains(
        active=active,
        persistent=_tri(o["persistent"], o["transient"]),
        autostart=_tri(o["autostart"], o["no_autostart"]),
        managed_save=_tri(o["with_managed_save"], o["without_managed_save"]),
        has_snapshot=_tri(o["with_snapshot"], o["without_snapshot"]),
        states=states,
    )
    return sorted(doms, key=_sort_key)


def _state_text(rec, managed_save: bool) -> str:
    if managed_save and rec.managed_save and rec.state == DomainState.SHUTOFF:
        return "saved"
    return rec.state.text


def _options(f):
    for name, helptext in reversed(_FILTERS):
        f = click.option(f"--{name}", name.replace("-", "_"), is_flag=True, help=helptext)(f)
    return f


@command("list", help="""List domains.

By default only running domains are listed; --all adds inactive ones.
Filters combine (--all --persistent --state-running).

\b
Examples:
  virtctl list --all
  virtctl list --name --state-running
  virtctl --json list --all""")
@_options
@option("--remote", metavar="NAMES", completer="remote",
        help="list the domains of these named remotes of the config file (a comma list, or 'all'), "
             "in parallel, with a Host column")
@pass_session
def list_domains(session, **o):
    if o["remote"]:
        return _fleet(session, o)
    doms = _list(session, o)
    recs = [d.snapshot for d in doms]
    if session.json:
        session.emit({"domains": [r.to_json() for r in recs]})
        return
    if o["name"] or o["uuid"] or o["id"]:
        lines = []
        for r in recs:
            if o["id"] and not (o["name"] or o["uuid"]) and r.id is None:
                continue
            parts = []
            if o["uuid"]:
                parts.append(r.uuid)
            if o["id"]:
                parts.append(str(r.id) if r.id is not None else "-")
            if o["name"]:
                parts.append(r.name)
            lines.append(" ".join(parts))
        session.print("".join(line + "\n" for line in lines), end="")
        return
    headers = ["Id", "Name", "State"]
    rows = []
    for r in recs:
        row = [str(r.id) if r.id is not None else "-", r.name, _state_text(r, o["managed_save"])]
        if o["title"]:
            row.append(r.title.split("\n", 1)[0])
        rows.append(row)
    if o["title"]:
        headers.append("Title")
    session.print(output.table(headers, rows, header=not session.quiet), end="")


def _fleet(session, o: dict):
    """``list --remote web1,web2``: one table (or one JSON document) for every
    host; a host that fails is a row of its own and an error line, and makes
    the exit status 7 (CONNECT) once everything has been printed."""
    from virtctl.api.fleet import query, select_remotes
    from virtctl.errors import VirtError

    hosts = select_remotes(session.value("remote", o["remote"]))
    _list(session, o, conn=_NoConn())  # the options' own errors, before connecting
    results = query(hosts, lambda conn: [d.snapshot for d in _list(session, o, conn=conn)])
    failed = [r for r in results if r.error is not None]
    if session.json:
        hosts_out = []
        for r in results:
            entry = {"host": r.host, "uri": r.uri}
            if r.error is None:
                entry["domains"] = [rec.to_json() for rec in r.value]
            else:
                entry["error"] = r.error.to_json()
            hosts_out.append(entry)
        session.emit({"hosts": hosts_out})
    elif o["name"] or o["uuid"] or o["id"]:
        lines = []
        for r in results:
            for rec in r.value or ():
                if o["id"] and not (o["name"] or o["uuid"]) and rec.id is None:
                    continue
                parts = [r.host]
                if o["uuid"]:
                    parts.append(rec.uuid)
                if o["id"]:
                    parts.append(str(rec.id) if rec.id is not None else "-")
                if o["name"]:
                    parts.append(rec.name)
                lines.append(" ".join(parts))
        session.print("".join(line + "\n" for line in lines), end="")
    else:
        headers = ["Host", "Id", "Name", "State"] + (["Title"] if o["title"] else [])
        rows = []
        for r in results:
            if r.error is not None:
                rows.append([r.host, "-", "-", "error"] + ([""] if o["title"] else []))
                continue
            for rec in r.value:
                row = [r.host, str(rec.id) if rec.id is not None else "-", rec.name,
                       _state_text(rec, o["managed_save"])]
                if o["title"]:
                    row.append(rec.title.split("\n", 1)[0])
                rows.append(row)
        session.print(output.table(headers, rows, header=not session.quiet), end="")
    if failed:
        if not session.json:
            for r in failed:
                session.err.write(f"error: host '{r.host}': {r.error.message}\n")
        names = ", ".join(r.host for r in failed)
        exc = VirtError(f"{len(failed)} of {len(results)} hosts did not answer: {names}", code="CONNECT_FAILED",
                        detail={"hosts": [r.host for r in failed]})
        exc.reported = True
        raise exc


class _NoConn:
    """Stands in for a connection while the options are checked."""

    def domains(self, **kw):
        return []
