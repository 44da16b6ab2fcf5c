"""Shared pieces of the command definitions: virsh's argument forms, the
value types and option rules commands declare, and the options many
commands repeat.

A command is a click command of class :class:`VirshCommand`; its words are
parsed by virsh's rules (``virtctl.cli.parse``) in two stages, as virsh
does:

* when the command line is parsed (before any command of a command string
  runs): option names, values present, data in place, required options;
* when the command runs: each value converted by its type (``ScaledSize``,
  ``Number``, ``Enum``, ``EnumList``: errors in virsh's words, code
  ``INVALID_ARG``), empty values refused, and the option rules declared
  with :func:`mutually_exclusive` and :func:`requires` checked.

virsh lets every positional argument also be given as an option
(``dominfo test`` = ``dominfo --domain test``): positional arguments are
options declared with :func:`positional`, filled by bare words in
declaration order.  A variadic argument (``argument(..., nargs=-1)``) takes
the rest.
"""
from __future__ import annotations

import click

from virtctl.errors import InvalidArg, UsageError

# What a value can be completed with (virtctl.cli.complete knows each one):
#   "domain:all|active|inactive|running|paused|persistent"  live domain names,
#   filtered by state;  "file"  a file name;  "command"  a virtctl command;
#   "uri"  a connection URI;  "enum:a|b"  these fixed words;
#   "pool"  storage pool names;  "volume"  volume names of the pool given on the line
#   (--pool, or the command's <pool> argument);
#   "none"  nothing to offer (free text, a number);  "remote"  the config file's named remotes.
# A click.Choice type (Enum, EnumList) needs no completer: its choices are offered.
COMPLETERS = ("domain:all", "domain:active", "domain:inactive", "domain:running", "domain:paused",
              "domain:persistent", "network:all", "network:active", "network:inactive", "network:persistent",
              "file", "command", "uri", "snapshot", "pool", "volume", "none", "interface",
              "disk", "mac", "alias",  # disk targets, MACs, aliases of the line's domain
              "remote")  # named remotes of the config file (list --remote)


# --- value types: converted when the command runs, refused in virsh's words -------------


def _pname(param) -> str:
    """The option's name as virsh prints it in messages (``size``, ``new-name``)."""
    if isinstance(param, click.Option):
        longs = [o for o in param.opts if o.startswith("--")]
        return (longs or param.opts)[0].lstrip("-")
    return (param.name or "").replace("_", "-") if param is not None else "value"


def _malformed(value, param) -> InvalidArg:
    return InvalidArg(f"Numeric value '{value}' for <{_pname(param)}> option is malformed or out of range")


def _c_integer(text: str) -> int | None:
    """``strtol`` in base 10, whole string: leading blanks and a sign allowed."""
    s = text.lstrip(" \t\n\v\f\r")
    body = s[1:] if s[:1] in "+-" else s
    if not body or not body.isascii() or not body.isdigit():
        return None
    return int(s)


