"""The one completion engine: the interactive shell and the bash, zsh and
fish scripts all ask it.

The engine is pure: given the words of a command line, the word under the
cursor and a metadata provider (the live objects and their states), it
returns candidates.  It never talks to a hypervisor itself, so it is tested
from plain fake metadata::

    meta = Metadata.from_dict({"domains": [{"name": "web1", "state": "shut-off"}]})
    complete(["start"], "w", meta).values()        # ['web1']

What a value completes to is declared on the option (``completer=``, see
``virtctl.cli.options.COMPLETERS``) or follows from a ``click.Choice`` type.
virsh's positional-or-option forms are understood: bare words fill the
positional options in order: the words are replayed through the command
line's own parser (``virtctl.cli.parse``) in its tolerant mode.

``main_complete`` is the hidden ``virtctl __complete`` entry the shell
scripts call at TAB time; it imports only what the answer needs (the one
command module, and a connection only when domain names are wanted).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

# --- metadata: what the engine knows about live objects ------------------------------


@dataclass(frozen=True)
class DomainMeta:
    name: str
    state: str  # a DomainState key: running, idle, paused, in-shutdown, shut-off, ...
    persistent: bool = True


@dataclass(frozen=True)
class NetworkMeta:
    name: str
    active: bool = True
    persistent: bool = True


def _evaluated(value, default=()):
    """A list, or a callable's list; nothing when it fails (a TAB never errors)."""
    if callable(value):
        try:
            return list(value())
        except Exception:
            return list(default)
    return list(value)


# state keys (virtctl.api.types.DomainState.key) per completer filter
_INACTIVE = {"shut-off", "no-state"}
_RUNNING = {"running", "idle"}
_PAUSED = {"paused", "pmsuspended"}

KNOWN_URIS = ("test:///default", "qemu:///session", "qemu:///system")


def _named_remotes() -> dict:
    """[remotes.NAME] of the config file (-c @NAME, list --remote); none when it is unreadable."""
    from virtctl.errors import VirtError
    from virtctl.uri import remotes

    try:
        return remotes()
    except VirtError:
        return {}


class Metadata:
    """Live objects for completion.  ``domains`` may be a list or a callable
    returning one (evaluated on first use: a one-shot completion connects
    only if it needs names)."""

    def __init__(self, domains: Iterable[DomainMeta] | Callable[[], Iterable[DomainMeta]] = (),
                 uri: str | None = None, snapshots: Callable[[str], Iterable[tuple[str, str]]] | None = None,
                 pools: dict | Callable[[], dict] | None = None,
                 networks: Iterable[NetworkMeta] | Callable[[], Iterable[NetworkMeta]] = ()):
        self._domains = domains
        self._networks = networks
        self.uri = uri
        self._snapshots = snapshots  # domain as typed -> [(snapshot name, help)], asked at TAB time
        # pool name -> (state text, [volume names]); volumes only of active pools
        self._pools = pools if pools is not None else {}

    def snapshots_of(self, domain: str | None) -> list[tuple[str, str]]:
        """The snapshots of the domain named on the line (none if unknown)."""
        if domain is None or self._snapshots is None:
            return []
        try:
            return sorted(self._snapshots(domain))
        except Exception:  # no connection or no such domain: nothing to offer
            return []

    _interfaces = None  # domain as typed -> [(target dev or MAC, help)], asked at TAB time

    def interfaces_of(self, domain: str | None) -> list[tuple[str, str]]:
        """The interfaces (target dev names and MACs) of the domain named on the line."""
        if domain is None or self._interfaces is None:
            return []
        try:
            return sorted(self._interfaces(domain))
        except Exception:  # no connection or no such domain: nothing to offer
            return []

    disks = None  # domain as typed -> [(disk target, source)], asked at TAB time (blockjob.py)

    def disks_of(self, domain: str | None) -> list[tuple[str, str]]:
        """The disk targets of the domain named on the line (none if unknown)."""
        if domain is None or self.disks is None:
            return []
        try:
            return list(self.disks(domain))
        except Exception:  # no connection or no such domain: nothing to offer
            return []

    @property
    def pools(self) -> dict:
        if callable(self._pools):
            try:
                self._pools = dict(self._pools())
            except Exception:  # never an error at TAB time
                self._pools = {}
        return dict(self._pools)

    @property
    def networks(self) -> list[NetworkMeta]:
        self._networks = _evaluated(self._networks)
        return list(self._networks)

    @property
    def domains(self) -> list[DomainMeta]:
        if callable(self._domains):
            try:
                self._domains = list(self._domains())
            except Exception:  # no connection: nothing to offer, never an error at TAB time
                self._domains = []
        return list(self._domains)

    @classmethod
    def from_dict(cls, data: dict) -> "Metadata":
        """``{"uri": ..., "domains": [{"name", "state", "persistent"}],
        "pools": [{"name", "state", "volumes": [names]}],
        "networks": [{"name", "active", "persistent"}]}``."""
        return cls([DomainMeta(d["name"], d.get("state", "running"), d.get("persistent", True))
                    for d in data.get("domains", [])], uri=data.get("uri"),
                   pools={p["name"]: (p.get("state", "running"), list(p.get("volumes", ())))
                          for p in data.get("pools", [])},
                   networks=[NetworkMeta(n["name"], n.get("active", True), n.get("persistent", True))
                             for n in data.get("networks", [])])

    @classmethod
    def from_connection(cls, conn) -> "Metadata":
        """One consistent listing of ``conn``'s domains (and its networks,
        where the driver has them)."""
        meta = cls._from_connection(conn)
        meta._interfaces = _interface_lister(conn)
        meta.disks = _disk_lister(conn)
        meta.device_lister = lambda domain: conn.lookup_domain(domain).xml()  # hotplug's MACs, aliases
        return meta

    @classmethod
    def _from_connection(cls, conn) -> "Metadata":
        return cls([DomainMeta(d.snapshot.name, d.snapshot.state.key, d.snapshot.persistent)
                    for d in conn.domains()], uri=conn.uri, snapshots=_snapshot_lister(conn),
                   networks=_evaluated(lambda: [NetworkMeta(n.name, n.snapshot.active, n.snapshot.persistent)
                                                for n in conn.networks()]),
                   pools=dict(_evaluated(lambda: _pools_of(conn).items())))


