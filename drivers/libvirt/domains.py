"""Domain operations on a libvirt connection: each maps onto one libvirt call
(flags from virtctl's keyword options), errors through errors.TABLE."""
from __future__ import annotations

import time

from virtctl.api.types import DomainRecord, DomainState, VcpuCount
from virtctl.drivers.base import DomainDriver
from virtctl.drivers.libvirt.domain_agent import DomainAgentMixin
from virtctl.drivers.libvirt.domain_blockjob import BlockJobMixin
from virtctl.drivers.libvirt.domain_hotplug import HotplugMixin
from virtctl.drivers.libvirt.domain_net import DomainNetMixin
from virtctl.drivers.libvirt.domain_stats import DomainStatsMixin
from virtctl.drivers.libvirt.errors import mapped
from virtctl.drivers.libvirt.flags import flags as _flags
from virtctl.errors import OperationTimeout


# virtctl's shutdown/reboot modes -> libvirt's flag names (the two tables are libvirt's)
_SHUTDOWN_MODES = {"acpi": "ACPI_POWER_BTN", "agent": "GUEST_AGENT", "initctl": "INITCTL",
                   "signal": "SIGNAL", "paravirt": "PARAVIRT"}


class LibvirtDomainDriver(DomainNetMixin, BlockJobMixin, DomainStatsMixin, HotplugMixin, DomainAgentMixin,
                          DomainDriver):
    # the mixins (one module per area) come first: their methods replace
    # DomainDriver's NOT_SUPPORTED defaults
    driver_name = "libvirt"

    def __init__(self, lv, conn):
        self.lv, self.conn = lv, conn

    # --- records ------------------------------------------------------------------
    def _dom(self, uuid: str):
        with mapped(self.lv):
            return self.conn.lookupByUUIDString(uuid)

    def _record(self, d) -> DomainRecord:
        lv = self.lv
        with mapped(lv):
            state, reason = d.state(0)
            _, max_kib, kib, vcpus, cpu_ns = d.info()
            active = d.isActive()
            try:
                title = d.metadata(lv.VIR_DOMAIN_METADATA_TITLE, None, 0)
            except lv.libvirtError:
                title = ""  # none set
            security = None
            try:
                model, doi = self.conn.getSecurityModel()
                label = d.securityLabel() if active else None
                security = {"model": model, "doi": doi, "label": label[0] if label else None,
                            "enforcing": bool(label[1]) if label else True}
            except lv.libvirtError:
                pass
            try:
                current_snapshot = bool(d.hasCurrentSnapshot(0))
            except lv.libvirtError:
                current_snapshot = False
            return DomainRecord(
                uuid=d.UUIDString(), name=d.name(), id=d.ID() if active else None,
                state=DomainState(state), reason=reason, persistent=bool(d.isPersistent()),
                autostart=bool(d.autostart()) if d.isPersistent() else False,
                managed_save=bool(d.hasManagedSaveImage(0)), title=title, os_type=d.OSType(),
                vcpus=vcpus, max_memory_kib=max_kib, memory_kib=kib, cpu_time_ns=cpu_ns,
                has_current_snapshot=current_snapshot, extra={"security": security})

    def list(self) -> list[DomainRecord]:
        with mapped(self.lv):
            doms = self.conn.listAllDomains(0)
        out = []
        for d in doms:
            try:
                out.append(self._record(d))
            except Exception as exc:  # one that went away between the two calls is gone
                if getattr(exc, "code", None) != "NO_DOMAIN":
                    raise
        return out

    def get(self, uuid: str) -> DomainRecord:
        d = self._dom(uuid)
        rec = self._record(d)
        # the daemon's messages about the domain (taints, deprecations: dominfo's
        # "Messages:"); one call more, so only here and not for every listed domain
        try:
            rec.extra["messages"] = list(d.messages(0) or [])
        except (self.lv.libvirtError, AttributeError):  # an older server or binding
            pass
        return rec

    def get_xml(self, uuid: str, *, inactive: bool = False, security_info: bool = False,
                update_cpu: bool = False, migratable: bool = False) -> str:
        lv = self.lv
        flags = _flags(lv, (inactive, "VIR_DOMAIN_XML_INACTIVE"), (security_info, "VIR_DOMAIN_XML_SECURE"),
                       (update_cpu, "VIR_DOMAIN_XML_UPDATE_CPU"), (migratable, "VIR_DOMAIN_XML_MIGRATABLE"))
        d = self._dom(uuid)
        with mapped(lv):
            return d.XMLDesc(flags)

    def vcpu_count(self, uuid: str) -> VcpuCount:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            cmax = ccur = lmax = lcur = None
            if d.isPersistent():  # a transient domain has no persistent config to ask about
                cmax = d.vcpusFlags(lv.VIR_DOMAIN_AFFECT_CONFIG | lv.VIR_DOMAIN_VCPU_MAXIMUM)
                ccur = d.vcpusFlags(lv.VIR_DOMAIN_AFFECT_CONFIG)
            if d.isActive():
                lmax = d.vcpusFlags(lv.VIR_DOMAIN_AFFECT_LIVE | lv.VIR_DOMAIN_VCPU_MAXIMUM)
                lcur = d.vcpusFlags(lv.VIR_DOMAIN_AFFECT_LIVE)
        return VcpuCount(config_maximum=cmax, config_current=ccur, live_maximum=lmax, live_current=lcur)

    def guest_vcpu_count(self, uuid: str) -> VcpuCount:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            n = d.vcpusFlags(lv.VIR_DOMAIN_VCPU_GUEST)
        return VcpuCount(config_maximum=None, config_current=None, live_maximum=None, live_current=n)

    # --- definitions ------------------------------------------------------------------
    def define(self, xml: str, *, source: str = "<input>") -> DomainRecord:
        with mapped(self.lv):
            return self._record(self.conn.defineXML(xml))

    def undefine(self, uuid: str, *, managed_save: bool = False, snapshots_metadata: bool = False,
                 nvram: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        flags = _flags(lv, (managed_save, "VIR_DOMAIN_UNDEFINE_MANAGED_SAVE"),
                       (snapshots_metadata, "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA"),
                       (nvram, "VIR_DOMAIN_UNDEFINE_NVRAM"))
        with mapped(lv):
            d.undefineFlags(flags)

    def rename(self, uuid: str, new_name: str) -> DomainRecord:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.rename(new_name, 0)
        return self.get(uuid)

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.setAutostart(1 if enabled else 0)

    # --- lifecycle --------------------------------------------------------------------
    def create_xml(self, xml: str, *, source: str = "<input>", paused: bool = False,
                   autodestroy: bool = False) -> DomainRecord:
        lv = self.lv
        flags = _flags(lv, (paused, "VIR_DOMAIN_START_PAUSED"), (autodestroy, "VIR_DOMAIN_START_AUTODESTROY"))
        with mapped(lv):
            return self._record(self.conn.createXML(xml, flags))

    def start(self, uuid: str, *, paused: bool = False, autodestroy: bool = False,
              bypass_cache: bool = False, force_boot: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        flags = _flags(lv, (paused, "VIR_DOMAIN_START_PAUSED"), (autodestroy, "VIR_DOMAIN_START_AUTODESTROY"),
                       (bypass_cache, "VIR_DOMAIN_START_BYPASS_CACHE"),
                       (force_boot, "VIR_DOMAIN_START_FORCE_BOOT"))
        with mapped(lv):
            d.createWithFlags(flags)

    def _mode_flags(self, kind: str, mode: str | None) -> int:
        flags = 0
        for m in (mode or "").split(","):
            if m:
                flags |= getattr(self.lv, f"VIR_DOMAIN_{kind}_{_SHUTDOWN_MODES[m]}")
        return flags

    def shutdown(self, uuid: str, *, mode: str | None = None, wait: bool = False,
                 timeout: float | None = None) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            d.shutdownFlags(self._mode_flags("SHUTDOWN", mode))
        if not wait:
            return
        # virtctl's --wait (virsh has none): libvirt offers no call that waits, so
        # watch the state; a domain that is gone (transient) has shut off too
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                with mapped(lv):
                    if d.state(0)[0] == lv.VIR_DOMAIN_SHUTOFF:
                        return
            except Exception as exc:
                if getattr(exc, "code", None) == "NO_DOMAIN":
                    return
                raise
            if deadline is not None and time.monotonic() > deadline:
                raise OperationTimeout(f"domain did not shut off within {timeout:g} seconds")
            time.sleep(0.05)

    def reboot(self, uuid: str, *, mode: str | None = None) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.reboot(self._mode_flags("REBOOT", mode))

    def reset(self, uuid: str) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.reset(0)

    def destroy(self, uuid: str, *, graceful: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            d.destroyFlags(_flags(lv, (graceful, "VIR_DOMAIN_DESTROY_GRACEFUL")))

    def suspend(self, uuid: str) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.suspend()

    def resume(self, uuid: str) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.resume()

    # --- resources ----------------------------------------------------------------------
    def _affect(self, live: bool, config: bool) -> int:
        return _flags(self.lv, (live, "VIR_DOMAIN_AFFECT_LIVE"), (config, "VIR_DOMAIN_AFFECT_CONFIG"))

    def set_memory(self, uuid: str, kib: int, *, live: bool, config: bool) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.setMemoryFlags(kib, self._affect(live, config))

    def set_max_memory(self, uuid: str, kib: int, *, live: bool, config: bool) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            d.setMemoryFlags(kib, self._affect(live, config) | lv.VIR_DOMAIN_MEM_MAXIMUM)

    def set_vcpus(self, uuid: str, count: int, *, live: bool, config: bool, maximum: bool = False,
                  guest: bool = False, hotpluggable: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        flags = self._affect(live, config) | _flags(
            lv, (maximum, "VIR_DOMAIN_VCPU_MAXIMUM"), (guest, "VIR_DOMAIN_VCPU_GUEST"),
            (hotpluggable, "VIR_DOMAIN_VCPU_HOTPLUGGABLE"))
        with mapped(lv):
            d.setVcpusFlags(count, flags)

    # --- memory state ---------------------------------------------------------------------
    def _save_flags(self, paused: bool | None, bypass_cache: bool) -> int:
        lv = self.lv
        return _flags(lv, (paused is True, "VIR_DOMAIN_SAVE_PAUSED"), (paused is False, "VIR_DOMAIN_SAVE_RUNNING"),
                      (bypass_cache, "VIR_DOMAIN_SAVE_BYPASS_CACHE"))

    def save(self, uuid: str, path: str, *, paused: bool | None = None, bypass_cache: bool = False,
             progress=None) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.saveFlags(path, None, self._save_flags(paused, bypass_cache))

    def restore(self, path: str, *, paused: bool | None = None, bypass_cache: bool = False,
                progress=None) -> str:
        lv = self.lv
        with mapped(lv):
            import xml.etree.ElementTree as ET

            uuid = ET.fromstring(self.conn.saveImageGetXMLDesc(path, 0)).findtext("uuid")
            self.conn.restoreFlags(path, None, self._save_flags(paused, bypass_cache))
        return uuid

    def managed_save(self, uuid: str, *, paused: bool | None = None, bypass_cache: bool = False,
                     progress=None) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.managedSave(self._save_flags(paused, bypass_cache))

    def managed_save_remove(self, uuid: str) -> bool:
        d = self._dom(uuid)
        with mapped(self.lv):
            if not d.hasManagedSaveImage(0):
                return False
            d.managedSaveRemove(0)
        return True

    # --- display, input, monitor, statistics -----------------------------------------------
    def screenshot(self, uuid: str, path: str, *, screen: int = 0) -> str:
        d = self._dom(uuid)
        with mapped(self.lv):
            stream = self.conn.newStream(0)
            mime = d.screenshot(stream, screen, 0)
            with open(path, "wb") as f:
                stream.recvAll(lambda _s, data, fh: fh.write(data), f)
            stream.finish()
        return mime

    def send_key(self, uuid: str, keycodes: list[int], *, codeset: str = "linux",
                 holdtime: int = 0) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            d.sendKey(getattr(lv, f"VIR_KEYCODE_SET_{codeset.upper()}"), holdtime, keycodes, len(keycodes), 0)

    def monitor_command(self, uuid: str, command: str, *, hmp: bool = False,
                        fds: list[int] | None = None) -> str:
        if fds:
            raise self._ns("qemu-monitor-command --pass-fds")
        d = self._dom(uuid)
        try:
            import libvirt_qemu
        except ImportError:
            raise self._ns("qemu-monitor-command") from None
        with mapped(self.lv):
            return libvirt_qemu.qemuMonitorCommand(d, command, 1 if hmp else 0)

    def memory_stats(self, uuid: str) -> dict[str, int]:
        d = self._dom(uuid)
        with mapped(self.lv):
            return dict(d.memoryStats())

    def set_memory_stats_period(self, uuid: str, period: int, *, live: bool, config: bool) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.setMemoryStatsPeriod(period, self._affect(live, config))

    def block_stats(self, uuid: str, device: str | None = None) -> list[dict]:
        import xml.etree.ElementTree as ET

        d = self._dom(uuid)
        with mapped(self.lv):
            if not device:
                d.blockStats("")  # the summary: a driver without it refuses here, in its words
            targets = [device] if device else [
                t.get("dev") for t in ET.fromstring(d.XMLDesc(0)).findall("devices/disk/target")]
            out = []
            for t in targets:
                rd_req, rd_bytes, wr_req, wr_bytes, errs = d.blockStats(t)
                out.append({"device": t, "rd_req": rd_req, "rd_bytes": rd_bytes, "wr_req": wr_req,
                            "wr_bytes": wr_bytes, "errs": errs})
        return out

    def native_argv(self, xml: str | None = None, *, uuid: str | None = None,
                    source: str = "<input>") -> list[str]:
        import shlex

        with mapped(self.lv):
            if xml is None:
                xml = self._dom(uuid).XMLDesc(0)
            return shlex.split(self.conn.domainXMLToNative("qemu-argv", xml, 0))

    # --- console (drivers/libvirt/console.py) --------------------------------------------
    def open_console(self, uuid: str, *, devname: str | None = None, force: bool = False,
                     safe: bool = False):
        from virtctl.drivers.libvirt.console import LibvirtConsoleStream

        return LibvirtConsoleStream(self.lv, self.conn, self._dom(uuid), devname=devname, force=force, safe=safe)
