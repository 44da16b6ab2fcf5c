"""virsh's rules for the arguments of one command, in one place.

The command line (``options.VirshCommand``) parses with them and the
completion engine (``complete.complete``) replays them over a half-typed
line, so the two can never disagree.  The rules, as virsh 9.0 applies them
(``vshCommandParse``):

* a word is an option only if it is ``--`` followed by a letter or digit
  (``--domain``, ``--5``); ``-5``, ``-x`` and ``---x`` are data, so
  ``setmem dom -5`` gives a size of ``-5`` (refused later as malformed);
* ``--opt value`` or ``--opt=value``; a flag given ``=value`` is an error;
* a lone ``--`` makes every later word data;
* data fills the positional options not yet given, in declaration order,
  then the command's variadic argument, if any; anything else is
  "unexpected data";
* an option given twice -- by name or by position -- is an error (the
  variadic argument may be named several times: ``echo --string a --string b``);
* ``--help`` anywhere turns the command into ``help COMMAND``; ``--json``
  anywhere makes that one command print JSON (virtctl's addition);
* required options are checked once the words are consumed.

Only the words' syntax is checked here, before anything runs (virsh's
parse stage: a command string with an error runs none of its commands).
Values are converted and option combinations checked when the command
runs (``VirshCommand.invoke``), as virsh does in each command's handler.

Parameters are duck-typed: ``names`` (``("--domain",)``), ``takes_value``,
``positional``, and for the strict checks ``required``, ``number`` (the
value is a number: "expected syntax: --count <number>") and
``required_unless`` (the name of an option that makes it optional).
This module imports nothing heavy: bash completion uses it.
"""
from __future__ import annotations

from virtctl.errors import UsageError

# options every command accepts (handled by the caller, not declared per command)
HELP, JSON = "--help", "--json"


def is_option(word: str) -> bool:
    """virsh's test: ``--`` then an ASCII letter or digit."""
    return len(word) > 2 and word[:2] == "--" and word[2].isascii() and word[2].isalnum()


def virsh_name(param) -> str:
    """The option's name as virsh prints it: ``domain`` for ``--domain``."""
    return param.names[0].lstrip("-")


class Parsed:
    """The words of one command, sorted out.

    ``values`` maps a parameter's index in the list given to :func:`parse`
    to its raw value: the string given, or True for a flag.  ``argv`` is
    the variadic argument's words.  The rest serves completion: whether a
    lone ``--`` was seen, the option still waiting for its value, the
    parameter the next bare word would fill."""

    __slots__ = ("values", "argv", "help", "json", "data_only", "pending", "next_data", "next_is_variadic")

    def __init__(self):
        self.values: dict[int, object] = {}
        self.argv: list[str] = []
        self.help = self.json = self.data_only = self.next_is_variadic = False
        self.pending = self.next_data = None


def _fail(message: str, **detail) -> UsageError:
    return UsageError(message, detail=detail or None)


def parse(command: str, params: list, words: list[str], *, variadic=None,
          strict: bool = True, lenient: bool = False) -> Parsed:
    """Sort ``words`` (the arguments after the command name) out by virsh's rules.

    ``strict``: raise :class:`UsageError` with virsh's wording at the first
    error and check required options; otherwise (completion) skip what
    does not parse.  ``lenient``: ignore unknown options and extra data,
    as virsh's ``help`` does."""
    out = Parsed()
    index: dict[str, int] = {}
    for i, p in enumerate(params):
        for n in p.names:
            index[n] = i
    vnames = set(variadic.names) if variadic is not None else set()
    seen: set[int] = set()
    universal_seen: set[str] = set()
    k, n = 0, len(words)
    while k < n:
        w = words[k]
        k += 1
        if not out.data_only and is_option(w):
            name, eq, inline = w.partition("=")
            if name in (HELP, JSON) and name not in index:
                if name in universal_seen and strict:
                    raise _fail(f"option {name} already seen")
                if eq and strict:
                    raise _fail(f"invalid '=' after option {name}")
                universal_seen.add(name)
                if name == HELP:
                    out.help = True
                else:
                    out.json = True
                continue
            if name in vnames:
                if eq:
                    out.argv.append(inline)
                elif k < n:
                    out.argv.append(words[k])
                    k += 1
                elif strict:
                    raise _fail(f"expected syntax: {name} <string>")
                else:
                    out.pending = variadic
                continue
            i = index.get(name)
            if i is None:
                if lenient or not strict:
                    continue
                raise _fail(f"command '{command}' doesn't support option {name}", option=name)
            p = params[i]
            if i in seen:
                if strict:
                    raise _fail(f"option --{virsh_name(p)} already seen", option=name)
                if not p.takes_value:
                    continue
            seen.add(i)
            if not p.takes_value:
                if eq:
                    if strict:
                        raise _fail(f"invalid '=' after option --{virsh_name(p)}", option=name)
                    continue
                out.values[i] = True
                continue
            if eq:
                out.values[i] = inline
            elif k < n:
                out.values[i] = words[k]
                k += 1
            elif strict:
                kind = "number" if getattr(p, "number", False) else "string"
                raise _fail(f"expected syntax: --{virsh_name(p)} <{kind}>", option=name)
            else:
                out.pending = p
            continue
        if not out.data_only and w == "--":
            out.data_only = True
            continue
        target = _next_positional(params, seen)
        if target is not None:
            seen.add(target)
            out.values[target] = w
        elif variadic is not None:
            out.argv.append(w)
        elif strict and not lenient:
            raise _fail(f"unexpected data '{w}'", data=w)
    nxt = _next_positional(params, seen)
    out.next_data = params[nxt] if nxt is not None else variadic
    out.next_is_variadic = nxt is None and variadic is not None
    if strict and not out.help:
        _check_required(command, params, seen, variadic, out)
    return out


def _next_positional(params: list, seen: set[int]) -> int | None:
    for i, p in enumerate(params):
        if getattr(p, "positional", False) and i not in seen:
            return i
    return None


def _check_required(command: str, params: list, seen: set[int], variadic, out: Parsed) -> None:
    """virsh names every missing option, one error line each."""
    given = {nm for i in seen for nm in params[i].names}
    missing = []
    for i, p in enumerate(params):
        if not getattr(p, "required", False) or i in seen:
            continue
        unless = getattr(p, "required_unless", None)
        if unless and f"--{unless}" in given:
            continue
        # virsh names a string argument <name>, a number (even a positional one) --name
        data = getattr(p, "positional", False) and not getattr(p, "number", False)
        missing.append(f"<{virsh_name(p)}>" if data else f"--{virsh_name(p)}")
    if variadic is not None and getattr(variadic, "required", False) and not out.argv:
        missing.append(f"<{virsh_name(variadic)}>")
    if missing:
        lines = [f"command '{command}' requires {m} option" for m in missing]
        raise UsageError(lines[0], detail={"missing": missing, "more": lines[1:]} if lines[1:]
                         else {"missing": missing})
