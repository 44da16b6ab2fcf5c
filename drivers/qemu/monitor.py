"""The per-VM monitor: ``python -m virtctl.drivers.qemu.monitor ...``.

In the spirit of podman's conmon: one small detached process per running
domain holds QEMU's second QMP socket (``paths.qmp_monitor``), because in a
daemonless design nobody else hears a guest power off (RELIABILITY.md rule
8).  It

* records every QMP event to ``events.jsonl`` (tagged with the run id);
* applies ``on_poweroff`` / ``on_reboot`` / ``on_crash``: ``destroy`` ->
  ``quit``; ``restart`` -> ``system_reset`` + ``cont`` (QEMU runs with
  ``-no-shutdown``, so a guest poweroff only stops it); ``preserve`` -> the
  record says so and QEMU is left as it is;
* turns a guest poweroff into a reboot when ``virtctl reboot`` asked for one
  (the record's ``fake_reboot`` flag: ACPI power button + reset, as libvirt);
* with ``--owner-pid`` (start --autodestroy), quits QEMU when that process
  is gone;
* when QEMU exits, waits until it is really gone, then under the domain lock
  removes the runtime record with the exit reason and, for a transient
  domain, the domain itself.

The exit reason it decided (it sent ``quit`` for ``on_poweroff``, or saw a
QMP ``quit`` sent by hand) is kept in memory too, so a clean shutdown stays
``shutdown`` when the event log cannot be written; it is also put in the
record (``exit_reason``) when appending the event fails.

It signals readiness (QMP connected and negotiated) by writing ``ready
STATUS`` (QMP's run state) to ``--ready-fd``; the starting command waits
for that before ``cont``.  With ``--adopt`` (a new monitor for a run whose
monitor died, started by a command that holds the domain lock) it does not
act on that status: the command does (recover.py), with :meth:`on_status`.
The monitor's pid and start time are in the record: a command that finds
them dead starts a new one.
Imports: no lxml, no API (start-up cost is paid at every domain start).
"""
from __future__ import annotations

import os
import sys
import time

from virtctl.drivers.qemu import events, process
from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.locks import FileLock, pidfile_holder
from virtctl.drivers.qemu.qmp import QMP, QMPClosed, QMPError
from virtctl.drivers.qemu.state import CorruptState, StateRoot

CONNECT_TIMEOUT = 20.0
TICK = 1.0  # seconds between owner checks


def log(msg: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} monitor[{os.getpid()}]: {msg}\n".encode()
    try:  # unbuffered, and never fatal: the log may sit on a full disk
        os.write(1, line)
    except OSError:
        pass


