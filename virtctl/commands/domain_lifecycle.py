"""Commands that change whether and how a domain runs: start, create,
shutdown, reboot, reset, destroy (alias poweroff), suspend, resume."""
from __future__ import annotations

import click

from virtctl.api.domain import SHUTDOWN_MODES as _MODES
from virtctl.cli.options import EnumList, command, domain_arg, option, positional
from virtctl.cli.session import pass_session

# --mode acpi,agent: a tuple of modes, each checked (virsh's two messages differ by a comma)
SHUTDOWN_MODES = EnumList(_MODES, error="Unknown mode {value} value, expecting "
                                        "'acpi', 'agent', 'initctl', 'signal', or 'paravirt'")
REBOOT_MODES = EnumList(_MODES, error="Unknown mode {value} value, expecting "
                                      "'acpi', 'agent', 'initctl', 'signal' or 'paravirt'")


def _read_xml(path: str) -> str:
    from virtctl.xml import xmlapi

    return xmlapi.read_file(path).decode("utf-8", errors="surrogateescape")


@command("start", help="""Start a defined (inactive) domain.

With --all-autostart (instead of a domain), start every inactive domain
marked with 'autostart': what a boot-time service runs (see the README).

\b
Examples:
  virtctl start web1
  virtctl start web1 --paused
  virtctl -c qemu:///system start --all-autostart""")
@positional("domain", required=False, help="name of the inactive domain", completer="domain:inactive",
            required_unless="all-autostart")
@click.option("--all-autostart", is_flag=True, help="start every inactive domain marked autostart")
@click.option("--paused", is_flag=True, help="leave the guest paused after start")
@click.option("--autodestroy", is_flag=True, help="destroy the guest when virtctl's connection closes")
@click.option("--bypass-cache", is_flag=True, help="avoid the file system cache when restoring")
@click.option("--force-boot", is_flag=True, help="boot afresh, discarding any managed save state")
@click.option("--console", "attach_console", is_flag=True, help="attach to console after creation")
@pass_session
def start(session, domain, all_autostart, paused, autodestroy, bypass_cache, force_boot, attach_console=False):
    opts = dict(paused=paused, autodestroy=autodestroy, bypass_cache=bypass_cache, force_boot=force_boot)
    if all_autostart:
        if domain is not None:
            raise click.UsageError("Options --all-autostart and <domain> are mutually exclusive")
        _start_all_autostart(session, opts)
        return
    if domain is None:
        raise click.UsageError("command 'start' requires <domain> option (or --all-autostart)")
    dom = session.domain(domain)
    if dom.snapshot.active:  # virsh checks this itself, with its own words
        from virtctl.errors import OperationInvalid

        raise OperationInvalid("Domain is already active", detail={"domain": dom.name, "uuid": dom.uuid})
    with session.context("Failed to start domain '{name}'", dom):
        dom.start(**opts)
    session.done(dom, "Domain '{name}' started", "started")
    if attach_console:
        from virtctl.commands.domain_console import attach

        attach(session, dom)


def _start_all_autostart(session, opts: dict) -> None:
    """Start each inactive autostart domain; report each; fail if any failed."""
    from virtctl.errors import VirtError

    results, failed = [], []
    for dom in sorted(session.conn.domains(autostart=True, active=False), key=lambda d: d.name):
        try:
            dom.start(**opts)
        except VirtError as exc:
            failed.append(exc)
            results.append({"domain": dom.name, "uuid": dom.uuid, "result": "error", "error": exc.to_json()})
            if not session.json:
                session.err.write(f"error: Failed to start domain '{dom.name}'\nerror: {exc.message}\n")
            continue
        results.append({"domain": dom.name, "uuid": dom.uuid, "result": "ok"})
        if not session.json:
            session.extra(f"Domain '{dom.name}' started")
    if session.json:
        session.emit({"started": results})
    if failed:
        raise VirtError(f"{len(failed)} of {len(results)} autostart domains failed to start",
                        code=failed[0].code if len(failed) == len(results) else "OPERATION_FAILED")


@command("create", help="""Create and start a transient domain from an XML file.

The domain disappears when it stops; use 'define' then 'start' for one
that persists.

\b
Example:
  virtctl create guest.xml --paused""")