class Number(click.ParamType):
    """A virsh integer option: ``Numeric value 'x' for <screen> option is
    malformed or out of range`` unless it is an integer in
    [``minimum``, ``maximum``] (virsh's unsigned options: ``minimum=0``)."""

    name = "number"

    def __init__(self, minimum: int | None = None, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            n = _c_integer(str(value))
        if n is None or (self.minimum is not None and n < self.minimum) or \
                (self.maximum is not None and n > self.maximum):
            raise _malformed(value, param)
        return n


class ScaledSize(click.ParamType):
    """virsh's scaled integer (``1024``, ``512M``, ``2GiB``): the value in
    KiB; a bare number is in ``default_unit``.  ``-5``, ``1.5G``, ``1X``:
    ``Scaled numeric value '-5' for <size> option is malformed or out of range``."""

    name = "size"

    def __init__(self, default_unit: str = "KiB"):
        self.default_unit = default_unit

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        from virtctl.xml.units import parse_scaled, unit_factor

        text = str(value)
        body = text.lstrip(" \t\n\v\f\r")  # strtoull's leading blanks and '+'
        if body[:1] == "+":
            body = body[1:]
        try:
            return parse_scaled(body, default_unit=self.default_unit, what=_pname(param))
        except InvalidArg:
            detail = None
            j = 0
            while j < len(body) and body[j].isascii() and body[j].isdigit():
                j += 1
            if j and body[j:] and unit_factor(body[j:]) is None:  # virsh adds libvirt's reason
                detail = {"more": [f"invalid argument: unknown suffix '{body[j:]}'"]}
            raise InvalidArg(f"Scaled numeric value '{text}' for <{_pname(param)}> option is malformed "
                             "or out of range", detail=detail) from None


class Enum(click.Choice):
    """One of fixed words, refused with the command's own message
    (``error`` is formatted with ``value``, ``name`` and ``choices``; the
    default reads ``Unknown mode 'x', expecting 'a', 'b' or 'c'``)."""

    def __init__(self, choices, *, error: str | None = None):
        super().__init__(list(choices))
        self.error = error

    def refuse(self, value: str, param) -> InvalidArg:
        quoted = [f"'{c}'" for c in self.choices]
        listing = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        template = self.error or "Unknown {name} '{value}', expecting {choices}"
        return InvalidArg(template.format(value=value, name=_pname(param), choices=listing))

    def convert(self, value, param, ctx):
        if value in self.choices:
            return value
        raise self.refuse(value, param)


class EnumList(Enum):
    """A comma-separated list of fixed words (``--mode acpi,agent``): a tuple
    of the words, in order, each given once; each one checked."""

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        out: list[str] = []
        for word in str(value).split(","):
            if word not in self.choices:
                raise self.refuse(word, param)
            if word not in out:
                out.append(word)
        return tuple(out)


_NUMERIC = (Number, ScaledSize, click.types.IntParamType, click.types.FloatParamType)


# --- parameters -----------------------------------------------------------------------------


class CompletableOption(click.Option):
    """A click option that says how its value is completed (``completer``)
    and whether an empty value is acceptable (``empty_ok``; virsh refuses
    ``--file ''`` with "Option argument is empty" unless the option says so)."""

    def __init__(self, *args, completer: str | None = None, empty_ok: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.completer = completer
        self.empty_ok = empty_ok


class PositionalOption(CompletableOption):
    """An option that may also be given as a bare word, in order.
    ``required_unless``: the (virsh) name of an option that makes a
    required one optional (``start DOMAIN`` or ``start --all-autostart``)."""

    def __init__(self, *args, required_unless: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.positional = True
        self.required_unless = required_unless


class CompletableArgument(click.Argument):
    """A click argument (e.g. a variadic one) that says how it is completed."""

    def __init__(self, *args, completer: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.completer = completer


def option(*decls, completer: str | None = None, empty_ok: bool = False, positional: bool = False, **kwargs):
    """``click.option`` with a ``completer`` (see COMPLETERS); ``positional=True``
    lets a bare word fill it too, after the positional options declared before."""
    cls = PositionalOption if positional else CompletableOption
    return click.option(*decls, cls=cls, completer=completer, empty_ok=empty_ok, **kwargs)


def argument(*decls, completer: str | None = None, **kwargs):
    """``click.argument`` with a ``completer`` (see COMPLETERS)."""
    return click.argument(*decls, cls=CompletableArgument, completer=completer, **kwargs)


def summary(cmd) -> str:
    """A command's one-line description, whole: its short_help, else the
    first paragraph of its help (``help`` cuts it only on a terminal)."""
    if cmd.short_help:
        return " ".join(cmd.short_help.split())
    first = (cmd.help or "").strip().split("\n\n", 1)[0]
    return " ".join(w for w in first.split() if w != "\b")


def completer_of(param) -> str | None:
    """How ``param``'s value is completed: its completer, "choice" for a
    click.Choice, None when it declares nothing (a flag needs nothing)."""
    c = getattr(param, "completer", None)
    if c is None and isinstance(param.type, click.Choice):
        return "choice"
    return c


class _ArgSpec:
    """A click parameter as ``virtctl.cli.parse`` sees it."""

    __slots__ = ("names", "takes_value", "positional", "required", "number", "required_unless")

    def __init__(self, p):
        if isinstance(p, click.Argument):
            self.names = (f"--{_pname(p)}",)
            self.takes_value, self.positional = True, False
        else:
            self.names = tuple(o for o in p.opts if o.startswith("--")) or tuple(p.opts)
            self.takes_value = not (p.is_flag or p.count)
            self.positional = bool(getattr(p, "positional", False))
        self.required_unless = getattr(p, "required_unless", None)
        self.required = bool(p.required) or bool(self.required_unless)
        self.number = isinstance(p.type, _NUMERIC)


# --- option rules: declared on the command, checked when it runs -------------------------


def _add_rule(f, rule):
    rules = f.__dict__.setdefault("__virsh_rules__", [])
    rules.insert(0, rule)  # decorators apply bottom-up: keep the order they are written in
    return f


def mutually_exclusive(*names: str, when_any: tuple[str, ...] = ()):
    """``@mutually_exclusive("shell", "xml", "split")``: at most one of these
    options (virsh's names) may be given; each pair is checked in the order
    written: ``Options --shell and --xml are mutually exclusive``.
    ``when_any``: the rule holds only when one of these options is given too
    (virsh's vcpucount: a lone --current is an old spelling of --active)."""
    def deco(f):
        return _add_rule(f, ("exclusive", (names, tuple(when_any))))
    return deco


def requires(option_name: str, needed: str):
    """``@requires("maximum", "config")``: --maximum needs --config:
    ``Option --config is required by option --maximum``."""
    def deco(f):
        return _add_rule(f, ("requires", (option_name, needed)))
    return deco


PARSED_KEY = "virtctl.parsed"  # ctx.meta key of the parse stage's result


class VirshCommand(click.Command):
    """A command parsed by virsh's rules (see the module docstring).

    ``lenient``: ignore unknown options and extra data (virsh's ``help``)."""

    def __init__(self, *args, rules=(), lenient: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.rules = list(rules)
        self.lenient = lenient
        self._specs = None

    def collect_usage_pieces(self, ctx) -> list[str]:
        """``virtctl setmem DOMAIN SIZE [OPTIONS]``: positionals first, by name."""
        pieces = []
        for p in self.params:
            if getattr(p, "positional", False):
                mv = p.metavar or (p.name or "").upper()
                pieces.append(mv if p.required else f"[{mv}]")
        return pieces + super().collect_usage_pieces(ctx)

    def _split_params(self):
        if self._specs is None:
            named = [p for p in self.params if isinstance(p, click.Option)]
            variadic = next((p for p in self.params if isinstance(p, click.Argument)), None)
            self._specs = (named, [_ArgSpec(p) for p in named], variadic,
                           _ArgSpec(variadic) if variadic is not None else None)
        return self._specs

    def parse_words(self, args: list[str]):
        """The parse stage: ``virtctl.cli.parse.Parsed``; UsageError in virsh's words."""
        from virtctl.cli.parse import parse

        _named, specs, _variadic, vspec = self._split_params()
        return parse(self.name or "", specs, args, variadic=vspec, lenient=self.lenient)

    def parse_args(self, ctx, args):
        ctx.meta[PARSED_KEY] = self.parse_words(list(args))
        ctx.args = []
        return []

    # --- the run stage ------------------------------------------------------------------
    def invoke(self, ctx):
        parsed = ctx.meta.get(PARSED_KEY)
        if parsed is None:  # made by click itself (e.g. a test's make_context): parse now
            parsed = ctx.meta[PARSED_KEY] = self.parse_words([])
        if parsed.help:
            from virtctl.commands.builtin import show_command_help

            return show_command_help(ctx.obj, self.name)
        self._check_rules(parsed)
        self._convert(ctx, parsed)
        return super().invoke(ctx)

    def given(self, parsed) -> set[str]:
        named, _specs, variadic, _v = self._split_params()
        out = {_pname(named[i]) for i in parsed.values}
        if parsed.argv and variadic is not None:
            out.add(_pname(variadic))
        return out

    def _check_rules(self, parsed) -> None:
        given = self.given(parsed)
        for kind, names in self.rules:
            if kind == "exclusive":
                names, when_any = names
                if when_any and not given.intersection(when_any):
                    continue
                for i, a in enumerate(names):
                    for b in names[i + 1:]:
                        if a in given and b in given:
                            raise UsageError(f"Options --{a} and --{b} are mutually exclusive")
            elif kind == "requires":
                opt, needed = names
                if opt in given and needed not in given:
                    raise UsageError(f"Option --{needed} is required by option --{opt}")

    def _convert(self, ctx, parsed) -> None:
        named, _specs, variadic, _v = self._split_params()
        unset = getattr(click.core, "UNSET", None)
        for i, p in enumerate(named):
            if p.is_flag or p.count:
                ctx.params[p.name] = bool(parsed.values.get(i, False))
                continue
            if i in parsed.values:
                raw = parsed.values[i]
                if raw == "" and not getattr(p, "empty_ok", False) and not isinstance(p.type, _NUMERIC):
                    raise InvalidArg(f"Failed to get option '{_pname(p)}': Option argument is empty")
                ctx.params[p.name] = _cast(p, raw, ctx)
                continue
            default = p.get_default(ctx)
            ctx.params[p.name] = None if default is None or default is unset else p.type(default, p, ctx)
        if variadic is not None:
            ctx.params[variadic.name] = tuple(_cast(variadic, w, ctx) for w in parsed.argv)


def _cast(p, raw, ctx):
    """``raw`` through ``p``'s type; click's own refusals reworded as virsh's."""
    try:
        return p.type(raw, p, ctx)
    except click.BadParameter as exc:
        if isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)):
            raise _malformed(raw, p) from None
        if isinstance(p.type, click.Choice):
            raise Enum(p.type.choices).refuse(raw, p) from None
        raise InvalidArg(f"Value '{raw}' for <{_pname(p)}> option is malformed: {exc.message}") from None


def command(name: str, **kwargs):
    """``@command("dominfo", help=...)``: a VirshCommand, with the option rules
    declared by :func:`mutually_exclusive` / :func:`requires` below it."""
    kwargs.setdefault("cls", VirshCommand)
    kwargs.setdefault("context_settings", {"help_option_names": ["--help"]})

    def deco(f):
        rules = list(f.__dict__.get("__virsh_rules__", []))
        if rules:
            kwargs["rules"] = rules
        return click.command(name, **kwargs)(f)
    return deco


def positional(name: str, *, required: bool = True, help: str = "", completer: str | None = None,
               metavar: str | None = None, **kwargs):
    """A positional-or-option argument ``<name>``."""
    return click.option(f"--{name}", name.replace("-", "_"), cls=PositionalOption, required=required,
                        help=help, completer=completer, metavar=metavar or name.upper(), **kwargs)


def domain_arg(completer: str = "domain:all", help: str = "domain name, id or uuid"):
    return positional("domain", help=help, completer=completer)


def live_config_current(f=None, *, current_exclusive: bool = True):
    """virsh's --live / --config / --current trio; --current excludes the
    other two (``Options --current and --live are mutually exclusive``)
    unless ``current_exclusive=False`` (virsh's vcpucount)."""
    def deco(f):
        f = click.option("--current", is_flag=True, help="affect the current domain state (the default)")(f)
        f = click.option("--live", is_flag=True, help="affect the running domain")(f)
        f = click.option("--config", is_flag=True, help="affect the next boot (the persistent definition)")(f)
        if current_exclusive:
            f = mutually_exclusive("current", "config")(f)
            f = mutually_exclusive("current", "live")(f)
        return f
    return deco(f) if f is not None else deco


def check_live_config(current: bool, live: bool, config: bool) -> tuple[bool, bool]:
    """(live, config); the exclusions are declared by live_config_current."""
    if current and live:
        raise UsageError("Options --current and --live are mutually exclusive")
    if current and config:
        raise UsageError("Options --current and --config are mutually exclusive")
    return live, config


def exclusive(**flags: bool) -> None:
    """In a command's body: refuse two of these options given together."""
    given = [k for k, v in flags.items() if v]
    if len(given) > 1:
        a, b = given[:2]
        raise UsageError(
            f"Options --{a.replace('_', '-')} and --{b.replace('_', '-')} are mutually exclusive")


def virsh_int(text: str | None, option_name: str) -> int | None:
    """A virsh ``int`` option given as text (None: not given): a decimal that
    fits in 32 bits, else ``Numeric value 'x' for <option> option is
    malformed or out of range``."""
    if text is None:
        return None
    try:
        value = int(text, 10)
    except ValueError:
        value = None
    if value is None or not -2**31 <= value < 2**31 or text.strip() != text or "_" in text:
        raise InvalidArg(f"Numeric value '{text}' for <{option_name}> option is malformed or out of range")
    return value
