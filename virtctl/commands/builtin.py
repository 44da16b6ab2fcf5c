"""Commands about virtctl itself: echo, help, connect, shell, quit (alias exit)."""
from __future__ import annotations

import shlex

import click

from virtctl.cli.options import argument, command, mutually_exclusive, positional, summary
from virtctl.cli.session import pass_session
from virtctl.commands import ALIASES, COMMANDS, DOMAIN_MGMT, DOMAIN_MON, GROUP_ORDER, HOST, SELF, XML_GROUP
from virtctl.errors import VirtError

# `help KEYWORD` lists one group, as in virsh ('help domain')
GROUP_KEYWORDS = {DOMAIN_MGMT: "domain", DOMAIN_MON: "monitor", HOST: "host", XML_GROUP: "xml", SELF: "virtctl"}
GROUP_KEYWORDS["Domain Events"] = "events"


@command("echo", help="""Print the arguments (useful in scripts and to test quoting).

\b
Example:
  virtctl "echo 'a b'; echo c\\ d" """)
@click.option("--shell", is_flag=True, help="escape for shell use")
@click.option("--xml", is_flag=True, help="escape for XML use")
@click.option("--split", is_flag=True, help="split each argument on ','; ',,' is a literal comma")
@argument("string", nargs=-1, completer="none")
@mutually_exclusive("shell", "xml", "split")
@pass_session
def echo(session, shell, xml, split, string):
    args = list(string)
    if split:
        # as virsh: every piece ends its own line, the arguments are still
        # joined by spaces (an empty argument has no pieces)
        args = ["".join(p.replace("\0", ",") + "\n" for p in a.replace(",,", "\0").split(","))
                if a else "" for a in args]
    if xml:
        args = [a.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("'", "&apos;").replace('"', "&quot;") for a in args]
    if shell:
        args = [shlex.quote(a) if a else "''" for a in args]
    text = " ".join(args)
    session.emit({"text": text}, text + "\n")


def _short_help(cmd, width: int | None = None) -> str:
    """The command's whole one-line description; cut with '...' to ``width``."""
    text = summary(cmd)
    if width is not None and len(text) > width:
        text = text[:max(width - 3, 1)].rsplit(" ", 1)[0].rstrip(" ,.;:") + "..."
    return text


def _description_width(session) -> int | None:
    """Room for descriptions after the 35 columns of names: only on a terminal."""
    try:
        if not session.out.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    import shutil

    return max(shutil.get_terminal_size().columns - 36, 20)


def show_command_help(session, name: str) -> None:
    """``help COMMAND`` (and ``COMMAND --help``, virsh's same thing)."""
    from virtctl.cli import tree

    cmd = tree.root().get_command(None, name)
    ctx = click.Context(cmd, info_name=f"virtctl {cmd.name}")
    if session.json:
        session.emit({"name": cmd.name, "help": cmd.help,
                      "options": [p.opts for p in cmd.params if isinstance(p, click.Option)]})
    else:
        session.print(cmd.get_help(ctx))


@command("help", lenient=True, help="""List the commands by group, or show the help of one command.

With a group keyword (domain, monitor, host, xml, virtctl) lists that
group only.

\b
Examples:
  virtctl help
  virtctl help list
  virtctl help domain""")
@positional("command", required=False, help="command or group keyword", completer="command",
            empty_ok=True)
@pass_session
def help_cmd(session, command):
    from virtctl.cli import tree

    groups = GROUP_ORDER
    if command and command in GROUP_KEYWORDS.values():
        groups = [g for g in GROUP_ORDER if GROUP_KEYWORDS.get(g) == command]
    elif command:
        name = ALIASES.get(command, command)
        if tree.root().get_command(None, name) is None:
            from virtctl.commands.virsh_names import unknown_command

            raise unknown_command(command, what="command or command group")
        show_command_help(session, name)
        return
    cmds = tree.all_commands()
    if session.json:
        session.emit({"commands": [{"name": n, "group": COMMANDS[n][2], "help": _short_help(c)}
                                   for n, c in cmds.items() if COMMANDS[n][2] in groups]})
        return
    width = _description_width(session)
    alias_of: dict[str, list[str]] = {}
    for alias, target in sorted(ALIASES.items()):
        alias_of.setdefault(target, []).append(alias)
    lines = ["Grouped commands:", ""] if len(groups) > 1 else []
    for group in groups:
        names = [n for n in sorted(cmds) if COMMANDS[n][2] == group]
        if not names:
            continue
        keyword = GROUP_KEYWORDS.get(group)
        lines.append(f" {group}" + (f" (help keyword '{keyword}'):" if keyword else ":"))
        for n in names:
            label = n + (f" ({', '.join(alias_of[n])})" if n in alias_of else "")
            lines.append(f"    {label:<30} {_short_help(cmds[n], width)}")
        lines.append("")
    session.print("\n".join(lines), end="")


@command("connect", help="""Connect to another hypervisor, closing the current connection.

Without a URI, reconnects to the current one (or the default).  In the
interactive shell the prompt shows the new connection.

\b
Examples:
  virtctl connect test:///default
  virtctl 'connect qemu:///session --readonly; list --all'""")
@positional("name", required=False, help="hypervisor connection URI", completer="uri", metavar="URI",
            empty_ok=True)
@click.option("--readonly", is_flag=True, help="connect read-only")
@pass_session
def connect(session, name, readonly):
    # no URI: the current one again (virsh's rule); '' : the default one
    session.reconnect(session.uri if name is None else (name or None), readonly=readonly)
    if session.json:
        session.emit({"uri": session.conn.uri, "readonly": readonly})


@command("shell", help="""Open the interactive shell (what 'virtctl' alone does on a terminal).

Commands are split with virsh's rules and run on one connection; TAB
completes commands, options and live domain names; history is kept in
$XDG_STATE_HOME/virtctl/history.  With stdin not a terminal, the commands
are read from it, one per line, as 'virtctl' alone does.

\b
Example:
  virtctl -c test:///default shell""")
@pass_session
def shell(session):
    if session.interactive:
        raise VirtError("already in the interactive shell", code="USAGE")
    import sys

    if not sys.stdin.isatty():  # a pipe or a file: no prompts, no terminal warnings
        from virtctl.cli.main import run_stdin

        status = run_stdin(session)
    else:
        from virtctl.cli.shell import run_shell

        status = run_shell(session)
    if status:
        raise click.exceptions.Exit(status)


@command("quit", help="Leave the interactive shell (alias: exit).\n\n\b\nExample:\n  virtctl (qemu:///session)$ quit")
@pass_session
def quit_cmd(session):
    session.quit_requested = True
