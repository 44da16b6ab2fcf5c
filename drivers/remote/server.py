"""The far end of virtctl+ssh://: ``virtctl __serve-stdio``, run by ssh on
the remote host.  It reads one request a line on stdin, calls the driver of
the URI the client opened, and writes one answer a line on stdout (see
protocol.py).  It listens on nothing and ends when its stdin ends: at once
when idle; when a call is running (a network cut mid-command), after that
call, or after GRACE seconds at most, so that no orphan stays behind.
"""
from __future__ import annotations

import os
import queue
import signal
import socket
import sys
import threading

from virtctl.drivers.remote import protocol
from virtctl.errors import ConnectFailed, InternalError, VirtError

GRACE = 5.0  # seconds a running call may go on once the client is gone


def _plain(value) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    return isinstance(value, (tuple, list)) and all(isinstance(x, (str, int, float, bool)) for x in value)


def is_stream(obj) -> bool:
    """A byte stream (a console: a socket, or drivers/qemu/console.py's ConsoleStream)."""
    return isinstance(obj, socket.socket) or all(callable(getattr(obj, a, None))
                                                 for a in ("fileno", "recv", "sendall", "close"))


def attributes(obj) -> dict:
    """The plain public attributes of a driver object (``driver_name``,
    ``stats_groups``, ...): sent once at open, so reading them costs no round trip."""
    out = {}
    for name in dir(obj):
        if name.startswith("_"):
            continue
        if isinstance(getattr(type(obj), name, None), property):
            continue
        try:
            value = getattr(obj, name)
        except Exception:  # noqa: BLE001 - an attribute that cannot be read is not sent
            continue
        if not callable(value) and _plain(value):
            out[name] = value
    return out


class Server:
    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self.driver = None
        self.handles: dict[int, object] = {}
        self.lines: queue.Queue = queue.Queue()
        self.wlock = threading.Lock()
        self.busy = threading.Event()
        self.raw_sock = None  # set once the session carries a console

    # --- I/O --------------------------------------------------------------------------
    def send(self, doc) -> None:
        data = protocol.dumps(doc)
        with self.wlock:
            while data:
                n = os.write(self.wfd, data)
                data = data[n:]

    def _reader(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self.rfd, 65536)
            except OSError:
                chunk = b""
            raw = self.raw_sock
            if raw is not None:  # a console: the bytes are its input
                try:
                    if chunk:
                        raw.sendall(chunk)
                        continue
                    getattr(raw, "shutdown", lambda how: None)(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if not chunk:
                self.lines.put(None)
                if self.busy.is_set():  # the client is gone while a call runs
                    timer = threading.Timer(GRACE, os._exit, (1,))
                    timer.daemon = True
                    timer.start()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.put(line)

    # --- dispatch ---------------------------------------------------------------------
    def target(self, method: str):
        if method.startswith("#"):
            num, _, name = method[1:].partition(".")
            obj = self.handles.get(int(num)) if num.isdigit() else None
            if obj is None:
                raise InternalError(f"remote protocol: no handle {num}")
        else:
            sub, dot, name = method.partition(".")
            obj = self.driver
            if dot:
                if sub not in protocol.SUBS:
                    raise InternalError(f"remote protocol: no driver part '{sub}'")
                obj = getattr(self.driver, sub)
            else:
                name = sub
        if not name or name.startswith("_") or "." in name:
            raise InternalError(f"remote protocol: refusing method '{method}'")
        fn = getattr(obj, name, None)
        if not callable(fn):
            raise InternalError(f"remote protocol: the driver has no operation '{method}'")
        return obj, name, fn

    def open(self, uri: str, readonly: bool = False) -> dict:
        from virtctl.drivers import driver_class, route
        from virtctl.uri import URI

        parsed = URI.parse(uri)
        if parsed.scheme == "virtctl":
            raise ConnectFailed("virtctl+ssh:// cannot be chained: the remote end needs a local URI")
        self.driver = driver_class(route(parsed))(parsed, readonly=readonly)
        attrs = {"": attributes(self.driver)}
        for sub in protocol.SUBS:
            attrs[sub] = attributes(getattr(self.driver, sub))
        return {"name": self.driver.name, "attrs": attrs}

    def call(self, req: dict):
        rid = req.get("id")
        method = req.get("m", "")

        def handle_of(obj):
            num = len(self.handles) + 1
            while num in self.handles:
                num += 1
            self.handles[num] = obj
            return protocol.Handle(num)

        def callback_of(num):
            def cb(*args, **kwargs):
                self.send({"id": rid, "cb": num, "a": protocol.encode(list(args)),
                           "k": protocol.encode(kwargs)})
            return cb

        args = protocol.decode(req.get("a", []), callback=callback_of)
        kwargs = protocol.decode(req.get("k", {"__d": []}), callback=callback_of)
        if method == "__open":
            return protocol.encode(self.open(*args, **kwargs))
        if self.driver is None:
            raise InternalError("remote protocol: no URI opened yet")
        obj, name, fn = self.target(method)
        result = fn(*args, **kwargs)
        if method.startswith("#") and name == "close":
            self.handles.pop(int(method[1:].partition(".")[0]), None)
        if is_stream(result):
            return result
        return protocol.encode(result, handle=handle_of)

    def serve(self) -> int:
        threading.Thread(target=self._reader, daemon=True).start()
        self.send({"virtctl_remote": protocol.PROTOCOL, "version": _version(), "pid": os.getpid()})
        while True:
            line = self.lines.get()
            if line is None:
                break
            if not line.strip():
                continue
            try:
                req = protocol.loads(line)
            except ValueError:
                self.send({"id": None, "e": protocol.error_doc(InternalError("remote protocol: a line that is not JSON"))})
                continue
            self.busy.set()
            try:
                result = self.call(req)
            except VirtError as exc:
                self.send({"id": req.get("id"), "e": protocol.error_doc(exc)})
                continue
            except Exception as exc:  # noqa: BLE001 - a bug: tell the client, keep serving
                if os.environ.get("VIRTCTL_DEBUG"):
                    import traceback

                    traceback.print_exc()
                self.send({"id": req.get("id"), "e": protocol.error_doc(exc)})
                continue
            finally:
                self.busy.clear()
            if is_stream(result):
                self.raw_sock = result  # before the answer: the client sends only after it
                self.send({"id": req.get("id"), "r": {"__stream": 1}})
                self.pump(result)
                break
            self.send({"id": req.get("id"), "r": result})
        self.close()
        return 0

    def pump(self, sock) -> None:
        """The console's output to the session until it ends (the reader
        thread sends the session's input to it)."""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                with self.wlock:
                    while data:
                        data = data[os.write(self.wfd, data):]
        except OSError:
            return
        finally:
            sock.close()

    def close(self) -> None:
        for h in list(self.handles.values()):
            try:
                h.close()
            except Exception:  # noqa: BLE001
                pass
        if self.driver is not None:
            try:
                self.driver.close()
            except Exception:  # noqa: BLE001
                pass
            self.driver = None


def _version() -> str:
    from virtctl import __version__

    return __version__


def main(argv: list[str]) -> int:
    """``virtctl __serve-stdio``: serve the protocol on stdin/stdout."""
    if argv:
        sys.stderr.write("virtctl __serve-stdio takes no arguments (the client sends the URI)\n")
        return 2
    # the protocol owns fd 1: anything else printing goes to stderr
    wfd = os.dup(1)
    os.dup2(2, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    return Server(0, wfd).serve()
