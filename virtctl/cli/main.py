"""The ``virtctl`` entry point: global options, then one command, a command
string of several, or the interactive shell.

    virtctl [OPTIONS] COMMAND [ARGS]...      one command
    virtctl [OPTIONS] 'CMD ARGS; CMD ARGS'   a command string (virsh's rules)
    virtctl [OPTIONS]                        the shell (stdin a TTY) or
                                             commands read from stdin

Global options are parsed here by hand, not by click: they are few, and
doing so keeps the start-up of every one-shot command cheap.  Only this
module calls ``sys.exit``.

Stages, as in virsh: a command string is parsed whole first (a syntax
error runs none of its commands and prints nothing on stdout); then the
connection is opened if a command needs one (a failure ends the run, as
virsh's start-up connection does); then each command runs, and after each
one -- failed or not -- virsh's empty line is printed on stdout (not with
``-q`` or ``--json``; not after ``echo``, whose own line ends there; with
``-t`` a timing line instead).  ``quit``/``exit`` end the string there.
"""
from __future__ import annotations

import os
import sys

from virtctl.errors import ExitStatus, VirtError

USAGE = """\
Usage: virtctl [OPTIONS] [COMMAND_STRING]
       virtctl [OPTIONS] COMMAND [ARGS]...

Manage virtual machines, like virsh, without a daemon.

Options:
  -c, --connect URI   hypervisor connection URI; without it, the first set of:
                      $VIRTCTL_DEFAULT_URI, $VIRSH_DEFAULT_CONNECT_URI,
                      $LIBVIRT_DEFAULT_URI, uri_default in libvirt.conf
                      ($XDG_CONFIG_HOME/libvirt/libvirt.conf), 'uri' in
                      $XDG_CONFIG_HOME/virtctl/config.toml, then
                      qemu:///session (qemu:///system as root)
  -r, --readonly      connect read-only
  -q, --quiet         quiet mode: no informational messages or table headers
  -j, --json          print data and errors as JSON (also after a command:
                      'virtctl list --all --json')
  -t, --timing        print the time each command took
  -e, --escape SEQ    escape sequence of 'console' (default ^])
  -k, --keepalive-interval N   accepted for virsh's sake; no effect
  -K, --keepalive-count N   accepted for virsh's sake; no effect
  -v, --version[=short|long]   print virtctl's version and exit
  -V                  print virtctl's version and drivers and exit
  -h, --help          print this help and exit

virsh's -d/--debug and -l/--log are refused (exit status 6).
Run 'virtctl help' for the list of commands, 'virtctl help COMMAND' for one.
"""

# long option -> (short letter, takes an argument); virsh's getopt table plus --json
_LONG = {
    "connect": ("c", True), "debug": ("d", True), "escape": ("e", True), "help": ("h", False),
    "keepalive-interval": ("k", True), "keepalive-count": ("K", True), "log": ("l", True),
    "quiet": ("q", False), "readonly": ("r", False), "timing": ("t", False), "version": ("v", False),
    "json": ("j", False),
}
_SHORT = {s: (name, arg) for name, (s, arg) in _LONG.items()}
_SHORT["V"] = ("version", False)


class Options:
    def __init__(self):
        self.uri: str | None = None
        self.readonly = False
        self.quiet = False
        self.json = False
        self.timing = False
        self.escape: str | None = None
        self.action: str | None = None  # "usage", "version", "version-long"
        self.args: list[str] = []


def _usage(message: str) -> VirtError:
    return VirtError(message, code="USAGE")


def _refused(letter: str, name: str, why: str) -> VirtError:
    return VirtError(f"virsh's option '-{letter}' (--{name}) is not supported by virtctl: {why}",
                     code="NOT_SUPPORTED", detail={"option": f"--{name}"})


