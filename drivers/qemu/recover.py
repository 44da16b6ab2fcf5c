"""Repairing a live run that a dead process left half-done (runtime.sync calls these).

The caller holds the domain lock and QEMU is alive.  Two cases:

* **a save whose maker died** (the record has ``save``): if the image was
  renamed into place (its device and inode are the ones recorded just
  before the rename), the save is finished: QEMU is stopped and the run ends
  ``saved``; otherwise it is undone: the temp file removed, the migration
  cancelled, the guest resumed if it was running (``save canceled``).  So
  a committed image and a running guest never exist together.
* **a dead monitor**: a new monitor is started (``--adopt``: it listens but
  does not act on what it finds), then what the dead one missed is done
  here, from QMP's status, with the monitor's own rules
  (``monitor.Monitor.on_status``): a guest that powered off is destroyed,
  restarted or preserved as ``on_poweroff`` says; the state QMP reports
  (running/paused) is written to the record.

Imported lazily (only when something needs repair).
"""
from __future__ import annotations

import os

from virtctl.drivers.qemu import process
from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.locks import pidfile_holder
from virtctl.drivers.qemu.state import StateRoot, unlink_quiet
from virtctl.errors import VirtError

def _stop_qemu(state: StateRoot, uuid: str, rec: dict) -> None:
    pid, started = rec["pid"], rec.get("start_time")
    pidfile = state.pidfile(uuid)
    process.kill_and_wait(pid, started, term_timeout=5.0, kill_timeout=15.0,
                          alive=lambda: pidfile_holder(pidfile) == pid)


def finish_save(state: StateRoot, uuid: str, rec: dict) -> dict | None:
    """Finish or undo the save recorded in ``rec``; the live record, or None if the run ended."""
    from virtctl.drivers.qemu.qmp import QMPError

    save = rec.get("save") or {}
    if rt.save_committed(rec):
        _stop_qemu(state, uuid, rec)  # the guest was stopped and its state is in the image
        try:
            rt.cleanup(state, uuid, rec, "saved")
        except (VirtError, OSError):
            pass  # the record (with the committed save) stays: the next look ends it again
        return None
    tmp = save.get("tmp")
    if isinstance(tmp, str) and os.path.basename(tmp).startswith("."):
        unlink_quiet(tmp, missing_ok_only=False)
    state_, reason = rec.get("state"), rec.get("reason")
    try:
        with rt.connect_qmp(rec, timeout=5.0) as q:
            for cmd, args in (("migrate_cancel", None), ("closefd", {"fdname": rt.SAVE_FDNAME})):
                try:
                    q.command(cmd, args)
                except QMPError:
                    pass
            if save.get("was_running"):
                q.command("cont")
                state_, reason = "running", "save canceled"
            else:
                state_, reason = "paused", save.get("was_reason") or "user"
    except (VirtError, QMPError, OSError):
        pass  # QEMU does not answer: it stays as it is, and says so
    return rt.update_record(state, uuid, rec, save=None, stopping=None, state=state_, reason=reason)


def adopt(state: StateRoot, uuid: str, rec: dict) -> dict | None:
    """Give a run whose monitor died a new monitor, and do what it missed;
    the live record, or None if the run ended (e.g. the guest had powered off)."""
    from virtctl.drivers.qemu import launch
    from virtctl.drivers.qemu.monitor import Monitor
    from virtctl.drivers.qemu.qmp import QMPError

    status = None
    try:
        status = launch.respawn_monitor(state, uuid, rec)
    except VirtError:
        pass  # no monitor: do its work for this command at least
    try:
        with rt.connect_qmp(rec, timeout=10.0) as q:
            if status is None:
                status = (q.command("query-status") or {}).get("status")
            actor = Monitor(state, uuid, rec["run_id"], None, lock_held=True, record=rec)
            actor.q = q
            actor.on_status(status)
    except (VirtError, QMPError, OSError):
        return rec
    if actor.quitting:
        pid, started = rec["pid"], rec.get("start_time")
        pidfile = state.pidfile(uuid)
        if not process.wait_gone(pid, started, 30.0, lambda: pidfile_holder(pidfile) == pid):
            _stop_qemu(state, uuid, rec)
        try:
            rt.cleanup(state, uuid, rec, rt.exit_reason(state, uuid, rec, actor.exit_reason))
        except (VirtError, OSError):
            pass
        return None
    fresh = rt.read_record(state, uuid) or rec
    if status == "running" and fresh.get("state") == "paused":
        return rt.update_record(state, uuid, fresh, state="running", reason="unpaused")
    if status in ("paused", "suspended") and fresh.get("state") == "running":
        return rt.update_record(state, uuid, fresh, state="paused", reason="unknown")
    return fresh
