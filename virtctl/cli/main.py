"""The ``virtctl`` entry point: global options, then one command, a command
string of several, or the interactive shell.

    virtctl [OPTIONS] COMMAND [ARGS]...      one command
    virtctl [OPTIONS] 'CMD ARGS; CMD ARGS'   a command string (virsh's rules)
    virtctl [OPTIONS]                        the shell (stdin a TTY) or
                                             commands read from stdin

Global options are parsed here by hand, not by click: they are few, and
doing so keeps the start-up of every one-shot command cheap.  Only this
module calls ``sys.exit``.
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
  -c, --connect URI   hypervisor connection URI (default: $VIRTCTL_DEFAULT_URI,
                      then 'uri' in $XDG_CONFIG_HOME/virtctl/config.toml, then
                      qemu:///session, or qemu:///system as root)
  -r, --readonly      connect read-only
  -q, --quiet         quiet mode: no informational messages or table headers
  -j, --json          print data and errors as JSON
  -v, --version       print virtctl's version and exit
  -h, --help          print this help and exit

Run 'virtctl help' for the list of commands, 'virtctl help COMMAND' for one.
"""


class Options:
    def __init__(self):
        self.uri: str | None = None
        self.readonly = False
        self.quiet = False
        self.json = False
        self.args: list[str] = []


def parse_global(argv: list[str]) -> Options:
    """Parse the options before the command; raise VirtError(USAGE)."""
    o = Options()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        if a in ("-c", "--connect"):
            if i + 1 >= len(argv):
                raise VirtError(f"option '{a}' requires an argument", code="USAGE")
            o.uri = argv[i + 1]
            i += 2
            continue
        if a.startswith("--connect="):
            o.uri = a.split("=", 1)[1]
        elif a.startswith("-c") and len(a) > 2:
            o.uri = a[2:]
        elif a in ("-r", "--readonly"):
            o.readonly = True
        elif a in ("-q", "--quiet"):
            o.quiet = True
        elif a in ("-j", "--json"):
            o.json = True
        elif a in ("-v", "--version"):
            o.args = ["__version__"]
            return o
        elif a in ("-h", "--help"):
            o.args = ["__usage__"]
            return o
        else:
            raise VirtError(f"unknown option '{a}' (see 'virtctl --help')", code="USAGE")
        i += 1
    o.args = argv[i:]
    return o


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


def _colour(stream) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _click_error(name: str, exc) -> VirtError:
    """Turn click's parse errors into virsh's wording with code USAGE."""
    import click

    if isinstance(exc, click.NoSuchOption):
        return VirtError(f"command '{name}' doesn't support option {exc.option_name}", code="USAGE")
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        pname = exc.param.name.replace("_", "-")
        return VirtError(f"command '{name}' requires <{pname}> option", code="USAGE")
    if isinstance(exc, click.BadParameter):
        return VirtError(f"command '{name}': {exc.format_message()}", code="INVALID_ARG")
    return VirtError(exc.format_message(), code="USAGE")


def parse_command(session, argv: list[str]):
    """Resolve and parse one command; raise VirtError(USAGE) on bad syntax.

    As in virsh, a command string is parsed whole before anything runs, so
    a typo in its third command runs none of them."""
    import click

    from virtctl.cli import tree

    name = argv[0]
    cmd = tree.root().get_command(None, name)
    if cmd is None:
        raise VirtError(f"unknown command: '{name}'", code="USAGE")
    try:
        ctx = cmd.make_context(f"virtctl {name}", list(argv[1:]), obj=session)
    except click.exceptions.Exit as exc:  # --help was printed
        return name, None, exc.exit_code
    except click.ClickException as exc:
        raise _click_error(name, exc) from None
    return name, ctx, 0


def execute(session, name: str, ctx) -> int:
    """Run one parsed command and return its exit status."""
    import click

    status = ExitStatus.OK
    try:
        with ctx:
            ctx.command.invoke(ctx)
    except VirtError as exc:
        status = report_error(session, exc)
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.ClickException as exc:
        status = report_error(session, _click_error(name, exc))
    except click.exceptions.Abort:
        status = report_error(session, VirtError("aborted", code="OPERATION_FAILED"))
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # a bug: say so plainly, keep the shell alive
        if os.environ.get("VIRTCTL_DEBUG"):
            import traceback

            traceback.print_exc(file=session.err)
        status = report_error(session, VirtError(f"internal error: {type(exc).__name__}: {exc}"))
    # virsh prints an empty line after each command's output (not with -q, not after echo)
    if not session.json and not session.quiet and name != "echo":
        session.out.write("\n")
    return int(status)


def run_commands(session, commands: list[list[str]]) -> int:
    """Parse all commands, then run them in order; the exit status is the
    last command's, as in virsh."""
    parsed = []
    for argv in commands:
        try:
            parsed.append(parse_command(session, argv))
        except VirtError as exc:
            return report_error(session, exc)
    status = 0
    for name, ctx, early in parsed:
        status = early if ctx is None else execute(session, name, ctx)
    return status


def run_string(session, text: str) -> int:
    from virtctl.cli.split import split_commands

    return run_commands(session, split_commands(text))


def _run(opts: Options, session) -> int:
    if opts.args == ["__version__"]:
        from virtctl import __version__

        session.print(__version__)
        return 0
    if opts.args == ["__usage__"]:
        session.print(USAGE, end="")
        return 0
    if not opts.args:
        if sys.stdin.isatty():
            from virtctl.cli.shell import run_shell

            return run_shell(session)
        status = 0
        for line in sys.stdin:
            status = run_string(session, line)
            if session.quit_requested:
                break
        return status
    if len(opts.args) == 1:
        return run_string(session, opts.args[0])
    return run_commands(session, [opts.args])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["__complete"]:  # hidden: the shell completion scripts call it at TAB time
        from virtctl.cli.complete import main_complete

        sys.exit(main_complete(argv[1:]))
    from virtctl.cli.session import Session

    session = Session()
    try:
        opts = parse_global(argv)
        session.uri, session.readonly = opts.uri, opts.readonly
        session.quiet, session.json = opts.quiet, opts.json
        status = _run(opts, session)
    except VirtError as exc:
        status = report_error(session, exc)
    except KeyboardInterrupt:
        session.err.write("\n")
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

