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
* an argument that starts with ``#`` starts a comment to the end of the line;
* text that ends inside single quotes ends the argument there (``echo 'abc``
  prints abc); inside double quotes or after a backslash it is an error
  (``missing "``, ``dangling \\``).

The interactive shell asks for a continuation line in all three cases
instead (``continuation=True``): the line is still being typed.
"""
from __future__ import annotations

from virtctl.errors import UsageError


class Incomplete(UsageError):
    """The string ends inside quotes or after a backslash (the shell may
    ask for a continuation line)."""


# token kinds of scan()
ARG, END, COMMENT = "arg", "end", "comment"


def scan(text: str):
    """Yield virsh's tokens of ``text`` as ``(kind, value, start, end, unclosed)``
    (``text[start:end]`` is the token as written):

    * ``(ARG, word, start, unclosed)``: an argument, unquoted, starting at
      offset ``start``; ``unclosed`` says why the text ends inside it
      (``'missing "'``, ``"missing '"``, ``"dangling \\"``) or is None;
    * ``(END, ";", start, None)``: ``;`` or a newline ends a command;
    * ``(COMMENT, "", start, unclosed)``: a ``#`` comment; ``unclosed`` is
      ``"comment"`` when it runs to the end of the text.

    One scanner for both the command splitter and the completer (which
    needs to know where the word under the cursor starts)."""
    i, n = 0, len(text)
    while True:
        # skip blanks and backslash-newline continuations
        while i < n and (text[i] in " \t" or (text[i] == "\\" and i + 1 < n and text[i + 1] == "\n")):
            i += 2 if text[i] == "\\" else 1
        if i >= n:
            return
        c = text[i]
        if c in ";\n":
            yield END, c, i, i + 1, None
            i += 1
            continue
        if c == "#":
            start = i
            while i < n and text[i] != "\n":
                i += 1
            yield COMMENT, "", start, i, None if i < n else "comment"
            continue
        start, arg = i, []
        single = double = dangling = False
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
                    dangling = True
                    break
                if text[i] == "\n":
                    i += 1
                    continue
            elif not single and c == '"':
                double = not double
                i += 1
                continue
            arg.append(text[i])
            i += 1
        unclosed = ("dangling \\" if dangling else 'missing "' if double else "missing '" if single else None)
        yield ARG, "".join(arg), start, i, unclosed


def split_commands(text: str, *, continuation: bool = False) -> list[list[str]]:
    """Split ``text`` into commands, each a list of arguments (empty
    commands are dropped).  Raises :class:`Incomplete` (a UsageError with
    virsh's message) when the text ends inside double quotes or after a
    backslash, and with ``continuation`` also inside single quotes."""
    commands: list[list[str]] = []
    current: list[str] = []
    for kind, value, _start, _end, unclosed in scan(text):
        if kind == END:
            if current:
                commands.append(current)
            current = []
        elif kind == ARG:
            if unclosed and (continuation or unclosed != "missing '"):
                raise Incomplete(unclosed)
            current.append(value)
    if current:
        commands.append(current)
    return commands