def _pools_of(conn) -> dict:
    """pool name -> (state text, [volume names]) of ``conn`` (volumes of active pools)."""
    out = {}
    for p in conn.pools():
        rec = p.snapshot
        out[rec.name] = (rec.state_text, [v.name for v in p.volumes()] if rec.active else [])
    return out


def _interface_lister(conn) -> Callable[[str], list[tuple[str, str]]]:
    def names(domain: str) -> list[tuple[str, str]]:
        from virtctl.xml import xmlapi

        out = []
        for el in xmlapi.parse(conn.lookup_domain(domain).xml()).findall("devices/interface"):
            t, m = el.find("target"), el.find("mac")
            dev, mac = (t.get("dev") if t is not None else None), (m.get("address") if m is not None else None)
            if dev:
                out.append((dev, mac or ""))
            if mac:
                out.append((mac, dev or el.get("type", "")))
        return out
    return names


def _lazy_interfaces(uri: str | None) -> Callable[[str], list[tuple[str, str]]]:
    def load(domain: str) -> list[tuple[str, str]]:
        from virtctl.api.connection import Connection
        from virtctl.uri import resolve

        with Connection(resolve(uri), readonly=True) as conn:
            return _interface_lister(conn)(domain)
    return load


def _snapshot_lister(conn) -> Callable[[str], list[tuple[str, str]]]:
    def names(domain: str) -> list[tuple[str, str]]:
        return [(s.name, s.record.state + (", current" if s.record.current else ""))
                for s in conn.lookup_domain(domain).snapshots()]
    return names


def _disk_lister(conn) -> Callable[[str], list[tuple[str, str]]]:
    def targets(domain: str) -> list[tuple[str, str]]:
        from virtctl.xml import xmlapi

        out = []
        for d in xmlapi.parse(conn.lookup_domain(domain).xml()).findall("devices/disk"):
            tgt, src = d.find("target"), d.find("source")
            if tgt is not None and tgt.get("dev"):
                out.append((tgt.get("dev"), (src.get("file") or src.get("dev") or src.get("volume") or "")
                            if src is not None else ""))
        return out
    return targets


EMPTY = Metadata()

# --- command specs: the click tree, reduced to what completion needs --------------------


@dataclass(frozen=True)
class OptionSpec:
    names: tuple[str, ...]
    takes_value: bool
    positional: bool
    completer: str | None  # see options.COMPLETERS, or "choice"
    choices: tuple[str, ...]
    help: str
    metavar: str


