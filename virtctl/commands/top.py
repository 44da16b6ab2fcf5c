"""top: a live view of every domain (beyond virsh).

On a terminal a full-screen prompt-toolkit screen (imported only here);
otherwise, or with --batch, plain-text frames as ``top -b`` prints them;
--json: one JSON object per frame (JSON Lines).  The figures and frames
are in top_frame.py.
"""
from __future__ import annotations

import click

from virtctl.cli.options import Number, command, option
from virtctl.cli.session import pass_session
from virtctl.commands import top_frame as tf
from virtctl.errors import VirtError

HELP_KEYS = ("keys: up/down select  P cpu  M mem  N name  T state  D disk  I net  < > sort column  "
             "R reverse  s start  h shut down  c console  q quit")


class _Delay(click.ParamType):
    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = None
        if v is None or not 0.1 <= v <= 3600:
            self.fail("a number of seconds from 0.1 to 3600", param, ctx)
        return v


@command("top", help="""Show every domain live: state, CPU %, memory, disk and network rates.

On a terminal a full-screen view refreshed every --delay seconds (1):
up/down select a domain; P, M, N, T, D, I sort by CPU, memory, name,
state, disk or network rate (< and > move the sort column, R reverses);
s starts the selected domain, h shuts it down, c opens its console (the
console's escape returns to top); q quits.  When stdout is not a
terminal, or with --batch, plain-text frames as "top -b" (--iterations N
frames, else until interrupted); with --json one JSON object per frame
(JSON Lines).  Rates are those of the last interval (the first frame
comes after one interval).

\b
Examples:
  virtctl top
  virtctl top --sort mem --delay 2
  virtctl top --batch --iterations 3
  virtctl --json top --iterations 1 | jq '.domains[].cpu_percent'""")
@option("--delay", type=_Delay(), default=1.0, metavar="SECONDS", help="seconds between refreshes (1)",
        completer="none")
@option("--sort", "sort", type=click.Choice(tf.SORT_KEYS), default="cpu", metavar="KEY",
        help="sort by " + "|".join(tf.SORT_KEYS) + " (cpu)", completer="enum:" + "|".join(tf.SORT_KEYS))
@click.option("--reverse", is_flag=True, help="reverse the sort order")
@click.option("--batch", "batch", is_flag=True, help="plain-text frames, not the full-screen view")
@option("--iterations", "iterations", type=Number(minimum=1), metavar="N",
        help="stop after N frames", completer="none")
@pass_session
def top(session, delay, sort, reverse, batch, iterations):
    out = session.out
    tty = hasattr(out, "isatty") and out.isatty()
    if session.json or batch or not tty or iterations is not None:
        _batch(session, delay=delay, sort=sort, reverse=reverse, iterations=iterations)
        return
    _interactive(session, delay=delay, sort=sort, reverse=reverse)


def _batch(session, *, delay: float, sort: str, reverse: bool, iterations: int | None) -> None:
    import json
    import time

    prev = tf.sample(session.conn)
    n = 0
    try:
        while iterations is None or n < iterations:
            time.sleep(max(0.0, delay - (time.monotonic() - prev.time)))
            cur = tf.sample(session.conn)
            rows = tf.sort_rows(tf.rows(prev, cur), sort, reverse=reverse)
            if session.json:
                session.out.write(json.dumps(tf.json_frame(rows, clock=time.time(), interval=cur.time - prev.time,
                                                           sort=sort), separators=(",", ":")) + "\n")
            else:
                session.out.write(("\n" if n else "") + tf.text_frame(rows, sort=sort, delay=delay))
            session.out.flush()
            prev = cur
            n += 1
    except KeyboardInterrupt:
        pass