@positional("file", help="file containing an XML domain description", completer="file")
@click.option("--paused", is_flag=True, help="leave the guest paused after creation")
@click.option("--autodestroy", is_flag=True, help="destroy the guest when virtctl's connection closes")
@click.option("--validate", is_flag=True, help="validate the XML against the schema (always done)")
@pass_session
def create(session, file, paused, autodestroy, validate):
    xml = _read_xml(session.value("file", file))
    with session.context("Failed to create domain from {file}", file=file):
        dom = session.conn.create_domain(xml, source=file, paused=paused, autodestroy=autodestroy)
    session.done(dom, "Domain '{name}' created from {file}", "created", file=file)


@command("shutdown", help="""Ask a running domain to power off (ACPI power button by default).

The command returns once the request is delivered and the guest decides
when to stop, unless --wait is given: then it returns once the domain is
shut off, and with --timeout fails (exit status 9) if that takes longer.

\b
Examples:
  virtctl shutdown web1
  virtctl shutdown web1 --wait --timeout 60""")
@domain_arg(completer="domain:running")
@option("--mode", type=SHUTDOWN_MODES, positional=True,
        help="how to ask: acpi, agent, initctl, signal, paravirt (a comma list: several)")
@click.option("--wait", is_flag=True, help="return only once the domain is shut off")
@option("--timeout", type=float, metavar="SECONDS",
        help="with --wait: give up after SECONDS (implies --wait)", completer="none")
@pass_session
def shutdown(session, domain, mode, wait, timeout):
    if timeout is not None and not timeout > 0:
        raise click.UsageError(f"invalid timeout '{timeout:g}': must be a positive number of seconds")
    dom = session.domain(domain)
    waiting = wait or timeout is not None
    with session.context("Failed to shutdown domain '{domain}'", dom):
        dom.shutdown(mode=mode, wait=waiting, timeout=timeout)
    message = "Domain '{domain}' is shut off" if waiting else "Domain '{domain}' is being shutdown"
    session.done(dom, message, "shutdown", waited=waiting)


@command("reboot", help="""Ask a running domain to reboot.

\b
Example:
  virtctl reboot web1""")
@domain_arg(completer="domain:running")
@option("--mode", type=REBOOT_MODES, positional=True,
        help="how to ask: acpi, agent, initctl, signal, paravirt (a comma list: several)")
@pass_session
def reboot(session, domain, mode):
    dom = session.domain(domain)
    with session.context("Failed to reboot domain '{domain}'", dom):
        dom.reboot(mode=mode)
    session.done(dom, "Domain '{domain}' is being rebooted", "reboot")


@command("reset", help="""Reset a running domain at once, like pressing the reset button.

The guest's operating system is not asked; unsaved data in it is lost.

\b
Example:
  virtctl reset web1""")
@domain_arg(completer="domain:running")
@pass_session
def reset(session, domain):
    dom = session.domain(domain)
    with session.context("Failed to reset domain '{domain}'", dom):
        dom.reset()
    session.done(dom, "Domain '{domain}' was reset", "reset")


@command("destroy", help="""Power off a domain at once, like pulling the plug (alias: poweroff).

Despite its name this destroys nothing: the definition and the disks are
kept, and 'start' boots the domain again.  A transient domain disappears.

\b
Example:
  virtctl destroy web1""")
@domain_arg(completer="domain:active")
@click.option("--graceful", is_flag=True, help="terminate gracefully (no SIGKILL)")
@pass_session
def destroy(session, domain, graceful):
    dom = session.domain(domain)
    with session.context("Failed to destroy domain '{domain}'", dom):
        dom.destroy(graceful=graceful)
    session.done(dom, "Domain '{domain}' destroyed", "destroyed")


@command("suspend", help="""Pause a running domain; it keeps its memory and resumes with 'resume'.

\b
Example:
  virtctl suspend web1""")
@domain_arg(completer="domain:running")
@pass_session
def suspend(session, domain):
    dom = session.domain(domain)
    with session.context("Failed to suspend domain '{domain}'", dom):
        dom.suspend()
    session.done(dom, "Domain '{domain}' suspended", "suspended")


@command("resume", help="""Resume a paused domain.

\b
Example:
  virtctl resume web1""")
@domain_arg(completer="domain:paused")
@pass_session
def resume(session, domain):
    dom = session.domain(domain)
    with session.context("Failed to resume domain '{domain}'", dom):
        dom.resume()
    session.done(dom, "Domain '{domain}' resumed", "resumed")