def _apply_global(o: Options, name: str, value: str | None, shown: str) -> None:
    """One global option (``shown`` as typed, for messages)."""
    if name == "connect":
        o.uri = value
    elif name == "readonly":
        o.readonly = True
    elif name == "quiet":
        o.quiet = True
    elif name == "json":
        o.json = True
    elif name == "timing":
        o.timing = True
    elif name == "help":
        o.action = o.action or "usage"
    elif name == "version":
        # virsh: --version=long (or -V) is the long form, anything else the short one
        o.action = o.action or ("version-long" if value == "long" else "version")
    elif name == "escape":
        from virtctl.commands.domain_console import parse_escape

        try:
            if value == "^":
                raise ValueError
            parse_escape(value)
        except (VirtError, ValueError):
            raise VirtError(f"Invalid string '{value}' for escape sequence", code="INVALID_ARG") from None
        o.escape = value
    elif name in ("keepalive-interval", "keepalive-count"):
        letter = _LONG[name][0]
        s = value.strip()
        if not (s.lstrip("+-").isascii() and s.lstrip("+-").isdigit()):
            raise VirtError(f"Invalid value for option -{letter}", code="INVALID_ARG")
        if int(s) < 0:
            raise VirtError(f"option -{letter} requires a positive integer argument", code="INVALID_ARG")
        # virtctl has no remote connection to keep alive: accepted, validated, no effect
    elif name == "debug":
        raise _refused("d", name, "set VIRTCTL_DEBUG=1 to see the traceback of an internal error")
    elif name == "log":
        raise _refused("l", name, "it writes no log file")
    else:  # pragma: no cover - the tables above are the whole list
        raise _usage(f"unsupported option '{shown}'. See --help.")


def parse_global(argv: list[str]) -> Options:
    """Parse the options before the command, as virsh's getopt does: short
    options may be grouped (``-qr``, ``-cURI``), long ones abbreviated
    (``--conn``) or given ``--opt=value``; the first word that is not an
    option starts the command.  Raise VirtError (USAGE, INVALID_ARG, or
    NOT_SUPPORTED for virsh's options virtctl refuses)."""
    o = Options()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        i += 1
        if a.startswith("--"):
            key, eq, inline = a[2:].partition("=")
            matches = [n for n in _LONG if n.startswith(key)] if key else []
            if key in _LONG:
                matches = [key]
            if len(matches) != 1:
                raise _usage(f"unsupported option '{a}'. See --help.")
            name = matches[0]
            letter, takes = _LONG[name]
            value = None
            if name == "version":
                value = inline if eq else None
            elif takes:
                if eq:
                    value = inline
                elif i < len(argv):
                    value, i = argv[i], i + 1
                else:
                    raise _usage(f"option '-{letter}'/'--{name}' requires an argument")
            elif eq:
                raise _usage(f"option '--{name}' doesn't allow an argument")
            _apply_global(o, name, value, a)
            continue
        j = 1
        while j < len(a):
            letter = a[j]
            j += 1
            if letter not in _SHORT:
                raise _usage(f"unsupported option '-{letter}'. See --help.")
            name, takes = _SHORT[letter]
            value = None
            if takes:
                if j < len(a):
                    value, j = a[j:], len(a)
                elif i < len(argv):
                    value, i = argv[i], i + 1
                else:
                    raise _usage(f"option '-{letter}'/'--{name}' requires an argument")
            if letter == "V":
                value = "long"
            _apply_global(o, name, value, f"-{letter}")
    o.args = argv[i:]
    return o


# --- reporting ------------------------------------------------------------------------


def report_error(session, exc: VirtError) -> int:
    if session.json:
        from virtctl.cli.output import to_json

        session.err.write(to_json({"error": exc.to_json()}))
    elif not exc.reported:
        # virsh's two lines where it has them: what failed, then why
        lines = [exc.context, exc.message] if exc.context else [exc.message]
        prefix = "\x1b[1;31merror:\x1b[0m " if _colour(session.err) else "error: "
        session.err.write("".join(f"{prefix}{line}\n" for line in lines))
    return exc.exit_status