class Screen:
    """The interactive view's state (kept across console visits)."""

    def __init__(self, session, *, delay: float, sort: str, reverse: bool):
        self.session, self.delay, self.sort, self.reverse = session, delay, sort, reverse
        self.prev = None
        self.cur = None
        self.rows: list[dict] = []
        self.selected: str | None = None  # uuid
        self.message = ""

    def refresh(self, *, force: bool = False) -> None:
        import time

        if self.cur is not None and not force and time.monotonic() - self.cur.time < self.delay * 0.95:
            return
        try:
            new = tf.sample(self.session.conn)
        except VirtError as exc:
            self.message = str(exc)
            return
        self.prev, self.cur = self.cur, new
        self.resort()

    def resort(self) -> None:
        if self.cur is None:
            return
        self.rows = tf.sort_rows(tf.rows(self.prev, self.cur), self.sort, reverse=self.reverse)
        if self.rows and self.selected not in {r["uuid"] for r in self.rows}:
            self.selected = self.rows[0]["uuid"]

    def move(self, step: int) -> None:
        uuids = [r["uuid"] for r in self.rows]
        if not uuids:
            return
        i = uuids.index(self.selected) if self.selected in uuids else 0
        self.selected = uuids[max(0, min(len(uuids) - 1, i + step))]

    def set_sort(self, key: str) -> None:
        self.sort = key
        self.resort()

    def cycle_sort(self, step: int) -> None:
        keys = tf.SORT_KEYS
        self.set_sort(keys[(keys.index(self.sort) + step) % len(keys)])

    def selected_row(self) -> dict | None:
        return next((r for r in self.rows if r["uuid"] == self.selected), None)

    def act(self, what: str) -> None:
        row = self.selected_row()
        if row is None:
            return
        try:
            dom = self.session.conn.lookup_domain(row["uuid"])
            if what == "start":
                dom.start()
                self.message = f"Domain '{row['name']}' started"
            else:
                dom.shutdown()
                self.message = f"Domain '{row['name']}' is being shutdown"
        except VirtError as exc:
            self.message = f"error: {exc}"
        self.refresh(force=True)

    def fragments(self) -> list[tuple[str, str]]:
        import time

        self.refresh()
        out = [("bold", tf.header(self.rows, clock=time.time(), sort=self.sort, delay=self.delay) + "\n"),
               ("", HELP_KEYS + "\n"), ("", (self.message or "") + "\n")]
        lines = tf.table_lines(self.rows)
        out.append(("reverse", lines[0] + "\n"))
        for r, ln in zip(self.rows, lines[1:]):
            out.append(("reverse bold" if r["uuid"] == self.selected else "", ln + "\n"))
        return out


def _interactive(session, *, delay: float, sort: str, reverse: bool) -> None:
    screen = Screen(session, delay=delay, sort=sort, reverse=reverse)
    screen.refresh(force=True)
    while True:
        action = _run_screen(screen)
        if action is None:
            return
        kind, uuid = action
        if kind == "console":
            from virtctl.commands.domain_console import attach

            try:
                attach(session, session.conn.lookup_domain(uuid))
                screen.message = ""
            except VirtError as exc:
                screen.message = f"error: {exc}"
            screen.refresh(force=True)


def _run_screen(screen: Screen):
    """Runs the full-screen view until q (None) or c (("console", uuid))."""
    from prompt_toolkit.application import Application
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.layout import Layout
    from prompt_toolkit.layout.containers import Window
    from prompt_toolkit.layout.controls import FormattedTextControl

    kb = KeyBindings()

    @kb.add("q")
    @kb.add("c-c")
    def _quit(event):
        event.app.exit(result=None)

    def _redrawn(do):
        def handler(event):
            do()
            event.app.renderer.clear()  # the whole screen again: a new order is not a few changed cells
        return handler

    for k, key in (("P", "cpu"), ("M", "mem"), ("N", "name"), ("T", "state"), ("D", "disk"), ("I", "net")):
        kb.add(k)(_redrawn(lambda key=key: screen.set_sort(key)))
    kb.add("<")(_redrawn(lambda: screen.cycle_sort(-1)))
    kb.add(">")(_redrawn(lambda: screen.cycle_sort(1)))

    def _reverse():
        screen.reverse = not screen.reverse
        screen.resort()

    kb.add("R")(_redrawn(_reverse))
    for k, step in (("up", -1), ("k", -1), ("down", 1), ("j", 1)):
        kb.add(k)(lambda event, s=step: screen.move(s))
    kb.add("s")(_redrawn(lambda: screen.act("start")))
    kb.add("h")(_redrawn(lambda: screen.act("shutdown")))

    @kb.add("c")
    @kb.add("enter")
    def _console(event):
        row = screen.selected_row()
        if row is not None:
            event.app.exit(result=("console", row["uuid"]))

    control = FormattedTextControl(screen.fragments, focusable=True, show_cursor=False)
    app = Application(layout=Layout(Window(control)), key_bindings=kb, full_screen=True,
                      refresh_interval=screen.delay, mouse_support=False)
    return app.run()
