"""Starting a domain: QEMU, then its monitor, then ``cont``.

The caller holds the domain lock for the whole sequence.  Order, and what a
``kill -9`` of virtctl at each point leaves behind:

1. a spare file for state writes on a full disk (state.py); for a domain
   with passt helpers or tap devices, the runtime record written with
   ``phase: starting`` (no pid yet), then those made and recorded;
2. QEMU spawned behind a gate (process.spawn_gated: own session, stdio
   appended to its log, ``-S``: the guest does not run); the record
   (``phase: starting``) with its pid and start time committed *before*
   the gate opens, so no QEMU ever runs that the record does not name;
3. wait for the pid-file lock to be held by that pid and for QMP to greet
   (if QEMU exits instead, its own error from the log is quoted);
4. balloon target, VNC port, link states set; the live XML made;
5. the monitor (started right after QEMU, so their start-ups overlap: from
   virtctl's command line a fork of this process, ready at once) says
   ``ready``: its QMP connection is up, so no guest event can be missed;
   live XML written; ``cont`` unless paused;
6. the record committed with ``phase: running``.

Killed anywhere before 6, the next command that can take the domain lock
(``list`` too) finds a ``starting`` record, kills its QEMU and removes it:
the domain is shut off with no stray QEMU.  Killed after 6, the domain is
running.  An exception (Ctrl-C included) undoes the start the same way
before it propagates.  The kill points of faults.py mark the steps.
"""
from __future__ import annotations

import dataclasses
import os
import select
import shutil
import sys
import time

from virtctl.drivers.qemu import command, process
from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.faults import killpoint
from virtctl.drivers.qemu.locks import pidfile_holder
from virtctl.drivers.qemu.state import StateRoot, atomic_write, ensure_dir, ensure_spare, unlink_quiet
from virtctl.errors import OperationFailed, OperationTimeout, VirtError

