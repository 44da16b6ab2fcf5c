"""The near end of virtctl+ssh:// (README, "Remote virtctl over ssh").

``virtctl+ssh://[user@]host[:port]/session|system|embed[?root=DIR][&command=PATH]``
(``&driver=test`` with path ``/default``: the remote ``test:///default``)
runs ``ssh -o BatchMode=yes [-p port] [-l user] -- host 'virtctl __serve-stdio'``
with the system's ssh (its config, keys, agent and known_hosts;
``$VIRTCTL_SSH_COMMAND`` replaces ``ssh``, as GIT_SSH_COMMAND does for git) and
forwards every call of the driver interface over it: no method is written out
here, so every command works as it does on the remote host.  Paths that
commands pass to the driver (save, restore, screenshot, ...) are on the
remote host.
"""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import threading
import time
from urllib.parse import urlencode, urlsplit

from virtctl.drivers.remote import protocol
from virtctl.errors import ConnectFailed, InternalError, NotSupported, VirtError

HELLO_TIMEOUT = 60.0  # seconds from ssh's start to the remote virtctl's hello
PATHS = {"/session": "session", "/system": "system", "/embed": "embed"}
CLIENT_KEYS = ("command", "driver")  # query keys this end reads; the rest goes to the remote URI
# arguments that name something on this machine and cannot be forwarded
LOCAL_ONLY = {"domains.monitor_command": "fds"}


def remote_uri(uri) -> str:
    """The URI the remote virtctl opens: ``qemu:///session|system|embed?...``
    (``driver=NAME``: that driver instead of qemu, e.g. ``test`` with ``/default``)."""
    driver = uri.query.get("driver", "qemu")
    path = uri.path or "/"
    if driver == "qemu" and path not in PATHS:
        raise ConnectFailed(f"invalid connection URI '{uri.text}': the path must be /session, /system "
                            "or /embed (?root=DIR)")
    if not driver.isalnum() or driver == "virtctl":
        raise ConnectFailed(f"invalid connection URI '{uri.text}': bad driver '{driver}'")
    rest = {k: v for k, v in uri.query.items() if k not in CLIENT_KEYS}
    return f"{driver}://{path}" + (f"?{urlencode(rest, safe='/')}" if rest else "")


def ssh_argv(uri) -> tuple[list[str], str]:
    """(ssh's argv, the host as named in messages)."""
    if uri.transport != "ssh":
        raise ConnectFailed(f"invalid connection URI '{uri.text}': virtctl URIs need the ssh transport "
                            "(virtctl+ssh://[user@]host[:port]/session)")
    parts = urlsplit(uri.text)
    host = parts.hostname
    if not host:
        raise ConnectFailed(f"invalid connection URI '{uri.text}': no host")
    if host.startswith("-"):
        raise ConnectFailed(f"invalid connection URI '{uri.text}': bad host name '{host}'")
    try:
        port = parts.port
    except ValueError:
        raise ConnectFailed(f"invalid connection URI '{uri.text}': bad port") from None
    base = shlex.split(os.environ.get("VIRTCTL_SSH_COMMAND") or "ssh")
    argv = base + ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-T", "-x", "-e", "none"]
    if port:
        argv += ["-p", str(port)]
    if parts.username:
        argv += ["-l", parts.username]
    command = uri.query.get("command", "virtctl")
    argv += ["--", host, f"{shlex.quote(command)} __serve-stdio"]
    shown = f"{parts.username + '@' if parts.username else ''}{host}" + (f":{port}" if port else "")
    return argv, shown


