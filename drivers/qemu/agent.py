"""The QEMU guest agent protocol (qemu-ga on the ``org.qemu.guest_agent.0``
virtio-serial channel), daemonless: every command opens the channel's host
socket, syncs, asks, and closes it again.

* One client at a time: QEMU's chardev accepts one connection, and two
  virtctl commands must queue rather than interleave, so a session holds
  the domain's agent lock (``<run>/locks/agent-<uuid>.lock``, an flock as in
  locks.py) for as long as it is connected.  The agent lock is a leaf of its
  own: it is never taken while holding the domain lock, and the domain lock
  is never waited for while holding it (an agent command that blocks for a
  minute does not stop ``destroy``).
* Sync: ``0xFF`` (resets qemu-ga's parser, whatever half-message an earlier
  client left in it), then ``guest-sync-delimited`` with a random id; the
  agent answers ``0xFF`` then ``{"return": id}`` (qemu-ga 7.2 first answers
  the 0xFF itself with a JSON parse error).  Everything before that answer
  is dropped: replies an abandoned client never read, stale sync answers,
  garbage.
* Timeouts, in seconds, virsh's guest-agent-timeout values: ``-2`` block,
  ``-1`` the default (5 s, libvirt's QEMU_AGENT_WAIT_TIME), ``0`` do not wait,
  ``N``.  The sync waits ``min(N, 5)`` (5 for -2, -1 and 0), as libvirt's.
* Errors (libvirt's words): no answer in time or the channel gone is
  AGENT_UNRESPONSIVE ("Guest agent is not responding: ..."), exit 9; an
  ``error`` answer is OPERATION_FAILED "internal error: unable to execute
  QEMU agent command 'X': DESC" with the agent's error class in
  ``detail["agent_class"]`` (guestinfo skips CommandNotFound/CommandDisabled).

No threads; imported only by the commands that talk to an agent.
"""
from __future__ import annotations

import json
import os
import select
import socket
import time

from virtctl.errors import AgentUnresponsive, InvalidArg, OperationFailed

BLOCK, DEFAULT, NOWAIT = -2, -1, 0  # VIR_DOMAIN_QEMU_AGENT_COMMAND_*
WAIT_TIME = 5.0  # what DEFAULT means (libvirt's QEMU_AGENT_WAIT_TIME)
SHUTDOWN_WAIT = 60  # VIR_DOMAIN_QEMU_AGENT_COMMAND_SHUTDOWN: guest-shutdown's wait for the guest to act
MAX_REPLY = 10 << 20  # libvirt's QEMU_AGENT_MAX_RESPONSE
LOCK_TIMEOUT = 60.0  # how long a command queues behind another one on the same agent

NOT_CONNECTED = "Guest agent is not responding: QEMU guest agent is not connected"
NOT_AVAILABLE = "Guest agent is not responding: Guest agent not available for now"
DISAPPEARED = "Guest agent is not responding: Guest agent disappeared while executing command"
UNSUPPORTED_CLASSES = ("CommandNotFound", "CommandDisabled")

# qemu-ga's error classes in words, for an error answer that has no ``desc``
_CLASS_WORDS = {"BufferOverrun": "Buffer overrun",
                "CommandDisabled": "The command has been disabled for this instance",
                "CommandNotFound": "The command has not been found",
                "FdNotFound": "File descriptor not found",
                "InvalidParameter": "Invalid parameter",
                "InvalidParameterType": "Invalid parameter type",
                "InvalidParameterValue": "Invalid parameter value",
                "OpenFileFailed": "Cannot open file",
                "QgaCommandFailed": "Guest agent command failed",
                "QMPBadInputObjectMember": "Bad QMP input object member",
                "QMPExtraInputObjectMember": "Unexpected extra object member",
                "UndefinedError": "An undefined error has occurred",
                "Unsupported": "this feature or command is not currently supported"}


