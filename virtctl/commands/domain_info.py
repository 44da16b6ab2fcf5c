"""Commands that look at one domain: dominfo, domstate, domid, domname,
domuuid, dumpxml, vcpucount, domblklist, domiflist."""
from __future__ import annotations

import click

from virtctl.cli import output
from virtctl.cli.options import command, domain_arg, live_config_current, mutually_exclusive, option
from virtctl.cli.session import pass_session
from virtctl.errors import OperationInvalid


def _dominfo_pairs(rec) -> list[tuple[str, str]]:
    pairs = [
        ("Id", str(rec.id) if rec.id is not None else "-"),
        ("Name", rec.name),
        ("UUID", rec.uuid),
        ("OS Type", rec.os_type),
        ("State", rec.state.text),
        ("CPU(s)", str(rec.vcpus)),
    ]
    if rec.cpu_time_ns:
        pairs.append(("CPU time", f"{rec.cpu_time_ns / 1e9:.1f}s"))
    pairs += [
        ("Max memory", f"{rec.max_memory_kib} KiB"),
        ("Used memory", f"{rec.memory_kib} KiB"),
        ("Persistent", "yes" if rec.persistent else "no"),
        ("Autostart", "enable" if rec.autostart else "disable"),
        ("Managed save", "yes" if rec.managed_save else "no"),
    ]
    sec = rec.extra.get("security")
    if sec and sec.get("model"):
        pairs += [("Security model", sec["model"]), ("Security DOI", sec.get("doi", ""))]
        if sec.get("label"):
            pairs.append(("Security label", f"{sec['label']} ({'enforcing' if sec.get('enforcing') else 'permissive'})"))
    return pairs


def _messages_text(rec) -> str:
    """virsh's "Messages:" lines (the first labelled, the rest under it)."""
    msgs = rec.extra.get("messages") or []
    return "".join(f"{'Messages:' if i == 0 else '':16}{m}\n" for i, m in enumerate(msgs))


@command("dominfo", help="""Show basic information about a domain.

\b
Example:
  virtctl dominfo web1""")
@domain_arg()
@pass_session
def dominfo(session, domain):
    rec = session.domain(domain).info()
    data = rec.to_json()
    data["security"] = rec.extra.get("security")
    data["messages"] = rec.extra.get("messages") or []
    session.emit(data, output.key_values(_dominfo_pairs(rec), width=16) + _messages_text(rec))


@command("domstate", help="""Show the state of a domain, and with --reason why it is in it.

\b
Example:
  virtctl domstate web1 --reason""")
@domain_arg()
@click.option("--reason", is_flag=True, help="also print the reason for the state")
@pass_session
def domstate(session, domain, reason):
    rec = session.domain(domain).info()
    text = rec.state.text + (f" ({rec.reason_text})" if reason else "")
    session.emit({"state": rec.state.key, "reason": rec.reason_text}, text + "\n")


@command("domid", help="Print the id of a running domain ('-' when it is not running).\n\n\b\nExample:\n  virtctl domid web1")
@domain_arg(help="domain name or uuid")
@pass_session
def domid(session, domain):
    rec = session.domain(domain, by_id=False).info()  # virsh: by name or UUID only
    session.emit({"id": rec.id}, (str(rec.id) if rec.id is not None else "-") + "\n")


@command("domname", help="Print the name of a domain given by id or UUID.\n\n\b\nExample:\n  virtctl domname 3")
@domain_arg(help="domain id or uuid")
@pass_session
def domname(session, domain):
    dom = session.domain(domain, by_name=False)  # virsh: by id or UUID only
    session.emit({"name": dom.name}, dom.name + "\n")


@command("domuuid", help="Print the UUID of a domain given by name or id.\n\n\b\nExample:\n  virtctl domuuid web1")
@domain_arg(help="domain id or name")
@pass_session
def domuuid(session, domain):
    dom = session.domain(domain, by_uuid=False)  # virsh: by id or name only
    session.emit({"uuid": dom.uuid}, dom.uuid + "\n")


@command("dumpxml", help="""Print the XML definition of a domain.

Running domains show their live definition; --inactive shows the one the
next boot will use.  Secrets (e.g. VNC passwords) are only shown with
--security-info, which a read-only connection may not use.

\b
Examples:
  virtctl dumpxml web1 > web1.xml
  virtctl dumpxml web1 --xpath '//disk/source/@file'""")
