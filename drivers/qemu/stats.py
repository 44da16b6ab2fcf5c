"""Display, screenshots, keys, raw monitor commands and statistics for the
QEMU driver (a mixin of QemuDomainDriver).  Each operation holds the domain
lock and speaks QMP on the command socket (runtime.running_domain).

* ``display``: ``query-vnc`` -> ``vnc://HOST:DISPLAY`` (virsh prints the
  display number, port - 5900) or ``vnc+unix:///path``;
* ``screenshot``: QMP ``screendump`` into an unlinked file of ours handed
  to QEMU with ``add-fd`` (``/dev/fdset/N``), then copied to the caller's
  file through a temp file;
* ``send_key``: keys translated to QEMU's qnum (virtctl/keycodes.py) and sent
  as ``{"type": "number"}``;
* ``monitor_command``: a raw QMP JSON command, or HMP through
  ``human-monitor-command``;
* ``memory_stats``: ``query-balloon`` + the balloon's ``guest-stats`` QOM
  property (figures QEMU reports as 2^64-1 left out) + VmRSS of QEMU;
  ``set_memory_stats_period``: QOM ``guest-stats-polling-interval`` and
  ``<memballoon><stats period>``;
* ``block_stats``: ``query-blockstats`` matched to disks by alias.
"""
from __future__ import annotations

import json
import os

from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import InvalidArg, OperationFailed, OperationInvalid
from virtctl.lazy import lazy

secrets = lazy("secrets")

PPM_MIME = "image/x-portable-pixmap"
BALLOON_QOM = "/machine/peripheral/balloon0"
_UNAVAILABLE = 2**64 - 1  # how QEMU reports a guest figure the guest never gave
# query-blockstats name -> virsh field, in virsh's order
_BLOCK_STATS = (("rd_operations", "rd_req"), ("rd_bytes", "rd_bytes"), ("wr_operations", "wr_req"),
                ("wr_bytes", "wr_bytes"), ("flush_operations", "flush_operations"),
                ("rd_total_time_ns", "rd_total_times"), ("wr_total_time_ns", "wr_total_times"),
                ("flush_total_time_ns", "flush_total_times"))
