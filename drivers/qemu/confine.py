"""Running QEMU (and the tools that read guest images) as an unprivileged user.

``qemu:///system`` confines every QEMU it starts; ``qemu:///embed?root=DIR``
and ``qemu:///session`` do when the URI says ``confine=yes`` and virtctl runs
as root (see :func:`settings`).  A confined QEMU runs as the QEMU user
(``virtctl-qemu``, made by ``useradd --system --no-create-home --shell
/usr/sbin/nologin virtctl-qemu``; ``nobody`` when that user does not exist),
with:

* uid and gid of that user (real, effective, saved), no supplementary group
  (the one exception: the group of ``/dev/kvm`` for a ``type='kvm'`` domain,
  when that group is not root's);
* no capability in any set: effective, permitted, inheritable, ambient, and
  an empty bounding set, so not even a setuid binary could give one back;
* ``no_new_privs``;
* its own session, ``/`` as working directory, a minimal environment
  (nothing of the caller's: no tokens, no proxies).

It reaches no host file by path: virtctl opens every file and socket the
definition names and hands them over as descriptors (``handover.py``).  The
child is made with ``fork`` + ``execve`` here (not ``subprocess``: its
``preexec_fn`` runs after the uid change, too late to empty the bounding
set, and descriptors must land at the exact numbers the argv names).  Code
between fork and exec only calls the C library through objects prepared
before the fork.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import select
import signal
import struct
import time

from virtctl.errors import ConnectFailed, OperationFailed

DEFAULT_USER = "virtctl-qemu"
FALLBACK_USER = "nobody"
CREATE_USER = f"useradd --system --no-create-home --shell /usr/sbin/nologin {DEFAULT_USER}"
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/"}
CAP_DAC_READ_SEARCH = 2

_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_RAISE = 2
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_V3 = 0x20080522


@dataclasses.dataclass(frozen=True)
class QemuUser:
    """Who a confined QEMU runs as."""
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    fallback: bool = False  # ``nobody``: virtctl-qemu does not exist

    def record(self) -> dict:
        return {"user": self.name, "uid": self.uid, "gid": self.gid, "groups": list(self.groups)}


@dataclasses.dataclass(frozen=True)
class Confinement:
    """The connection's choice (from the URI), resolved to a user at start."""
    user_name: str | None  # None: the default (virtctl-qemu, else nobody)

    def user(self, definition=None) -> QemuUser:
        import pwd

        name = self.user_name or DEFAULT_USER
        fallback = False
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            if self.user_name:
                raise OperationFailed(f"the QEMU user '{name}' does not exist (qemu_user= in the URI)") from None
            try:
                pw = pwd.getpwnam(FALLBACK_USER)
            except KeyError:
                raise OperationFailed(f"neither the QEMU user '{DEFAULT_USER}' nor '{FALLBACK_USER}' exists: "
                                      f"create it with: {CREATE_USER}") from None
            name, fallback = FALLBACK_USER, True
        if pw.pw_uid == 0 or pw.pw_gid == 0:
            raise OperationFailed(f"the QEMU user '{name}' is root (uid {pw.pw_uid}, gid {pw.pw_gid}): "
                                  "that is no confinement; use confine=no to run QEMU as root")
        groups: tuple[int, ...] = ()
        if definition is not None and definition.root.get("type") == "kvm":
            groups = _kvm_groups(pw.pw_uid, pw.pw_gid, name)
        return QemuUser(name, pw.pw_uid, pw.pw_gid, groups, fallback)


def settings(kind: str, query: dict[str, str]) -> Confinement | None:
    """The URI's confinement: ``confine=yes|no`` (default ``yes`` for
    ``qemu:///system``, ``no`` otherwise) and ``qemu_user=NAME``.  Confining
    needs root: nobody else can hand a process to another user."""
    value = query.get("confine")
    user = query.get("qemu_user")
    if user is not None and (not user or "/" in user or "\0" in user or ":" in user):
        raise ConnectFailed(f"qemu_user='{user}' in the URI is not a user name")
    if value is None:
        value = "yes" if (kind == "system" or user) else "no"
    if value not in ("yes", "no"):
        raise ConnectFailed(f"confine='{value}' in the URI: use confine=yes or confine=no")
    if value == "no":
        if user:
            raise ConnectFailed("qemu_user= in the URI needs confine=yes")
        return None
    if os.geteuid() != 0:
        if kind == "system":
            return Confinement(user)  # the driver refuses qemu:///system without root anyway
        raise ConnectFailed("confine=yes needs root (only root can run QEMU as another user)")
    return Confinement(user)


