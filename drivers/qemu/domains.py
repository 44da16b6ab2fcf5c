"""Domain operations of the native QEMU driver (no daemon).

Every operation: take the locks it needs (global before domain, see
locks.py), re-sync the domain from disk and from the runtime (runtime.sync:
is QEMU still there? did its monitor leave an exit reason?), act, save what
changed atomically.  Same situations, same error codes as the test driver.

Corrupt state never hides a domain: a definition or runtime record that
cannot be read leaves the domain listed (state ``no state``, with a warning
naming the file), reachable by UUID (``destroy`` stops a QEMU whose record
is garbage, ``undefine`` removes a garbage definition) and its name
reserved (the ``name`` file beside ``domain.xml``, the live definition).
Every other operation on it is OPERATION_FAILED, naming the corruption.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: lxml stays out of list/dominfo
    from virtctl.xml.domain import DomainDef

import contextlib
import os
import sys
import time

from virtctl.api.types import DomainRecord, DomainState, VcpuCount, reason_number
from virtctl.drivers.base import DomainDriver
from virtctl.drivers.qemu import process
from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.argv_native import QemuNativeMixin
from virtctl.drivers.qemu.blockjob import QemuBlockMixin
from virtctl.drivers.qemu.console import QemuConsoleMixin
from virtctl.drivers.qemu.definitions import QemuDefinitionsMixin
from virtctl.drivers.qemu.guest_agent import QemuGuestAgentMixin
from virtctl.drivers.qemu.hotplug.ops import QemuHotplugMixin
from virtctl.drivers.qemu.meta import QemuMetaMixin
from virtctl.drivers.qemu.save import QemuSaveMixin
from virtctl.drivers.qemu.monitor_stats import QemuMonitorMixin
from virtctl.drivers.qemu.stats import QemuStatsMixin
from virtctl.drivers.qemu.summary import SummaryCache
from virtctl.drivers.qemu.state import CorruptState, StateRoot, atomic_write, read_bytes
from virtctl.errors import (InvalidArg, NoDomain, OperationFailed, OperationInvalid, OperationTimeout, VirtError,
                            not_supported)

_STATES = {"running": DomainState.RUNNING, "paused": DomainState.PAUSED,
           "crashed": DomainState.CRASHED, "shutdown": DomainState.SHUTDOWN}


def _not_running() -> OperationInvalid:
    return OperationInvalid("Requested operation is not valid: domain is not running")


def _no_domain(uuid: str) -> NoDomain:
    return NoDomain(f"Domain not found: no domain with matching uuid '{uuid}'", detail={"uuid": uuid})


def _parse_stored(data: bytes, source: str) -> DomainDef:
    """A definition we wrote ourselves (validated when it was defined)."""
    from virtctl.xml.domain import DomainDef  # lazily: lxml is not for list/dominfo

    try:
        return DomainDef.parse(data, source=source, validate=False)
    except VirtError as exc:
        msg = exc.message
        raise CorruptState(msg if source in msg else f"{source}: {msg}") from None


class _View:
    """One domain as seen now: persistent config, runtime probe, live definition,
    and what of it is corrupt (messages)."""

    __slots__ = ("uuid", "config", "probe", "live", "corrupt", "defined")

    def __init__(self, uuid, config, probe, live, corrupt=(), defined=None):
        self.uuid, self.config, self.probe, self.live = uuid, config, probe, live
        self.corrupt = list(corrupt)
        self.defined = config is not None if defined is None else defined

    @property
    def current(self) -> DomainDef | None:
        return self.live if self.probe.alive and self.live is not None else self.config

    @property
    def persistent(self) -> bool:
        return self.defined

    @property
    def unknown(self) -> bool:
        """Its state cannot be told (the runtime, or the only definition, is corrupt)."""
        return bool(self.probe.corrupt) or (bool(self.corrupt) and self.current is None)


class QemuDomainDriver(QemuGuestAgentMixin, QemuMonitorMixin, QemuDefinitionsMixin, QemuSaveMixin, QemuConsoleMixin, QemuStatsMixin,
                       QemuNativeMixin, QemuBlockMixin, QemuHotplugMixin, QemuMetaMixin, DomainDriver):
    driver_name = "qemu"

    def __init__(self, state: StateRoot, *, warn=None):
        self.state = state
        self._warn = warn or (lambda msg: sys.stderr.write(f"warning: {msg}\n"))
        self._autodestroy: set[str] = set()
        self._summaries: SummaryCache | None = None

    # --- reading -------------------------------------------------------------------
    def _summary_cache(self) -> SummaryCache:
        if self._summaries is None:
            self._summaries = SummaryCache(self.state.run)
        return self._summaries

    def _remember(self, data: bytes | str, definition) -> None:
        """Put what was just written in the summary cache (summary.py)."""
        cache = self._summary_cache()
        cache.put(data.encode("utf-8") if isinstance(data, str) else data, definition)
        cache.save()

    def _stored(self, path: str, summary: bool):
        """The definition in ``path`` (None if absent); with ``summary`` only
        its Summary, from the content-keyed cache (summary.py)."""
        data = read_bytes(path)
        if data is None:
            return None
        if summary:
            return self._summary_cache().get(data, lambda d: _parse_stored(d, path))
        return _parse_stored(data, path)

    def _config(self, uuid: str, summary: bool = False) -> DomainDef | None:
        return self._stored(self.state.domain_xml(uuid), summary)

    def _live(self, uuid: str, summary: bool = False) -> DomainDef | None:
        return self._stored(self.state.live_xml(uuid), summary)

    def _view(self, uuid: str, *, locked: bool = False, summary: bool = False) -> _View:
        """NO_DOMAIN if the domain does not exist; corrupt parts are reported in the view.
        ``summary``: the definitions are Summary objects (enough for _record only)."""
        corrupt, defined = [], None
        try:
            config = self._config(uuid, summary)
        except CorruptState as exc:
            config, defined = None, True
            corrupt.append(f"its definition is corrupt: {exc}")
        probe = rt.sync(self.state, uuid, locked=locked)  # locked: also removes stale temp files
        if probe.corrupt:
            corrupt.append(f"its runtime record is corrupt: {probe.corrupt}"
                           + (f" (QEMU pid {probe.holder} runs on: 'destroy {uuid}' stops it)"
                              if probe.holder and probe.holder > 0 else ""))
        live_def = None
        if probe.alive or probe.corrupt:
            try:
                live_def = self._live(uuid, summary)
            except CorruptState as exc:
                corrupt.append(f"its live definition is corrupt: {exc}")
        if config is None and live_def is None and not corrupt:
            raise _no_domain(uuid)
        if probe.transient_gone and not defined and config is None:
            raise _no_domain(uuid)
        return _View(uuid, config, probe, live_def, corrupt, defined)

    def _name_of(self, v: _View) -> str:
        cur = v.current or v.live
        if cur is not None:
            return cur.name
        return self._name_file(v.uuid) or ""

    def _record(self, v: _View) -> DomainRecord:
        if v.unknown:
            src = v.live or v.config
            return DomainRecord(
                uuid=v.uuid, name=self._name_of(v), id=None, state=DomainState.NOSTATE, reason=0,
                persistent=v.persistent, autostart=v.persistent and os.path.exists(self.state.autostart_flag(v.uuid)),
                managed_save=v.persistent and self._has_managed_save(v.uuid), title=src.title if src else "",
                os_type=(src.os_type if src else None) or "hvm", vcpus=src.vcpus if src else 0,
                max_memory_kib=src.max_memory_kib if src else 0, memory_kib=src.memory_kib if src else 0,
                extra={"corrupt": "; ".join(v.corrupt), "pid": v.probe.holder},
            )
        cur = v.current
        rec = v.probe.record
        if rec is not None:
            state = _STATES.get(rec.get("state"), DomainState.RUNNING)
            try:
                reason = reason_number(state, rec.get("reason") or "unknown")
            except ValueError:
                reason = 0
            dom_id, cpu = rec.get("id"), process.cpu_time_ns(rec.get("pid") or 0)
        else:
            state, dom_id, cpu = DomainState.SHUTOFF, None, 0
            try:
                reason = reason_number(state, (v.probe.last_exit or {}).get("reason") or "unknown")
            except ValueError:
                reason = 0
        return DomainRecord(
            uuid=v.uuid, name=cur.name, id=dom_id, state=state, reason=reason,
            persistent=v.persistent, autostart=v.persistent and os.path.exists(self.state.autostart_flag(v.uuid)),
            managed_save=v.persistent and self._has_managed_save(v.uuid), title=cur.title, os_type=cur.os_type or "hvm", vcpus=cur.vcpus,
            max_memory_kib=cur.max_memory_kib, memory_kib=cur.memory_kib, cpu_time_ns=cpu,
            has_current_snapshot=v.persistent and os.path.exists(
                os.path.join(self.state.config_dir(v.uuid), "snapshots", "current")),
            extra={"pid": rec.get("pid")} if rec is not None else {},
        )

    def _all_uuids(self) -> list[str]:
        seen = dict.fromkeys(self.state.defined_uuids())
        for u in self.state.runtime_uuids():
            seen.setdefault(u)
        return list(seen)

    def list(self) -> list[DomainRecord]:
        out = []
        for uuid in self._all_uuids():
            try:
                v = self._view(uuid, summary=True)
                out.append(self._record(v))
            except NoDomain:
                continue
            except (CorruptState, VirtError, OSError) as exc:  # one domain never breaks the list
                self._warn(f"domain {uuid}: {getattr(exc, 'message', exc)}")
                continue
            for msg in v.corrupt:
                self._warn(f"domain {uuid} ({out[-1].name or '?'}): {msg}")
        if self._summaries is not None:
            self._summaries.save(prune=True)
        return out

    def get(self, uuid: str) -> DomainRecord:
        rec = self._record(self._checked_view(uuid, allow_corrupt=True, summary=True))
        if self._summaries is not None:
            self._summaries.save()
        return rec

    def _checked_view(self, uuid: str, *, locked: bool = False, allow_corrupt: bool = False,
                      summary: bool = False) -> _View:
        """The view; OPERATION_FAILED naming the corruption unless ``allow_corrupt``
        (or unless what is corrupt is only the definition of a running domain)."""
        v = self._view(uuid, locked=locked, summary=summary)
        if v.corrupt and not allow_corrupt and (v.unknown or not v.probe.alive):
            raise OperationFailed(f"the state of domain {uuid} is corrupt: {'; '.join(v.corrupt)}"
                                  " (destroy or undefine it)")
        return v

    def get_xml(self, uuid: str, *, inactive: bool = False, security_info: bool = False,
                update_cpu: bool = False, migratable: bool = False) -> str:  # both: no effect here
        v = self._checked_view(uuid, allow_corrupt=True)
        use_live = v.probe.alive and not (inactive and v.config is not None)
        source = v.live if use_live else v.config
        if source is None:
            raise OperationFailed(f"the state of domain {uuid} is corrupt: {'; '.join(v.corrupt)}")
        definition = source.copy()
        if use_live:
            attrs = dict(definition.root.attrib)  # libvirt writes type, then id
            attrs["id"] = str(v.probe.record.get("id"))
            definition.root.attrib.clear()
            for k in ("type", "id", *attrs):
                if k in attrs and k not in definition.root.attrib:
                    definition.root.set(k, attrs[k])
        if not security_info:
            from virtctl.drivers.qemu import live

            live.hide_secrets(definition.root)
        return definition.to_xml()

    def vcpu_count(self, uuid: str) -> VcpuCount:
        v = self._checked_view(uuid)
        cfg = (v.config or v.live) if v.persistent else None  # a transient domain has no config
        lv = v.live if v.probe.alive else None
        return VcpuCount(config_maximum=cfg.max_vcpus if cfg else None, config_current=cfg.vcpus if cfg else None,
                         live_maximum=lv.max_vcpus if lv else None, live_current=lv.vcpus if lv else None)

    # --- lifecycle ------------------------------------------------------------------------
    def _start(self, uuid: str, definition: DomainDef, *, persistent: bool, paused: bool,
               autodestroy: bool) -> None:
        from virtctl.drivers.qemu import launch

        launch.start_domain(self.state, uuid, definition, persistent=persistent, paused=paused,
                            autodestroy=autodestroy, decorate=self._decorate)
        try:  # the live definition as written (decorated), for the next one-shot command
            data = read_bytes(self.state.live_xml(uuid))
            if data is not None:
                self._remember(data, _parse_stored(data, self.state.live_xml(uuid)))
        except (CorruptState, VirtError, OSError):
            pass  # only a cache
        if autodestroy:
            self._autodestroy.add(uuid)

    @staticmethod
    def _decorate(definition: DomainDef, record: dict, q) -> None:
        from virtctl.drivers.qemu import live

        live.assign_aliases(definition.root)
        if definition.root.find("devices/graphics[@type='vnc']") is not None:
            try:
                live.set_vnc_port(definition.root, q.command("query-vnc"))
            except Exception:  # noqa: BLE001 - the port is informative only
                pass
        if definition.memory_kib < definition.max_memory_kib:
            try:
                q.command("balloon", {"value": definition.memory_kib * 1024})
            except Exception:  # noqa: BLE001 - no balloon device: the guest keeps <memory>
                definition.memory_kib = definition.max_memory_kib

    def create_xml(self, xml: str, *, source: str = "<input>", paused: bool = False,
                   autodestroy: bool = False) -> DomainRecord:
        definition = self._prepare(xml, source)
        with self._claim_to_run(definition) as persistent:
            self._start(definition.uuid, definition, persistent=persistent, paused=paused,
                        autodestroy=autodestroy)
        return self.get(definition.uuid)

    @contextlib.contextmanager
    def _claim_to_run(self, definition: DomainDef):
        """Hold the global then the domain lock while ``definition`` is made
        to run (create, restore); yields whether a persistent definition
        with its UUID exists (libvirt: the new definition runs, the old one
        stays).  A running domain of that UUID is OPERATION_INVALID."""
        uuid = definition.uuid
        with self._global_lock():
            exists = self._check_unique(definition)
            with rt.domain_lock(self.state, uuid):
                persistent = False
                if exists:
                    v = self._checked_view(uuid, locked=True)
                    if v.probe.alive:
                        raise OperationInvalid(
                            f"Requested operation is not valid: domain '{definition.name}' is already active")
                    persistent = v.persistent
                yield persistent

    def start(self, uuid: str, *, paused: bool = False, autodestroy: bool = False,
              bypass_cache: bool = False, force_boot: bool = False) -> None:
        with rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True)
            if v.probe.alive:
                raise OperationInvalid("Requested operation is not valid: domain is already running")
            if self._managed_start(uuid, v, paused=paused, autodestroy=autodestroy, force_boot=force_boot):
                return
            self._start(uuid, v.config.copy(), persistent=True, paused=paused, autodestroy=autodestroy)

    def _qmp(self, run: rt.RunningDomain, name: str, args: dict | None = None, what: str | None = None):
        from virtctl.drivers.qemu.qmp import QMPError

        with run.qmp() as q:
            try:
                return q.command(name, args)
            except (QMPError, OSError) as exc:
                raise rt.qmp_error(exc, what or name) from None

    def _running(self, uuid: str, *, adopt: bool = True):
        # NO_DOMAIN before anything else; the summary view (summary.py's cache)
        # spares a one-shot command lxml and a parse of the definition
        self._checked_view(uuid, allow_corrupt=True, summary=True)
        return rt.running_domain(self.state, uuid, adopt=adopt)

    def shutdown(self, uuid: str, *, mode: str | None = None, wait: bool = False,
                 timeout: float | None = None) -> None:
        modes = tuple(mode or ())  # a tuple of modes (api.domain.shutdown_modes)
        if set(modes) - {"acpi", "agent"}:
            raise not_supported("qemu", f"shutdown --mode {','.join(modes)}")
        run_id = self._agent_power(uuid, modes, reboot=False)  # guest_agent.py: libvirt's agent-or-ACPI choice
        if run_id is not None:
            if wait or timeout is not None:
                self._wait_shutoff(uuid, run_id, timeout)
            return
        with self._running(uuid) as run:
            if run.record.get("fake_reboot"):
                run.update(fake_reboot=False)
            self._qmp(run, "system_powerdown", what="shutdown")
            run_id = run.record.get("run_id")
        if wait or timeout is not None:
            self._wait_shutoff(uuid, run_id, timeout)

    def _wait_shutoff(self, uuid: str, run_id: str, timeout: float | None) -> None:
        """Poll (without holding the lock) until the run ``run_id`` has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                probe = rt.sync(self.state, uuid, locked=False)
            except CorruptState:
                probe = None
            if probe is not None and (probe.record is None or probe.record.get("run_id") != run_id):
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise OperationTimeout(f"domain did not shut off within {timeout:g} seconds",
                                       detail={"uuid": uuid, "timeout": timeout})
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def reboot(self, uuid: str, *, mode: str | None = None) -> None:
        modes = tuple(mode or ())  # a tuple of modes (api.domain.shutdown_modes)
        if set(modes) - {"acpi", "agent"}:
            raise not_supported("qemu", f"reboot --mode {','.join(modes)}")
        if self._agent_power(uuid, modes, reboot=True) is not None:  # guest_agent.py: agent or ACPI
            return
        with self._running(uuid) as run:
            # ACPI power button; the monitor turns the guest's poweroff into a reset
            run.update(fake_reboot=True)
            self._qmp(run, "system_powerdown", what="reboot")

    def reset(self, uuid: str) -> None:
        with self._running(uuid) as run:
            self._qmp(run, "system_reset", what="reset")

    def destroy(self, uuid: str, *, graceful: bool = False) -> None:
        # NO_DOMAIN before anything else; the summary view (summary.py's cache)
        # spares a one-shot command lxml and a parse of the definition
        self._checked_view(uuid, allow_corrupt=True, summary=True)
        with rt.domain_lock(self.state, uuid):
            probe = rt.sync(self.state, uuid, locked=True, adopt=False)  # no new monitor for a dying run
            if probe.transient_gone:
                raise _no_domain(uuid)
            if probe.corrupt:
                self._destroy_corrupt(uuid, probe, graceful)
                return
            if not probe.alive:
                raise _not_running()
            run = rt.RunningDomain(self.state, uuid, probe.record)
            rec = run.record
            run.update(stopping="destroy")
            pid, started = rec["pid"], rec.get("start_time")
            pidfile = self.state.pidfile(uuid)

            def holds_lock() -> bool:
                from virtctl.drivers.qemu.locks import pidfile_holder

                return pidfile_holder(pidfile) == pid

            gone = process.kill_and_wait(pid, started, term_timeout=10.0, kill_timeout=15.0,
                                         graceful=graceful, alive=holds_lock)
            if not gone:
                run.update(stopping=None)
                raise OperationFailed(f"operation failed: failed to terminate process {pid} with "
                                      f"SIG{'TERM' if graceful else 'KILL'}: Device or resource busy")
            try:
                rt.cleanup(self.state, uuid, rec, "destroyed")
            except VirtError:
                pass  # no room for exit.json: the record (stopping=destroy) says it, the next look retries
        self._autodestroy.discard(uuid)

    def _destroy_corrupt(self, uuid: str, probe: rt.Probe, graceful: bool) -> None:
        """destroy a domain whose record is garbage: its QEMU is the pid-file holder."""
        from virtctl.drivers.qemu.locks import pidfile_holder

        pid, pidfile = probe.holder, self.state.pidfile(uuid)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                ours = pidfile.encode() in f.read().split(b"\0")
        except (OSError, TypeError):
            ours = False
        if not pid or pid < 0 or not ours:
            raise OperationFailed(f"the state of domain {uuid} is corrupt ({probe.corrupt}) and the "
                                  f"process holding its pid file ({pid}) cannot be told to be its QEMU")
        started = process.start_time(pid)
        if not process.kill_and_wait(pid, started, term_timeout=10.0, kill_timeout=15.0, graceful=graceful,
                                     alive=lambda: pidfile_holder(pidfile) == pid):
            raise OperationFailed(f"operation failed: failed to terminate process {pid}")
        try:
            rt.cleanup(self.state, uuid, None, "destroyed", persistent=rt.persistent_of(self.state, uuid))
        except VirtError:
            pass

    def suspend(self, uuid: str) -> None:
        with self._running(uuid) as run:
            if run.record.get("state") == "paused":
                raise OperationInvalid("Requested operation is not valid: domain is already paused")
            self._qmp(run, "stop", what="suspend")
            try:
                run.update(state="paused", reason="user")
            except VirtError:
                self._undo(run, "cont")  # not recorded: not done
                raise

    def resume(self, uuid: str) -> None:
        with self._running(uuid) as run:
            if run.record.get("state") != "paused":
                raise OperationInvalid("Requested operation is not valid: domain is not paused")
            self._qmp(run, "cont", what="resume")
            try:
                run.update(state="running", reason="unpaused")
            except VirtError:
                self._undo(run, "stop")
                raise

    def _undo(self, run: rt.RunningDomain, command: str) -> None:
        try:
            self._qmp(run, command)
        except VirtError:
            pass

    def close(self) -> None:
        """Destroy the domains this connection started with autodestroy."""
        for uuid in list(self._autodestroy):
            try:
                self.destroy(uuid)
            except VirtError:
                pass
        self._autodestroy.clear()

    # --- resources ---------------------------------------------------------------------------
    def _targets(self, v: _View, live_flag: bool, config: bool) -> tuple[bool, bool]:
        """Which definitions a --live/--config/--current change applies to."""
        alive = v.probe.alive
        if not live_flag and not config:  # --current
            live_flag, config = alive, not alive
        if live_flag and not alive:
            raise _not_running()
        if config and not v.persistent:
            raise OperationInvalid(
                "Requested operation is not valid: cannot change persistent config of a transient domain")
        return live_flag, config

    def _save_live(self, uuid: str, definition: DomainDef) -> None:
        data = definition.to_xml()
        atomic_write(self.state.live_xml(uuid), data, sync=False)
        self._remember(data, definition)

    def set_memory(self, uuid: str, kib: int, *, live: bool, config: bool) -> None:
        with rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True)
            do_live, do_config = self._targets(v, live, config)
            targets = ([v.live] if do_live else []) + ([v.config] if do_config else [])
            for t in targets:
                if kib > t.max_memory_kib:
                    raise InvalidArg("invalid argument: cannot set memory higher than max memory")
            if do_live:
                run = rt.RunningDomain(self.state, uuid, v.probe.record)
                from virtctl.drivers.qemu.qmp import QMPCommandError, QMPError

                with run.qmp() as q:
                    try:
                        q.command("balloon", {"value": kib * 1024})
                    except QMPCommandError as exc:
                        if exc.error_class == "DeviceNotActive":
                            raise OperationInvalid("Requested operation is not valid: Unable to change memory "
                                                   "of active domain without the balloon device") from None
                        raise rt.qmp_error(exc, "setmem") from None
                    except QMPError as exc:
                        raise rt.qmp_error(exc, "setmem") from None
                v.live.memory_kib = kib
                self._save_live(uuid, v.live)
            if do_config:
                v.config.memory_kib = kib
                self._write_config(v.config)

    def set_max_memory(self, uuid: str, kib: int, *, live: bool, config: bool) -> None:
        with rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True)
            if live or (not config and v.probe.alive):
                if live and not v.probe.alive:
                    raise _not_running()
                raise OperationInvalid(
                    "Requested operation is not valid: cannot resize the maximum memory on an active domain")
            self._targets(v, False, True)
            current = v.config.memory_kib  # kept unless above the new maximum (as libvirt)
            v.config.max_memory_kib = kib
            v.config.memory_kib = min(current, kib)
            self._write_config(v.config)

    def set_vcpus(self, uuid: str, count: int, *, live: bool, config: bool, maximum: bool = False,
                  guest: bool = False, hotpluggable: bool = False) -> None:
        if guest:
            raise not_supported("qemu", "setvcpus --guest")
        with rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True)
            if maximum and (live or (not config and v.probe.alive)):
                raise OperationInvalid(
                    "Requested operation is not valid: cannot change the maximum vCPU count of a running domain")
            do_live, do_config = self._targets(v, live, config if not maximum else True)
            if do_live:
                raise not_supported("qemu", "setvcpus --live (vCPU hotplug)")
            t = v.config
            if not maximum and count > t.max_vcpus:
                raise InvalidArg("invalid argument: requested vcpus is greater than max allowable vcpus "
                                 f"for the domain: {count} > {t.max_vcpus}")
            t.set_vcpus(count, maximum=maximum)
            self._write_config(t)

    def set_interface_link(self, uuid: str, interface: str, state: str, *, config: bool) -> None:
        """QMP ``set_link`` on the NIC (its device id is its alias, ``netN``) and
        ``<link state>`` in the live definition; ``config`` (or a domain that is
        not running): the persistent definition only, as libvirt's domif-setlink."""
        from virtctl.xml import iflink

        with rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True)
            live = not config and v.probe.alive
            do_live, do_config = self._targets(v, live, not live)

            def find(definition):
                found = iflink.find(definition.root, interface)
                if found is None:
                    raise InvalidArg(f"interface '{interface}' not found", detail={"interface": interface})
                return found

            if do_live:
                i, el = find(v.live)
                alias = el.find("alias")
                dev_id = alias.get("name") if alias is not None and alias.get("name") else f"net{i}"
                run = rt.RunningDomain(self.state, uuid, v.probe.record)
                self._qmp(run, "set_link", {"name": dev_id, "up": state == "up"}, "domif-setlink")
                iflink.set_state(el, state)
                self._save_live(uuid, v.live)
            if do_config:
                _, el = find(v.config)
                iflink.set_state(el, state)
                self._write_config(v.config)