class Channel:
    """One ssh session speaking the protocol."""

    def __init__(self, argv: list[str], host: str, command: str):
        self.host, self.command = host, command
        self.next_id = 1
        self.buf = b""
        self.stderr = bytearray()
        self.forward_stderr = False  # set once the protocol runs: ssh's own errors come before
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True, bufsize=0)
        except OSError as exc:
            raise ConnectFailed(f"cannot run ssh ('{argv[0]}'): {exc.strerror}") from None
        self._errt = threading.Thread(target=self._drain_stderr, daemon=True)
        self._errt.start()
        self.rfd, self.wfd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        try:
            hello = self._hello()
        except BaseException:
            self.close(kill=True)
            raise
        self.remote_version = hello.get("version")
        self.forward_stderr = True

    def _drain_stderr(self) -> None:
        while True:
            try:
                data = os.read(self.proc.stderr.fileno(), 65536)
            except (OSError, ValueError):
                return
            if not data:
                return
            if self.forward_stderr:  # the remote virtctl's own messages: as `ssh host virtctl` shows them
                import sys

                try:
                    sys.stderr.buffer.write(data)
                    sys.stderr.flush()
                except (AttributeError, OSError, ValueError):
                    pass
            self.stderr += data
            del self.stderr[:-65536]

    def _hello(self) -> dict:
        import select

        deadline = time.monotonic() + HELLO_TIMEOUT
        while b"\n" not in self.buf:  # ssh's ConnectTimeout bounds the connection, this the start
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                raise ConnectFailed(f"no answer from '{self.command}' on {self.host} within {HELLO_TIMEOUT:g} s "
                                    "(ssh connected, the remote virtctl did not start)", detail={"host": self.host})
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                break
            self.buf += chunk
        line = self._readline()
        if line is None:
            raise self._failure(during=None)
        try:
            doc = protocol.loads(line)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or "virtctl_remote" not in doc:
            shown = line[:80].decode("utf-8", "replace")
            raise ConnectFailed(f"'{self.command}' on {self.host} does not speak virtctl's remote protocol "
                                f"(it printed '{shown}'); is it virtctl?", detail={"host": self.host})
        if doc["virtctl_remote"] != protocol.PROTOCOL:
            raise ConnectFailed(
                f"the virtctl on {self.host} (version {doc.get('version', '?')}) speaks remote protocol "
                f"{doc['virtctl_remote']}, this virtctl speaks protocol {protocol.PROTOCOL}: install the "
                "same virtctl version on both hosts", detail={"host": self.host,
                                                             "remote_protocol": doc["virtctl_remote"]})
        return doc

    # --- framing ----------------------------------------------------------------------
    def _readline(self) -> bytes | None:
        while b"\n" not in self.buf:
            try:
                chunk = os.read(self.rfd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def _write(self, data: bytes) -> bool:
        try:
            while data:
                data = data[os.write(self.wfd, data):]
        except OSError:
            return False
        return True

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _failure(self, *, during: str | None) -> ConnectFailed:
        """What went wrong once the session ended: ssh's own words, or the remote command's."""
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.close(kill=True)
            rc = self.proc.returncode
        self._errt.join(timeout=2)
        lines = [x.strip() for x in bytes(self.stderr).decode("utf-8", "replace").splitlines() if x.strip()]
        lines = [x for x in lines if not x.startswith("Warning: Permanently added")]
        last = lines[-1] if lines else ""
        self.close()
        det = {"host": self.host, "status": rc, "stderr": last}
        if during is not None:
            why = f"ssh was killed by signal {-rc}" if rc is not None and rc < 0 else \
                f"ssh exited with status {rc}" + (f": {last}" if last else "")
            return ConnectFailed(f"lost the connection to {self.host} during {during} ({why})", detail=det)
        if rc == 255:
            return ConnectFailed(f"cannot reach {self.host} over ssh: {last or 'ssh failed (status 255)'}",
                                 detail=det)
        if rc == 127 or "not found" in last or "No such file" in last:
            return ConnectFailed(f"the remote virtctl '{self.command}' was not found on {self.host} "
                                 f"({last or 'status 127'}); name it with ?command=/path/to/virtctl",
                                 detail=det)
        if rc == 126:
            return ConnectFailed(f"the remote virtctl '{self.command}' on {self.host} cannot be run: {last}",
                                 detail=det)
        if rc is not None and rc < 0:
            return ConnectFailed(f"ssh to {self.host} was killed by signal {-rc}", detail=det)
        return ConnectFailed(f"'{self.command}' on {self.host} did not start virtctl's remote protocol "
                             f"(status {rc}{': ' + last if last else ''}); is it an older virtctl?",
                             detail=det)

    # --- calls ------------------------------------------------------------------------
    def call(self, method: str, args: list, kwargs: dict):
        rid = self.next_id
        self.next_id += 1
        callbacks: list = []

        def cb_of(fn):
            callbacks.append(fn)
            return protocol.Callback(len(callbacks) - 1)

        req = {"id": rid, "m": method, "a": protocol.encode(list(args), callback=cb_of),
               "k": protocol.encode(kwargs, callback=cb_of)}
        if not self._write(protocol.dumps(req)):
            raise self._failure(during=method)
        while True:
            line = self._readline()
            if line is None:
                raise self._failure(during=method)
            try:
                doc = protocol.loads(line)
            except ValueError:
                self.close(kill=True)
                raise ConnectFailed(f"the remote virtctl on {self.host} sent a line that is not JSON "
                                    f"during {method}") from None
            if doc.get("id") != rid:
                continue
            if "cb" in doc:
                fn = callbacks[doc["cb"]]
                fn(*protocol.decode(doc.get("a", [])), **protocol.decode(doc.get("k", {"__d": []})))
                continue
            if "e" in doc:
                raise protocol.error_from(doc["e"])
            return doc.get("r")

    def close(self, *, kill: bool = False) -> None:
        proc = self.proc
        if proc is None:
            return
        for f in (proc.stdin,):
            try:
                f.close()
            except OSError:
                pass
        if kill and proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass


class _ConsoleStream:
    """The console the session became: a socket pair, pumped by a thread to
    the ssh process (which it ends when either side closes)."""

    @staticmethod
    def make(chan: Channel) -> socket.socket:
        mine, theirs = socket.socketpair()
        threading.Thread(target=_ConsoleStream._pump, args=(chan, theirs), daemon=True).start()
        return mine

    @staticmethod
    def _pump(chan: Channel, sock: socket.socket) -> None:
        import select

        try:
            if chan.buf:
                sock.sendall(chan.buf)
                chan.buf = b""
            while True:
                ready, _, _ = select.select([chan.rfd, sock], [], [])
                if chan.rfd in ready:
                    data = os.read(chan.rfd, 65536)
                    if not data:
                        break
                    sock.sendall(data)
                if sock in ready:
                    data = sock.recv(65536)
                    if not data or not chan._write(data):
                        break
        except OSError:
            pass
        finally:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            chan.close(kill=True)


class _Part:
    """A part of the remote driver (``domains``, ``pools``, ...) or a handle:
    every attribute not among its plain ones is an operation, forwarded."""

    def __init__(self, owner: "RemoteDriver", prefix: str, attrs: dict):
        self.__dict__.update(attrs)
        self._owner, self._prefix = owner, prefix

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        method = f"{self._prefix}{name}"

        def forward(*args, **kwargs):
            return self._owner._call(method, args, kwargs)
        forward.__name__ = name
        self.__dict__[name] = forward
        return forward


class RemoteDriver:
    """A Driver (drivers/base.py) whose every operation runs on the remote host."""

    def __init__(self, uri, *, readonly: bool = False):
        self.uri = uri
        self.readonly = readonly
        self._argv, self.host = ssh_argv(uri)
        self._command = uri.query.get("command", "virtctl")
        self._target = remote_uri(uri)
        self._chan: Channel | None = None
        self._session = 0  # counts the sessions opened: handles belong to one
        info = self._connect()
        self.name = info["name"]
        attrs = info.get("attrs", {})
        self.__dict__.update({k: v for k, v in attrs.get("", {}).items() if k not in ("uri", "readonly", "name")})
        for sub in protocol.SUBS:
            setattr(self, sub, _Part(self, f"{sub}.", attrs.get(sub, {})))

    def _connect(self) -> dict:
        chan = Channel(self._argv, self.host, self._command)
        try:
            info = protocol.decode(chan.call("__open", [self._target], {"readonly": self.readonly}))
        except BaseException:
            chan.close(kill=True)
            raise
        self._chan = chan
        self._session += 1
        return info

    def _handle(self, num: int):
        # a handle lives in one session: "#SESSION:NUM." (see _call)
        return _Part(self, f"#{self._session}:{num}.", {})

    def _call(self, method: str, args, kwargs):
        if method.startswith("#"):
            session, _, rest = method[1:].partition(":")
            if self._chan is None or int(session) != self._session:
                if rest.endswith(".close"):
                    return None  # it went with its session
                raise ConnectFailed(f"the connection to {self.host} was lost: the remote object is gone",
                                    detail={"host": self.host})
            method = "#" + rest
        local = LOCAL_ONLY.get(method)
        if local and kwargs.get(local):
            raise NotSupported(f"this function is not supported by the connection driver: "
                               f"{method.split('.')[-1]} with '{local}' over virtctl+ssh",
                               detail={"driver": "virtctl+ssh", "feature": method})
        for v in list(args) + list(kwargs.values()):
            if hasattr(v, "read") or hasattr(v, "write"):
                raise NotSupported(f"this function is not supported by the connection driver: "
                                   f"{method.split('.')[-1]} with a local file over virtctl+ssh",
                                   detail={"driver": "virtctl+ssh", "feature": method})
        if self._chan is not None and not self._chan.alive():
            # the session ended between calls: say so (handles are gone with it);
            # the next call opens a new one
            chan, self._chan = self._chan, None
            raise chan._failure(during=method)
        if self._chan is None:  # a console used the last session up, or it failed: a new one
            self._connect()
        chan = self._chan
        try:
            raw = chan.call(method, args, kwargs)
        except ConnectFailed:
            self._chan = None
            raise
        except VirtError:
            raise
        except BaseException:  # interrupted mid-call: the session's state is unknown
            chan.close(kill=True)
            self._chan = None
            raise
        if isinstance(raw, dict) and raw.get("__stream"):
            self._chan = None  # the session is the console's now
            return _ConsoleStream.make(chan)
        try:
            return protocol.decode(raw, handle=self._handle)
        except VirtError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise InternalError(f"remote protocol: cannot read the answer to {method}: {exc}") from None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        def forward(*args, **kwargs):
            return self._call(name, args, kwargs)
        forward.__name__ = name
        self.__dict__[name] = forward
        return forward

    def canonical_uri(self) -> str:
        return self.uri.text

    def close(self) -> None:
        chan, self._chan = self._chan, None
        if chan is not None:
            chan.close()
