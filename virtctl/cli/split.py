"""virsh's rules for splitting a command string into commands and arguments.

Used by one-shot mode (``virtctl 'destroy test; domstate test'``), by the
interactive shell and by commands read from stdin.  The rules, as virsh's
``vshCommandStringGetArg``:

* blanks (space, tab) separate arguments; ``;`` or a newline ends a command;
* ``'single quotes'`` keep everything literally;
* ``"double quotes"`` group, and a backslash inside them escapes the next
  character;
* outside quotes a backslash escapes the next character;
* backslash-newline is removed entirely (a continuation line);
* an argument that starts with ``#`` starts a comment to the end of the line.
"""
from __future__ import annotations

from virtctl.errors import UsageError


class Incomplete(UsageError):
    """The string ends inside quotes or after a backslash (the shell may
    ask for a continuation line)."""


def split_commands(text: str) -> list[list[str]]:
    """Split ``text`` into commands, each a list of arguments (empty
    commands are dropped)."""
    commands: list[list[str]] = []
    current: list[str] = []
    i, n = 0, len(text)
    while True:
        # skip blanks and backslash-newline continuations
        while i < n and (text[i] in " \t" or (text[i] == "\\" and i + 1 < n and text[i + 1] == "\n")):
            i += 2 if text[i] == "\\" else 1
        if i >= n:
            break
        c = text[i]
        if c in ";\n":
            if current:
                commands.append(current)
            current = []
            i += 1
            continue
        if c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        arg: list[str] = []
        single = double = False
        while i < n:
            c = text[i]
            if not single and not double and c in " \t;\n":
                break
            if not double and c == "'":
                single = not single
                i += 1
                continue
            if not single and c == "\\":
                i += 1
                if i >= n:
                    raise Incomplete("dangling \\")
                if text[i] == "\n":
                    i += 1
                    continue
            elif not single and c == '"':
                double = not double
                i += 1
                continue
            arg.append(text[i])
            i += 1
        if double:
            raise Incomplete('missing "')
        if single:
            raise Incomplete("missing '")
        current.append("".join(arg))
    if current:
        commands.append(current)
    return commands