@dataclass(frozen=True)
class CommandSpec:
    name: str
    help: str
    options: tuple[OptionSpec, ...]
    variadic: OptionSpec | None = None  # a nargs=-1 argument

    @property
    def positionals(self) -> list[OptionSpec]:
        return [o for o in self.options if o.positional]

    def option(self, name: str) -> OptionSpec | None:
        for o in self.options:
            if name in o.names:
                return o
        return None


def spec_of(cmd) -> CommandSpec:
    """A click command as a CommandSpec."""
    import click

    from virtctl.cli.options import completer_of, summary

    options, variadic = [], None
    for p in cmd.params:
        choices = tuple(p.type.choices) if isinstance(p.type, click.Choice) else ()
        if isinstance(p, click.Option):
            takes = not (p.is_flag or p.count)
            metavar = p.metavar or (p.name or "").upper()
            options.append(OptionSpec(tuple(o for o in p.opts if o.startswith("--")) or tuple(p.opts), takes,
                                      bool(getattr(p, "positional", False)), completer_of(p), choices,
                                      p.help or "", metavar))
        elif isinstance(p, click.Argument) and p.nargs == -1:
            variadic = OptionSpec((p.name or "",), True, True, completer_of(p), choices, "",
                                  (p.name or "").upper())
    return CommandSpec(cmd.name or "", summary(cmd), tuple(options), variadic)


class CommandSource:
    """The commands completion knows: names with one-line help, and specs.
    The default reads virtctl's command table, importing a command's module
    only when its spec is asked for."""

    def names(self) -> dict[str, str]:
        from virtctl.cli import tree
        from virtctl.commands import ALIASES

        out = {n: spec_of(c).help for n, c in tree.all_commands().items()}
        for alias, target in ALIASES.items():
            out[alias] = f"alias of {target}"
        return dict(sorted(out.items()))

    def names_only(self) -> list[str]:
        from virtctl.commands import ALIASES, COMMANDS

        return sorted([*COMMANDS, *ALIASES])

    def get(self, name: str) -> CommandSpec | None:
        from virtctl.cli import tree

        cmd = tree.root().get_command(None, name)
        return None if cmd is None else spec_of(cmd)


class CachedCommandSource(CommandSource):
    """Specs built once (the shell asks at every TAB)."""

    def __init__(self):
        self._names: dict[str, str] | None = None
        self._specs: dict[str, CommandSpec | None] = {}

    def names(self) -> dict[str, str]:
        if self._names is None:
            self._names = super().names()
        return self._names

    def get(self, name: str) -> CommandSpec | None:
        if name not in self._specs:
            self._specs[name] = super().get(name)
        return self._specs[name]


class StaticCommandSource(CommandSource):
    """Specs from the generated table ``virtctl/cli/command_specs.py``, so a
    TAB in bash need not import click and the command modules.  A command
    the table does not know yet (it is regenerated with the completion
    scripts) is read from the click tree as usual."""

    def __init__(self):
        try:
            from virtctl.cli import command_specs
        except ImportError:  # pragma: no cover - the table is checked in
            command_specs = None
        self._table = command_specs

    def names(self) -> dict[str, str]:
        return dict(self._table.NAMES) if self._table else super().names()

    def names_only(self) -> list[str]:
        return sorted(self._table.NAMES) if self._table else super().names_only()

    def get(self, name: str) -> CommandSpec | None:
        raw = None
        if self._table:
            raw = self._table.SPECS.get(self._table.ALIASES.get(name, name))
        if raw is None:
            return super().get(name)
        cname, help_, options, variadic = raw
        return CommandSpec(cname, help_, tuple(OptionSpec(*o) for o in options),
                           OptionSpec(*variadic) if variadic else None)


def render_specs_module() -> str:
    """The text of ``virtctl/cli/command_specs.py``, generated from the
    click tree by scripts/gen_completions.py."""
    import pprint

    from virtctl.commands import ALIASES, COMMANDS

    src = CommandSource()

    def row(o: OptionSpec) -> tuple:
        return (o.names, o.takes_value, o.positional, o.completer, o.choices, o.help, o.metavar)

    specs = {}
    for name in sorted(COMMANDS):
        spec = src.get(name)
        specs[name] = (spec.name, spec.help, tuple(row(o) for o in spec.options),
                       row(spec.variadic) if spec.variadic else None)
    return ('"""Command specs for completion, generated by scripts/gen_completions.py from\n'
            'virtctl\'s command tree; do not edit (tests/shell/test_generated.py checks it)."""\n'
            f"NAMES = {pprint.pformat(src.names(), width=100)}\n\n"
            f"ALIASES = {pprint.pformat(dict(sorted(ALIASES.items())), width=100)}\n\n"
            f"SPECS = {pprint.pformat(specs, width=100)}\n")


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    value: str
    help: str = ""