def check_timeout(timeout) -> int:
    """A guest-agent-timeout value, checked (INVALID_ARG below -2, libvirt's words)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        raise InvalidArg(f"invalid argument: guest agent timeout '{timeout}' is not an integer")
    if timeout < BLOCK:
        raise InvalidArg(f"invalid argument: guest agent timeout '{timeout}' is less than the minimum '{BLOCK}'",
                         detail={"timeout": timeout})
    return timeout


def wait_seconds(timeout: int) -> float | None:
    """Seconds to wait for an answer (None: forever)."""
    if timeout == BLOCK:
        return None
    if timeout == DEFAULT:
        return WAIT_TIME
    return float(timeout)


def sync_seconds(timeout: int) -> float:
    """The sync's wait: the shorter of the timeout and 5 s (5 s for block,
    default and do-not-wait: no command can be sent before a sync)."""
    return min(float(timeout), WAIT_TIME) if timeout > 0 else WAIT_TIME


def is_unsupported(exc: Exception) -> bool:
    """An error answer meaning "this agent does not do that command"."""
    return isinstance(exc, OperationFailed) and (exc.detail or {}).get("agent_class") in UNSUPPORTED_CLASSES


def agent_error(command: str, error) -> OperationFailed:
    err = error if isinstance(error, dict) else {}
    klass = str(err.get("class") or "")
    desc = err.get("desc") or _CLASS_WORDS.get(klass) or klass or "unknown QEMU command error"
    return OperationFailed(f"internal error: unable to execute QEMU agent command '{command}': {desc}",
                           detail={"agent_command": command, "agent_class": klass or None})


def malformed(command: str, what: str) -> OperationFailed:
    return OperationFailed(f"internal error: malformed reply of the guest agent to '{command}': {what}",
                           detail={"agent_command": command})


class _Timeout(Exception):
    pass


class _Gone(Exception):
    pass


class Session:
    """One connection to an agent channel, synced, under the agent lock.

    ``with Session(path, lock_path=..., timeout=T) as s: s.call("guest-ping")``.
    ``timeout`` (virsh's values) is the default of every call; the sync is
    done once, on entry."""

    def __init__(self, path: str, *, lock_path: str | None = None, timeout: int = DEFAULT,
                 lock_timeout: float = LOCK_TIMEOUT):
        self.path, self.lock_path, self.timeout = path, lock_path, check_timeout(timeout)
        self.lock_timeout = lock_timeout
        self.sock: socket.socket | None = None
        self._lock = None
        self._buf = b""

    # --- connection ---------------------------------------------------------------------
    def __enter__(self) -> "Session":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        if self.lock_path is not None:
            from virtctl.drivers.qemu.locks import FileLock

            self._lock = FileLock(self.lock_path,
                                  what="guest agent lock (another agent command is running on the domain)")
            self._lock.acquire(timeout=self.lock_timeout)
        try:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            self.sock.settimeout(WAIT_TIME)
            try:
                self.sock.connect(self.path)
            except socket.timeout:
                raise AgentUnresponsive(NOT_AVAILABLE, detail={"socket": self.path}) from None
            except OSError as exc:
                raise AgentUnresponsive(f"Guest agent is not responding: cannot connect to the agent channel "
                                        f"'{self.path}': {exc.strerror or exc}",
                                        detail={"socket": self.path}) from None
            self.sync(sync_seconds(self.timeout))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- wire ---------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(WAIT_TIME)
            self.sock.sendall(data)
        except socket.timeout:
            raise AgentUnresponsive(NOT_AVAILABLE) from None
        except OSError:
            raise AgentUnresponsive(DISAPPEARED) from None

    def _fill(self, deadline: float | None) -> None:
        """Read what is there into the buffer; _Timeout at ``deadline``, _Gone on EOF."""
        if len(self._buf) > MAX_REPLY:
            raise OperationFailed(f"internal error: No complete agent response found in {MAX_REPLY} bytes")
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise _Timeout
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise _Timeout from None
        except OSError:
            raise _Gone from None
        if not chunk:
            raise _Gone
        self._buf += chunk

    def _line(self, deadline: float | None) -> bytes:
        while b"\n" not in self._buf:
            self._fill(deadline)
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def sync(self, seconds: float) -> None:
        token = int.from_bytes(os.urandom(6), "big")  # JSON-safe (< 2**53), never reused
        self._send(b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": token}}).encode()
                   + b"\n")
        deadline = time.monotonic() + seconds
        delimited = False  # a 0xFF seen: what follows it may be our answer
        try:
            while True:
                i = self._buf.rfind(b"\xff")
                if i >= 0:  # the answer follows a 0xFF: whatever came before the last one is stale
                    self._buf, delimited = self._buf[i + 1:], True
                elif not delimited:
                    self._buf = b""
                if delimited and b"\n" in self._buf:
                    line, _, self._buf = self._buf.partition(b"\n")
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue  # garbage on sync is expected (libvirt: "Received garbage on sync")
                    if isinstance(msg, dict) and msg.get("return") == token:
                        return
                    continue  # a stale answer (an abandoned client's sync, its command's reply)
                self._fill(deadline)
        except _Timeout:
            raise AgentUnresponsive(NOT_AVAILABLE, detail={"socket": self.path, "timeout": seconds}) from None
        except _Gone:
            raise AgentUnresponsive(DISAPPEARED, detail={"socket": self.path}) from None

    # --- commands -----------------------------------------------------------------------
    def send(self, request: dict) -> None:
        self._send(json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")

    def reply(self, command: str, timeout: int | None = None) -> dict | None:
        """The next answer (a dict with ``return`` or ``error``); None when
        ``timeout`` is 0 and none is there yet."""
        t = self.timeout if timeout is None else check_timeout(timeout)
        seconds = wait_seconds(t)
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while True:
                if t == NOWAIT and b"\n" not in self._buf:
                    ready, _, _ = select.select([self.sock], [], [], 0)
                    if not ready:
                        return None
                    deadline = time.monotonic() + 0.05  # what is there, not what may come
                line = self._line(deadline).strip()
                if b"\xff" in line:  # a delimiter (a stray one): what follows it is the message
                    line = line[line.rindex(b"\xff") + 1:].strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    raise malformed(command, f"cannot parse {line[:200].decode(errors='replace')!r}") from None
                if not isinstance(msg, dict):
                    raise malformed(command, f"not an object: {line[:200].decode(errors='replace')!r}")
                if "return" in msg or "error" in msg:
                    return msg
                # an event or a greeting (qemu-ga sends none): not an answer
        except _Timeout:
            if t == NOWAIT:
                return None
            raise AgentUnresponsive(NOT_AVAILABLE, detail={"agent_command": command, "timeout": t}) from None
        except _Gone:
            raise AgentUnresponsive(DISAPPEARED, detail={"agent_command": command}) from None

    def call(self, command: str, arguments: dict | None = None, *, timeout: int | None = None):
        """Run ``command``; its ``return`` value (OPERATION_FAILED for an error answer)."""
        req: dict = {"execute": command}
        if arguments is not None:
            req["arguments"] = arguments
        self.send(req)
        t = self.timeout if timeout is None else timeout
        msg = self.reply(command, t)
        if msg is None:  # timeout 0: no answer awaited, none needed... but one was
            raise AgentUnresponsive(NOT_AVAILABLE, detail={"agent_command": command, "timeout": 0})
        if "error" in msg:
            raise agent_error(command, msg["error"])
        return msg.get("return")

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending(self) -> bool:
        """A complete line is already buffered."""
        return b"\n" in self._buf


def parse_command(text: str) -> dict:
    """qemu-agent-command's argument: a JSON object with a string ``execute``."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise InvalidArg(f"invalid argument: the agent command is not JSON: {exc}", detail={"command": text}) \
            from None
    if not isinstance(obj, dict) or not isinstance(obj.get("execute"), str):
        raise InvalidArg("invalid argument: the agent command must be a JSON object with a string 'execute' "
                         "member, e.g. '{\"execute\":\"guest-info\"}'", detail={"command": text})
    return obj


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
