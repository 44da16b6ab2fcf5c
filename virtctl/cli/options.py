"""Shared pieces of the command definitions: virsh's argument forms and the
options many commands repeat.

virsh lets every positional argument also be given as an option
(``dominfo test`` = ``dominfo --domain test``).  ``VirshCommand`` does that
for click: positional arguments are declared as options marked
``positional=True`` and bare words fill them in declaration order.
"""
from __future__ import annotations

import click

# What a value can be completed with (virtctl.cli.complete knows each one):
#   "domain:all|active|inactive|running|paused|persistent"  live domain names,
#   filtered by state;  "file"  a file name;  "command"  a virtctl command;
#   "uri"  a connection URI;  "enum:a|b"  these fixed words;
#   "none"  nothing to offer (free text, a number).
# A click.Choice type needs no completer: its choices are offered.
COMPLETERS = ("domain:all", "domain:active", "domain:inactive", "domain:running", "domain:paused",
              "domain:persistent", "file", "command", "uri", "none")


class CompletableOption(click.Option):
    """A click option that says how its value is completed."""

    def __init__(self, *args, completer: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.completer = completer


class PositionalOption(CompletableOption):
    """An option that may also be given as a bare word, in order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.positional = True


class CompletableArgument(click.Argument):
    """A click argument (e.g. a variadic one) that says how it is completed."""

    def __init__(self, *args, completer: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.completer = completer


def option(*decls, completer: str | None = None, **kwargs):
    """``click.option`` with a ``completer`` (see COMPLETERS)."""
    return click.option(*decls, cls=CompletableOption, completer=completer, **kwargs)


def argument(*decls, completer: str | None = None, **kwargs):
    """``click.argument`` with a ``completer`` (see COMPLETERS)."""
    return click.argument(*decls, cls=CompletableArgument, completer=completer, **kwargs)


def completer_of(param) -> str | None:
    """How ``param``'s value is completed: its completer, "choice" for a
    click.Choice, None when it declares nothing (a flag needs nothing)."""
    c = getattr(param, "completer", None)
    if c is None and isinstance(param.type, click.Choice):
        return "choice"
    return c


class VirshCommand(click.Command):
    """A command that accepts virsh's argument forms."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        """``virtctl setmem DOMAIN SIZE [OPTIONS]``: positionals first, by name."""
        pieces = []
        for p in self.params:
            if getattr(p, "positional", False):
                mv = p.metavar or (p.name or "").upper()
                pieces.append(mv if p.required else f"[{mv}]")
        return pieces + super().collect_usage_pieces(ctx)

    def parse_args(self, ctx, args):
        valued, positional, variadic = set(), [], None
        for p in self.params:
            if isinstance(p, click.Option):
                if not (p.is_flag or p.count):
                    valued.update(p.opts)
                if getattr(p, "positional", False):
                    positional.append(p)
            elif isinstance(p, click.Argument) and p.nargs == -1:
                variadic = p
        out: list[str] = []
        bare: list[str] = []
        given: set[str] = set()
        i, after_dashes = 0, False
        while i < len(args):
            a = args[i]
            if after_dashes or a == "-" or not a.startswith("-") or variadic and not a.startswith("--"):
                bare.append(a)
            elif a == "--":
                after_dashes = True
            else:
                name = a.split("=", 1)[0]
                if name in valued and "=" not in a:
                    if i + 1 >= len(args):
                        raise click.UsageError(f"expected syntax: {name} <{name.lstrip('-')}>")
                    out.append(f"{name}={args[i + 1]}")
                    i += 1
                else:
                    out.append(a)
                if name in valued:
                    given.add(name)
            i += 1
        for p in positional:
            if bare and not given.intersection(p.opts):
                out.append(f"{p.opts[0]}={bare.pop(0)}")
        if bare:
            if variadic is None:
                raise click.UsageError(f"unexpected data '{bare[0]}'")
            out.append("--")
            out.extend(bare)
        return super().parse_args(ctx, out)


def command(name: str, **kwargs):
    """``@command("dominfo", help=...)``: a VirshCommand."""
    kwargs.setdefault("cls", VirshCommand)
    kwargs.setdefault("context_settings", {"help_option_names": ["--help"]})
    return click.command(name, **kwargs)


def positional(name: str, *, required: bool = True, help: str = "", completer: str | None = None,
               metavar: str | None = None, **kwargs):
    """A positional-or-option argument ``<name>``."""
    return click.option(f"--{name}", name.replace("-", "_"), cls=PositionalOption, required=required,
                        help=help, completer=completer, metavar=metavar or name.upper(), **kwargs)


def domain_arg(completer: str = "domain:all", help: str = "domain name, id or uuid"):
    return positional("domain", help=help, completer=completer)


def live_config_current(f):
    """virsh's --live / --config / --current trio."""
    f = click.option("--current", is_flag=True, help="affect the current domain state (the default)")(f)
    f = click.option("--live", is_flag=True, help="affect the running domain")(f)
    f = click.option("--config", is_flag=True, help="affect the next boot (the persistent definition)")(f)
    return f


def check_live_config(current: bool, live: bool, config: bool) -> tuple[bool, bool]:
    if current and (live or config):
        raise click.UsageError("Options --current and --live/--config are mutually exclusive")
    return live, config


def exclusive(**flags: bool) -> None:
    given = [k for k, v in flags.items() if v]
    if len(given) > 1:
        a, b = given[:2]
        raise click.UsageError(
            f"Options --{a.replace('_', '-')} and --{b.replace('_', '-')} are mutually exclusive")
