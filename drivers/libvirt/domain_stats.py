"""Statistics, jobs, metadata and the small domain commands on a libvirt
connection (domstats, cpu-stats, vcpuinfo, domblkerror, domcontrol, domtime,
domjobinfo, domjobabort, desc, metadata, inject-nmi, dompmsuspend,
dompmwakeup, send-process-signal, vncdisplay): a mixin of
domains.LibvirtDomainDriver (``self.lv``, ``self.conn``, ``self._dom``).

Each method is one libvirt call (two where virsh falls back to an older
one); libvirt's numbers become virtctl's words, as virsh prints them."""
from __future__ import annotations

import re

from virtctl.drivers.libvirt.errors import convert, mapped
from virtctl.errors import OperationFailed, OperationInvalid

# api/connection.py's STATS_GROUPS, in libvirt's bit order (VIR_DOMAIN_STATS_*)
_GROUP_BITS = {"state": "STATE", "cpu-total": "CPU_TOTAL", "balloon": "BALLOON", "vcpu": "VCPU",
               "interface": "INTERFACE", "block": "BLOCK", "perf": "PERF", "iothread": "IOTHREAD",
               "memory": "MEMORY", "dirtyrate": "DIRTYRATE", "vm": "VM"}
_PROBE_BIT = 1 << 30  # a group no daemon has: the probe fails before any figure is gathered
_UNSUPPORTED = re.compile(r"bits (0x[0-9a-fA-F]+) are not supported")

_VCPU_STATES = {0: "offline", 1: "running", 2: "blocked"}  # virVcpuState
_DISK_ERRORS = {0: "no error", 1: "unspecified error", 2: "no space"}  # virDomainDiskErrorCode
_CONTROL_STATES = {0: "ok", 1: "job", 2: "occupied", 3: "error"}  # virDomainControlState
_CONTROL_REASONS = {0: "", 1: "unknown", 2: "monitor failure", 3: "internal (locking) error"}
_JOB_TYPES = {0: "none", 1: "bounded", 2: "unbounded", 3: "completed", 4: "failed", 5: "cancelled"}
_JOB_OPERATIONS = {0: "unknown", 1: "start", 2: "save", 3: "restore", 4: "incoming migration",
                   5: "outgoing migration", 6: "snapshot", 7: "snapshot revert", 8: "dump", 9: "backup",
                   10: "snapshot delete"}
# virDomainGetJobStats's names -> virtctl's (the rest keep libvirt's)
_JOB_NAMES = {"time_elapsed": "time_elapsed_ms", "time_remaining": "time_remaining_ms", "errmsg": "error"}
_METADATA = {"description": "DESCRIPTION", "title": "TITLE", "element": "ELEMENT"}
_PM_TARGETS = {"mem": "MEM", "disk": "DISK", "hybrid": "HYBRID"}


