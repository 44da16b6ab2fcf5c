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
import time

from virtctl.lazy import lazy

subprocess = lazy("subprocess")  # ~4 ms: not for a one-shot list
_SIGTERM, _SIGKILL = 15, 9  # (the signal module's enums cost a one-shot command ~1 ms)
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
    # a pidfd (Linux 5.3) is readable the moment the process ends: no polling
    # delay (a destroy waited 5-12 ms here for a QEMU gone in 2).  Opened before
    # the first look: if the pid is reused after that, the start time tells.
    pidfd = _pidfd_open(pid)
    try:
        while True:
            reap_if_child(pid)
            if not is_running(pid, started) and (alive is None or not alive()):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if pidfd is not None:
                import select

                if select.select([pidfd], [], [], min(left, 0.1))[0]:  # it ended: poll what is left
                    os.close(pidfd)
                    pidfd = None
                continue
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd_open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # no such process, or no pidfd here: poll
        return None


def kill_and_wait(pid: int, started: int | None, *, term_timeout: float = 10.0,
                  kill_timeout: float = 10.0, graceful: bool = False, alive=None) -> bool:
    """SIGTERM, wait, then SIGKILL (unless ``graceful``) and wait.  True if gone."""
    if not is_running(pid, started):
        return wait_gone(pid, started, kill_timeout, alive)
    signal_process(pid, started, _SIGTERM)
    if wait_gone(pid, started, term_timeout, alive):
        return True
    if graceful:
        return False
    signal_process(pid, started, _SIGKILL)
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


def can_fork() -> bool:
    """Whether :func:`fork_detached` may copy this process: it is virtctl's own
    command line (the ``virtctl`` program: ``virtctl.cli.main.program`` sets ``IN_CLI``; a program using the API
    is never forked behind its back: a long-lived child would keep a copy of its
    heap), it has one thread (a forked copy of a threaded process may find a
    lock held forever), and that thread is the main one (signal handlers)."""
    import sys

    cli = sys.modules.get("virtctl.cli.main")
    if cli is None or not getattr(cli, "IN_CLI", False) or os.environ.get("VIRTCTL_MONITOR_EXEC"):
        return False
    threading = sys.modules.get("threading")
    return threading is None or (threading.active_count() == 1
                                 and threading.current_thread() is threading.main_thread())


def fork_detached(run, log_path: str, *, keep_fds: tuple[int, ...] = ()) -> "Forked":
    """Run ``run()`` in a copy of this process, detached as :func:`spawn_detached`
    detaches a program; returns a :class:`Forked` (its ``pid``).  No new interpreter, no imports: what
    ``start`` waits for is ready at once.

    Double fork: the middle child calls ``setsid()`` and exits, so the copy is
    in its own session without being its leader (it can never get a
    controlling terminal), is nobody's child here (no zombie in a long-lived
    shell) and outlives us.  In the copy, before ``run()``:

    * every inherited descriptor but ``keep_fds`` is replaced by ``/dev/null``
      (``dup2``, not ``close``: a lock we hold (the domain lock's ``flock``)
      goes with its last descriptor, so a copy must not keep one; and an object
      of ours that closes "its" descriptor later closes a ``/dev/null``, never
      one the copy opened since); stdin from ``/dev/null``, stdout and stderr
      appended to ``log_path``; working directory ``/``;
    * signal handlers, mask and wake-up descriptor as a new interpreter has
      them; the test kill points unset (faults.py);
    * the objects inherited are frozen out of the garbage collector (no
      finaliser of ours runs in the copy);
    * it leaves with ``os._exit``: no ``atexit`` handler, no buffered output of
      ours, no connection close (which would destroy ``--autodestroy`` domains)."""
    import sys

    for stream in (sys.stdout, sys.stderr):  # nothing of ours buffered twice
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    r, w = os.pipe()
    try:
        middle = os.fork()
        if middle == 0:  # the middle child: a new session, the copy, then gone
            status = 1
            try:
                os.close(r)
                os.setsid()
                pid = os.fork()
                if pid == 0:
                    os.close(w)
                    _detached_child(run, log, keep_fds)  # never returns
                os.write(w, b"%d\n" % pid)
                status = 0
            finally:
                os._exit(status)
    except BaseException:
        os.close(r)
        os.close(w)
        os.close(log)
        raise
    os.close(w)
    os.close(log)
    return Forked(middle, r)