def report(session, exc: VirtError) -> int:
    """report_error, then what virsh prints on further lines: the other
    errors of the same failure (``detail["more"]``: every missing option,
    libvirt's reason) and, for a typo, the nearest commands."""
    status = report_error(session, exc)
    if not session.json:
        for line in exc.detail.get("more", ()):
            session.err.write(f"error: {line}\n")
        hints = exc.detail.get("suggestions")
        if hints:
            session.err.write("hint: did you mean " + " or ".join(f"'{h}'" for h in hints) + "?\n")
    return status


def _colour(stream) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _click_error(name: str, exc) -> VirtError:
    """click exceptions a command's body raises (click.UsageError) as VirtError."""
    import click

    if isinstance(exc, click.BadParameter):
        return VirtError(exc.format_message(), code="INVALID_ARG")
    return VirtError(exc.format_message(), code="USAGE")


# --- parse, connect, run ---------------------------------------------------------------


def _wants_json(argv: list[str]) -> bool:
    """``--json`` among a command's options (before any lone ``--``)."""
    words = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    return "--json" in words


def parse_command(session, argv: list[str]):
    """Resolve and parse one command: ``(name, ctx)``; raise VirtError
    (USAGE in virsh's words; NOT_SUPPORTED for a virsh command virtctl lacks).

    As in virsh, a command string is parsed whole before anything runs, so
    a typo in its third command runs none of them."""
    from virtctl.cli import tree

    name = argv[0]
    cmd = tree.root().get_command(None, name)
    if cmd is None:
        from virtctl.commands.virsh_names import unknown_command

        raise unknown_command(name)
    ctx = cmd.make_context(f"virtctl {cmd.name}", list(argv[1:]), obj=session)
    return cmd.name, ctx


def _open_connection(session, parsed) -> VirtError | None:
    """Open the connection before the first command that needs one, as
    virsh connects at start-up; a ``connect`` first makes its own."""
    from virtctl.commands import NO_CONNECTION

    if getattr(session, "_conn", None) is not None:
        return None
    for name, _ctx in parsed:
        if name == "connect":
            return None
        if _ctx.params.get("remote"):  # list --remote: connects to those hosts only
            continue
        if name not in NO_CONNECTION:
            try:
                session.conn  # noqa: B018 - open it now
            except VirtError as exc:
                return exc
            return None
    return None


def _invoke(session, name: str, ctx) -> int:
    """Run one parsed command; report its error; return its exit status."""
    import click

    try:
        with ctx:
            ctx.command.invoke(ctx)
    except VirtError as exc:
        return report(session, exc)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return report(session, _click_error(name, exc))
    except click.exceptions.Abort:
        return report(session, VirtError("aborted", code="OPERATION_FAILED"))
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # a bug: say so plainly, keep the shell alive
        if os.environ.get("VIRTCTL_DEBUG"):
            import traceback

            traceback.print_exc(file=session.err)
        return report(session, VirtError(f"internal error: {type(exc).__name__}: {exc}"))
    return int(ExitStatus.OK)


def execute(session, name: str, ctx) -> int:
    """Run one parsed command and return its exit status; then virsh's
    empty line (or, with -t, the timing line)."""
    from virtctl.cli.options import PARSED_KEY

    parsed = ctx.meta.get(PARSED_KEY)
    was_json = session.json
    session.json = was_json or bool(parsed is not None and parsed.json)  # `COMMAND ... --json`
    try:
        if session.timing:
            import time

            started = time.perf_counter()
        status = _invoke(session, name, ctx)
        if name in ("quit", "shell"):  # nothing more to say after these
            return int(status)
        # a successful echo ended its own line; so does virsh's net-update
        line_done = (name in ("echo", "net-update") or session.__dict__.pop("line_done", False)) and not status
        if session.timing:
            elapsed = (time.perf_counter() - started) * 1000
            if session.json:
                session.err.write(f"(Time: {elapsed:.3f} ms)\n")
            else:
                session.out.write(("" if line_done else "\n") + f"(Time: {elapsed:.3f} ms)\n\n")
        elif not session.json and not session.quiet and not line_done:
            session.out.write("\n")
        return int(status)
    finally:
        session.json = was_json


