"""Commands about virtctl itself: echo, help, connect, shell, quit (alias exit)."""
from __future__ import annotations

import shlex

import click

from virtctl.cli.options import argument, command, positional
from virtctl.cli.session import pass_session
from virtctl.commands import ALIASES, COMMANDS, DOMAIN_MGMT, DOMAIN_MON, GROUP_ORDER, HOST, SELF, XML_GROUP
from virtctl.errors import VirtError

# `help KEYWORD` lists one group, as in virsh ('help domain')
GROUP_KEYWORDS = {DOMAIN_MGMT: "domain", DOMAIN_MON: "monitor", HOST: "host", XML_GROUP: "xml", SELF: "virtctl"}


@command("echo", help="""Print the arguments (useful in scripts and to test quoting).

\b
Example:
  virtctl "echo 'a b'; echo c\\ d" """)
@click.option("--shell", is_flag=True, help="escape for shell use")
@click.option("--xml", is_flag=True, help="escape for XML use")
@click.option("--split", is_flag=True, help="split each argument on ','; ',,' is a literal comma")
@argument("string", nargs=-1, completer="none")
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

With a group keyword (domain, monitor, host, xml, virtctl) lists that
group only.

\b
Examples:
  virtctl help
  virtctl help list
  virtctl help domain""")
@positional("command", required=False, help="command or group keyword", completer="command")
@pass_session
def help_cmd(session, command):
    from virtctl.cli import tree

    groups = GROUP_ORDER
    if command and command in GROUP_KEYWORDS.values():
        groups = [g for g in GROUP_ORDER if GROUP_KEYWORDS.get(g) == command]
    elif command:
        name = ALIASES.get(command, command)
        cmd = tree.root().get_command(None, name)
        if cmd is None:
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
                                   for n, c in cmds.items() if COMMANDS[n][2] in groups]})
        return
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
            lines.append(f"    {label:<30} {_short_help(cmds[n])}")
        lines.append("")
    session.print("\n".join(lines), end="")


@command("connect", help="""Connect to another hypervisor, closing the current connection.

Without a URI, reconnects to the current one (or the default).  In the
interactive shell the prompt shows the new connection.

\b
Examples:
  virtctl connect test:///default
  virtctl 'connect qemu:///session --readonly; list --all'""")
@positional("name", required=False, help="hypervisor connection URI", completer="uri", metavar="URI")
@click.option("--readonly", is_flag=True, help="connect read-only")
@pass_session
def connect(session, name, readonly):
    session.reconnect(name if name else session.uri, readonly=readonly)
    if session.json:
        session.emit({"uri": session.conn.uri, "readonly": readonly})


@command("shell", help="""Open the interactive shell (what 'virtctl' alone does on a terminal).

Commands are split with virsh's rules and run on one connection; TAB
completes commands, options and live domain names; history is kept in
$XDG_STATE_HOME/virtctl/history.

\b
Example:
  virtctl -c test:///default shell""")
@pass_session
def shell(session):
    if session.interactive:
        raise VirtError("already in the interactive shell", code="USAGE")
    from virtctl.cli.shell import run_shell

    status = run_shell(session)
    if status:
        raise click.exceptions.Exit(status)


@command("quit", help="Leave the interactive shell (alias: exit).\n\n\b\nExample:\n  virtctl (qemu:///session)$ quit")
@pass_session
def quit_cmd(session):
    session.quit_requested = True