@domain_arg()
@click.option("--inactive", is_flag=True, help="show the inactive (persistent) definition")
@click.option("--security-info", is_flag=True, help="include security sensitive information")
@click.option("--update-cpu", is_flag=True, help="update guest CPU according to host CPU")
@click.option("--migratable", is_flag=True, help="provide XML suitable for migrations")
@option("--xpath", metavar="EXPR", help="print the results of an XPath expression instead", completer="none")
@click.option("--wrap", is_flag=True, help="wrap the --xpath results in a <nodes> element")
@pass_session
def dumpxml(session, domain, inactive, security_info, update_cpu, migratable, xpath, wrap):
    text = session.domain(domain).xml(inactive=inactive, security_info=security_info,
                                      update_cpu=update_cpu, migratable=migratable)
    if xpath is None:
        session.emit({"xml": text}, text)
        return
    if xpath == "":  # virsh fails here too, without saying why
        from virtctl.errors import InvalidArg

        raise InvalidArg("Failed to get option 'xpath': Option argument is empty", detail={"option": "xpath"})
    from virtctl.commands.dumpxml_xpath import render
    from virtctl.xml import xmlapi

    result = render(xmlapi.parse(text), xpath, wrap)
    if result.warning:  # an invalid expression: libxml2's words, and success, as in virsh
        session.err.write(result.warning)
    session.emit({"results": result.results}, result.text)


@command("vcpucount", help="""Show the number of virtual CPUs of a domain.

With no option prints the maximum and current counts of the persistent
definition and, when running, of the live domain.

\b
Example:
  virtctl vcpucount web1 --live --active""")
@domain_arg()
@click.option("--maximum", is_flag=True, help="get maximum count of vcpus")
@click.option("--active", is_flag=True, help="get number of currently active vcpus")
@live_config_current(current_exclusive=False)
@click.option("--guest", is_flag=True, help="count vcpus from the guest's point of view")
@mutually_exclusive("live", "config")
@mutually_exclusive("current", "live", when_any=("maximum", "active"))
@mutually_exclusive("current", "config", when_any=("maximum", "active"))
@mutually_exclusive("active", "maximum")
@mutually_exclusive("guest", "config")
@pass_session
def vcpucount(session, domain, maximum, active, config, live, current, guest):
    dom = session.domain(domain)
    if guest:
        with session.context("Failed to retrieve vCPU count from the guest", dom):
            n = dom.vcpu_count(guest=True).live_current
        session.emit({"count": n, "kind": "current", "state": "guest"}, f"{n}\n")
        return
    c = dom.vcpu_count()
    if not (maximum or active or live or config or current):
        rows = [(kind, state, n) for kind, state, n in (
            ("maximum", "config", c.config_maximum), ("maximum", "live", c.live_maximum),
            ("current", "config", c.config_current), ("current", "live", c.live_current))
            if n is not None]  # no config rows for a transient domain, no live ones when off
        session.emit(c.to_json(), "".join(f"{a:<12} {b:<12} {n:>3}\n" for a, b, n in rows))
        return
    use_live = live or (not config and c.live_maximum is not None)
    if use_live and c.live_maximum is None:
        raise OperationInvalid("Requested operation is not valid: domain is not running")
    if not use_live and c.config_maximum is None:
        raise OperationInvalid("Requested operation is not valid: "
                               "transient domains do not have any persistent config")
    if use_live:
        n = c.live_maximum if maximum else c.live_current
    else:
        n = c.config_maximum if maximum else c.config_current
    session.emit({"count": n, "kind": "maximum" if maximum else "current",
                  "state": "live" if use_live else "config"}, f"{n}\n")


def _definition(session, domain, inactive):
    from virtctl.xml.domain import DomainDef

    xml = session.domain(domain).xml(inactive=inactive)
    return DomainDef.parse(xml, source=f"domain '{domain}'", validate=False)


@command("domblklist", help="""List the block devices (disks) of a domain.

\b
Example:
  virtctl domblklist web1 --details""")
@domain_arg()
@click.option("--inactive", is_flag=True, help="get inactive rather than running configuration")
@click.option("--details", is_flag=True, help="additionally display the type and device value")
@pass_session
def domblklist(session, domain, inactive, details):
    disks = _definition(session, domain, inactive).disks()
    if session.json:
        session.emit({"disks": [{"type": d.type, "device": d.device, "target": d.target,
                                 "source": d.source} for d in disks]})
        return
    if details:
        headers = ["Type", "Device", "Target", "Source"]
        rows = [[d.type, d.device, d.target or "-", d.source or "-"] for d in disks]
    else:
        headers = ["Target", "Source"]
        rows = [[d.target or "-", d.source or "-"] for d in disks]
    session.print(output.table(headers, rows, header=not session.quiet), end="")


@command("domiflist", help="""List the network interfaces of a domain.

\b
Example:
  virtctl domiflist web1""")
@domain_arg()
@click.option("--inactive", is_flag=True, help="get inactive rather than running configuration")
@pass_session
def domiflist(session, domain, inactive):
    ifaces = _definition(session, domain, inactive).interfaces()
    if session.json:
        session.emit({"interfaces": [{"interface": i.target, "type": i.type, "source": i.source,
                                      "model": i.model, "mac": i.mac} for i in ifaces]})
        return
    headers = ["Interface", "Type", "Source", "Model", "MAC"]
    rows = [[i.target or "-", i.type, i.source or "-", i.model or "-", i.mac or "-"] for i in ifaces]
    session.print(output.table(headers, rows, header=not session.quiet), end="")
