"""virtctl's own small synchronous QMP client (socket + json).

Why not ``qemu.qmp``: importing it costs 75-110 ms per one-shot command,
this costs ~10 ms, and its synchronous wrapper is GPLv2-only and going away
(RELIABILITY.md rule 11).  What QMP needs (rule 7), and this does:

* every connect and read has a deadline: QMP serves one client at a time,
  a second one connects but gets no greeting until the first leaves;
* replies are matched by ``id``; events read while waiting are kept in
  ``events`` (``stop`` sends ``STOP`` before its reply);
* a line longer than ``read_cap`` is an error, never an unbounded buffer;
* a file descriptor can ride along a command (``fds=``, SCM_RIGHTS), for
  ``getfd`` + ``migrate fd:`` (rule 9).

Errors: OSError subclasses when the socket cannot be connected to
(FileNotFoundError, ConnectionRefusedError), QMPError subclasses for
everything else.  This module is imported by the per-VM monitor: json,
socket and time only.
"""
from __future__ import annotations

import collections
import json
import socket
import time
from typing import Any, Callable

__all__ = ["QMP", "QMPError", "QMPTimeout", "QMPCommandError", "QMPClosed"]


class QMPError(Exception):
    pass


class QMPTimeout(QMPError):
    pass


class QMPClosed(QMPError):
    """The connection was closed (QEMU exited or dropped us)."""


class QMPCommandError(QMPError):
    def __init__(self, command: str, error: dict):
        self.command, self.error_class = command, str(error.get("class", ""))
        self.desc = str(error.get("desc", ""))
        super().__init__(f"{command}: {self.error_class}: {self.desc}")


class QMP:
    """One negotiated QMP connection.  ``QMP(path, timeout=5)``; a context manager."""

    def __init__(self, path: str, timeout: float = 5.0, read_cap: int = 1 << 20):
        self.path, self.timeout, self.read_cap = str(path), timeout, read_cap
        self.events: collections.deque[dict] = collections.deque()
        self._buf, self._next_id = b"", 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(self.path)
            deadline = time.monotonic() + timeout
            self.greeting = self._read_msg(deadline)
            if "QMP" not in self.greeting:
                raise QMPError(f"not a QMP greeting: {str(self.greeting)[:200]!r}")
            self.command("qmp_capabilities")
        except socket.timeout:
            self.close()
            raise QMPTimeout(f"connect to {self.path}: timed out after {timeout:g}s") from None
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "QMP":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def version(self) -> str:
        """QEMU's version from the greeting, e.g. ``7.2.22``."""
        q = self.greeting.get("QMP", {}).get("version", {}).get("qemu", {})
        return f"{q.get('major', 0)}.{q.get('minor', 0)}.{q.get('micro', 0)}"

    # --- wire ------------------------------------------------------------------
    def _read_msg(self, deadline: float) -> dict:
        while b"\n" not in self._buf:
            if len(self._buf) > self.read_cap:
                raise QMPError(f"QMP message over {self.read_cap} bytes")
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPTimeout("timed out waiting for QMP")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                raise QMPTimeout("timed out waiting for QMP") from None
            except OSError as e:  # ECONNRESET...
                raise QMPClosed(f"QMP connection lost: {e}") from None
            if not chunk:
                raise QMPClosed("QMP connection closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        if len(line) > self.read_cap:
            raise QMPError(f"QMP message over {self.read_cap} bytes")
        try:
            msg = json.loads(line)
        except ValueError:
            raise QMPError(f"garbage from QMP: {line[:200]!r}") from None
        if not isinstance(msg, dict):
            raise QMPError(f"garbage from QMP: {line[:200]!r}")
        return msg

    def command(self, name: str, arguments: dict | None = None, timeout: float | None = None,
                fds: list[int] | None = None) -> Any:
        """Run a command; return its ``return`` value or raise QMPCommandError.

        ``fds`` are passed with the command (SCM_RIGHTS), as ``getfd`` wants."""
        self._next_id += 1
        cid = f"v{self._next_id}"
        req: dict[str, Any] = {"execute": name, "id": cid}
        if arguments:
            req["arguments"] = arguments
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = json.dumps(req).encode() + b"\n"
        try:
            self._sock.settimeout(max(0.01, deadline - time.monotonic()))
            if fds:
                sent = socket.send_fds(self._sock, [data], fds)
                if sent < len(data):
                    self._sock.sendall(data[sent:])
            else:
                self._sock.sendall(data)
        except socket.timeout:
            raise QMPTimeout(f"{name}: timed out sending to QMP") from None
        except OSError as e:
            raise QMPClosed(f"QMP connection lost: {e}") from None
        while True:
            msg = self._read_msg(deadline)
            if "event" in msg:
                self.events.append(msg)
            elif msg.get("id") == cid:
                if "error" in msg:
                    err = msg["error"] if isinstance(msg["error"], dict) else {"desc": str(msg["error"])}
                    raise QMPCommandError(name, err)
                return msg.get("return")
            # a reply to another id (none expected): ignore it

    def next_event(self, timeout: float) -> dict | None:
        """The next event (queued first), or None when none comes within ``timeout``.
        Raises QMPClosed when QEMU goes away."""
        if self.events:
            return self.events.popleft()
        try:
            while True:
                msg = self._read_msg(time.monotonic() + timeout)
                if "event" in msg:
                    return msg
        except QMPTimeout:
            return None

    def wait_event(self, name: str | None = None, timeout: float | None = None,
                   match: Callable[[dict], bool] | None = None) -> dict:
        """Return (and remove) the first event named ``name`` (any if None)
        for which ``match`` holds, reading from QEMU until ``timeout``."""
        def ok(ev: dict) -> bool:
            return (name is None or ev.get("event") == name) and (match is None or match(ev))
        for ev in list(self.events):
            if ok(ev):
                self.events.remove(ev)
                return ev
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = self._read_msg(deadline)
            if "event" not in msg:
                continue
            if ok(msg):
                return msg
            self.events.append(msg)
