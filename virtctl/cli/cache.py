"""The shell's completion metadata, refreshed in the background.

A TAB must never wait on the hypervisor, so the completer only ever reads
``MetadataCache.metadata`` -- an immutable ``complete.Metadata`` swapped in
whole under a lock.  ``refresh()`` lists the domains on a daemon thread;
the shell calls it at start, after every command line (commands change
states, and guests change their own) and after ``connect``.

The connection is shared with the commands the shell runs, and drivers are
not thread-safe, so whoever uses it holds ``conn_lock``: the shell while a
command line runs, the refresher while it lists.  A refresh asked for while
one runs is coalesced into one more pass.
"""
from __future__ import annotations

import threading

from virtctl.cli.complete import Metadata


class MetadataCache:
    def __init__(self, session, conn_lock: threading.Lock | None = None):
        self._session = session
        self.conn_lock = conn_lock or threading.Lock()
        self._lock = threading.Lock()  # guards the fields below
        self._meta = Metadata()
        self._thread: threading.Thread | None = None
        self._again = False
        self.generation = 0  # completed refreshes (tests and the bench wait on it)
        self._done = threading.Condition(self._lock)

    @property
    def metadata(self) -> Metadata:
        with self._lock:
            return self._meta

    def refresh(self) -> None:
        """Start a background refresh (or ask the running one for another pass)."""
        with self._lock:
            if self._thread is not None:
                self._again = True
                return
            self._thread = threading.Thread(target=self._run, name="virtctl-metadata", daemon=True)
            self._thread.start()

    def wait(self, generation: int, timeout: float = 10.0) -> bool:
        """Block until ``generation`` refreshes have completed (tests, bench)."""
        with self._done:
            return self._done.wait_for(lambda: self.generation >= generation, timeout)

    def _load(self) -> Metadata:
        with self.conn_lock:
            conn = self._session._conn  # never opens one: the shell connects, we only read
            if conn is None:
                return Metadata()
            try:
                return Metadata.from_connection(conn)
            except Exception:  # a failing listing must not kill completion: keep names empty
                return Metadata(uri=getattr(conn, "uri", None))

    def _run(self) -> None:
        while True:
            meta = self._load()
            with self._lock:
                self._meta = meta
                self.generation += 1
                self._done.notify_all()
                if not self._again:
                    self._thread = None
                    return
                self._again = False