QEMU_START_TIMEOUT = float(os.environ.get("VIRTCTL_QEMU_START_TIMEOUT", "60"))
MONITOR_START_TIMEOUT = 30.0
ACTIONS = ("on_poweroff", "on_reboot", "on_crash")
_DEFAULT_ACTIONS = {"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "destroy"}


def _prepare_dirs(state: StateRoot, uuid: str, paths) -> None:
    ensure_dir(state.run_dir(uuid))
    ensure_dir(state.sock)
    sock = state.sock_dir(uuid)
    shutil.rmtree(sock, ignore_errors=True)  # stale sockets of a dead run
    ensure_dir(sock)
    ensure_dir(paths.chardev_dir)
    for f in (state.events_file(uuid), state.pidfile(uuid)):
        unlink_quiet(f, missing_ok_only=False)
    ensure_spare(state.run_dir(uuid))


def _wait_qemu(proc, paths, log_path: str, log_offset: int):
    """Wait for QEMU to hold its pid file and greet on QMP; the open QMP.

    QEMU fails many things after it has opened its QMP socket (memory, disk
    locks, devices): when it exits instead of greeting, its own error from
    the log is what the user sees."""
    from virtctl.drivers.qemu.qmp import QMP, QMPError

    start = time.monotonic()
    deadline = start + QEMU_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise _exited(proc, log_path, log_offset)
        if pidfile_holder(paths.pidfile) == proc.pid:
            try:
                return QMP(paths.qmp, timeout=10.0)
            except (FileNotFoundError, ConnectionRefusedError):
                pass
            except QMPError as exc:
                try:
                    proc.wait(5.0)
                except Exception:  # noqa: BLE001 - still running: the QMP error is the news
                    raise rt.qmp_error(exc, "connecting to the new QEMU") from None
                raise _exited(proc, log_path, log_offset) from None
        if time.monotonic() > deadline:
            raise OperationTimeout(f"QEMU did not come up within {QEMU_START_TIMEOUT:g}s: "
                                   + _log_since(log_path, log_offset))
        # QEMU usually greets within tens of ms: poll every ms then (a poll is a
        # lock test and a connect, ~50 us; a growing back-off overshot by up
        # to half the wait), then back off for a slow start
        waited = time.monotonic() - start
        time.sleep(0.001 if waited < 1.0 else min(0.001 + waited / 50, 0.05))


def _exited(proc, log_path: str, log_offset: int) -> OperationFailed:
    return OperationFailed(f"QEMU exited while starting (status {proc.returncode}): "
                           + _log_since(log_path, log_offset), detail={"qemu_status": proc.returncode})


def _log_since(path: str, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read(8000).decode("utf-8", errors="replace")
    except OSError:
        text = ""
    lines = [ln for ln in text.strip().splitlines() if not ln.startswith("=== ")]
    return "\n".join(lines[-10:]) or "(no output)"


def _spawn_monitor(state: StateRoot, uuid: str, run_id: str, owner: tuple[int, int] | None,
                   adopt: bool = False):
    """Start the monitor; returns (process, read end of its ready pipe).

    From virtctl's command line it is a copy of this process (process.fork_detached):
    no interpreter start-up and no imports, so it is listening as soon as QEMU
    greets.  Elsewhere (a program using the API, a threaded process) it is
    ``python -m virtctl.drivers.qemu.monitor``."""
    r, w = os.pipe()
    try:
        if process.can_fork():
            # imported here, not in the copy: it needs QMP's modules, which this
            # process imports next anyway, and the copy then imports nothing
            from virtctl.drivers.qemu import monitor

            args = (StateRoot(state.kind, state.config, state.run, state.sock), uuid, run_id, owner, w)

            def run() -> int:
                monitor.name_process()
                return monitor.serve(*args, adopt=adopt)

            proc = process.fork_detached(run, state.monitor_log(uuid), keep_fds=(w,))
        else:
            argv = [sys.executable, "-m", "virtctl.drivers.qemu.monitor", *state.to_args(),
                    "--uuid", uuid, "--run-id", run_id, "--ready-fd", str(w)]
            if owner:
                argv += ["--owner-pid", str(owner[0]), "--owner-start", str(owner[1])]
            if adopt:
                argv.append("--adopt")
            proc = process.spawn_detached(argv, state.monitor_log(uuid), pass_fds=(w,))
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    os.close(w)
    return proc, r


def _stop_monitor(monitor, started: int | None) -> None:
    try:
        pid = monitor.pid
    except OSError:  # its fork failed: there is no monitor to stop
        return
    process.kill_and_wait(pid, started, term_timeout=2, kill_timeout=5)
    monitor.poll()


def _wait_monitor(state: StateRoot, uuid: str, r: int) -> str:
    """Wait until the monitor writes ``ready STATUS`` (its QMP connection is up);
    returns QMP's run state as the monitor found it."""
    try:
        buf = b""
        deadline = time.monotonic() + MONITOR_START_TIMEOUT
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OperationTimeout(f"the domain monitor did not start within {MONITOR_START_TIMEOUT:g}s")
            ready, _, _ = select.select([r], [], [], left)
            if ready:
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                buf += chunk
        if not buf.startswith(b"ready"):
            detail = buf.decode(errors="replace").strip() or process.log_tail(state.monitor_log(uuid), 1000)
            raise OperationFailed(f"the domain monitor failed to start: {detail}")
        return buf.decode(errors="replace").split("\n", 1)[0][len("ready"):].strip()
    finally:
        os.close(r)


def respawn_monitor(state: StateRoot, uuid: str, rec: dict) -> str:
    """A new monitor for a live run whose monitor died (caller holds the
    domain lock); it only listens (``--adopt``): the caller acts on the
    returned QMP status (recover.adopt)."""
    owner = rec.get("owner")
    monitor, ready_fd = _spawn_monitor(state, uuid, rec["run_id"],
                                       tuple(owner) if owner else None, adopt=True)
    try:
        status = _wait_monitor(state, uuid, ready_fd)
    except BaseException:
        _stop_monitor(monitor, None)
        raise
    rt.update_record(state, uuid, rec, monitor_pid=monitor.pid,
                     monitor_start_time=process.start_time(monitor.pid))
    return status


def _user_interfaces(definition) -> bool:
    """Whether any ``<interface type='user'>`` is there (passt helpers, forwarded ports)."""
    return any(i.get("type") == "user" for i in definition.root.findall("devices/interface"))


def _tap_interfaces(definition) -> list:
    if not any(i.get("type") in ("network", "bridge") for i in definition.root.findall("devices/interface")):
        return []
    from virtctl.drivers.qemu.network import taps

    return taps.tap_interfaces(definition.root)


def start_domain(state: StateRoot, uuid: str, definition, *, persistent: bool, paused: bool,
                 autodestroy: bool, decorate, extra_args: tuple[str, ...] = ()) -> dict:
    """Start ``definition`` (caller holds the domain lock; the domain is not running).

    ``decorate(live_def, record, qmp)`` fills the live XML (aliases, VNC port).
    ``extra_args`` go at the end of QEMU's argv (restore: ``-incoming defer``).
    Returns the committed runtime record."""
    paths = state.runtime_paths(uuid)
    # NOT_SUPPORTED / XML errors, the emulator check and backing chains before any
    # side effect; ``definition`` becomes the live one (chains explicit)
    cmd = command.prepare(state, definition, paths)
    definition = cmd.definition
    argv = cmd.argv + list(extra_args)
    rt.kill_stray(state, uuid, None)
    _prepare_dirs(state, uuid, paths)
    actions = {}
    for tag in ACTIONS:
        text = definition.root.findtext(tag)
        actions[tag] = (text or _DEFAULT_ACTIONS[tag]).strip()
    rec = {
        "uuid": uuid, "run_id": os.urandom(8).hex(), "phase": rt.PHASE_STARTING,
        "pid": None, "start_time": None, "id": state.next_domain_id(),
        "state": "paused" if paused else "running", "reason": "user" if paused else "booted",
        "persistent": persistent, "autodestroy": autodestroy, "paths": dataclasses.asdict(paths),
        "actions": actions, "emulator": argv[0], "started_at": time.time(),
        "monitor_pid": None, "monitor_start_time": None, "stopping": None, "fake_reboot": False,
        "qemu_user": cmd.user_record(),
    }
    tap_ifaces = _tap_interfaces(definition)
    if tap_ifaces:  # named before they exist: a killed start's cleanup removes them (network/taps.py)
        from virtctl.drivers.qemu.network import hostnet, taps

        rec["taps"] = [taps.target(el)[0] for el in tap_ifaces]
        rec["netns"] = hostnet.netns_id()
    # helpers and taps are recorded as they are made: the record must exist
    # first.  Without them, one commit names QEMU (held at its gate) right
    # after the spawn: a start killed before it leaves a gate shell that exits
    # on its own (its pipe closes), and no record, so nothing to clean up.
    early = bool(tap_ifaces) or _user_interfaces(definition)
    if early:
        rt.write_record(state, uuid, rec)
        killpoint("start:record")
        atomic_write(state.live_xml(uuid), definition.to_xml(), sync=False)
    log_path = paths.log
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} start run {rec['run_id']}: "
                     f"{' '.join(argv)}\n".encode())
        log_offset = os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)
    proc = gate = monitor = ready_fd = q = handover = None
    try:
        if early:
            from virtctl.drivers.qemu import passt

            passt.check_ports(definition, paths)  # a forwarded port in use: a clear error, nothing spawned

            def record_helper(entry: dict) -> None:
                rt.update_record(state, uuid, rec, helpers=(rec.get("helpers") or []) + [entry])

            passt.start_helpers(definition, paths, record_helper, log_path)  # before QEMU connects to them
            killpoint("start:helpers")
        if tap_ifaces:
            uid = getattr(cmd.user, "uid", None)
            for el in tap_ifaces:
                taps.create(state, el, definition.root.findtext("name") or uuid, uid=uid)
        handover = cmd.open()  # a confined QEMU's files and sockets, opened by us
        try:
            gate = cmd.spawn(argv, log_path, handover)  # held at the gate until recorded
        except OSError as exc:
            raise OperationFailed(f"cannot run QEMU '{argv[0]}': {exc.strerror}") from None
        proc = gate.proc
        if handover is not None:
            handover.release()  # QEMU has them: a QEMU that dies must refuse connections
        rt.update_record(state, uuid, rec, pid=proc.pid, start_time=process.start_time(proc.pid))
        if not early:
            killpoint("start:record")
            atomic_write(state.live_xml(uuid), definition.to_xml(), sync=False)
        killpoint("start:spawned")
        gate.open()
        # the monitor's start overlaps QEMU's (it retries until QMP is there)
        owner = (os.getpid(), process.start_time(os.getpid())) if autodestroy else None
        rec["owner"] = list(owner) if owner else None
        monitor, ready_fd = _spawn_monitor(state, uuid, rec["run_id"], owner)
        q = _wait_qemu(proc, paths, log_path, log_offset)
        # (a forked monitor's pid is read only now: QEMU's start-up hid the forks)
        rec.update(monitor_pid=monitor.pid, monitor_start_time=process.start_time(monitor.pid))
        rec["qemu_version"] = q.version
        if handover is not None:
            handover.after_start(q)  # the VNC socket
        killpoint("start:qemu-up")
        live = definition.copy()
        decorate(live, rec, q)
        for i, el in enumerate(live.root.findall("devices/interface")):
            link = el.find("link")
            if link is not None and link.get("state") == "down":  # libvirt does this before cont too
                alias = el.find("alias")
                q.command("set_link", {"name": alias.get("name") if alias is not None else f"net{i}", "up": False})
        live_xml = live.to_xml()
        # the monitor listens before the guest runs (no guest event missed); its
        # start overlapped QEMU's and the work above, the guest being stopped (-S)
        fd, ready_fd = ready_fd, None
        _wait_monitor(state, uuid, fd)  # closes fd
        killpoint("start:monitor-ready")
        if not paused:
            try:
                q.command("cont")
            except Exception as exc:  # noqa: BLE001
                raise rt.qmp_error(exc, "resuming the new QEMU") from None
            killpoint("start:resumed")
        atomic_write(state.live_xml(uuid), live_xml, sync=False)
        rt.update_record(state, uuid, rec, phase=rt.PHASE_RUNNING)
        killpoint("start:committed")
        from virtctl.drivers.qemu import events

        events.lifecycle(state, definition.name, uuid, "Started",
                         "Restored" if "-incoming" in extra_args else "Booted")
        if paused:
            events.lifecycle(state, definition.name, uuid, "Suspended", "Paused")
        unlink_quiet(state.exit_file(uuid), missing_ok_only=False)
        return rec
    except BaseException as exc:
        if ready_fd is not None:
            os.close(ready_fd)
        if gate is not None:
            gate.close()
        if proc is not None:
            process.kill_and_wait(proc.pid, rec.get("start_time"), term_timeout=0.0, kill_timeout=10.0)
            proc.poll()
        if monitor is not None:
            _stop_monitor(monitor, rec.get("monitor_start_time"))
        try:
            rt.cleanup(state, uuid, rec, None)
        except (VirtError, OSError):
            pass  # the 'starting' record stays: the next command finishes the cleanup
        if isinstance(exc, VirtError) or not isinstance(exc, Exception):
            raise
        raise OperationFailed(f"starting the domain failed: {exc}") from exc
    finally:
        if q is not None:
            q.close()
        if handover is not None:
            handover.close()
