"""``console``: the terminal on a domain's serial console (also ``start --console``).

On a terminal: raw mode, both ways, until the escape character (``^]`` =
Ctrl+], or ``--escape``/``VIRTCTL_ESCAPE``) or until the domain stops; a
session that another ``console --force`` takes over fails (OPERATION_FAILED).
With stdin not a terminal (a pipe): stdin is sent, then output is copied
until it has been idle for ``--idle`` seconds (default 2) after stdin's end,
or the domain stops.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time

import click

from virtctl.cli.options import command, domain_arg, option
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg

DEFAULT_ESCAPE = "^]"


def parse_escape(text: str) -> int:
    """virsh's escape syntax: ``^X`` (Ctrl+X) or a single character."""
    if len(text) == 2 and text[0] == "^" and 0x40 <= ord(text[1].upper()) <= 0x5F:
        return ord(text[1].upper()) & 0x1F
    if len(text) == 1 and ord(text) < 0x80:
        return ord(text)
    raise InvalidArg(f"invalid escape sequence '{text}': use ^X (Ctrl+X) or one character")


def _describe(code: int, text: str) -> str:
    if code < 0x20:
        return f"{text} (Ctrl + {chr(code | 0x40)})"
    return text


def _write_out(session, data: bytes) -> None:
    buf = getattr(session.out, "buffer", None)
    if buf is not None:
        buf.write(data)
        buf.flush()
    else:
        session.out.write(data.decode("utf-8", errors="replace"))
        session.out.flush()


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None


def attach(session, dom, *, devname=None, force=False, safe=False, escape=None, idle=2.0) -> None:
    """Connect this terminal (or pipe) to ``dom``'s console until done."""
    esc_text = escape or session.escape or os.environ.get("VIRTCTL_ESCAPE") or DEFAULT_ESCAPE
    esc = parse_escape(esc_text)
    stream = dom.open_console(devname=devname, force=force, safe=safe)
    fd_in = _stdin_fd()
    tty = fd_in is not None and os.isatty(fd_in)
    if not session.json:
        session.extra(f"Connected to domain '{dom.name}'")
        session.extra(f"Escape character is {_describe(esc, esc_text)}")
        session.out.flush()
    stop = {"flag": False, "taken": False}
    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):  # another 'console --force' took over (drivers/qemu/console.py)
        stop["flag"] = stop["taken"] = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        if tty:
            _tty_loop(session, stream, fd_in, esc, stop)
            session.out.write("\n")
        else:
            _pipe_loop(session, stream, fd_in, esc, idle, stop)
    finally:
        signal.signal(signal.SIGTERM, old_term)
        stream.close()
    if stop["taken"]:
        from virtctl.errors import OperationFailed

        # virsh says "stream had I/O failure" (and fails too); say what happened
        raise OperationFailed(f"operation failed: the console of domain '{dom.name}' was taken over "
                              "by another session (console --force)")


def _from_guest(session, stream) -> bool:
    """Copy what the console socket has to our output; False at its EOF."""
    data = stream.recv(65536)
    if data:
        _write_out(session, data)
    return bool(data)


def _tty_loop(session, stream, fd_in: int, esc: int, stop) -> None:
    import termios
    import tty as ttymod

    saved = termios.tcgetattr(fd_in)
    try:
        ttymod.setraw(fd_in)
        sock_fd = stream.fileno()
        while not stop["flag"]:
            try:
                ready, _, _ = select.select([fd_in, sock_fd], [], [], 0.5)
            except InterruptedError:
                continue
            if sock_fd in ready and not _from_guest(session, stream):
                return
            if fd_in in ready:
                data = os.read(fd_in, 4096)
                if not data:
                    return
                if esc in data:
                    data = data[:data.index(esc)]
                    if data:
                        stream.sendall(data)
                    return
                stream.sendall(data)
    finally:
        termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)


def _pipe_loop(session, stream, fd_in: int | None, esc: int, idle: float, stop) -> None:
    sock_fd = stream.fileno()
    pending = b""
    in_open = True
    if fd_in is None:  # an in-memory stdin (tests): all of it at once
        text = sys.stdin.read() if sys.stdin is not None else ""
        pending = text.encode() if isinstance(text, str) else text
        in_open = False
    last_activity = time.monotonic()
    while not stop["flag"]:
        if pending:
            cut = pending.find(bytes([esc]))
            if cut >= 0:
                pending, in_open, stop["flag"] = pending[:cut], False, True
            if pending:
                stream.sendall(pending)
            pending = b""
            last_activity = time.monotonic()
            if stop["flag"]:
                break
        watch = [sock_fd] + ([fd_in] if in_open else [])
        try:
            ready, _, _ = select.select(watch, [], [], 0.1)
        except InterruptedError:
            continue
        if sock_fd in ready:
            if not _from_guest(session, stream):
                return
            last_activity = time.monotonic()
        if in_open and fd_in in ready:
            data = os.read(fd_in, 4096)
            if data:
                pending = data
            else:
                in_open = False
                last_activity = time.monotonic()
        if not in_open and not pending and time.monotonic() - last_activity >= idle:
            return
    # the escape character: drain what has already arrived
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        ready, _, _ = select.select([sock_fd], [], [], 0.05)
        if not ready or not _from_guest(session, stream):
            break


@command("console", help="""Connect to the serial console of a running domain.

Leave with the escape character, Ctrl+] by default (--escape or
VIRTCTL_ESCAPE: '^X' for Ctrl+X).  With input from a pipe, the input is
sent and the output copied until it has been quiet for --idle seconds.

\b
Examples:
  virtctl console web1
  echo uptime | virtctl console web1 --idle 5""")
@domain_arg(completer="domain:running")
@option("--devname", metavar="NAME", help="character device name (serial0, serial1, console0)",
        completer="none", positional=True)
@click.option("--force", is_flag=True, help="force console connection (disconnect already connected sessions)")
@click.option("--safe", is_flag=True, help="only connect if safe console handling is supported")
@option("--escape", metavar="SEQ", help="escape character (default: virtctl -e SEQ, $VIRTCTL_ESCAPE, ^])",
        completer="none")
@option("--idle", type=float, default=2.0, show_default=True, metavar="SECONDS",
        help="with a piped stdin: stop once the console is quiet this long after the input's end",
        completer="none")
@pass_session
def console(session, domain, devname, force, safe, escape, idle):
    if idle is not None and not idle >= 0:
        raise click.UsageError("--idle must be a number of seconds >= 0")
    dom = session.domain(domain)
    attach(session, dom, devname=devname, force=force, safe=safe, escape=escape, idle=idle)