@dataclass
class Completions:
    candidates: list[Candidate] = field(default_factory=list)
    files: bool = False  # also offer file names (the caller lists them)

    def values(self) -> list[str]:
        return [c.value for c in self.candidates]


def _matching(items: Iterable[tuple[str, str]], incomplete: str, prefix: str = "") -> list[Candidate]:
    seen, out = set(), []
    for value, help_ in items:
        if value.startswith(incomplete) and value not in seen:
            seen.add(value)
            out.append(Candidate(prefix + value, help_))
    return out


# --- the engine ----------------------------------------------------------------------------


def _domains(meta: Metadata, which: str) -> list[tuple[str, str]]:
    out = []
    for d in meta.domains:
        ok = {"all": True,
              "active": d.state not in _INACTIVE,
              "inactive": d.state in _INACTIVE,
              "running": d.state in _RUNNING,
              "paused": d.state in _PAUSED,
              "persistent": d.persistent}.get(which, True)
        if ok:
            out.append((d.name, d.state.replace("-", " ") + ("" if d.persistent else ", transient")))
    return sorted(out)


def _pool_of_line(spec, state) -> str | None:
    """The pool named on the line (``--pool`` or the ``<pool>`` argument)."""
    for i, v in state.values.items():
        if "--pool" in spec.options[i].names and isinstance(v, str):
            return v
    return None


def _networks(meta: Metadata, which: str) -> list[tuple[str, str]]:
    out = []
    for n in meta.networks:
        ok = {"active": n.active, "inactive": not n.active, "persistent": n.persistent}.get(which, True)
        if ok:
            out.append((n.name, ("active" if n.active else "inactive") + ("" if n.persistent else ", transient")))
    return sorted(out)


def complete_value(opt: OptionSpec, incomplete: str, meta: Metadata, commands: CommandSource,
                   prefix: str = "", domain: str | None = None, pool: str | None = None) -> Completions:
    """Candidates for the value of ``opt`` (``domain``: the one named on the
    line; ``pool``: the pool named on the line, for volume names)."""
    c = opt.completer
    if c == "snapshot":
        return Completions(_matching(meta.snapshots_of(domain), incomplete, prefix))
    if c == "interface":
        return Completions(_matching(meta.interfaces_of(domain), incomplete, prefix))
    if c == "disk":
        return Completions(_matching(meta.disks_of(domain), incomplete, prefix))
    if c in ("mac", "alias"):
        return Completions(_matching(devices_of(meta, domain, c), incomplete, prefix))
    if c == "pool":
        return Completions(_matching(sorted((n, s) for n, (s, _v) in meta.pools.items()), incomplete, prefix))
    if c == "volume":
        pools = meta.pools
        names = pools.get(pool, ("", []))[1] if pool is not None else []
        return Completions(_matching(((n, pool or "") for n in sorted(names)), incomplete, prefix))
    if c == "choice" or (c is None and opt.choices):
        choices = list(opt.choices)
        if "," in incomplete:  # a comma list (--mode acpi,agent): complete the last item
            head, _, incomplete = incomplete.rpartition(",")
            prefix += head + ","
            choices = [c for c in choices if c not in head.split(",")]
        return Completions(_matching(((v, "") for v in choices), incomplete, prefix))
    if c and c.startswith("domain:"):
        return Completions(_matching(_domains(meta, c.split(":", 1)[1]), incomplete, prefix))
    if c and c.startswith("network:"):
        return Completions(_matching(_networks(meta, c.split(":", 1)[1]), incomplete, prefix))
    if c == "command":
        return Completions(_matching(commands.names().items(), incomplete, prefix))
    if c == "uri":
        uris = [(u, "current connection" if u == meta.uri else "") for u in
                ([meta.uri] if meta.uri else []) + list(KNOWN_URIS)]
        uris += [(f"@{n}", u) for n, u in _named_remotes().items()]
        return Completions(_matching(uris, incomplete, prefix))
    if c == "remote":  # list --remote: named remotes, a comma list, or all
        names = _named_remotes()
        if "," in incomplete:
            head, _, incomplete = incomplete.rpartition(",")
            prefix += head + ","
            names = {n: u for n, u in names.items() if n not in head.split(",")}
        items = list(names.items()) + ([("all", "every named remote")] if not prefix else [])
        return Completions(_matching(items, incomplete, prefix))
    if c and c.startswith("enum:"):
        return Completions(_matching(((v, "") for v in c[5:].split("|")), incomplete, prefix))
    if c == "file":
        return Completions([], files=True)
    return Completions()


