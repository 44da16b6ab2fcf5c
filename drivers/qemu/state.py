"""Where the QEMU driver keeps its state, and how it writes it.

One :class:`StateRoot` per connection URI::

    qemu:///session        definitions  $XDG_CONFIG_HOME/virtctl/qemu   (~/.config/...)
                           runtime      $XDG_RUNTIME_DIR/virtctl/qemu   (else /tmp/virtctl-UID/qemu)
    qemu:///system         definitions  /var/lib/virtctl/qemu
                           runtime      /run/virtctl/qemu
    qemu:///embed?root=D   definitions  D                runtime  D/run

Below those (every directory 0700, owned by us; a world-writable or foreign
directory is refused)::

    <config>/domains/<uuid>/domain.xml     the persistent definition
    <config>/domains/<uuid>/autostart      marker: start at boot (--all-autostart)
    <config>/domains/<uuid>/name           the name again (keeps it reserved if domain.xml rots)
    <config>/domains/<uuid>/managed.save   managed save image (save.py)
    <run>/locks/global.lock                name/UUID uniqueness (see locks.py)
    <run>/locks/<uuid>.lock                one domain's lock
    <run>/next-id                          domain-id counter
    <run>/domains/<uuid>/record.json       runtime record (pid, start time, sockets, state)
    <run>/domains/<uuid>/live.xml          the live definition (a transient domain's only one)
    <run>/domains/<uuid>/qemu.pid          QEMU's -pidfile (its lock = QEMU alive)
    <run>/domains/<uuid>/events.jsonl      QMP events the monitor saw (this run)
    <run>/domains/<uuid>/exit.json         why the last run ended
    <run>/domains/<uuid>/.spare            space reserved for state writes on a full disk
    <run>/logs/<uuid>.qemu.log             QEMU's stdout/stderr (kept)
    <run>/logs/<uuid>.monitor.log          the monitor's log (kept)
    <run>/logs/<uuid>.serial0.log ...      the last run's console logs (kept)
    <sock>/<uuid>/{qmp,qmp-monitor,vnc}.sock, <sock>/<uuid>/chardev/

A full disk: every running domain's runtime directory holds ``.spare``, a
file of :data:`SPARE_SIZE` real bytes.  When a state write fails for want
of space, :func:`atomic_write` renames the spare to its temp file, writes
into the bytes it already owns, and renames it over the target (still
atomic); the spare is refilled from what the replaced file freed.  So
destroy, suspend, resume and shutdown are recorded with no space left.

Temp files (``.NAME.<hex>.tmp``, ``.NAME.<hex>.part``, ``.trash-*``) left by
a kill are removed by :func:`clean_stale` when the lock that guards their
directory is held (nobody else can be writing them then).

Unix socket paths must stay under 108 bytes: ``<sock>`` is ``<run>/domains``
when that is short enough, else ``/tmp/virtctl-<uid>-<hash of run dir>``
(a real 0700 directory, never a symlink).  Everything is keyed by UUID; no
path is ever built from a domain name.

This module is imported by the per-VM monitor process: it must not import
lxml or the API.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat

from virtctl.errors import ConnectFailed, OperationFailed, SystemError_
from virtctl.lazy import lazy

# start-up time: these cost ~8 ms and a list needs none.  Temp names use
# os.urandom(6).hex(), which is what the secrets module returns, without its
# import (hmac, OpenSSL: ~3 ms)
tempfile = lazy("tempfile")
hashlib = lazy("hashlib")

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_STATE_FILE = 10 * 1024 * 1024  # the XML limit: all we write must read back
SUN_PATH_MAX = 107  # bytes of a unix socket path, without the NUL
# <sock>/<uuid>/chardev/<name>: leave this much for the longest socket file name
_SOCK_NAME_ROOM = 1 + 36 + len("/chardev/") + 40
SPARE = ".spare"
SPARE_SIZE = 32 * 1024  # a record is ~2 KiB: room for it even after a refill came up short
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# URI parameters: the driver's own (confine.py: who QEMU runs as; backing.py:
# whether images may name backing files the definition does not)
DRIVER_PARAMS = frozenset({"confine", "qemu_user", "backing"})
EMBED_PARAMS = frozenset({"root"}) | DRIVER_PARAMS


class CorruptState(Exception):
    """A state file exists but cannot be read back (reported, never fatal for others)."""


def _check_dir(path: str) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ConnectFailed(f"state directory '{path}' is not a directory (symlinks are refused)")
    if st.st_uid != os.geteuid():
        raise ConnectFailed(f"state directory '{path}' is owned by uid {st.st_uid}, not by us "
                            f"(uid {os.geteuid()}): refusing to use it")
    if st.st_mode & 0o002:
        raise ConnectFailed(f"state directory '{path}' is world-writable: refusing to use it")


def ensure_dir(path: str, *, check: bool = True) -> None:
    """Create ``path`` 0700 if missing (parents as needed); refuse an unsafe one."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        ensure_dir(os.path.dirname(path), check=False)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    except OSError as exc:
        raise ConnectFailed(f"cannot create state directory '{path}': {exc.strerror}") from None
    if check:
        _check_dir(path)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes | str, *, mode: int = 0o600, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` so a reader (or a crash) sees old or new, never half.

    Temp file in the same directory (O_EXCL|O_NOFOLLOW), write, fsync, rename,
    fsync the directory.  The temp file is removed on any failure.  Out of
    space, the directory's spare file is used instead (module docstring).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_STATE_FILE:
        raise OperationFailed(f"refusing to write '{path}': {len(data)} bytes is over the "
                              f"{MAX_STATE_FILE}-byte limit it must be read back under")
    d, base = os.path.split(path)
    tmp = os.path.join(d, f".{base}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno in _NO_SPACE and _write_via_spare(path, data, sync):
            return
        raise SystemError_(f"cannot write '{path}': {exc.strerror}") from None
    try:
        try:
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        unlink_quiet(tmp, missing_ok_only=False)
        if exc.errno in _NO_SPACE and _write_via_spare(path, data, sync):
            return
        raise SystemError_(f"cannot write '{path}': {exc.strerror}") from None
    except BaseException:
        unlink_quiet(tmp, missing_ok_only=False)
        raise
    if sync:
        try:
            fsync_dir(d)
        except OSError:
            pass


def _write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    view, pos = memoryview(data), offset
    while view:
        n = os.write(fd, view) if pos is None else os.pwrite(fd, view, pos)
        view = view[n:]
        if pos is not None:
            pos += n


def _write_via_spare(path: str, data: bytes, sync: bool) -> bool:
    """Write ``path`` atomically into the bytes of the directory's spare file."""
    d, base = os.path.split(path)
    spare = os.path.join(d, SPARE)
    tmp = os.path.join(d, f".{base}.{os.urandom(6).hex()}.tmp")
    try:
        os.rename(spare, tmp)  # claim it: a rename needs no data blocks
    except OSError:
        return False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size < len(data):
                raise OSError(errno.ENOSPC, "the spare file is too small")
            _write_all(fd, data, 0)  # overwrites blocks the file already owns
            os.ftruncate(fd, len(data))
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            os.rename(tmp, spare)  # give the spare back, whatever it holds now
        except OSError:
            unlink_quiet(tmp, missing_ok_only=False)
        return False
    if sync:
        try:
            fsync_dir(d)
        except OSError:
            pass
    ensure_spare(d)  # from what the replaced file and the spare's tail freed
    return True


def ensure_spare(d: str, size: int = SPARE_SIZE) -> None:
    """Give directory ``d`` a spare file of ``size`` real bytes (or as many as fit)."""
    spare = os.path.join(d, SPARE)
    try:
        if os.lstat(spare).st_size >= size:
            return
    except FileNotFoundError:
        pass
    except OSError:
        return
    tmp = os.path.join(d, f"{SPARE}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    written = 0
    try:
        zeros = bytes(4096)
        while written < size:  # real writes: sparse or fallocated space may be reclaimed
            try:
                written += os.write(fd, zeros[:min(len(zeros), size - written)])
            except OSError:
                break
    finally:
        os.close(fd)
    try:
        if written and written >= _size_of(spare):
            os.replace(tmp, spare)
        else:
            os.unlink(tmp)
    except OSError:
        unlink_quiet(tmp, missing_ok_only=False)


def _size_of(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


_STALE_SUFFIXES = (".tmp", ".part")


def clean_stale(d: str, *, trash: bool = False) -> None:
    """Remove temp files a killed writer left in ``d`` (``.NAME.<hex>.tmp``,
    ``.NAME.<hex>.part``; with ``trash``, ``.trash-*`` directories too).

    The caller holds the lock that every writer of ``d`` holds, so none of
    them is live."""
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        if not n.startswith("."):
            continue
        p = os.path.join(d, n)
        if n.endswith(_STALE_SUFFIXES) and n.count(".") >= 2:
            unlink_quiet(p, missing_ok_only=False)
        elif trash and n.startswith(".trash-"):
            import shutil

            shutil.rmtree(p, ignore_errors=True)


def read_bytes(path: str, limit: int = MAX_STATE_FILE) -> bytes | None:
    """The file's bytes, None if it does not exist; CorruptState if too big or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise CorruptState(f"cannot read '{path}': {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise CorruptState(f"'{path}' is over {limit} bytes")
    return data


def read_json(path: str) -> dict | None:
    data = read_bytes(path)
    if data is None:
        return None
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise CorruptState(f"'{path}' is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CorruptState(f"'{path}' is not a JSON object")
    return obj


def write_json(path: str, obj: dict, *, sync: bool = True) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True) + "\n", sync=sync)


def unlink_quiet(path: str, *, missing_ok_only: bool = True) -> None:
    """Remove ``path`` if it exists; with ``missing_ok_only=False`` ignore every error."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        if missing_ok_only:
            raise


class StateRoot:
    """The directories of one connection (see the module docstring)."""

    def __init__(self, kind: str, config: str, run: str, sock: str | None = None):
        self.kind = kind  # "session", "system", "embed"
        self.config = os.path.abspath(config)
        self.run = os.path.abspath(run)
        self.sock = sock or self._sock_base(self.run)

    # --- choosing the roots -------------------------------------------------------
    @classmethod
    def for_uri(cls, path: str, query: dict[str, str]) -> "StateRoot":
        if path == "/embed":
            _check_params(query, EMBED_PARAMS, "qemu:///embed")
            root = query.get("root")
            if not root or not os.path.isabs(root):
                raise ConnectFailed("qemu:///embed needs an absolute directory: qemu:///embed?root=/DIR")
            if "\0" in root:
                raise ConnectFailed("qemu:///embed: the root directory contains a NUL byte")
            root = os.path.normpath(root)
            if root in ("/", "//"):
                raise ConnectFailed("qemu:///embed: the root directory must not be '/' "
                                    "(give a directory of its own: qemu:///embed?root=/DIR)")
            return cls("embed", root, os.path.join(root, "run"))
        if path in ("/system", "/session"):
            _check_params(query, DRIVER_PARAMS, f"qemu://{path}")
        if path == "/system":
            return cls("system", "/var/lib/virtctl/qemu", "/run/virtctl/qemu")
        if path == "/session":
            home = os.path.expanduser("~")
            config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
            rt = os.environ.get("XDG_RUNTIME_DIR")
            if rt and os.path.isabs(rt):
                run = os.path.join(rt, "virtctl", "qemu")
            else:
                run = os.path.join(tempfile.gettempdir(), f"virtctl-{os.geteuid()}", "qemu")
            return cls("session", os.path.join(config, "virtctl", "qemu"), run)
        raise ConnectFailed(f"unknown QEMU connection path '{path}': use qemu:///session, "
                            "qemu:///system or qemu:///embed?root=/DIR")

    @staticmethod
    def _sock_base(run: str) -> str:
        natural = os.path.join(run, "domains")
        if len(natural.encode()) + _SOCK_NAME_ROOM <= SUN_PATH_MAX:
            return natural
        try:  # the same SHA-256 without OpenSSL's import cost
            from _sha256 import sha256
        except ImportError:
            sha256 = hashlib.sha256
        digest = sha256(run.encode()).hexdigest()[:12]
        return os.path.join("/tmp", f"virtctl-{os.geteuid()}-{digest}")

    def ensure(self) -> None:
        """Create the directories (0700) and refuse unsafe ones."""
        if self.kind == "embed":
            ensure_dir(self.config)
        else:
            ensure_dir(self.config)
            if self.kind == "session" and self.run.startswith(tempfile.gettempdir() + os.sep):
                ensure_dir(os.path.dirname(self.run))  # /tmp/virtctl-UID must be ours
        for d in (self.config_domains, self.run, self.locks_dir, self.run_domains, self.logs_dir):
            ensure_dir(d)
        # the socket directory is made by the first start (launch.py), so that
        # merely looking at a root leaves nothing in /tmp

    # --- persistent definitions -------------------------------------------------
    @property
    def config_domains(self) -> str:
        return os.path.join(self.config, "domains")

    def config_dir(self, uuid: str) -> str:
        return os.path.join(self.config_domains, _checked(uuid))

    def domain_xml(self, uuid: str) -> str:
        return os.path.join(self.config_dir(uuid), "domain.xml")

    def autostart_flag(self, uuid: str) -> str:
        return os.path.join(self.config_dir(uuid), "autostart")

    def name_file(self, uuid: str) -> str:
        return os.path.join(self.config_dir(uuid), "name")

    def defined_uuids(self) -> list[str]:
        return _uuid_entries(self.config_domains)

    # --- runtime ------------------------------------------------------------------
    @property
    def locks_dir(self) -> str:
        return os.path.join(self.run, "locks")

    @property
    def global_lock(self) -> str:
        return os.path.join(self.locks_dir, "global.lock")

    def domain_lock(self, uuid: str) -> str:
        return os.path.join(self.locks_dir, f"{_checked(uuid)}.lock")

    @property
    def id_counter(self) -> str:
        return os.path.join(self.run, "next-id")

    @property
    def run_domains(self) -> str:
        return os.path.join(self.run, "domains")

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.run, "logs")

    def run_dir(self, uuid: str) -> str:
        return os.path.join(self.run_domains, _checked(uuid))

    def record_file(self, uuid: str) -> str:
        return os.path.join(self.run_dir(uuid), "record.json")

    def live_xml(self, uuid: str) -> str:
        return os.path.join(self.run_dir(uuid), "live.xml")

    def pidfile(self, uuid: str) -> str:
        return os.path.join(self.run_dir(uuid), "qemu.pid")

    def events_file(self, uuid: str) -> str:
        return os.path.join(self.run_dir(uuid), "events.jsonl")

    def exit_file(self, uuid: str) -> str:
        return os.path.join(self.run_dir(uuid), "exit.json")

    def qemu_log(self, uuid: str) -> str:
        return os.path.join(self.logs_dir, f"{_checked(uuid)}.qemu.log")

    def monitor_log(self, uuid: str) -> str:
        return os.path.join(self.logs_dir, f"{_checked(uuid)}.monitor.log")

    def sock_dir(self, uuid: str) -> str:
        return os.path.join(self.sock, _checked(uuid))

    def runtime_uuids(self) -> list[str]:
        return _uuid_entries(self.run_domains)

    def runtime_paths(self, uuid: str):
        from virtctl.drivers.qemu.paths import RuntimePaths

        s = self.sock_dir(uuid)
        return RuntimePaths(
            qmp=os.path.join(s, "qmp.sock"),
            qmp_monitor=os.path.join(s, "qmp-monitor.sock"),
            pidfile=self.pidfile(uuid),
            chardev_dir=os.path.join(s, "chardev"),
            vnc_socket=os.path.join(s, "vnc.sock"),
            log=self.qemu_log(uuid),
        )

    # --- the monitor gets these on its command line --------------------------------
    def to_args(self) -> list[str]:
        return ["--kind", self.kind, "--config", self.config, "--run", self.run, "--sock", self.sock]

    # --- domain ids ------------------------------------------------------------------
    def next_domain_id(self) -> int:
        """A new domain id: a counter file under its own (leaf) lock.

        A counter that is missing, garbage or wrapping is rebuilt from the
        ids in the runtime records, so two running domains never share one."""
        from virtctl.drivers.qemu.locks import FileLock

        with FileLock(self.id_counter + ".lock", what="domain id counter lock"):
            clean_stale(self.run)  # .next-id.*.tmp of a killed writer
            try:
                data = read_bytes(self.id_counter, 64)
                n = int(data.decode().strip()) if data else None
            except (CorruptState, ValueError, UnicodeDecodeError):
                n = None
            if n is None or n < 1 or n >= 2**31 - 1:
                used = self._ids_in_use()
                n = max(used, default=0) + 1
                if n >= 2**31 - 1:
                    n = 1
                while n in used:
                    n += 1
            atomic_write(self.id_counter, f"{n + 1}\n", sync=False)
            return n

    def _ids_in_use(self) -> set[int]:
        ids = set()
        for uuid in self.runtime_uuids():
            try:
                rec = read_json(self.record_file(uuid))
            except CorruptState:
                continue
            if rec and isinstance(rec.get("id"), int):
                ids.add(rec["id"])
        return ids


def _check_params(query: dict[str, str], allowed: frozenset, what: str) -> None:
    unknown = sorted(set(query) - allowed)
    if unknown:
        names = ", ".join(f"'{k}'" for k in unknown)
        hint = f" (it takes only {', '.join(sorted(allowed))})" if allowed else " (it takes none)"
        raise ConnectFailed(f"{what}: unknown URI parameter{'s' if len(unknown) > 1 else ''} {names}{hint}")


def _checked(uuid: str) -> str:
    if not UUID_RE.match(uuid):
        raise ValueError(f"not a canonical UUID: {uuid!r}")
    return uuid


def _uuid_entries(path: str) -> list[str]:
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return []
        raise SystemError_(f"cannot list '{path}': {exc.strerror}") from None
    return sorted(n for n in names if UUID_RE.match(n))