class Forked:
    """The process :func:`fork_detached` started.  Its pid is read (and the
    middle child reaped) when first asked for: the caller does something
    useful meanwhile instead of waiting for two forks to be scheduled."""

    __slots__ = ("_middle", "_fd", "_pid")

    def __init__(self, middle: int, fd: int):
        self._middle, self._fd, self._pid = middle, fd, None

    @property
    def pid(self) -> int:
        if self._pid is None:
            data = b""
            try:
                while True:
                    chunk = os.read(self._fd, 64)
                    if not chunk:
                        break
                    data += chunk
            finally:
                os.close(self._fd)
                _, status = os.waitpid(self._middle, 0)
            try:
                self._pid = int(data)
            except ValueError:
                raise OSError(f"cannot start a detached process (status {status})") from None
        return self._pid

    def poll(self) -> None:
        """Not our child: nothing to reap (as Popen.poll, for the callers)."""
        return None


def _detached_child(run, log: int, keep_fds: tuple[int, ...]) -> None:
    """The copy of :func:`fork_detached`: clean up what it inherited, ``run()``, exit."""
    status = 1
    try:
        import gc
        import signal as _signal
        import sys

        gc.freeze()  # what we inherited is never collected here: no finaliser of ours runs
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        keep = {0, 1, 2, null, *keep_fds}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.dup2(null, fd, inheritable=False)
                except OSError:
                    pass  # the directory's own descriptor, closed by now
        try:
            _signal.set_wakeup_fd(-1)
        except (ValueError, OSError):
            pass
        defaults = {_signal.SIGINT: _signal.default_int_handler, _signal.SIGPIPE: _signal.SIG_IGN,
                    _signal.SIGXFSZ: _signal.SIG_IGN}
        for sig in _signal.valid_signals():
            want = defaults.get(sig, _signal.SIG_DFL)
            try:
                if _signal.getsignal(sig) not in (want, None):
                    _signal.signal(sig, want)
            except (OSError, ValueError, RuntimeError):
                pass
        _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
        os.environ.pop("VIRTCTL_KILL_AT", None)
        faults = sys.modules.get("virtctl.drivers.qemu.faults")
        if faults is not None:
            faults._POINTS = None
        os.chdir("/")
        status = run() or 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - into the log, as an interpreter would print it
        try:
            import traceback

            os.write(2, traceback.format_exc().encode(errors="replace"))
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(status)


# The gate: a shell that waits for "go" on its stdin (a pipe only we hold),
# then becomes argv (same pid, same start time) with stdin from /dev/null.
# If we die first, the pipe closes, read fails, and the program never runs.
_GATE = 'IFS= read -r go && [ "$go" = go ] && exec "$@" </dev/null; exit 125'


class Gated:
    """A process spawned behind a gate (:func:`spawn_gated`)."""

    def __init__(self, proc, gate_fd: int):  # a subprocess.Popen or a Spawned
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
    so whatever kills the caller, no process runs that the record does not name.

    With ``os.posix_spawn`` (no ``subprocess`` import, ~4 ms of a start), else
    through :func:`spawn_detached`; the same child either way: own session,
    stdio as described, no descriptor of ours, ``SIGPIPE``/``SIGXFSZ`` back
    to their defaults (Python ignores them), working directory ``/``."""
    r, w = os.pipe()
    try:
        proc = _posix_spawn_gate(argv, log_path, r)
        if proc is None:
            proc = spawn_detached(gate_argv(argv), log_path, stdin=r)
    except BaseException:
        os.close(w)
        raise
    finally:
        os.close(r)
    return Gated(proc, w)


def _posix_spawn_gate(argv: list[str], log_path: str, stdin: int) -> "Spawned | None":
    """The gate shell through ``posix_spawn``; None where that cannot give the
    same child (no posix_spawn or setsid flag, or stdio descriptors 0-2 closed
    in this process, which ``dup2`` onto themselves would not pass on)."""
    if not hasattr(os, "posix_spawn") or not hasattr(os, "POSIX_SPAWN_DUP2"):
        return None
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if fd < 3 or stdin < 3:
            return None
        actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)]
        for n in os.listdir("/proc/self/fd"):  # close_fds: what we inherited as inheritable stays here
            other = int(n)
            if other > 2 and other not in (fd, stdin):
                try:
                    if os.get_inheritable(other):
                        actions.append((os.POSIX_SPAWN_CLOSE, other))
                except OSError:
                    pass  # the listing's own descriptor, gone
        env = _child_env(None)
        import signal as _signal

        try:
            pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "cd / && " + _GATE, "virtctl-gate", *argv],
                                 os.environ if env is None else env, file_actions=actions, setsid=True,
                                 setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))
        except NotImplementedError:  # setsid unsupported by this libc
            return None
        return Spawned(pid)
    finally:
        os.close(fd)


class Spawned:
    """A child started by ``posix_spawn``: what callers use of ``subprocess.Popen``
    (``pid``, ``returncode``, ``poll()``, ``wait(timeout)``)."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (reap_if_child): gone, status unknown
                self.returncode = 255
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"process {self.pid} still running after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return self.returncode


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