def run_commands(session, commands: list[list[str]]) -> int:
    """Parse all commands, open the connection if one is needed, then run
    them in order; the exit status is the last command's, as in virsh.
    ``quit`` ends the run."""
    parsed = []
    for argv in commands:
        try:
            parsed.append(parse_command(session, argv))
        except VirtError as exc:
            was_json = session.json
            session.json = was_json or _wants_json(argv)
            try:
                return report(session, exc)
            finally:
                session.json = was_json
    failed = _open_connection(session, parsed)
    if failed is not None:
        return report(session, failed)
    status = 0
    for name, ctx in parsed:
        status = execute(session, name, ctx)
        if session.quit_requested:
            break
    return status


def run_string(session, text: str) -> int:
    from virtctl.cli.split import split_commands

    return run_commands(session, split_commands(text))


def run_stdin(session, stream=None) -> int:
    """Commands read from a pipe or file, one line at a time, each line by
    virsh's rules (as virsh reads them: ``echo 'abc`` prints abc; a line
    ending inside double quotes or after a backslash is an error); an
    error is reported and the next line runs; ``quit`` stops."""
    stream = stream or sys.stdin
    status = 0
    for line in stream:
        try:
            status = run_string(session, line.rstrip("\n"))
        except VirtError as exc:
            status = report(session, exc)
        if session.quit_requested:
            break
    return status


def _run(opts: Options, session) -> int:
    if opts.action == "version":
        from virtctl import __version__

        session.print(__version__)
        return 0
    if opts.action == "version-long":
        from virtctl import __version__

        session.print(f"virtctl {__version__}, a virsh-like shell without a daemon\n"
                      "Drivers: test (libvirt's test driver), qemu (session, system, embed)")
        return 0
    if opts.action == "usage":
        session.print(USAGE, end="")
        return 0
    if not opts.args:
        if sys.stdin.isatty():
            from virtctl.cli.shell import run_shell

            return run_shell(session)
        return run_stdin(session)
    if len(opts.args) == 1:
        return run_string(session, opts.args[0])
    return run_commands(session, [opts.args])


# True in the ``virtctl`` program (``program()``): a process that is virtctl's
# command line and nothing else, which the QEMU driver may fork to start a
# domain's monitor (drivers/qemu/process.can_fork).  Not set by ``main()``
# itself: a program (or a test) that calls it in process stays unforked.
IN_CLI = False


def program() -> None:
    """The ``virtctl`` console script."""
    global IN_CLI
    IN_CLI = True
    main()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["__complete"]:  # hidden: the shell completion scripts call it at TAB time
        from virtctl.cli.complete import main_complete

        sys.exit(main_complete(argv[1:]))
    if argv[:1] == ["__serve-stdio"]:  # hidden: the far end of virtctl+ssh:// (drivers/remote)
        from virtctl.drivers.remote.server import main as serve

        sys.exit(serve(argv[1:]))
    try:  # Ctrl-C while the session is being set up: a plain exit, no traceback
        from virtctl.cli.session import Session

        session = Session()
    except KeyboardInterrupt:
        sys.stderr.write("\nerror: interrupted\n")
        sys.exit(130)
    try:
        opts = parse_global(argv)
        session.uri, session.readonly = opts.uri, opts.readonly
        session.quiet, session.json = opts.quiet, opts.json
        session.timing, session.escape = opts.timing, opts.escape
        status = _run(opts, session)
    except VirtError as exc:
        status = report(session, exc)
    except KeyboardInterrupt:
        session.err.write("\n")
        report_error(session, VirtError("interrupted", code="OPERATION_FAILED"))
        status = 130
    except BrokenPipeError:
        # the reader went away (virtctl list | head): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = 0
    finally:
        try:
            session.close()
        except VirtError:
            pass
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.exit(status)
