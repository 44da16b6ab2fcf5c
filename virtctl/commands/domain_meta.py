"""Metadata and small commands: desc, metadata, vncdisplay, ttyconsole,
inject-nmi, dompmsuspend, dompmwakeup, send-process-signal."""
from __future__ import annotations

import click

from virtctl.cli.options import (Number, argument, command, domain_arg, live_config_current, mutually_exclusive,
                                 option, positional)
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg, VirtError


def _no_metadata(exc: VirtError) -> bool:
    return (exc.detail or {}).get("reason") == "no metadata"


def _edit_text(session, text: str) -> str:
    """The text after the user's editor changed it ($VISUAL, $EDITOR, else vi)."""
    import os
    import shlex
    import subprocess
    import tempfile

    from virtctl.errors import OperationFailed

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    fd, path = tempfile.mkstemp(prefix="virtctl", suffix=".txt")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        rc = subprocess.call([*shlex.split(editor), path])
        if rc != 0:
            raise OperationFailed(f"internal error: Child process ({editor} {path}) unexpected exit status {rc}")
        with open(path) as f:
            return f.read()
    finally:
        os.unlink(path)


@command("desc", help="""Show or set a domain's description or title.

With a new text (words or --new-desc) it is set; an empty one removes it.
--live/--config choose the definition (both: both); --edit opens the
current text in $EDITOR.

\b
Examples:
  virtctl desc web1 --title 'front end'
  virtctl desc web1 --config the web server of the shop
  virtctl desc web1""")
@domain_arg()
@live_config_current
@click.option("--title", is_flag=True, help="modify/get the title instead of description")
@click.option("--edit", is_flag=True, help="open an editor to modify the description")
@option("--new-desc", metavar="TEXT", help="message", completer="none", empty_ok=True)
@argument("words", nargs=-1, completer="none")
@pass_session
def desc(session, domain, current, live, config, title, edit, new_desc, words):
    dom = session.domain(domain)
    kind = "title" if title else "description"
    what = "title" if title else "description"
    parts = ([new_desc] if new_desc is not None else []) + list(words)
    text = " ".join(parts) if parts else None
    if text is None and not edit:
        # virsh reads the (inactive with --config) XML: --live is no filter here
        try:
            value = dom.metadata(kind, config=config)
        except VirtError as exc:
            if not _no_metadata(exc):
                raise
            value = ""
        if value:
            session.emit({"domain": dom.name, "uuid": dom.uuid, kind: value}, value + "\n")
        else:
            session.emit({"domain": dom.name, "uuid": dom.uuid, kind: None},
                         f"No {what} for domain: {dom.name}\n")
        session.line_done = True
        return
    if edit:
        try:
            old = text if text is not None else dom.metadata(kind, config=config)
        except VirtError as exc:
            if not _no_metadata(exc):
                raise
            old = ""
        text = _edit_text(session, old).rstrip("\n") if not title else _edit_text(session, old).strip("\n")
        if text == old:
            session.emit({"domain": dom.name, "uuid": dom.uuid, kind: text, "changed": False},
                         f"Domain {what} not changed\n")
            session.line_done = True
            return
    with session.context(f"Failed to set new domain {what}", dom):
        dom.set_metadata(kind, text, live=live, config=config)
    session.emit({"domain": dom.name, "uuid": dom.uuid, kind: text or None, "changed": True},
                 f"Domain {what} updated successfully\n")
    session.line_done = True


@command("metadata", help="""Show or set a domain's custom XML metadata: the element of namespace URI.

--set XML (with --key PREFIX) replaces that namespace's element, --remove
removes it; without either the element is printed.

\b
Examples:
  virtctl metadata web1 http://example.org/app --key app --set '<app><tier>web</tier></app>'
  virtctl metadata web1 http://example.org/app""")
@domain_arg()
@positional("uri", help="URI of the namespace", completer="none")
@live_config_current
@option("--key", metavar="PREFIX", help="key to be used as a namespace identifier", completer="none")
@option("--set", "set_", metavar="XML", help="new metadata to set", completer="none")
@click.option("--remove", is_flag=True, help="remove the metadata corresponding to an uri")
@click.option("--edit", is_flag=True, help="use an editor to change the metadata")
@mutually_exclusive("edit", "set")
@mutually_exclusive("remove", "set")
@mutually_exclusive("remove", "edit")
@pass_session
def metadata(session, domain, uri, current, live, config, key, set_, remove, edit):
    dom = session.domain(domain)
    if set_ is not None or remove or edit:
        if (set_ is not None or edit) and not key:
            raise InvalidArg("namespace key is required when modifying metadata")
        value = set_
        if edit:
            try:
                old = dom.metadata("element", uri=uri, live=live, config=config)
            except VirtError as exc:
                if not _no_metadata(exc):
                    raise
                old = ""
            value = _edit_text(session, old + "\n" if old else "").strip()
            if value == old:
                session.emit({"domain": dom.name, "uuid": dom.uuid, "uri": uri, "changed": False},
                             "Metadata not changed\n")
                return
        dom.set_metadata("element", None if remove else value, key=key, uri=uri, live=live, config=config)
        session.emit({"domain": dom.name, "uuid": dom.uuid, "uri": uri, "key": key,
                      "metadata": None if remove else value, "changed": True},
                     "Metadata removed\n" if remove else "Metadata modified\n")
        return
    text = dom.metadata("element", uri=uri, live=live, config=config)
    session.emit({"domain": dom.name, "uuid": dom.uuid, "uri": uri, "metadata": text}, text + "\n")


def _live_xml(dom):
    from virtctl.xml import xmlapi

    return xmlapi.parse(dom.xml(), source="the live definition")