def _option_candidates(spec: CommandSpec, given: set[str], incomplete: str) -> list[Candidate]:
    items = []
    for o in spec.options:
        if given.intersection(o.names):
            continue
        desc = o.help
        if o.takes_value:
            desc = f"<{o.metavar.lower()}> {desc}".strip()
        items.extend((n, desc) for n in o.names if n.startswith("--"))
    if "--help".startswith(incomplete) and len(incomplete) >= 3:
        items.append(("--help", "show this command's help"))
    return _matching(items, incomplete)


def complete(words: list[str], incomplete: str, meta: Metadata = EMPTY,
             commands: CommandSource | None = None) -> Completions:
    """Candidates for ``incomplete``, the word under the cursor, after the
    complete ``words`` of one command (``words[0]`` is the command name;
    ``[]`` means the cursor is on the command name)."""
    commands = commands or CommandSource()
    if not words:
        return Completions(_matching(commands.names().items(), incomplete))
    spec = commands.get(words[0])
    if spec is None:
        return Completions()
    # Replay virsh's parse (virtctl.cli.parse, the command line's own) over the words before the cursor.
    from virtctl.cli.parse import parse

    state = parse(spec.name, spec.options, words[1:], variadic=spec.variadic, strict=False)
    given = {n for i in state.values for n in spec.options[i].names}
    pool = _pool_of_line(spec, state)
    domain = next((state.values[i] for i in state.values if "--domain" in spec.options[i].names), None)
    if not isinstance(domain, str):
        domain = None
    if state.pending is not None:
        return complete_value(state.pending, incomplete, meta, commands, domain=domain, pool=pool)
    if not state.data_only and incomplete.startswith("--") and "=" in incomplete:
        name, _, value = incomplete.partition("=")
        o = spec.option(name)
        if o is None or not o.takes_value:
            return Completions()
        return complete_value(o, value, meta, commands, prefix=name + "=", domain=domain, pool=pool)
    if not state.data_only and incomplete.startswith("-") and incomplete != "-":
        return Completions(_option_candidates(spec, given, incomplete))
    # a bare word: the next positional option not given by name, in order, then the variadic one
    if state.next_data is not None:
        return complete_value(state.next_data, incomplete, meta, commands, domain=domain, pool=pool)
    if incomplete == "" and not state.data_only:
        return Completions(_option_candidates(spec, given, incomplete))
    return Completions()


# --- global options (before the command) ------------------------------------------------

GLOBAL_OPTIONS = [
    (("-c", "--connect"), True, "hypervisor connection URI"),
    (("-r", "--readonly"), False, "connect read-only"),
    (("-q", "--quiet"), False, "quiet mode"),
    (("-j", "--json"), False, "print data and errors as JSON"),
    (("-t", "--timing"), False, "print the time each command took"),
    (("-e", "--escape"), True, "escape sequence of console"),
    (("-k", "--keepalive-interval"), True, "accepted for virsh's sake; no effect"),
    (("-K", "--keepalive-count"), True, "accepted for virsh's sake; no effect"),
    (("-v", "--version"), False, "print virtctl's version and exit"),
    (("-h", "--help"), False, "print the usage and exit"),
]


