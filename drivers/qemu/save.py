"""Save, restore and managed save for the QEMU driver (a mixin of QemuDomainDriver).

Saving (RELIABILITY.md rule 9), all under the domain lock:

1. a temp file is created beside the target (``.NAME.<hex>.part``, O_EXCL,
   0600; its name is put in the record first) *before* the guest is
   touched: an unwritable place fails at once with the domain untouched;
2. the header (virtctl/savefile.py: magic, the live domain XML, whether to
   run on restore) is written, the guest is stopped (``stop``);
3. the descriptor is handed to QEMU with ``getfd`` (SCM_RIGHTS) and
   ``migrate uri=fd:NAME``; never ``exec:`` (the sandbox forbids it anyway);
4. ``migrate`` returns at once: ``query-migrate`` is polled until
   ``completed`` or ``failed`` (progress = the shared file offset);
5. success: the record is marked (``stopping: save``, the temp file's
   device and inode), then fsync, rename over the target, fsync the
   directory: the rename is the commit point.  QEMU is told to ``quit`` and
   the run is cleaned up here (domain shut off, reason saved; a transient
   domain is gone);
   failure: the temp file is removed, QEMU resumed (``running (save
   canceled)``) if it was running, and the error quotes QEMU's.

The record holds the save (``save``: target, temp file, whether the guest
was running) from step 1 on, so a ``kill -9`` anywhere is repaired by the
next command (recover.finish_save): an image that was renamed into place
ends the run (the guest never runs again beside it); otherwise the save is
undone.  A temp file a kill left is removed then too.

Restoring starts QEMU with the same argv plus ``-incoming defer``, passes the
image's descriptor (positioned after the header) with ``getfd`` and runs
``migrate-incoming uri=fd:NAME``, waits for ``completed``, then ``cont``
unless paused: ``running (restored)``.  The restored domain runs the saved
definition (validated like ``define``); a domain not defined is transient.

Managed save: the image is ``<config>/domains/<uuid>/managed.save``; ``start``
resumes from it, ``start --force-boot`` discards it, ``undefine`` refuses
while it exists unless ``--managed-save``, ``domrename`` refuses while it
exists (as libvirt: the image holds the old name).  ``start`` removes the
image (and fsyncs its directory) once QEMU has loaded it and before the
guest runs (``cont``): killed after that, the domain is shut off and the
image gone, never restored a second time against a disk that moved on.

``bypass_cache``: QEMU cannot write through O_DIRECT descriptors, so the
page cache is dropped for the image afterwards (POSIX_FADV_DONTNEED).
"""
from __future__ import annotations

import os
import time

from virtctl.drivers.qemu import process
from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.faults import killpoint
from virtctl.drivers.qemu.state import fsync_dir, unlink_quiet
from virtctl.errors import InvalidArg, OperationFailed, OperationInvalid, VirtError
from virtctl.lazy import lazy

savefile = lazy("virtctl.savefile")
launch = lazy("virtctl.drivers.qemu.launch")

FDNAME = rt.SAVE_FDNAME
MANAGED_SAVE = "managed.save"
STALL_TIMEOUT = 300.0  # a save whose file offset does not move for this long is failed
POLL = 0.05


def _strip_live(definition) -> str:
    """The live definition as a save image keeps it: no device aliases."""
    d = definition.copy()
    for el in list(d.root.iter("alias")):
        el.getparent().remove(el)
    return d.to_xml()


def _drop_cache(fd: int, bypass_cache: bool) -> None:
    if bypass_cache:
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