def _kvm_groups(uid: int, gid: int, name: str) -> tuple[int, ...]:
    """/dev/kvm is opened by QEMU by path: give its group when that is what
    grants access, refuse clearly when nothing would."""
    try:
        st = os.stat("/dev/kvm")
    except OSError:
        return ()  # QEMU says "Could not access KVM kernel module" itself
    if st.st_mode & 0o006 == 0o006 or st.st_uid == uid:
        return ()
    if st.st_mode & 0o060 == 0o060 and st.st_gid not in (0, gid):
        return (st.st_gid,)
    if st.st_gid == gid and st.st_mode & 0o060 == 0o060:
        return ()
    raise OperationFailed(
        f"a confined KVM domain needs /dev/kvm readable and writable by the QEMU user '{name}': "
        f"/dev/kvm is uid {st.st_uid} gid {st.st_gid} mode {st.st_mode & 0o777:04o} (the usual "
        "setup is group kvm, mode 0660); use <domain type='qemu'> or confine=no")


# --- the child ----------------------------------------------------------------------------
def _ctypes():
    """ctypes and the capset(2) structures (imported only to start a confined child)."""
    import ctypes

    class CapHeader(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class CapData(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    return ctypes, CapHeader, CapData


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 63


class _Dropper:
    """Everything the child calls to drop privileges, built before the fork."""

    def __init__(self, user: QemuUser, keep_caps: tuple[int, ...]):
        ctypes, CapHeader, CapData = _ctypes()
        self.ctypes = ctypes
        self.user = user
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.prctl = self.libc.prctl
        self.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        self.capset = self.libc.capset
        self.keep = keep_caps
        self.drop = [c for c in range(_last_cap() + 1) if c not in keep_caps]
        self.header = CapHeader(_CAP_V3, 0)
        mask = 0
        for c in keep_caps:
            mask |= 1 << c
        self.data = (CapData * 2)()
        for i in range(2):
            part = (mask >> (32 * i)) & 0xFFFFFFFF
            self.data[i].effective = self.data[i].permitted = self.data[i].inheritable = part

    def _call(self, what: str, rc: int) -> None:
        if rc != 0:
            e = self.ctypes.get_errno()
            raise OSError(e, f"{what}: {os.strerror(e)}")

    def __call__(self) -> None:
        u = self.user
        self._call("clearing ambient capabilities",
                   self.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0))
        for cap in self.drop:
            self._call(f"dropping capability {cap} from the bounding set", self.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0))
        os.setgroups(list(u.groups))
        os.setresgid(u.gid, u.gid, u.gid)
        if self.keep:
            self._call("keeping capabilities", self.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0))
        os.setresuid(u.uid, u.uid, u.uid)
        # the uid change emptied effective and permitted (unless kept); inheritable
        # is untouched by it: set all three explicitly
        self._call("setting capabilities", self.capset(self.ctypes.byref(self.header), self.data))
        for cap in self.keep:
            self._call(f"raising ambient capability {cap}",
                       self.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, cap, 0, 0))
        self._call("setting no_new_privs", self.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))