def split_global(argv: list[str]) -> tuple[str | None, bool, list[str], bool]:
    """(uri, readonly, rest, value_pending) from the words after ``virtctl``;
    tolerant of anything (it runs on half-typed lines).  Short options group
    (``-qr``, ``-cURI``) as in ``main.parse_global``; ``value_pending`` is
    true only when ``-c`` waits for its URI."""
    takes = {n for names, t, _h in GLOBAL_OPTIONS if t for n in names} | {"-d", "--debug", "-l", "--log"}
    uri, readonly, i = None, False, 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return uri, readonly, argv[i + 1:], False
        if not a.startswith("-") or a == "-":
            break
        i += 1
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            if name in takes and not eq:
                if i >= len(argv):
                    return uri, readonly, [], name == "--connect"
                value, i = argv[i], i + 1
            if name == "--connect":
                uri = value
            elif name == "--readonly":
                readonly = True
            continue
        for j, letter in enumerate(a[1:], 1):
            if f"-{letter}" in takes:
                value = a[j + 1:]
                if not value:
                    if i >= len(argv):
                        return uri, readonly, [], letter == "c"
                    value, i = argv[i], i + 1
                if letter == "c":
                    uri = value
                break
            if letter == "r":
                readonly = True
    return uri, readonly, argv[i:], False


def complete_argv(argv: list[str], incomplete: str, meta: Metadata = EMPTY,
                  commands: CommandSource | None = None) -> Completions:
    """Completion for a whole ``virtctl`` command line: global options,
    then one command (``argv`` excludes the program name)."""
    commands = commands or CommandSource()
    _uri, _ro, rest, pending = split_global(argv)
    if pending:
        return complete_value(OptionSpec(("--connect",), True, False, "uri", (), "", "URI"),
                              incomplete, meta, commands)
    if not rest:
        if incomplete.startswith("--connect="):
            return complete_value(OptionSpec(("--connect",), True, False, "uri", (), "", "URI"),
                                  incomplete.split("=", 1)[1], meta, commands, prefix="--connect=")
        if incomplete.startswith("-"):
            items = [(n, h) for names, _v, h in GLOBAL_OPTIONS for n in names]
            return Completions(_matching(items, incomplete))
    return complete(rest, incomplete, meta, commands)


# --- virsh-rule tokenizing of a partial line (the interactive shell) ----------------------


def split_partial(text: str) -> tuple[list[str], str, int] | None:
    """Split the text before the cursor with virsh's rules (split.scan) into
    the words of the *last* command, the word under the cursor (unquoted)
    and the offset where that word starts in ``text``.  None when the
    cursor is inside a comment."""
    from virtctl.cli.split import ARG, COMMENT, END, scan

    words: list[str] = []
    for kind, value, start, end, unclosed in scan(text):
        if kind == END:
            words = []
        elif kind == COMMENT and unclosed:
            return None
        elif kind == ARG:
            if end >= len(text):  # the word under the cursor
                return words, value, start
            words.append(value)
    return words, "", len(text)


def quote_virsh(value: str) -> str:
    """``value`` as one word under virsh's rules."""
    if value and not any(ch in value for ch in " \t\n;#'\"\\"):
        return value
    return "'" + value.replace("'", "'\\''") + "'" if "'" not in value else '"' + \
        value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the hidden `virtctl __complete` entry ---------------------------------------------------

_BASH_SPECIAL = set(" \t\n\"'\\$`;&|<>()*?[]!{}~#=")


def _shell_tokens(line: str) -> tuple[list[str], str]:
    """POSIX-shell split of a partial command line: (words, current word)."""
    import shlex

    ends_blank = line[-1:] in (" ", "\t") and not line.endswith("\\ ")
    for tail in ("", '"', "'"):
        try:
            toks = shlex.split(line + tail)
            break
        except ValueError:
            continue
    else:
        toks = line.split()
    if ends_blank or not toks:
        return toks, ""
    return toks[:-1], toks[-1]


def _lazy_domains(uri: str | None) -> Callable[[], list[DomainMeta]]:
    def load() -> list[DomainMeta]:
        from virtctl.api.connection import Connection
        from virtctl.uri import resolve

        with Connection(resolve(uri), readonly=True) as conn:
            return Metadata.from_connection(conn).domains
    return load


def _lazy_snapshots(uri: str | None) -> Callable[[str], list[tuple[str, str]]]:
    def load(domain: str) -> list[tuple[str, str]]:
        from virtctl.api.connection import Connection
        from virtctl.uri import resolve

        with Connection(resolve(uri), readonly=True) as conn:
            return _snapshot_lister(conn)(domain)
    return load


def _lazy_disks(uri: str | None) -> Callable[[str], list[tuple[str, str]]]:
    def load(domain: str) -> list[tuple[str, str]]:
        from virtctl.api.connection import Connection
        from virtctl.uri import resolve

        with Connection(resolve(uri), readonly=True) as conn:
            return _disk_lister(conn)(domain)
    return load