# guest-stats name -> (virsh tag, divisor to KiB or 1 for counts), in virsh's order;
# "last-update" sits beside "stats" in QEMU's reply, not in it
_GUEST_STATS = (("stat-swap-in", "swap_in", 1024), ("stat-swap-out", "swap_out", 1024),
                ("stat-major-faults", "major_fault", 1), ("stat-minor-faults", "minor_fault", 1),
                ("stat-free-memory", "unused", 1024), ("stat-total-memory", "available", 1024),
                ("stat-available-memory", "usable", 1024), ("last-update", "last_update", 1),
                ("stat-disk-caches", "disk_caches", 1024),
                ("stat-htlb-pgalloc", "hugetlb_pgalloc", 1), ("stat-htlb-pgfail", "hugetlb_pgfail", 1))


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class QemuStatsMixin:
    def _qmp_call(self, q, name: str, args: dict | None = None, what: str | None = None,
                  fds: list[int] | None = None):
        from virtctl.drivers.qemu.qmp import QMPError

        try:
            return q.command(name, args, fds=fds)
        except (QMPError, OSError) as exc:
            raise rt.qmp_error(exc, what or name) from None

    # --- display, screenshot, keys ------------------------------------------------------------
    def display(self, uuid: str, *, type: str | None = None) -> str:  # noqa: A002
        with self._running(uuid) as run, run.qmp() as q:
            if type not in (None, "vnc"):
                raise OperationFailed("No graphical display found")
            info = self._qmp_call(q, "query-vnc", what="domdisplay") or {}
        if not info.get("enabled"):
            raise OperationFailed("No graphical display found")
        host, service, family = info.get("host") or "", str(info.get("service") or ""), info.get("family")
        if family == "unix":
            return f"vnc+unix://{host or service}"
        if host in ("0.0.0.0", "::", ""):
            host = "localhost"
        if ":" in host:
            host = f"[{host}]"
        try:
            return f"vnc://{host}:{int(service) - 5900}"
        except ValueError:
            raise OperationFailed(f"QEMU reported an odd VNC service {service!r}") from None

    def screenshot(self, uuid: str, path: str, *, screen: int = 0) -> str:
        from virtctl import savefile

        with self._running(uuid) as run, run.qmp(timeout=30) as q:
            # QEMU writes into a descriptor we pass (add-fd): a confined QEMU can
            # create no file of ours, and nothing is left behind by a kill
            tmp = os.path.join(run.chardev_dir, f".screendump-{secrets.token_hex(6)}")
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            fdset = None
            try:
                os.unlink(tmp)
                wfd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_CLOEXEC)  # screendump opens O_WRONLY
                try:
                    fdset = self._qmp_call(q, "add-fd", {}, what="screenshot", fds=[wfd])["fdset-id"]
                finally:
                    os.close(wfd)
                args: dict = {"filename": f"/dev/fdset/{fdset}"}
                if screen:
                    args["head"] = screen
                self._qmp_call(q, "screendump", args, what="screenshot")
                data = os.pread(fd, os.fstat(fd).st_size, 0)
            except OSError as exc:
                raise OperationFailed(f"screenshot: cannot read QEMU's screen dump: {exc.strerror}") from None
            finally:
                os.close(fd)
                if fdset is not None:
                    try:
                        self._qmp_call(q, "remove-fd", {"fdset-id": fdset}, what="screenshot")
                    except OperationFailed:
                        pass
        savefile.write_file(path, data, mode=0o644)
        return PPM_MIME

    def send_key(self, uuid: str, keycodes: list[int], *, codeset: str = "linux",
                 holdtime: int = 0) -> None:
        from virtctl import keycodes as kc

        try:
            keys = [{"type": "number", "data": kc.to_qnum(codeset, k)} for k in keycodes]
        except kc.KeycodeError as exc:
            raise InvalidArg(f"invalid argument: {exc}") from None
        args: dict = {"keys": keys}
        if holdtime:
            args["hold-time"] = holdtime
        with self._running(uuid) as run, run.qmp() as q:
            self._qmp_call(q, "send-key", args, what="send-key")

    def monitor_command(self, uuid: str, command: str, *, hmp: bool = False,
                        fds: list[int] | None = None) -> str:
        from virtctl.drivers.qemu.qmp import QMPCommandError, QMPError

        if hmp:
            name, args = "human-monitor-command", {"command-line": command}
        else:
            try:
                req = json.loads(command)
            except ValueError as exc:
                raise InvalidArg(f"invalid argument: the monitor command is not JSON: {exc}") from None
            if not isinstance(req, dict) or not isinstance(req.get("execute"), str) \
                    or not isinstance(req.get("arguments", {}), dict) \
                    or set(req) - {"execute", "arguments", "id"}:
                raise InvalidArg('invalid argument: a QMP command is a JSON object '
                                 '{"execute": NAME, "arguments": {...}}')
            name, args = req["execute"], req.get("arguments")
            if name == "qmp_capabilities":
                raise InvalidArg("invalid argument: the monitor connection is already negotiated")
        with self._running(uuid) as run, run.qmp(timeout=60) as q:
            try:
                ret = q.command(name, args, timeout=60, fds=fds or None)
                reply: dict = {"return": ret}
            except QMPCommandError as exc:
                if hmp:
                    raise rt.qmp_error(exc, "qemu-monitor-command") from None
                reply = {"error": {"class": exc.error_class, "desc": exc.desc}}
            except (QMPError, OSError) as exc:
                raise rt.qmp_error(exc, "qemu-monitor-command") from None
        if hmp:
            return str(ret)
        if not hmp and "id" in req:
            reply["id"] = req["id"]
        return json.dumps(reply, separators=(",", ":"))

    # --- statistics -------------------------------------------------------------------------------
    def memory_stats(self, uuid: str) -> dict[str, int]:
        """libvirt's QEMU driver: with a balloon, ``actual`` (query-balloon)
        and the guest's figures (QOM ``guest-stats``, those it has filled in:
        QEMU reports the others as 2^64-1 and they are left out); ``rss`` of
        the QEMU process always.  The guest updates its figures only when a
        period is set (``<stats period>`` or ``dommemstat --period``)."""
        from virtctl.xml import memballoon

        with self._running(uuid) as run:
            live_def = self._live(uuid)
            out: dict[str, int] = {}
            if live_def is not None and memballoon.balloon(live_def) is not None:
                with run.qmp() as q:
                    out = balloon_figures(q, "dommemstat")
            rss = _rss_kib(run.record.get("pid") or 0)
            if rss is not None:
                out["rss"] = rss
        return out

    def set_memory_stats_period(self, uuid: str, period: int, *, live: bool, config: bool) -> None:
        """The live balloon's QOM ``guest-stats-polling-interval`` and/or the
        persistent ``<memballoon><stats period>`` (which the next start puts
        on QEMU's command line)."""
        from virtctl.drivers.qemu.qmp import QMPError
        from virtctl.xml import memballoon

        with rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True)
            do_live, do_config = self._targets(v, live, config)
            if do_live and memballoon.balloon(v.live) is None:
                raise OperationInvalid("Requested operation is not valid: Active domain doesn't have balloon device")
            if do_config and memballoon.balloon(v.config) is None:
                raise OperationInvalid(
                    "Requested operation is not valid: Persistent domain doesn't have balloon device")
            if do_live:
                run = rt.RunningDomain(self.state, uuid, v.probe.record)
                with run.qmp() as q:
                    try:
                        q.command("qom-set", {"path": BALLOON_QOM, "property": "guest-stats-polling-interval",
                                              "value": period})
                    except (QMPError, OSError) as exc:
                        raise rt.qmp_error(exc, "unable to change balloon collection period") from None
                memballoon.set_stats_period(v.live, period)
                self._save_live(uuid, v.live)
            if do_config:
                memballoon.set_stats_period(v.config, period)
                self._write_config(v.config)

    def block_stats(self, uuid: str, device: str | None = None) -> list[dict]:
        """``query-blockstats`` matched to the disks by alias; a disk is named
        by target or by source path.  The fields are libvirt's for QEMU (no
        ``errs``: QEMU has no such counter)."""
        with self._running(uuid) as run, run.qmp() as q:
            live_def = self._live(uuid)
            stats = self._qmp_call(q, "query-blockstats", what="domblkstat") or []
        out = []
        for dev, _path, alias, s in match_blockstats(live_def, stats, device):
            row = {"device": dev}
            for qkey, key in _BLOCK_STATS:
                v = _available(s.get(qkey, 0))
                if v is not None:
                    row[key] = v
            out.append(row)
        return out

    def interface_addresses(self, uuid: str, source: str = "lease") -> list[dict]:
        from virtctl.drivers.qemu.network import domif

        with self._running(uuid):
            live_def = self._live(uuid)
        return domif.addresses(self.state, live_def, source)

    def interface_stats(self, uuid: str, device: str) -> dict:
        from virtctl.drivers.qemu.network import domif

        with self._running(uuid):
            live_def = self._live(uuid)
        return domif.stats(live_def, device)