class Monitor:
    """The monitor of one run; also the rules a command applies itself when the
    monitor died (``lock_held=True``: the caller holds the domain lock)."""

    def __init__(self, state: StateRoot, uuid: str, run_id: str, owner: tuple[int, int] | None, *,
                 lock_held: bool = False, record: dict | None = None):
        self.state, self.uuid, self.run_id, self.owner = state, uuid, run_id, owner
        self.lock_held = lock_held
        rec = record if record is not None else rt.read_record(state, uuid)
        if rec is None or rec.get("run_id") != run_id:
            raise SystemExit(f"no runtime record for run {run_id}")
        self.pid, self.start_time = rec["pid"], rec.get("start_time")
        self.actions = rec.get("actions") or {}
        self.paths = rec["paths"]
        self.q: QMP | None = None
        self.quitting = False
        self.exit_reason: str | None = None  # what this monitor decided (or saw decided)
        self.status: str | None = None  # QMP's run state when it connected
        self.name = events.live_name(state, uuid)
        # the first RESUME of a run that starts running is its boot ``cont`` (the
        # starting command reports Started); a run started paused reports every RESUME
        self.skip_resume = rec.get("state") == "running" and rec.get("phase") != rt.PHASE_RUNNING
        self.powered_off = False  # a guest SHUTDOWN seen: the STOP after it is no pause

    # --- helpers ----------------------------------------------------------------
    def log(self, msg: str) -> None:
        if not self.lock_held:
            log(msg)
            return
        # a command doing the monitor's work: into the monitor's log, not the command's stdout
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} virtctl[{os.getpid()}]: {msg}\n".encode()
        try:
            fd = os.open(self.state.monitor_log(self.uuid), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                         | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            pass

    def record_event(self, ev: dict) -> bool:
        try:
            rt.append_event(self.state, self.uuid, {"run_id": self.run_id, **ev})
            return True
        except OSError as exc:
            self.log(f"cannot record event: {exc}")
            return False

    def note_exit(self, reason: str) -> None:
        """Remember why the run is ending: in memory, in the event log, else in the record."""
        self.exit_reason = reason
        if not self.record_event({"virtctl": "exit-reason", "reason": reason}):
            self._with_record(lambda rec: rt.update_record(self.state, self.uuid, rec, exit_reason=reason))

    def _with_record(self, fn) -> None:
        """Run ``fn(record)`` under the domain lock if the run is still ours."""
        try:
            if self.lock_held:
                rec = rt.read_record(self.state, self.uuid)
                if rec is not None and rec.get("run_id") == self.run_id:
                    fn(rec)
                return
            with FileLock(self.state.domain_lock(self.uuid), what="domain lock") as _lock:
                _lock  # noqa: B018
                rec = rt.read_record(self.state, self.uuid)
                if rec is not None and rec.get("run_id") == self.run_id:
                    fn(rec)
        except (OSError, CorruptState, Exception) as exc:  # never die on bookkeeping
            self.log(f"record update failed: {exc}")

    def command(self, name: str, args: dict | None = None) -> None:
        try:
            self.q.command(name, args, timeout=10)
        except QMPClosed:
            raise
        except QMPError as exc:
            self.log(f"{name} failed: {exc}")

    # --- actions ------------------------------------------------------------------
    def apply(self, action: str, kind: str) -> None:
        self.log(f"{kind}: applying '{action}'")
        if action in ("restart", "rename-restart", "coredump-restart"):
            self.command("system_reset")
            self.command("cont")
        elif action == "preserve":
            def mark(rec):
                if kind == "crash":
                    rt.update_record(self.state, self.uuid, rec, state="crashed", reason="panicked")
                else:
                    rt.update_record(self.state, self.uuid, rec, state="paused", reason="shutting down")
            self._with_record(mark)
        else:  # destroy, coredump-destroy
            self.note_exit("crashed" if kind == "crash" else "shutdown")
            self.quitting = True
            self.command("quit")

    def _saving(self) -> bool:
        """save/managedsave stop the guest first: that STOP ends as Stopped Saved, no pause."""
        try:
            rec = rt.read_record(self.state, self.uuid)
        except (OSError, CorruptState):
            return False
        return bool(rec) and (rec.get("save") is not None or rec.get("reason") == "saving")

    def journal(self, ev: dict) -> None:
        """QMP events as virsh's domain events, into the connection's journal (events.py)."""
        name, data = ev.get("event"), ev.get("data") or {}
        st, n, u = self.state, self.name, self.uuid
        if name == "STOP":
            if not (self.powered_off or self.quitting or self._saving()):
                events.lifecycle(st, n, u, "Suspended", "Paused")
        elif name == "RESUME":
            if self.skip_resume:
                self.skip_resume = False
            elif self._saving():  # a save that failed resumes the guest it stopped: neither is reported
                pass
            else:
                self.powered_off = False
                events.lifecycle(st, n, u, "Resumed", "Unpaused")
        elif name == "SHUTDOWN":
            if self.powered_off or self.quitting:  # the quit that follows a guest poweroff: one Shutdown
                return
            self.powered_off = True
            events.lifecycle(st, n, u, "Shutdown", "Finished after guest request" if data.get("guest")
                             else "Finished after host request")
        elif name == "RESET":
            events.emit(st, "domain", n, u, "reboot")
        elif name == "GUEST_PANICKED":
            events.lifecycle(st, n, u, "Crashed", "Panicked")
        elif name == "RTC_CHANGE":
            events.emit(st, "domain", n, u, "rtc-change", offset=data.get("offset", 0))
        elif name == "WATCHDOG":
            events.emit(st, "domain", n, u, "watchdog", action=data.get("action"))
        elif name == "BLOCK_IO_ERROR":
            events.emit(st, "domain", n, u, "io-error", device=data.get("device") or data.get("node-name"),
                        action=data.get("action"), reason=data.get("reason"))
        elif name == "DEVICE_DELETED" and data.get("device"):
            events.emit(st, "domain", n, u, "device-removed", alias=data.get("device"))
        elif name == "BALLOON_CHANGE":
            events.emit(st, "domain", n, u, "balloon-change", actual=int(data.get("actual", 0)) // 1024)
        elif name == "SUSPEND":
            events.emit(st, "domain", n, u, "pm-suspend", reason="unknown")
            events.lifecycle(st, n, u, "PMSuspended", "Memory")
        elif name == "SUSPEND_DISK":
            events.emit(st, "domain", n, u, "pm-suspend-disk", reason="unknown")
        elif name == "WAKEUP":
            events.emit(st, "domain", n, u, "pm-wakeup", reason="unknown")
            events.lifecycle(st, n, u, "Started", "Event wakeup")

    def handle(self, ev: dict) -> None:
        self.record_event(ev)
        if not ev.get("virtctl-derived"):
            self.journal(ev)
        name, data = ev.get("event"), ev.get("data") or {}
        if name == "SHUTDOWN" and data.get("guest"):
            reason = data.get("reason")
            if reason == "guest-reset":
                self.apply(self.actions.get("on_reboot", "restart"), "reboot")
            elif reason == "guest-panic":
                self.apply(self.actions.get("on_crash", "destroy"), "crash")
            else:
                wanted = {}

                def take_flag(rec):
                    if rec.get("fake_reboot"):
                        wanted["reboot"] = True
                        rt.update_record(self.state, self.uuid, rec, fake_reboot=False)
                self._with_record(take_flag)
                if wanted:
                    self.apply(self.actions.get("on_reboot", "restart"), "reboot (requested)")
                else:
                    self.apply(self.actions.get("on_poweroff", "destroy"), "poweroff")
        elif name == "SHUTDOWN" and data.get("reason") == "host-qmp-quit" and not self.quitting:
            self.exit_reason = self.exit_reason or "destroyed"  # quit sent by hand: libvirt says destroyed
        elif name == "RESET" and data.get("guest"):
            if self.actions.get("on_reboot") == "destroy":
                self.apply("destroy", "reboot")
        elif name == "GUEST_PANICKED":
            self.apply(self.actions.get("on_crash", "destroy"), "crash")

    def on_status(self, status: str | None) -> None:
        """Act on a run state found by ``query-status`` (events emitted while
        nobody listened are lost): a guest that powered off or panicked."""
        if status in ("shutdown", "guest-panicked"):
            self.handle({"event": "SHUTDOWN", "data": {"guest": True, "reason": "guest-shutdown"
                                                       if status == "shutdown" else "guest-panic"},
                         "virtctl-derived": True})

    def owner_gone(self) -> bool:
        return self.owner is not None and not process.is_running(*self.owner)

    # --- main ---------------------------------------------------------------------
    def connect(self) -> None:
        start = time.monotonic()
        deadline = start + CONNECT_TIMEOUT
        while True:
            try:
                self.q = QMP(self.paths["qmp_monitor"], timeout=10)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline or not process.is_running(self.pid, self.start_time):
                    raise
                # QEMU opens its sockets within tens of ms of starting, and the
                # starting command waits for us: poll every ms at first (as
                # launch._wait_qemu does), then back off for a slow start
                waited = time.monotonic() - start
                time.sleep(0.001 if waited < 1.0 else 0.02)
        if not process.is_running(self.pid, self.start_time):
            # the socket path is reused by the next run: this is not our QEMU
            self.q.close()
            raise SystemExit(f"QEMU {self.pid} of run {self.run_id} is gone")
        # events emitted while nobody listened are lost: re-derive the state
        self.status = (self.q.command("query-status") or {}).get("status")
        self.log(f"connected to QEMU {self.q.version}, pid {self.pid}, status {self.status}")

    def loop(self) -> None:
        try:
            while True:
                ev = self.q.next_event(TICK)
                if ev is not None:
                    self.handle(ev)
                elif not self.quitting and self.owner_gone():
                    self.log("autodestroy: the owning process is gone")
                    self.note_exit("destroyed")
                    self.quitting = True
                    self.command("quit")
        except QMPClosed:
            self.log("QEMU closed the monitor connection")
        except QMPError as exc:
            self.log(f"QMP error: {exc}")
        finally:
            self.q.close()

    def finish(self) -> None:
        pidfile = self.state.pidfile(self.uuid)
        if not process.wait_gone(self.pid, self.start_time, 60.0,
                                 lambda: pidfile_holder(pidfile) == self.pid):
            self.log("QEMU still alive 60s after closing its monitor; leaving it to the next command")
            return
        try:
            with rt.domain_lock(self.state, self.uuid, timeout=300):
                rec = rt.read_record(self.state, self.uuid)
                if rec is None or rec.get("run_id") != self.run_id:
                    self.log("run already cleaned up")
                    return
                if rt.qemu_alive(self.state, self.uuid, rec):
                    return
                reason = rt.exit_reason(self.state, self.uuid, rec, self.exit_reason)
                rt.cleanup(self.state, self.uuid, rec, reason)
                self.log(f"QEMU exited; domain shut off ({reason})"
                         + ("" if rec.get("persistent", True) else "; transient domain removed"))
        except Exception as exc:  # noqa: BLE001 - report, the next command re-syncs
            self.log(f"cleanup failed: {exc}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="virtctl-qemu-monitor")
    p.add_argument("--kind", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--sock", required=True)
    p.add_argument("--uuid", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--ready-fd", type=int)
    p.add_argument("--owner-pid", type=int)
    p.add_argument("--owner-start", type=int)
    p.add_argument("--adopt", action="store_true", help="a run whose monitor died: report, do not act")
    a = p.parse_args(argv)
    state = StateRoot(a.kind, a.config, a.run, a.sock)
    owner = (a.owner_pid, a.owner_start) if a.owner_pid else None
    return serve(state, a.uuid, a.run_id, owner, a.ready_fd, adopt=a.adopt)


def serve(state: StateRoot, uuid: str, run_id: str, owner: tuple[int, int] | None, ready_fd: int | None,
          *, adopt: bool = False) -> int:
    """The monitor's life: connect, say ``ready STATUS`` on ``ready_fd``, listen
    until QEMU is gone, clean up.  Run by :func:`main` (a new interpreter) or
    in a copy of the starting virtctl (process.fork_detached)."""
    try:
        mon = Monitor(state, uuid, run_id, owner)
        mon.connect()
    except BaseException as exc:
        log(f"start failed: {exc!r}")
        if ready_fd is not None:
            try:
                os.write(ready_fd, f"error {exc}\n".encode())
            except OSError:
                pass
        return 1
    if ready_fd is not None:
        try:
            os.write(ready_fd, f"ready {mon.status}\n".encode())
            os.close(ready_fd)
        except OSError:
            pass
    if not adopt:
        mon.on_status(mon.status)
    mon.loop()
    mon.finish()
    return 0


def name_process() -> None:
    """``virtctl-monitor`` in ps/top for a monitor forked from virtctl (its
    command line stays the starting command's)."""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write("virtctl-monitor")
    except OSError:
        pass

if __name__ == "__main__":
    sys.exit(main())
