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

It signals readiness (QMP connected and negotiated) by writing ``ready`` to
``--ready-fd``; the starting command waits for that before ``cont``.
Imports: no lxml, no API (start-up cost is paid at every domain start).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from virtctl.drivers.qemu import process
from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.locks import FileLock, pidfile_holder
from virtctl.drivers.qemu.qmp import QMP, QMPClosed, QMPError
from virtctl.drivers.qemu.state import CorruptState, StateRoot

CONNECT_TIMEOUT = 20.0
TICK = 1.0  # seconds between owner checks


def log(msg: str) -> None:
    sys.stdout.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} monitor[{os.getpid()}]: {msg}\n")
    sys.stdout.flush()


class Monitor:
    def __init__(self, state: StateRoot, uuid: str, run_id: str, owner: tuple[int, int] | None):
        self.state, self.uuid, self.run_id, self.owner = state, uuid, run_id, owner
        rec = rt.read_record(state, uuid)
        if rec is None or rec.get("run_id") != run_id:
            raise SystemExit(f"no runtime record for run {run_id}")
        self.pid, self.start_time = rec["pid"], rec.get("start_time")
        self.actions = rec.get("actions") or {}
        self.paths = rec["paths"]
        self.q: QMP | None = None
        self.quitting = False

    # --- helpers ----------------------------------------------------------------
    def record_event(self, ev: dict) -> None:
        try:
            rt.append_event(self.state, self.uuid, {"run_id": self.run_id, **ev})
        except OSError as exc:
            log(f"cannot record event: {exc}")

    def _with_record(self, fn) -> None:
        """Run ``fn(record)`` under the domain lock if the run is still ours."""
        try:
            with FileLock(self.state.domain_lock(self.uuid), what="domain lock") as _lock:
                _lock  # noqa: B018
                rec = rt.read_record(self.state, self.uuid)
                if rec is not None and rec.get("run_id") == self.run_id:
                    fn(rec)
        except (OSError, CorruptState, Exception) as exc:  # never die on bookkeeping
            log(f"record update failed: {exc}")

    def command(self, name: str, args: dict | None = None) -> None:
        try:
            self.q.command(name, args, timeout=10)
        except QMPClosed:
            raise
        except QMPError as exc:
            log(f"{name} failed: {exc}")

    # --- actions ------------------------------------------------------------------
    def apply(self, action: str, kind: str) -> None:
        log(f"{kind}: applying '{action}'")
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
            self.record_event({"virtctl": "exit-reason",
                               "reason": "crashed" if kind == "crash" else "shutdown"})
            self.quitting = True
            self.command("quit")

    def handle(self, ev: dict) -> None:
        self.record_event(ev)
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
        elif name == "RESET" and data.get("guest"):
            if self.actions.get("on_reboot") == "destroy":
                self.apply("destroy", "reboot")
        elif name == "GUEST_PANICKED":
            self.apply(self.actions.get("on_crash", "destroy"), "crash")

    def owner_gone(self) -> bool:
        return self.owner is not None and not process.is_running(*self.owner)

    # --- main ---------------------------------------------------------------------
    def connect(self) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            try:
                self.q = QMP(self.paths["qmp_monitor"], timeout=10)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline or not process.is_running(self.pid, self.start_time):
                    raise
                time.sleep(0.02)
        # events emitted while nobody listened are lost: re-derive the state
        status = self.q.command("query-status")
        log(f"connected to QEMU {self.q.version}, pid {self.pid}, status {status.get('status')}")
        if status.get("status") in ("shutdown", "guest-panicked"):
            self.handle({"event": "SHUTDOWN", "data": {"guest": True, "reason": "guest-shutdown"
                                                       if status["status"] == "shutdown" else "guest-panic"},
                         "virtctl-derived": True})

    def loop(self) -> None:
        try:
            while True:
                ev = self.q.next_event(TICK)
                if ev is not None:
                    self.handle(ev)
                elif not self.quitting and self.owner_gone():
                    log("autodestroy: the owning process is gone")
                    self.record_event({"virtctl": "exit-reason", "reason": "destroyed"})
                    self.quitting = True
                    self.command("quit")
        except QMPClosed:
            log("QEMU closed the monitor connection")
        except QMPError as exc:
            log(f"QMP error: {exc}")
        finally:
            self.q.close()

    def finish(self) -> None:
        pidfile = self.state.pidfile(self.uuid)
        if not process.wait_gone(self.pid, self.start_time, 60.0,
                                 lambda: pidfile_holder(pidfile) == self.pid):
            log("QEMU still alive 60s after closing its monitor; leaving it to the next command")
            return
        try:
            with rt.domain_lock(self.state, self.uuid, timeout=300):
                rec = rt.read_record(self.state, self.uuid)
                if rec is None or rec.get("run_id") != self.run_id:
                    log("run already cleaned up")
                    return
                if rt.qemu_alive(self.state, self.uuid, rec):
                    return
                reason = rt.exit_reason(self.state, self.uuid, rec)
                rt.cleanup(self.state, self.uuid, rec, reason)
                log(f"QEMU exited; domain shut off ({reason})"
                    + ("" if rec.get("persistent", True) else "; transient domain removed"))
        except Exception as exc:  # noqa: BLE001 - report, the next command re-syncs
            log(f"cleanup failed: {exc}")


def main(argv: list[str] | None = None) -> int:
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
    a = p.parse_args(argv)
    state = StateRoot(a.kind, a.config, a.run, a.sock)
    owner = (a.owner_pid, a.owner_start) if a.owner_pid else None
    try:
        mon = Monitor(state, a.uuid, a.run_id, owner)
        mon.connect()
    except BaseException as exc:
        log(f"start failed: {exc!r}")
        if a.ready_fd is not None:
            try:
                os.write(a.ready_fd, f"error {exc}\n".encode())
            except OSError:
                pass
        return 1
    if a.ready_fd is not None:
        try:
            os.write(a.ready_fd, b"ready\n")
            os.close(a.ready_fd)
        except OSError:
            pass
    mon.loop()
    mon.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
