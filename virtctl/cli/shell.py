"""The interactive shell: prompt-toolkit, on one persistent connection.

Each line goes through the same click tree as one-shot mode
(``main.run_string``), split with virsh's rules; a line that ends inside
quotes or after a backslash asks for a continuation line.  ``quit``,
``exit`` or Ctrl-D leave; Ctrl-C abandons the line being typed (or
interrupts the running command) and the shell carries on; errors are
printed and the shell carries on.

Completion is the one engine (``virtctl.cli.complete``) fed by a metadata
cache refreshed in the background (``virtctl.cli.cache``), read through
``ThreadedCompleter(DynamicCompleter(...))``: a TAB never waits on the
hypervisor.  prompt_toolkit is imported here only, when the shell opens.
"""
from __future__ import annotations

import os
import sys
import threading

from virtctl.cli import complete as engine
from virtctl.cli.cache import MetadataCache
from virtctl.errors import VirtError

BANNER = """\
Welcome to virtctl, the virtualization interactive terminal.

Type:  'help' for help with commands
       'quit' to quit

"""


def history_path() -> str:
    """``$XDG_STATE_HOME/virtctl/history`` (``~/.local/state/virtctl/history``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "virtctl", "history")


def prompt_text(session) -> str:
    """``virtctl (URI)$ `` -- ``#`` for root, `` [ro]`` on a read-only connection."""
    conn = session._conn
    uri = conn.uri if conn is not None else (session.uri or "not connected")
    ro = " [ro]" if session.readonly else ""
    return f"virtctl ({uri}){ro}{'#' if os.geteuid() == 0 else '$'} "


def path_candidates(incomplete: str) -> list[tuple[str, str]]:
    """(completed path, kind) for file names starting with ``incomplete``."""
    head, tail = os.path.split(incomplete)
    directory = os.path.expanduser(head) if head else "."
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    out = []
    for name in names:
        if not name.startswith(tail) or (name.startswith(".") and not tail.startswith(".")):
            continue
        full = os.path.join(head, name)
        is_dir = os.path.isdir(os.path.join(directory, name))
        out.append((full + ("/" if is_dir else ""), "directory" if is_dir else "file"))
    return out


def make_completer(cache: MetadataCache, commands: engine.CommandSource):
    """A prompt_toolkit Completer over the engine and the cache's metadata."""
    from prompt_toolkit.completion import Completer, Completion

    class ShellCompleter(Completer):
        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            parsed = engine.split_partial(text)
            if parsed is None:  # inside a comment
                return
            words, incomplete, start = parsed
            result = engine.complete(words, incomplete, cache.metadata, commands)
            pos = start - len(text)
            for c in result.candidates:
                yield Completion(engine.quote_virsh(c.value), start_position=pos, display=c.value,
                                 display_meta=c.help)
            if result.files:
                for path, kind in path_candidates(incomplete):
                    yield Completion(engine.quote_virsh(path) if not path.endswith("/") else path,
                                     start_position=pos, display=path, display_meta=kind)

    return ShellCompleter()


def _connect(session, lock) -> None:
    with lock:
        try:
            session.conn  # noqa: B018 - open it now, as virsh does, so the prompt names it
        except VirtError as exc:
            from virtctl.cli.main import report

            report(session, exc)


def _prompt_session(cache, commands):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.completion import DynamicCompleter, ThreadedCompleter
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    path = history_path()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "a"):
            pass
        history = FileHistory(path)
    except OSError as exc:
        sys.stderr.write(f"warning: history not kept: cannot write {path}: {exc.strerror}\n")
        history = InMemoryHistory()
    completer = make_completer(cache, commands)
    return PromptSession(history=history,
                         completer=ThreadedCompleter(DynamicCompleter(lambda: completer)),
                         complete_while_typing=False,
                         auto_suggest=AutoSuggestFromHistory())


def run_shell(session) -> int:
    """Read, split and run lines until quit/exit/Ctrl-D; return the last status."""
    from virtctl.cli.main import report, run_string
    from virtctl.cli.split import Incomplete, split_commands

    session.interactive = True
    lock = threading.Lock()
    _connect(session, lock)
    cache = MetadataCache(session, lock)
    cache.refresh()
    prompt = _prompt_session(cache, engine.CachedCommandSource())
    if not session.quiet:
        session.out.write(BANNER)
        session.out.flush()
    status, pending = 0, ""
    while not session.quit_requested:
        try:
            line = prompt.prompt(prompt_text(session) if not pending else "> ")
        except KeyboardInterrupt:  # abandon the line, stay in the shell
            pending = ""
            continue
        except EOFError:  # Ctrl-D
            session.out.write("\n")
            break
        text = pending + line
        try:
            split_commands(text, continuation=True)
        except Incomplete:
            pending = text + "\n"
            continue
        except VirtError as exc:
            pending = ""
            status = report(session, exc)
            continue
        pending = ""
        if not text.strip():
            continue
        try:
            with lock:
                status = run_string(session, text)
        except KeyboardInterrupt:  # Ctrl-C while a command ran: stop it, keep the shell
            session.err.write("^C\n")
            status = 130
        session.out.flush()
        cache.refresh()
    return status
