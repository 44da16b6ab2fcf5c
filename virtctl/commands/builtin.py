"""Commands about virtctl itself: echo, help."""
from __future__ import annotations

import shlex

import click

from virtctl.cli.options import command, positional
from virtctl.cli.session import pass_session
from virtctl.commands import ALIASES, COMMANDS, GROUP_ORDER


@command("echo", help="""Print the arguments (useful in scripts and to test quoting).

\b
Example:
  virtctl "echo 'a b'; echo c\\ d" """)
@click.option("--shell", is_flag=True, help="escape for shell use")
@click.option("--xml", is_flag=True, help="escape for XML use")
@click.option("--split", is_flag=True, help="split each argument on ','; ',,' is a literal comma")
@click.argument("string", nargs=-1)
@pass_session
def echo(session, shell, xml, split, string):
    args = list(string)
    if split:
        parts = []
        for a in args:
            parts.extend(p.replace("\0", ",") for p in a.replace(",,", "\0").split(","))
        args = parts
    if xml:
        args = [a.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("'", "&apos;").replace('"', "&quot;") for a in args]
    if shell:
        args = [shlex.quote(a) if a else "''" for a in args]
    text = (("\n" if split else " ").join(args))
    session.emit({"text": text}, text + "\n")


def _short_help(cmd) -> str:
    return cmd.get_short_help_str(limit=60)


@command("help", help="""List the commands by group, or show the help of one command.

\b
Examples:
  virtctl help
  virtctl help list""")
@positional("command", required=False, help="command or group keyword", completer="command")
@pass_session
def help_cmd(session, command):
    from virtctl.cli import tree

    if command:
        name = ALIASES.get(command, command)
        cmd = tree.root().get_command(None, name)
        if cmd is None:
            from virtctl.errors import VirtError

            raise VirtError(f"command or command group '{command}' doesn't exist", code="USAGE")
        ctx = click.Context(cmd, info_name=f"virtctl {name}")
        if session.json:
            session.emit({"name": name, "help": cmd.help,
                          "options": [p.opts for p in cmd.params if isinstance(p, click.Option)]})
        else:
            session.print(cmd.get_help(ctx))
        return
    cmds = tree.all_commands()
    if session.json:
        session.emit({"commands": [{"name": n, "group": COMMANDS[n][2], "help": _short_help(c)}
                                   for n, c in cmds.items()]})
        return
    alias_of = {v: k for k, v in ALIASES.items()}
    lines = ["Grouped commands:", ""]
    for group in GROUP_ORDER:
        names = [n for n in sorted(cmds) if COMMANDS[n][2] == group]
        if not names:
            continue
        lines.append(f" {group}:")
        for n in names:
            label = n + (f" ({alias_of[n]})" if n in alias_of else "")
            lines.append(f"    {label:<30} {_short_help(cmds[n])}")
        lines.append("")
    session.print("\n".join(lines), end="")