class Child:
    """A started process, with the ``poll``/``wait``/``returncode`` of Popen."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"process {self.pid} still running")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        return self.returncode


_FLOCK = struct.Struct("hhqqi4x")  # struct flock: type, whence, start, len, pid


def spawn(argv: list[str], *, user: QemuUser | None, fds: dict[int, int], stdin: int, stdout: int,
          stderr: int, lock_fd: int | None = None, keep_caps: tuple[int, ...] = (),
          env: dict | None = None, new_session: bool = True) -> Child:
    """Start ``argv[0]`` (an absolute path) with exactly these descriptors.

    ``fds`` maps the child's descriptor number (3, 4, ...) to ours; stdio
    come from ``stdin``/``stdout``/``stderr``; every other descriptor is
    closed.  ``lock_fd`` (a child number) gets a POSIX write lock and the
    child's pid, as QEMU's ``-pidfile`` would: the lock is held by the pid of
    the QEMU the child becomes, until it dies.  Raises OSError when the child
    cannot be set up or the binary not executed (errno of the failing step)."""
    dropper = _Dropper(user, keep_caps) if user is not None else None
    env = dict(ENV if env is None else env)
    targets = sorted(fds)
    top = max([2, *targets]) + 1
    moved: list[tuple[int, int]] = []
    stdio: list[int] = []
    r = w = -1
    try:
        for t in targets:
            moved.append((t, fcntl.fcntl(fds[t], fcntl.F_DUPFD_CLOEXEC, top)))
        for fd in (stdin, stdout, stderr):
            stdio.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top))
        r0, w0 = os.pipe()
        try:
            w = fcntl.fcntl(w0, fcntl.F_DUPFD_CLOEXEC, top)
            r = r0
        finally:
            os.close(w0)
        lock = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        keep = set(targets) | {0, 1, 2}
        maxfd = os.sysconf("SC_OPEN_MAX")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.close(r)
                if new_session:
                    os.setsid()
                os.chdir("/")
                for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # as subprocess does
                    signal.signal(sig, signal.SIG_DFL)
                for i, fd in enumerate(stdio):
                    os.dup2(fd, i)
                for t, fd in moved:
                    os.dup2(fd, t)
                for fd in range(3, top):
                    if fd not in keep:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                os.closerange(top, w)
                os.closerange(w + 1, maxfd)
                if lock_fd is not None:
                    try:
                        fcntl.fcntl(lock_fd, fcntl.F_SETLK, lock)
                    except OSError as e:
                        raise OSError(e.errno, f"cannot lock the pid file: {e.strerror}") from None
                    os.ftruncate(lock_fd, 0)
                    os.pwrite(lock_fd, b"%d\n" % os.getpid(), 0)
                if dropper is not None:
                    dropper()
                os.execve(argv[0], argv, env)
            except BaseException as exc:  # noqa: BLE001
                code = getattr(exc, "errno", None) or 0
                msg = getattr(exc, "strerror", None) or str(exc)
                try:
                    os.write(w, b"%d:%s" % (code, msg.encode(errors="replace")[:2000]))
                finally:
                    os._exit(127)
        os.close(w)
        w = -1
        data = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
        child = Child(pid)
        if data:
            child.wait()
            code, _, msg = data.partition(b":")
            raise OSError(int(code or 0) or errno.EPERM, msg.decode(errors="replace"))
        return child
    finally:
        for _, fd in moved:
            os.close(fd)
        for fd in stdio:
            os.close(fd)
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)


def run(argv: list[str], *, user: QemuUser | None, keep_caps: tuple[int, ...] = (), input: bytes = b"",
        timeout: float = 30.0, limit: int = 4 << 20) -> tuple[int, bytes, bytes]:
    """Run a tool to completion (confined when ``user`` is given): (status, stdout, stderr).

    Killed (and OperationFailed) after ``timeout`` seconds: a hostile image
    or binary cannot hang a start."""
    pipes = [os.pipe() for _ in range(3)]
    (in_r, in_w), (out_r, out_w), (err_r, err_w) = pipes
    child = None
    try:
        child = spawn(argv, user=user, fds={}, stdin=in_r, stdout=out_w, stderr=err_w,
                      keep_caps=keep_caps, new_session=True)
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        if child is None:
            for fd in (in_w, out_r, err_r):
                os.close(fd)
    out = {out_r: bytearray(), err_r: bytearray()}
    deadline = time.monotonic() + timeout
    try:
        if input:
            os.set_blocking(in_w, False)
        pending = memoryview(input)
        open_fds = [out_r, err_r]
        while open_fds or pending:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
                raise OperationFailed(f"'{argv[0]}' did not finish within {timeout:g}s")
            wl = [in_w] if pending else []
            readable, writable, _ = select.select(open_fds, wl, [], min(left, 1.0))
            if writable:
                try:
                    n = os.write(in_w, pending)
                    pending = pending[n:]
                except BrokenPipeError:
                    pending = memoryview(b"")
                if not pending:
                    os.close(in_w)
                    in_w = -1
            for fd in readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.remove(fd)
                elif len(out[fd]) < limit:
                    out[fd] += chunk
            if not pending and in_w >= 0:
                os.close(in_w)
                in_w = -1
        status = child.wait(max(1.0, deadline - time.monotonic()))
        return status, bytes(out[out_r]), bytes(out[err_r])
    except TimeoutError:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        raise OperationFailed(f"'{argv[0]}' did not finish within {timeout:g}s") from None
    finally:
        for fd in (in_w, out_r, err_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
