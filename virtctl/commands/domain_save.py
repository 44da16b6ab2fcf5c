"""Saving memory state: save, restore, managedsave, managedsave-remove."""
from __future__ import annotations

import contextlib

import click

from virtctl.cli.options import command, domain_arg, exclusive, positional
from virtctl.cli.session import pass_session


@contextlib.contextmanager
def progress_bar(session, what: str):
    """A ``progress(done, total)`` callback: a rich progress bar when stderr is a
    terminal (and not --json/-q), else None.  rich is imported only then."""
    err = session.err
    try:
        tty = err.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty or session.json or session.quiet:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=Console(file=err), transient=True) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def _state_flags(f):
    f = click.option("--paused", is_flag=True, help="leave the guest paused on restore")(f)
    f = click.option("--running", is_flag=True, help="leave the guest running on restore")(f)
    return f


@command("save", help="""Save a running domain's memory state to a file and stop it.

The domain is shut off (reason 'saved'); 'restore FILE' resumes it where it
was.  Disks are not part of the image: do not change them in between.
On failure the file is removed and the domain goes on running.

\b
Example:
  virtctl save web1 /var/tmp/web1.save""")
@domain_arg(completer="domain:active")
@positional("file", help="where to save the data", completer="file")
@click.option("--bypass-cache", is_flag=True, help="avoid the file system cache when saving")
@_state_flags
@click.option("--verbose", is_flag=True, help="display the progress of save (shown on a terminal anyway)")
@pass_session
def save(session, domain, file, bypass_cache, running, paused, verbose):
    exclusive(running=running, paused=paused)
    dom = session.domain(domain)
    session.value("file", file)
    with session.context("Failed to save domain '{domain}' to {file}", dom, file=file), \
            progress_bar(session, f"Save: {dom.name}") as progress:
        dom.save(file, running=running, paused=paused, bypass_cache=bypass_cache, progress=progress)
    session.done(dom, "\nDomain '{domain}' saved to {file}", "saved", file=file)


@command("restore", help="""Restore a domain from a file written by 'save'.

The domain runs the definition saved in the file; one that is not defined
comes back as a transient domain.

\b
Example:
  virtctl restore /var/tmp/web1.save --paused""")
@positional("file", help="the state to restore", completer="file")
@click.option("--bypass-cache", is_flag=True, help="avoid the file system cache when restoring")
@_state_flags
@pass_session
def restore(session, file, bypass_cache, running, paused):
    exclusive(running=running, paused=paused)
    session.value("file", file)
    with session.context("Failed to restore domain from {file}", file=file), \
            progress_bar(session, "Restore") as progress:
        dom = session.conn.restore_domain(file, running=running, paused=paused, bypass_cache=bypass_cache,
                                          progress=progress)
    session.done(dom, "Domain restored from {file}", "restored", file=file)


@command("managedsave", help="""Save a running domain's memory state where virtctl keeps it.

The next 'start' resumes from it (reason 'restored') and removes it;
'start --force-boot' discards it; 'managedsave-remove' removes it.

\b
Example:
  virtctl managedsave web1""")
@domain_arg(completer="domain:active")
@click.option("--bypass-cache", is_flag=True, help="avoid the file system cache when saving")
@_state_flags
@click.option("--verbose", is_flag=True, help="display the progress of save (shown on a terminal anyway)")
@pass_session
def managedsave(session, domain, bypass_cache, running, paused, verbose):
    exclusive(running=running, paused=paused)
    dom = session.domain(domain)
    with session.context("Failed to save domain '{domain}' state", dom), \
            progress_bar(session, f"Managedsave: {dom.name}") as progress:
        dom.managed_save(running=running, paused=paused, bypass_cache=bypass_cache, progress=progress)
    session.done(dom, "\nDomain '{domain}' state saved", "managed-saved")


@command("managedsave-remove", help="Remove the managed save image of a domain.\n\n\b\nExample:\n  virtctl managedsave-remove web1")
@domain_arg(completer="domain:inactive")
@pass_session
def managedsave_remove(session, domain):
    dom = session.domain(domain)
    with session.context("Failed to remove managed save image for domain '{domain}'", dom):
        removed = dom.managed_save_remove()
    msg = ("Removed managedsave image for domain '{domain}'" if removed
           else "Domain '{domain}' has no manage save image; removal skipped")
    # virsh's messages here end with the command's closing empty line only
    session.done(dom, msg, "managedsave-remove", end="", removed=removed)

