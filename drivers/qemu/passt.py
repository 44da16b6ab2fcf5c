"""passt helper processes of a starting domain (``<backend type='passt'/>``).

One ``passt`` per such interface, spawned detached before QEMU (QEMU's
``-netdev stream`` connects to its unix socket, ``argv_net_user``); pid and
start time go into the runtime record's ``helpers`` list right after the
spawn, and :func:`kill_helpers` (called by ``runtime.cleanup`` and
``runtime.kill_stray``) ends them when the guest stops, however it stops.

Before anything is spawned every forwarded host port is test-bound on its
address (slirp and passt alike), so a port already in use is a clear error
naming port and address instead of a QEMU/passt log line.

passt runs as the caller.  As root it would switch to ``nobody``, which
cannot reach the socket directory (0700, root's): it is told to stay root
(``--runas 0:0``); passt still confines itself (namespaces, seccomp,
capabilities dropped).  Imports: no lxml (``runtime`` imports this module
lazily from the monitor).
"""
from __future__ import annotations

import errno
import os
import shutil
import socket
import time

from virtctl.drivers.qemu import process
from virtctl.errors import OperationFailed

PASST_START_TIMEOUT = 10.0


def _interfaces(definition, paths):
    """[(index, iface element, backend, forwards)] of the user interfaces."""
    from virtctl.drivers.qemu import argv_net_user as nu
    from virtctl.drivers.qemu.argv_common import Ctx

    c = Ctx(definition.root, paths, machine_family="pc", accel="tcg", arch="x86_64")
    out = []
    for i, iface in enumerate(definition.root.findall("devices/interface")):
        if iface.get("type") != "user":
            continue
        out.append((i, iface, nu.backend(c, iface), nu.forwards(c, iface)))
    return out


def check_ports(definition, paths) -> None:
    """OPERATION_FAILED when a forwarded host port cannot be bound now."""
    for i, _, _, fwds in _interfaces(definition, paths):
        for f in fwds:
            family = socket.AF_INET6 if ":" in f.address else socket.AF_INET
            kind = socket.SOCK_STREAM if f.proto == "tcp" else socket.SOCK_DGRAM
            for host, _guest in f.ports:
                s = socket.socket(family, kind)
                try:
                    if kind == socket.SOCK_STREAM:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((f.address, host))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        why = "is already in use"
                    elif exc.errno == errno.EACCES:
                        why = "needs privileges (a port below 1024)"
                    elif exc.errno == errno.EADDRNOTAVAIL:
                        why = "cannot be bound: the host has no such address"
                    else:
                        why = f"cannot be bound: {exc.strerror}"
                    raise OperationFailed(
                        f"interface {i}: <portForward>: port {host}/{f.proto} on {f.address} {why}",
                        detail={"port": host, "proto": f.proto, "address": f.address, "interface": i}) from None
                finally:
                    s.close()


def passt_argv(binary: str, iface, fwds, sock: str, log: str) -> list[str]:
    from virtctl.drivers.qemu import argv_net_user as nu

    argv = [binary, "--foreground", "--socket", sock]
    b = iface.find("backend")
    argv += ["--log-file", (b.get("logFile") if b is not None else None) or log]
    src = iface.find("source")
    if src is not None and src.get("dev"):
        argv += ["--interface", src.get("dev")]
    if os.geteuid() == 0:
        argv += ["--runas", "0:0"]
    return argv + nu.passt_specs(fwds)


def start_helpers(definition, paths, record_helper, qemu_log: str) -> None:
    """Spawn and wait for each passt; ``record_helper(entry)`` records one at once."""
    from virtctl.drivers.qemu import argv_net_user as nu

    todo = [x for x in _interfaces(definition, paths) if x[2] == "passt"]
    if not todo:
        return
    binary = shutil.which("passt")
    if binary is None:
        raise OperationFailed("<backend type='passt'/> needs the passt program (Debian: passt), "
                              "which is not installed")
    for i, iface, _, fwds in todo:
        sock, log = nu.socket_path(paths, i), nu.log_path(paths, i)
        for p in (sock, log):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        argv = passt_argv(binary, iface, fwds, sock, log)
        try:
            proc = process.spawn_detached(argv, qemu_log)
        except OSError as exc:
            raise OperationFailed(f"cannot run passt: {exc.strerror}") from None
        record_helper({"kind": "passt", "interface": i, "pid": proc.pid,
                       "start_time": process.start_time(proc.pid), "socket": sock})
        _wait_ready(proc, sock, argv[argv.index("--log-file") + 1], i)


def _wait_ready(proc, sock: str, log: str, index: int) -> None:
    """passt listens once its log says QEMU may connect (it has bound the socket)."""
    deadline = time.monotonic() + PASST_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise OperationFailed(f"passt (interface {index}) exited while starting "
                                  f"(status {proc.returncode}): {_tail(log)}")
        if os.path.exists(sock) and "You can now start qemu" in _tail(log, 8000):
            return
        if time.monotonic() > deadline:
            raise OperationFailed(f"passt (interface {index}) did not come up within "
                                  f"{PASST_START_TIMEOUT:g}s: {_tail(log)}")
        time.sleep(0.002)


def _tail(path: str, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            text = f.read()[-limit:].decode(errors="replace")
    except OSError:
        return "(no log)"
    lines = [ln.split(":", 1)[-1].strip() if ln[:1].isdigit() else ln.strip() for ln in text.splitlines()]
    return "; ".join(ln for ln in lines if ln and not ln.startswith("passt ")) or "(no output)"


def kill_helpers(rec: dict | None) -> None:
    """End the helpers a runtime record names (verified by start time) and wait."""
    for h in (rec or {}).get("helpers") or []:
        pid, started = h.get("pid"), h.get("start_time")
        if isinstance(pid, int) and pid > 0 and process.is_running(pid, started):
            process.kill_and_wait(pid, started, term_timeout=2.0, kill_timeout=5.0)
        process.reap_if_child(pid) if isinstance(pid, int) and pid > 0 else None