class DomainStatsMixin:
    _stats_groups: tuple[str, ...] | None = None

    # --- domstats ------------------------------------------------------------------------
    @property
    def stats_groups(self) -> tuple[str, ...]:
        """The groups the daemon fills: asked once, with every group and one no
        daemon knows, enforced, so that the refusal names the bits it lacks."""
        if self._stats_groups is None:
            lv = self.lv
            bits = {g: getattr(lv, f"VIR_DOMAIN_STATS_{b}", 0) for g, b in _GROUP_BITS.items()}
            lacking = 0
            try:
                self.conn.getAllDomainStats(sum(bits.values()) | _PROBE_BIT,
                                            lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS)
            except lv.libvirtError as exc:
                m = _UNSUPPORTED.search(exc.get_error_message() or "")
                if m is None:
                    raise convert(lv, exc) from None
                lacking = int(m.group(1), 16)
            self._stats_groups = tuple(g for g, b in bits.items() if b and not b & lacking)
        return self._stats_groups

    def domain_stats(self, uuid: str, groups: list[str], *, backing: bool = False,
                     nowait: bool = False) -> list[tuple[str, object]]:
        lv = self.lv
        stats = 0
        for g in groups:
            stats |= getattr(lv, f"VIR_DOMAIN_STATS_{_GROUP_BITS[g]}", 0)
        if not stats:
            return []  # 0 would be every group
        flags = 0
        if backing:
            flags |= lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING
        if nowait:
            flags |= lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
        d = self._dom(uuid)
        with mapped(lv):
            records = self.conn.domainListGetStats([d], stats, flags)
        return list(records[0][1].items()) if records else []

    # --- cpu-stats, vcpuinfo -----------------------------------------------------------------
    def cpu_stats(self, uuid: str) -> dict:
        d = self._dom(uuid)
        with mapped(self.lv):
            total = d.getCPUStats(True)
            cpus = d.getCPUStats(False)
        return {"cpus": [dict(c) for c in cpus], "total": dict(total[0]) if total else {}}

    def _host_cpus(self) -> int:
        """virsh's count of host CPUs: the node's CPU map, else its topology."""
        lv = self.lv
        try:
            return self.conn.getCPUMap(0)[0]
        except lv.libvirtError:
            with mapped(lv):
                _m, _mem, _cpus, _mhz, nodes, sockets, cores, threads = self.conn.getInfo()
            return nodes * sockets * cores * threads

    def vcpu_info(self, uuid: str) -> dict:
        lv, d = self.lv, self._dom(uuid)
        host = self._host_cpus()
        try:
            infos, maps = d.vcpus()
        except lv.libvirtError as exc:
            # as virsh: an inactive domain shows the pinning of its definition
            with mapped(lv):
                if d.isActive():
                    raise convert(lv, exc) from None
                pins = d.vcpuPinInfo(lv.VIR_DOMAIN_AFFECT_CONFIG)
            return {"host_cpus": host, "vcpus": [
                {"vcpu": i, "cpu": None, "state": None, "cpu_time_ns": None,
                 "affinity": [c for c, on in enumerate(m) if on and c < host]} for i, m in enumerate(pins)]}
        vcpus = []
        for (number, state, cpu_time, cpu), m in zip(infos, maps):
            vcpus.append({"vcpu": number, "cpu": cpu, "state": _VCPU_STATES.get(state, "no state"),
                          "cpu_time_ns": cpu_time, "affinity": [c for c, on in enumerate(m) if on and c < host]})
        return {"host_cpus": host, "vcpus": vcpus}

    # --- domblkerror, domcontrol, domtime ---------------------------------------------------
    def disk_errors(self, uuid: str) -> list[tuple[str, str]]:
        d = self._dom(uuid)
        with mapped(self.lv):
            errors = d.diskErrors(0)
        return [(disk, _DISK_ERRORS.get(code, "unknown error")) for disk, code in errors.items()]

    def control_info(self, uuid: str) -> dict:
        d = self._dom(uuid)
        with mapped(self.lv):
            state, details, state_time = d.controlInfo(0)
        name = _CONTROL_STATES.get(state, "unknown")
        return {"state": name, "details": _CONTROL_REASONS.get(details, "") if name == "error" else "",
                "state_time_ms": state_time}

    def get_time(self, uuid: str) -> tuple[int, int]:
        d = self._dom(uuid)
        with mapped(self.lv):
            t = d.getTime(0)
        return t["seconds"], t.get("nseconds", 0)

    def set_time(self, uuid: str, seconds: int | None, *, sync: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            if sync:
                d.setTime(None, lv.VIR_DOMAIN_TIME_SYNC)
            else:
                d.setTime({"seconds": int(seconds), "nseconds": 0}, 0)

    # --- domjobinfo, domjobabort --------------------------------------------------------------
    def job_info(self, uuid: str, *, completed: bool = False, keep_completed: bool = False) -> dict:
        lv, d = self.lv, self._dom(uuid)
        flags = 0
        if completed:
            flags |= lv.VIR_DOMAIN_JOB_STATS_COMPLETED
        if keep_completed:
            flags |= lv.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED
        try:
            raw = d.jobStats(flags)
        except lv.libvirtError as exc:
            # as virsh: a driver without job statistics may still have the older job info
            if flags or exc.get_error_code() != lv.VIR_ERR_NO_SUPPORT:
                raise convert(lv, exc) from None
            with mapped(lv):
                info = d.jobInfo()
            raw = {"type": info[0], "time_elapsed": info[1], "time_remaining": info[2]}
            if info[3]:
                raw.update(data_total=info[3], data_processed=info[4], data_remaining=info[5])
        out: dict = {"type": _JOB_TYPES.get(raw.get("type", 0), "unknown")}
        for k, v in raw.items():
            if k == "type":
                continue
            if k == "operation":
                v = _JOB_OPERATIONS.get(v, "unknown")
            out[_JOB_NAMES.get(k, k)] = v
        return out

    def abort_job(self, uuid: str, *, postcopy: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            if postcopy:
                d.abortJobFlags(lv.VIR_DOMAIN_ABORT_JOB_POSTCOPY)
            else:
                d.abortJob()

    # --- desc, metadata ------------------------------------------------------------------------
    def _affect_flags(self, live: bool, config: bool) -> int:
        lv = self.lv
        return (lv.VIR_DOMAIN_AFFECT_LIVE if live else 0) | (lv.VIR_DOMAIN_AFFECT_CONFIG if config else 0)

    def _metadata_type(self, kind: str) -> int:
        from virtctl.errors import InvalidArg

        if kind not in _METADATA:
            raise InvalidArg(f"unknown metadata type '{kind}'", detail={"type": kind})
        return getattr(self.lv, f"VIR_DOMAIN_METADATA_{_METADATA[kind]}")

    def get_metadata(self, uuid: str, kind: str, *, uri: str | None = None, live: bool = False,
                     config: bool = False) -> str:
        lv, d = self.lv, self._dom(uuid)
        try:
            return d.metadata(self._metadata_type(kind), uri if kind == "element" else None,
                              self._affect_flags(live, config))
        except lv.libvirtError as exc:
            err = convert(lv, exc)
            if exc.get_error_code() == getattr(lv, "VIR_ERR_NO_DOMAIN_METADATA", None):
                # what commands/domain_meta.py knows as "none set" (xml/metadata.py's not_found)
                raise OperationFailed(err.message, detail={**err.detail, "reason": "no metadata"}) from None
            raise err from None

    def set_metadata(self, uuid: str, kind: str, value: str | None, *, key: str | None = None,
                     uri: str | None = None, live: bool = False, config: bool = False) -> None:
        d = self._dom(uuid)
        element = kind == "element"
        with mapped(self.lv):
            d.setMetadata(self._metadata_type(kind), value, key if element else None, uri if element else None,
                          self._affect_flags(live, config))

    # --- inject-nmi, dompmsuspend, dompmwakeup, send-process-signal --------------------------
    def inject_nmi(self, uuid: str) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.injectNMI(0)

    def pm_suspend(self, uuid: str, target: str, *, duration: int = 0) -> None:
        from virtctl.errors import InvalidArg

        lv, d = self.lv, self._dom(uuid)
        if target not in _PM_TARGETS:
            raise InvalidArg("Invalid target", detail={"target": target})
        with mapped(lv):
            d.suspendForDuration(getattr(lv, f"VIR_NODE_SUSPEND_TARGET_{_PM_TARGETS[target]}"), duration, 0)

    def pm_wakeup(self, uuid: str) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.pMWakeup(0)

    def send_process_signal(self, uuid: str, pid: int, signum: int) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.sendProcessSignal(pid, signum, 0)

    # --- domdisplay ---------------------------------------------------------------------------
    def display(self, uuid: str, *, type: str | None = None) -> str:  # noqa: A002
        """virsh's domdisplay made from the live XML: the first graphics device
        (vnc, spice, rdp, as virsh tries them) with a port or a socket."""
        import xml.etree.ElementTree as ET

        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            if not d.isActive():
                raise OperationInvalid("Domain is not running")
            root = ET.fromstring(d.XMLDesc(0))
        for scheme in ("vnc", "spice", "rdp"):
            if type is not None and type != scheme:
                continue
            uri = _display_uri(root, scheme, self._server())
            if uri:
                return uri
        raise OperationFailed("No graphical display found")

    def _server(self) -> str | None:
        """The host of the connection's URI (a remote daemon's displays are there)."""
        from urllib.parse import urlsplit

        try:
            return urlsplit(self.conn.getURI()).hostname
        except (self.lv.libvirtError, ValueError):
            return None


def _display_uri(root, scheme: str, server: str | None) -> str | None:
    g = root.find(f"devices/graphics[@type='{scheme}']")
    if g is None:
        return None
    socket = g.get("socket")
    lsock = g.find("listen[@type='socket']")
    if socket is None and lsock is not None:
        socket = lsock.get("socket")
    if socket and scheme == "vnc":
        return f"vnc+unix://{socket}"

    def _int(v) -> int:
        try:
            return int(v)
        except (TypeError, ValueError):
            return 0

    port = max(_int(g.get("port")), 0)
    tls_port = max(_int(g.get("tlsPort")), 0) if scheme == "spice" else 0
    if not port and not tls_port:
        return None
    listen = g.get("listen")
    el = g.find("listen[@type='address']")
    if el is not None and el.get("address"):
        listen = el.get("address")
    if listen in ("0.0.0.0", "::", "[::]"):
        listen = server  # as virsh: a wildcard is the connection's host
    listen = listen or "localhost"
    host = f"[{listen}]" if ":" in listen else listen
    out = f"{scheme}://{host}"
    if port:
        out += f":{port - 5900 if scheme == 'vnc' else port}"
    if tls_port:
        out += f"?tls-port={tls_port}"
    return out