def _wait_migration(q, fd: int, base: int, total: int, progress, what: str, job=None) -> dict:
    """Poll ``query-migrate`` until it is over; the last answer.  ``job``
    (jobs.Job) gets the progress, and a save is cancelled when another
    process asks (domjobabort)."""
    from virtctl.drivers.qemu.qmp import QMPError

    last_pos, last_move = -1, time.monotonic()
    while True:
        try:
            info = q.command("query-migrate", timeout=30) or {}
        except (QMPError, OSError) as exc:
            raise rt.qmp_error(exc, what) from None
        q.events.clear()
        status = info.get("status")
        try:
            pos = os.lseek(fd, 0, os.SEEK_CUR) - base
        except OSError:
            pos = 0
        if progress is not None:
            ram = info.get("ram") or {}
            tot = total or int(ram.get("total") or 0)
            progress(min(pos, tot) if tot else pos, tot or pos)
        if job is not None:
            ram = info.get("ram") or {}
            tot = total or int(ram.get("total") or 0)
            job.progress(min(pos, tot) if tot else pos, tot or pos)
            if what == "save" and not job.cancelled and job.abort_requested():
                job.cancelled = True
                try:
                    q.command("migrate_cancel")
                except (QMPError, OSError):
                    pass
        if status in ("completed", "failed", "cancelled"):
            return info
        now = time.monotonic()
        if pos != last_pos:
            last_pos, last_move = pos, now
        elif now - last_move > STALL_TIMEOUT:
            return {"status": "failed", "error-desc": f"no progress for {STALL_TIMEOUT:g} seconds"}
        time.sleep(POLL)


