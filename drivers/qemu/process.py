"""Processes: is this pid still *our* process, spawning detached, killing.

A pid alone proves nothing (pids are reused; a daemonized QEMU that exited
stays a zombie until PID 1 reaps it).  "Our process is alive" means: the pid
exists, is not a zombie (state ``Z``/``X``), and its start time (field 22
of ``/proc/PID/stat``, clock ticks since boot) is the one recorded when we
started it.  For QEMU the driver also asks who holds the pid-file lock
(locks.pidfile_holder).  No lxml here: the monitor imports this.
"""
from __future__ import annotations

import os
import signal
import time

from virtctl.lazy import lazy

subprocess = lazy("subprocess")  # ~4 ms: not for a one-shot list
_DEVNULL = -3  # subprocess.DEVNULL


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of ``pid``, None if there is no such process."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read(4096)
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'
    rest = data[data.rfind(b")") + 2:].split()
    try:
        return rest[0].decode(), int(rest[19])
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    st = proc_stat(pid)
    return st[1] if st else None


def is_running(pid: int, started: int | None) -> bool:
    """``pid`` is alive (not a zombie) and, if given, started at ``started``."""
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X", "x"):
        return False
    return started is None or st[1] == started


def reap_if_child(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def signal_process(pid: int, started: int | None, sig: int) -> bool:
    """Send ``sig`` if ``pid`` is still the process that started at ``started``."""
    if not is_running(pid, started):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_gone(pid: int, started: int | None, timeout: float, alive=None) -> bool:
    """Wait until the process is gone (or a zombie); True if it went in time.

    ``alive`` (optional callable) is an extra liveness test, e.g. the pid-file lock."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        reap_if_child(pid)
        if not is_running(pid, started) and (alive is None or not alive()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def kill_and_wait(pid: int, started: int | None, *, term_timeout: float = 10.0,
                  kill_timeout: float = 10.0, graceful: bool = False, alive=None) -> bool:
    """SIGTERM, wait, then SIGKILL (unless ``graceful``) and wait.  True if gone."""
    if not is_running(pid, started):
        return wait_gone(pid, started, kill_timeout, alive)
    signal_process(pid, started, signal.SIGTERM)
    if wait_gone(pid, started, term_timeout, alive):
        return True
    if graceful:
        return False
    signal_process(pid, started, signal.SIGKILL)
    return wait_gone(pid, started, kill_timeout, alive)


def _child_env(env: dict | None) -> dict | None:
    """What a long-lived child inherits: never the test kill points (faults.py)."""
    base = os.environ if env is None else env
    if "VIRTCTL_KILL_AT" not in base:
        return env
    return {k: v for k, v in base.items() if k != "VIRTCTL_KILL_AT"}


def spawn_detached(argv: list[str], log_path: str, *, pass_fds: tuple[int, ...] = (),
                   env: dict | None = None, stdin=_DEVNULL) -> subprocess.Popen:
    """Start ``argv`` in its own session, stdin from /dev/null, stdout and stderr
    appended to ``log_path``; it outlives us (re-parented to init or a subreaper).

    It runs in ``/``: a long-lived process must not pin the caller's working
    directory, and ``python -m`` must not find a source tree there instead
    of the installed package."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        return subprocess.Popen(argv, stdin=stdin, stdout=fd, stderr=fd,
                                start_new_session=True, close_fds=True, pass_fds=pass_fds,
                                env=_child_env(env), cwd="/")
    finally:
        os.close(fd)


# The gate: a shell that waits for "go" on its stdin (a pipe only we hold),
# then becomes argv (same pid, same start time) with stdin from /dev/null.
# If we die first, the pipe closes, read fails, and the program never runs.
_GATE = 'IFS= read -r go && [ "$go" = go ] && exec "$@" </dev/null; exit 125'


class Gated:
    """A process spawned behind a gate (:func:`spawn_gated`)."""

    def __init__(self, proc: subprocess.Popen, gate_fd: int):
        self.proc, self._fd = proc, gate_fd

    @property
    def pid(self) -> int:
        return self.proc.pid

    def open(self) -> None:
        """Let the program run (after its pid is on disk)."""
        fd, self._fd = self._fd, None
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)

    def close(self) -> None:
        """Never let it run (if it was not let run yet)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def gate_argv(argv: list[str]) -> list[str]:
    """``argv`` behind the gate: run by a shell once "go" arrives on its stdin."""
    return ["/bin/sh", "-c", _GATE, "virtctl-gate", *argv]


def spawn_gated(argv: list[str], log_path: str) -> Gated:
    """Spawn ``argv`` detached (as :func:`spawn_detached`) but held at a gate
    until :meth:`Gated.open`: the caller records the pid and start time first,
    so whatever kills the caller, no process runs that the record does not name."""
    r, w = os.pipe()
    try:
        proc = spawn_detached(gate_argv(argv), log_path, stdin=r)
    except BaseException:
        os.close(w)
        raise
    finally:
        os.close(r)
    return Gated(proc, w)


def log_tail(path: str, limit: int = 4000) -> str:
    """The end of a log file, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def cpu_time_ns(pid: int) -> int:
    """User + system CPU time of ``pid`` in nanoseconds (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read(4096)
        rest = data[data.rfind(b")") + 2:].split()
        ticks = int(rest[11]) + int(rest[12])
    except (OSError, IndexError, ValueError):
        return 0
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
