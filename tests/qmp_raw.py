"""A minimal synchronous QMP client (socket + json), for tests and benchmarks.

Every connect and read has a deadline (QMP serves one client at a time: a
second client connects but gets no greeting), replies are matched by ``id``,
events read while waiting are kept in ``events``, and a line longer than
``read_cap`` bytes is an error (never an unbounded buffer).  A socket that
cannot be connected to raises the OSError (FileNotFoundError,
ConnectionRefusedError); everything else raises a QMPError subclass.

    with QMP("/run/x/qmp.sock", timeout=5) as q:
        q.command("query-status")            # -> {"status": "running", ...}
        q.command("system_powerdown")
        q.wait_event("SHUTDOWN", timeout=30)  # -> the event dict
"""
from __future__ import annotations

import collections
import json
import socket
import time
from typing import Any, Callable

__all__ = ["QMP", "QMPError", "QMPTimeout", "QMPCommandError", "QMPClosed",
           "qmp_command"]


class QMPError(Exception):
    pass


class QMPTimeout(QMPError):
    pass


class QMPClosed(QMPError):
    """The connection was closed (QEMU exited or dropped us)."""


class QMPCommandError(QMPError):
    def __init__(self, command: str, error: dict):
        self.command, self.error_class = command, error.get("class", "")
        self.desc = error.get("desc", "")
        super().__init__(f"{command}: {self.error_class}: {self.desc}")


class QMP:
    def __init__(self, path: str, timeout: float = 5.0, read_cap: int = 1 << 20):
        self.timeout, self.read_cap = timeout, read_cap
        self.events: collections.deque[dict] = collections.deque()
        self._buf, self._next_id = b"", 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(str(path))
            deadline = time.monotonic() + timeout
            self.greeting = self._read_msg(deadline)
            if "QMP" not in self.greeting:
                raise QMPError(f"not a QMP greeting: {self.greeting!r}")
            self.command("qmp_capabilities")
        except socket.timeout:
            self.close()
            raise QMPTimeout(f"connect to {path}: timed out after {timeout}s") from None
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

    def command(self, name: str, arguments: dict | None = None,
                timeout: float | None = None) -> Any:
        """Run a command; return its ``return`` value or raise QMPCommandError."""
        self._next_id += 1
        cid = f"t{self._next_id}"
        req: dict[str, Any] = {"execute": name, "id": cid}
        if arguments:
            req["arguments"] = arguments
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            self._sock.sendall(json.dumps(req).encode() + b"\n")
        except OSError as e:
            raise QMPClosed(f"QMP connection lost: {e}") from None
        while True:
            msg = self._read_msg(deadline)
            if "event" in msg:
                self.events.append(msg)
            elif msg.get("id") == cid:
                if "error" in msg:
                    raise QMPCommandError(name, msg["error"])
                return msg.get("return")
            # a reply to another id (none expected): ignore it

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


def qmp_command(path: str, name: str, arguments: dict | None = None,
                timeout: float = 5.0) -> Any:
    """One-shot: connect, negotiate, run one command, close."""
    with QMP(path, timeout=timeout) as q:
        return q.command(name, arguments)