class QemuSaveMixin:
    # --- managed save files ---------------------------------------------------------------
    def _managed_save_path(self, uuid: str) -> str:
        return os.path.join(self.state.config_dir(uuid), MANAGED_SAVE)

    def _has_managed_save(self, uuid: str) -> bool:
        return os.path.exists(self._managed_save_path(uuid))

    def _managed_save_undefine_check(self, uuid: str, managed_save: bool) -> None:
        """undefine: refuse while a managed save image exists (unless --managed-save)."""
        if not managed_save and self._has_managed_save(uuid):
            raise OperationInvalid(
                "Requested operation is not valid: Refusing to undefine while domain managed save image exists")

    def _managed_start(self, uuid: str, v, *, paused: bool, autodestroy: bool, force_boot: bool) -> bool:
        """start: resume from the managed save image if there is one (True), or
        discard it with ``force_boot``.  Caller holds the domain lock."""
        path = self._managed_save_path(uuid)
        if not os.path.exists(path):
            return False
        if force_boot:
            unlink_quiet(path)
            fsync_dir(os.path.dirname(path))
            return False
        try:
            self._restore_locked(path, uuid, persistent=True, paused=paused or None,
                                 autodestroy=autodestroy, expect_uuid=uuid, name=v.config.name,
                                 consume=True)
        except VirtError as exc:
            kept = ("the managed save image is kept; 'start --force-boot' boots afresh and discards it"
                    if os.path.exists(path) else "the managed save image was loaded and is gone")
            raise VirtError(f"{exc.message} ({kept})", code=exc.code, detail=exc.detail) from None
        return True

    # --- save ---------------------------------------------------------------------------------
    def save(self, uuid: str, path: str, *, paused: bool | None = None, bypass_cache: bool = False,
             progress=None) -> None:
        from virtctl.drivers.qemu import jobs

        with self._running(uuid) as run, jobs.Job(self.state, uuid, "save") as job:
            self._save_locked(run, path, paused=paused, bypass_cache=bypass_cache, progress=progress, job=job)
        self._autodestroy.discard(uuid)

    def managed_save(self, uuid: str, *, paused: bool | None = None, bypass_cache: bool = False,
                     progress=None) -> None:
        from virtctl.drivers.qemu import jobs

        with self._running(uuid) as run:
            if self._config(uuid) is None:
                raise OperationInvalid(
                    "Requested operation is not valid: cannot do managed save for transient domain")
            with jobs.Job(self.state, uuid, "save") as job:
                self._save_locked(run, self._managed_save_path(uuid), paused=paused,
                                  bypass_cache=bypass_cache, progress=progress, job=job)
        self._autodestroy.discard(uuid)

    def managed_save_remove(self, uuid: str) -> bool:
        with rt.domain_lock(self.state, uuid):
            self._checked_view(uuid, locked=True)
            path = self._managed_save_path(uuid)
            if not os.path.exists(path):
                return False
            unlink_quiet(path)
            fsync_dir(os.path.dirname(path))
            return True

    def _save_locked(self, run: rt.RunningDomain, path: str, *, paused: bool | None,
                     bypass_cache: bool, progress, job=None) -> None:
        from virtctl.drivers.qemu.qmp import QMPError

        uuid, rec = run.uuid, run.record
        live_def = self._live(uuid)
        if live_def is None:
            raise OperationFailed(f"the live definition of domain {uuid} is missing")
        was_running = rec.get("state") == "running"
        run_after = was_running if paused is None else not paused
        header = savefile.Header("qemu", _strip_live(live_def), run_after)
        # the temp file is named in the record before it exists: killed at any point,
        # the next command finds it and removes it (recover.finish_save)
        tmp = savefile.temp_name(path)
        run.update(save={"path": os.path.abspath(path), "tmp": tmp, "was_running": was_running,
                         "was_reason": rec.get("reason")})
        try:
            fd, tmp = savefile.create_temp(path, tmp)  # fails before the guest is touched
        except BaseException:
            try:
                run.update(save=None)
            except (VirtError, OSError):
                pass  # the next command undoes it
            raise
        committed = False
        try:
            killpoint("save:temp")
            try:
                base = savefile.write_header(fd, header)
            except OSError as exc:
                raise OperationFailed(f"cannot write save file '{path}': {exc.strerror}") from None
            with run.qmp(timeout=30) as q:
                stopped = False
                try:
                    if was_running:
                        q.command("stop")
                        stopped = True
                        run.update(state="paused", reason="saving")
                        killpoint("save:stopped")
                    try:  # QEMU's default 32 MiB/s cap is for live migration, not for saving
                        q.command("migrate-set-parameters", {"max-bandwidth": 1 << 40})
                    except QMPError:
                        pass
                    q.command("getfd", {"fdname": FDNAME}, fds=[fd])
                    q.command("migrate", {"uri": f"fd:{FDNAME}"})
                    info = _wait_migration(q, fd, base, 0, progress, "save", job)
                    if info.get("status") != "completed":
                        desc = info.get("error-desc") or f"migration {info.get('status')}"
                        try:
                            q.command("migrate_cancel")
                        except QMPError:
                            pass
                        raise OperationFailed(f"operation failed: saving domain to '{path}' failed: {desc}",
                                              detail={"path": path})
                    killpoint("save:migrated")
                    st = os.fstat(fd)  # the inode the rename puts in place: how a repair knows it happened
                    run.update(stopping="save", save={**run.record["save"], "dev": st.st_dev, "ino": st.st_ino})
                    killpoint("save:marked")
                    savefile.commit(fd, tmp, path)
                    committed = True
                    killpoint("save:committed")
                    _drop_cache(fd, bypass_cache)
                except BaseException:
                    if committed:  # the image is in place: the run must end, whatever happened
                        try:
                            self._quit_saved(run, q)
                        except BaseException:  # noqa: BLE001 - the next command finishes it
                            pass
                        raise
                    try:
                        q.command("closefd", {"fdname": FDNAME})
                    except (QMPError, OSError):
                        pass
                    undo = {"save": None, "stopping": None}
                    if stopped:
                        try:
                            q.command("cont")
                            undo.update(state="running", reason="save canceled")
                        except (QMPError, OSError):
                            pass
                    try:
                        run.update(**undo)
                    except (VirtError, OSError):
                        pass
                    raise
                self._quit_saved(run, q)
        except BaseException as exc:
            if not committed:
                savefile.discard(tmp)
            if isinstance(exc, (QMPError, OSError)) and not isinstance(exc, VirtError):
                raise rt.qmp_error(exc, "save") from None
            raise
        finally:
            os.close(fd)

    def _quit_saved(self, run: rt.RunningDomain, q) -> None:
        """The image is safe: end the run with reason ``saved``."""
        from virtctl.drivers.qemu.locks import pidfile_holder
        from virtctl.drivers.qemu.qmp import QMPError

        uuid, rec = run.uuid, run.record
        try:
            q.command("quit")
        except (QMPError, OSError):
            pass
        pid, started = rec["pid"], rec.get("start_time")
        pidfile = self.state.pidfile(uuid)

        def holds() -> bool:
            return pidfile_holder(pidfile) == pid

        killpoint("save:quit")
        if not process.wait_gone(pid, started, 30.0, holds):
            process.kill_and_wait(pid, started, term_timeout=5.0, kill_timeout=15.0, alive=holds)
        try:
            rt.cleanup(self.state, uuid, rec, "saved")
        except (VirtError, OSError):
            pass  # the record (committed save) stays: the next command reports it saved and retries

    # --- restore --------------------------------------------------------------------------------
    def restore(self, path: str, *, paused: bool | None = None, bypass_cache: bool = False,
                progress=None) -> str:
        header = savefile.load_header(path, "qemu")
        definition = self._prepare(header.xml, f"{path} (saved domain XML)")
        from virtctl.drivers.qemu import jobs

        with self._claim_to_run(definition) as persistent, jobs.Job(self.state, definition.uuid, "restore") as job:
            self._restore_locked(path, definition.uuid, persistent=persistent, paused=paused,
                                 autodestroy=False, bypass_cache=bypass_cache, progress=progress, job=job)
        return definition.uuid

    def _restore_locked(self, path: str, uuid: str, *, persistent: bool, paused: bool | None,
                        autodestroy: bool, bypass_cache: bool = False, progress=None,
                        expect_uuid: str | None = None, name: str | None = None,
                        consume: bool = False, job=None) -> None:
        """Start ``uuid`` from the image at ``path`` (caller holds the domain lock).

        ``name``: run under this name (a managed save runs as the domain is
        named now).  ``consume``: remove the image once QEMU has loaded it,
        before the guest runs (managed save)."""
        from virtctl.drivers.qemu.qmp import QMPError

        fd = savefile.open_image(path)
        try:
            header = savefile.read_header(fd, path)
            if header.driver != "qemu":
                raise InvalidArg(f"'{path}' was saved by the {header.driver} driver, not the qemu driver")
            definition = self._prepare(header.xml, f"{path} (saved domain XML)")
            if expect_uuid is not None and definition.uuid != expect_uuid:
                raise InvalidArg(f"'{path}' holds domain {definition.uuid}, not {expect_uuid}")
            if name is not None:
                definition.name = name
            base, total = header.payload_offset, os.fstat(fd).st_size - header.payload_offset
            start_paused = (not header.running) if paused is None else paused
            log_path = self.state.qemu_log(uuid)

            def incoming(live_def, rec, q) -> None:
                try:
                    q.command("getfd", {"fdname": FDNAME}, fds=[fd])
                    q.command("migrate-incoming", {"uri": f"fd:{FDNAME}"})
                    info = _wait_migration(q, fd, base, total, progress, "restore", job)
                except (QMPError, OSError) as exc:
                    tail = process.log_tail(log_path, 1500).strip().splitlines()[-3:]
                    raise OperationFailed(f"operation failed: restoring from '{path}' failed: "
                                          f"{'; '.join(tail) or exc}", detail={"path": path}) from None
                if info.get("status") != "completed":
                    raise OperationFailed(f"operation failed: restoring from '{path}' failed: "
                                          f"{info.get('error-desc') or info.get('status')}", detail={"path": path})
                killpoint("restore:loaded")
                if consume:  # before the guest can run: never restored twice
                    unlink_quiet(path)
                    fsync_dir(os.path.dirname(path))
                    killpoint("restore:invalidated")
                if not start_paused:
                    rec["reason"] = "restored"
                self._decorate(live_def, rec, q)

            launch.start_domain(self.state, uuid, definition, persistent=persistent, paused=start_paused,
                                autodestroy=autodestroy, decorate=incoming, extra_args=("-incoming", "defer"))
            if autodestroy:
                self._autodestroy.add(uuid)
            _drop_cache(fd, bypass_cache)
        finally:
            os.close(fd)
