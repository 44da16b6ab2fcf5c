"""The session: what one run of virtctl (or one shell) shares between
commands: global options, the connection (opened on first use), output.

Commands get it as ``click.get_current_context().obj`` through the
``pass_session`` decorator and only ever print through it.
"""
from __future__ import annotations

import sys
from typing import TextIO

import click

from virtctl.cli import output


class Session:
    """(A plain class: a dataclass costs a one-shot command ~1 ms to create.)"""

    def __init__(self, uri: str | None = None, readonly: bool = False, quiet: bool = False,
                 json: bool = False, timing: bool = False, escape: str | None = None,
                 out: TextIO | None = None, err: TextIO | None = None, interactive: bool = False,
                 quit_requested: bool = False):
        self.uri = uri  # from -c; None = the documented default
        self.readonly = readonly
        self.quiet = quiet
        self.json = json
        self.timing = timing  # -t: print each command's time
        self.escape = escape  # -e: the console's escape sequence
        self.out: TextIO = out if out is not None else sys.stdout
        self.err: TextIO = err if err is not None else sys.stderr
        self.interactive = interactive
        self.quit_requested = quit_requested  # set by `quit`; the shell leaves after the line
        self._conn: object = None
        # UUID -> the argument a domain was looked up with: virsh's messages echo
        # it ("Domain '1' destroyed"), JSON keeps the resolved name and UUID
        self._typed: dict = {}

    # --- connection -------------------------------------------------------------
    @property
    def conn(self):
        """The connection, opened on first use (echo, help need none)."""
        if self._conn is None:
            from virtctl.api.connection import Connection
            from virtctl.uri import resolve

            self._conn = Connection(resolve(self.uri), readonly=self.readonly)
        return self._conn

    def reconnect(self, uri: str | None, readonly: bool = False) -> None:
        from virtctl.api.connection import Connection
        from virtctl.uri import resolve

        new = Connection(resolve(uri), readonly=readonly)
        self.close()
        self._conn, self.uri, self.readonly = new, uri, readonly

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def domain(self, key: str, *, option: str = "domain", by_id: bool = True, by_uuid: bool = True,
               by_name: bool = True):
        """The domain ``key`` names, looked up as virsh does (see
        Connection.lookup_domain); remembered as typed for ``done``/``context``."""
        self.value(option, key)
        dom = self.conn.lookup_domain(key, by_id=by_id, by_uuid=by_uuid, by_name=by_name)
        self._typed[dom.uuid] = key
        return dom

    @staticmethod
    def value(option: str, value: str) -> str:
        """``value`` of string option ``option``, refused when empty as virsh
        refuses it (at run time, like virsh)."""
        if value == "":
            from virtctl.errors import InvalidArg

            raise InvalidArg(f"Failed to get option '{option}': Option argument is empty",
                             detail={"option": option})
        return value

    def _words(self, dom, args: dict) -> dict:
        """What message templates may name: ``{domain}`` as typed (the name when
        the domain was not looked up from an argument), ``{name}``, and ``args``."""
        words = dict(args)
        if dom is not None:
            words.setdefault("name", dom.name)
            words.setdefault("domain", self._typed.get(dom.uuid, dom.name))
        return words

    def context(self, template: str, dom=None, **args):
        """``with session.context("Failed to start domain '{name}'", dom):``
        gives errors raised inside virsh's first error line (see ``_words``)."""
        from virtctl.errors import Context

        return Context(template.format_map(self._words(dom, args)))

    # --- output -----------------------------------------------------------------
    def print(self, text: str = "", *, end: str = "\n") -> None:
        """Data output (always shown in text mode)."""
        self.out.write(text + end)

    def extra(self, text: str, *, end: str = "\n") -> None:
        """Informational output, suppressed by -q (virsh's vshPrintExtra)."""
        if not self.quiet:
            self.out.write(text + end)

    def emit(self, data, text: str | None = None, *, extra: bool = False) -> None:
        """Print ``data`` as JSON in --json mode, else ``text`` (if given)."""
        if self.json:
            self.out.write(output.to_json(data))
        elif text is not None:
            (self.extra if extra else self.print)(text, end="")

    def done(self, dom, message: str, action: str, *, name: str | None = None, end: str = "\n",
             **data) -> None:
        """Report an action finished on domain handle ``dom``: virsh's message
        (if any; a template, see ``_words``: ``{domain}`` is the argument as
        typed, ``{name}`` the name, and every ``data`` key), or in JSON
        ``{"domain": NAME, "uuid", "action", ...data, "result": "ok"}``.
        ``end=""`` where virsh's message has no newline of its own (the
        command's closing empty line then ends it)."""
        if self.json:
            doc = {"domain": name or dom.name, "uuid": dom.uuid, "action": action, **data, "result": "ok"}
            self.out.write(output.to_json(doc))
        elif message:
            self.extra(message.format_map(self._words(dom, data)), end=end)


pass_session = click.make_pass_decorator(Session)