def balloon_figures(q, what: str) -> dict[str, int]:
    """``actual`` (query-balloon, KiB) and the guest's figures the guest has
    given (QOM ``guest-stats``), by virsh's dommemstat tags."""
    from virtctl.drivers.qemu.qmp import QMPCommandError

    out: dict[str, int] = {}
    try:
        actual = _available((q.command("query-balloon") or {}).get("actual"))
        if actual is not None:
            out["actual"] = actual // 1024
        gs = q.command("qom-get", {"path": BALLOON_QOM, "property": "guest-stats"}) or {}
    except QMPCommandError:  # no balloon in QEMU, no figures yet
        gs = {}
    except Exception as exc:  # noqa: BLE001
        raise rt.qmp_error(exc, what) from None
    figures = dict(gs.get("stats")) if isinstance(gs.get("stats"), dict) else {}
    figures["last-update"] = gs.get("last-update")
    for key, tag, div in _GUEST_STATS:
        v = _available(figures.get(key))
        if v is not None:
            out[tag] = v // div
    return out


def match_blockstats(live_def, stats: list, device: str | None = None) -> list[tuple]:
    """(target, source path, alias, query-blockstats ``stats`` dict) per disk of
    ``live_def`` matched by alias; ``device`` (target or path) keeps one."""
    disks = []
    for el in live_def.root.findall("devices/disk") if live_def is not None else []:
        tgt, src, alias = el.find("target"), el.find("source"), el.find("alias")
        dev = tgt.get("dev") if tgt is not None else None
        path = (src.get("file") or src.get("dev")) if src is not None else None
        if device is not None and device not in (dev, path):
            continue
        disks.append((dev, path, alias.get("name") if alias is not None else None))
        if device is not None:
            break
    if device is not None and not disks:
        raise InvalidArg(f"invalid argument: invalid path: {device}")
    out = []
    for dev, path, alias in disks:
        s: dict = {}
        for entry in stats:
            qdev = entry.get("qdev") or entry.get("device") or ""
            if alias and (qdev == alias or qdev.startswith(f"/machine/peripheral/{alias}/")):
                s = dict(entry.get("stats") or {})
                break
        out.append((dev, path, alias, s))
    return out


def _available(value) -> int | None:
    """A figure QEMU really has: not -1 / 2^64-1 (QEMU's "not available")."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value == _UNAVAILABLE:
        return None
    return value