def _lazy_pools(uri: str | None) -> Callable[[], dict]:
    def load() -> dict:
        from virtctl.api.connection import Connection
        from virtctl.uri import resolve

        out = {}
        with Connection(resolve(uri), readonly=True) as conn:
            for p in conn.pools():
                rec = p.snapshot
                out[rec.name] = (rec.state_text, [v.name for v in p.volumes()] if rec.active else [])
        return out
    return load


def _lazy_networks(uri: str | None) -> Callable[[], list[NetworkMeta]]:
    def load() -> list[NetworkMeta]:
        from virtctl.api.connection import Connection
        from virtctl.uri import resolve

        with Connection(resolve(uri), readonly=True) as conn:
            return [NetworkMeta(n.name, n.snapshot.active, n.snapshot.persistent) for n in conn.networks()]
    return load


def main_complete(args: list[str], out=None) -> int:
    """``virtctl __complete [--format plain|bash|zsh|fish] [--line L --cur C] -- WORD... CUR``

    Prints a mode line (``:values``, or ``:files`` when file names should be
    offered too), then one candidate per line (``value<TAB>help`` for zsh,
    fish and plain).  ``--line`` (bash) gives the raw line before the cursor
    and ``--cur`` bash's idea of the current word (it breaks words at ``:``
    and ``=``): candidates are trimmed to replace just that."""
    import sys

    out = out or sys.stdout
    fmt, line, cur, words = "plain", None, None, []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            words = args[i + 1:]
            break
        if a in ("--format", "--line", "--cur") and i + 1 < len(args):
            if a == "--format":
                fmt = args[i + 1]
            elif a == "--line":
                line = args[i + 1]
            else:
                cur = args[i + 1]
            i += 2
            continue
        i += 1
    if line is not None:
        toks, incomplete = _shell_tokens(line)
        argv = toks[1:]
    else:
        argv, incomplete = words[:-1], (words[-1] if words else "")
    uri, _ro, _rest, _p = split_global(argv)
    meta = Metadata(_lazy_domains(uri), uri=uri, snapshots=_lazy_snapshots(uri), pools=_lazy_pools(uri),
                    networks=_lazy_networks(uri))
    meta._interfaces = _lazy_interfaces(uri)
    meta.disks = _lazy_disks(uri)
    try:
        result = complete_argv(argv, incomplete, meta, StaticCommandSource())
    except Exception:  # a TAB must never print a traceback
        if os.environ.get("VIRTCTL_DEBUG"):
            raise
        result = Completions()
    lines = [":files" if result.files else ":values"]
    for c in result.candidates:
        value = c.value
        if fmt == "bash":
            if cur is not None and cur != incomplete and incomplete.endswith(cur):
                head = incomplete[:len(incomplete) - len(cur)]
                if not value.startswith(head):
                    continue
                value = value[len(head):]
            if not (cur or "").startswith(("'", '"')):
                value = "".join("\\" + ch if ch in _BASH_SPECIAL and ch not in ":=" else ch for ch in value)
            lines.append(value)
        else:
            help_ = " ".join(c.help.split())
            lines.append(f"{value}\t{help_}" if help_ else value)
    out.write("\n".join(lines) + "\n")
    return 0


def devices_of(meta: Metadata, domain: str | None, kind: str) -> list[tuple[str, str]]:
    """The disk targets (``disk``), interface MACs (``mac``) or device aliases
    (``alias``) of the domain named on the line, from its current XML."""
    if domain is None:
        return []
    lister = getattr(meta, "device_lister", None)
    try:
        if lister is not None:
            text = lister(domain)
        else:
            from virtctl.api.connection import Connection
            from virtctl.uri import resolve

            with Connection(resolve(meta.uri), readonly=True) as conn:
                text = conn.lookup_domain(domain).xml()
        from virtctl.xml import devices, xmlapi

        root = xmlapi.parse(text)
    except Exception:  # never an error at TAB time
        return []
    out = []
    if kind == "disk":
        for d in root.findall("devices/disk"):
            if devices.disk_target(d):
                out.append((devices.disk_target(d), devices.disk_source(d) or d.get("device", "disk")))
    elif kind == "mac":
        for i in root.findall("devices/interface"):
            if devices.mac_of(i):
                out.append((devices.mac_of(i), i.get("type", "")))
    else:
        for el in root.findall("devices/*"):
            if devices.alias_of(el):
                out.append((devices.alias_of(el), el.tag))
    return sorted(out)