@command("vncdisplay", help="""Print the VNC display (address:display) of a running domain.

\b
Example:
  virtctl vncdisplay web1        # 127.0.0.1:0""")
@domain_arg(completer="domain:running")
@pass_session
def vncdisplay(session, domain):
    from virtctl.errors import OperationFailed, OperationInvalid

    dom = session.domain(domain)
    if not dom.info().state.active:
        raise OperationInvalid("Domain is not running")
    root = _live_xml(dom)
    g = root.find("devices/graphics[@type='vnc']")
    port = g.get("port") if g is not None else None
    try:
        n = int(port) - 5900 if port is not None else -1
    except ValueError:
        n = -1
    if g is None or n < 0:
        raise OperationFailed("Failed to get VNC port. Is this domain using VNC?")
    listen = g.get("listen")
    el = g.find("listen[@type='address']")
    if el is not None and el.get("address"):
        listen = el.get("address")
    text = f":{n}" if not listen or listen == "0.0.0.0" else f"{listen}:{n}"
    session.emit({"domain": dom.name, "address": listen, "display": n, "port": n + 5900}, text + "\n")


@command("ttyconsole", help="""Print the host device (pty) of a domain's console.

Exits 1 without a message when the console is no pty (as virsh).

\b
Example:
  virtctl ttyconsole web1        # /dev/pts/3""")
@domain_arg()
@pass_session
def ttyconsole(session, domain):
    dom = session.domain(domain)
    root = _live_xml(dom)
    tty = None
    for el in root.findall("devices/console"):
        tty = el.get("tty")
        if tty:
            break
    if not tty and session.conn.driver_name == "qemu" and root.find("devices/console") is not None \
            and dom.info().state.active:
        from virtctl.errors import OperationFailed

        raise OperationFailed(f"the console of domain '{dom.name}' is no pty: the QEMU driver gives it a "
                              f"unix socket instead (use 'virtctl console {dom.name}')",
                              detail={"domain": dom.name, "reason": "console is a socket"})
    if not tty:
        if session.json:
            session.emit({"domain": dom.name, "tty": None})
        raise click.exceptions.Exit(1)  # virsh: failure without a message
    session.emit({"domain": dom.name, "tty": tty}, tty + "\n")


@command("inject-nmi", help="""Inject a non-maskable interrupt into a running guest.

\b
Example:
  virtctl inject-nmi web1""")
@domain_arg(completer="domain:running")
@pass_session
def inject_nmi(session, domain):
    dom = session.domain(domain)
    dom.inject_nmi()
    session.done(dom, "", "inject-nmi")  # virsh prints nothing


@command("dompmsuspend", help="""Suspend a running guest to memory, disk or both (power management, with the guest's help).

\b
Example:
  virtctl dompmsuspend web1 mem""")
@domain_arg(completer="domain:running")
@positional("target", help="mem(Suspend-to-RAM), disk(Suspend-to-Disk), hybrid(Hybrid-Suspend)",
            completer="enum:mem|disk|hybrid")
@option("--duration", type=Number(minimum=0), default=0, metavar="SECONDS", help="duration in seconds",
        completer="none")
@pass_session
def dompmsuspend(session, domain, target, duration):
    if target not in ("mem", "disk", "hybrid"):
        raise InvalidArg("Invalid target", detail={"target": target})
    dom = session.domain(domain)
    with session.context("Domain '{domain}' could not be suspended", dom):
        dom.pm_suspend(target, duration=duration)
    session.done(dom, "Domain '{domain}' successfully suspended", "dompmsuspend", target=target)


@command("dompmwakeup", help="""Wake a guest up from its power-management suspended state.

\b
Example:
  virtctl dompmwakeup web1""")
@domain_arg()
@pass_session
def dompmwakeup(session, domain):
    dom = session.domain(domain)
    with session.context("Domain '{domain}' could not be woken up", dom):
        dom.pm_wakeup()
    session.done(dom, "Domain '{domain}' successfully woken up", "dompmwakeup")


_SIGNALS = ("nop", "hup", "int", "quit", "ill", "trap", "abrt", "bus", "fpe", "kill", "usr1", "segv", "usr2",
            "pipe", "alrm", "term", "stkflt", "chld", "cont", "stop", "tstp", "ttin", "ttou", "urg", "xcpu",
            "xfsz", "vtalrm", "prof", "winch", "poll", "pwr", "sys") + tuple(f"rt{i}" for i in range(33))


def parse_signal(text: str) -> int:
    """virsh's signal argument: a number, or a name (``kill``, ``sigkill``, ``SIGTERM``)."""
    s = text.strip()
    body = s[1:] if s[:1] in "+-" else s
    if body.isdigit():
        return int(s)
    low = s.lower()
    if low.startswith("sig"):
        low = low[3:]
    if low in _SIGNALS:
        return _SIGNALS.index(low)
    raise InvalidArg(f"malformed signal name: {text}", detail={"signame": text})


@command("send-process-signal", help="""Send a signal to a process of a domain (test driver; libvirt's containers).

SIGNAME: a number or a name (kill, term, sigterm, ...).

\b
Example:
  virtctl send-process-signal web1 1 term""")
@domain_arg()
@positional("pid", help="the process ID", completer="none")
@positional("signame", help="the signal number or name", completer="none")
@pass_session
def send_process_signal(session, domain, pid, signame):
    try:
        pid_n = int(pid)
    except ValueError:
        raise InvalidArg(f"malformed PID value: {pid}") from None
    signum = parse_signal(signame)
    dom = session.domain(domain)
    dom.send_process_signal(pid_n, signum)
    session.done(dom, "", "send-process-signal", pid=pid_n, signum=signum)
