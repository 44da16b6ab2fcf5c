"""domstats, cpu-stats, vcpuinfo, domblkerror, domcontrol, domtime and jobs
for the QEMU driver (a mixin of QemuDomainDriver).

Figures, all read in one pass under the domain lock and one QMP session:

* state: the record's state and reason numbers;
* cpu-total: ``cpu.time`` = the sum of every QEMU thread's run time
  (/proc/PID/task/*/schedstat, ns), ``cpu.user``/``cpu.system`` = utime and
  stime of /proc/PID/stat (clock ticks -> ns);
* balloon: ``balloon.current`` (query-balloon, KiB), ``balloon.maximum``
  (the definition's memory), the guest's figures dommemstat shows
  (stats.balloon_figures), ``balloon.rss``;
* vcpu: ``vcpu.current``/``vcpu.maximum``, per vCPU (query-cpus-fast's
  thread ids) ``state`` 1, ``time`` and ``wait`` (the thread's schedstat:
  run and run-queue wait, ns);
* interface: ``net.count``, per NIC ``name`` (host device), ``rx.*``/``tx.*``
  from /sys/class/net/DEV/statistics seen from the guest (the host's tx is
  the guest's rx), where a host device exists;
* block: ``block.count``, per disk ``name``, ``path``, ``rd|wr|fl.*`` from
  query-blockstats, ``allocation`` (highest written offset), ``capacity``
  and ``physical`` (query-block's image sizes).

An inactive domain has the state group only.  cpu-stats has no per-host-CPU
figures (those need a cgroup per domain, which virtctl does not make): the
total only.  domtime speaks to the guest agent: guest_agent.py.
"""
from __future__ import annotations

import os

from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import NotSupported, OperationFailed, OperationInvalid, OperationTimeout

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _schedstat(path: str) -> tuple[int, int]:
    try:
        with open(path) as f:
            run, wait = f.read().split()[:2]
        return int(run), int(wait)
    except (OSError, ValueError):
        return 0, 0


def _stat_fields(path: str) -> list[str]:
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    return text[text.rindex(")") + 2:].split()  # the fields after "(comm)", from field 3


def process_cpu(pid: int) -> dict[str, int]:
    """cpu.time (every thread's run time), cpu.user, cpu.system of QEMU in ns."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tids = []
    for tid in tids:
        total += _schedstat(f"/proc/{pid}/task/{tid}/schedstat")[0]
    f = _stat_fields(f"/proc/{pid}/stat")
    tick = 10**9 // _CLK_TCK
    user, system = (int(f[11]) * tick, int(f[12]) * tick) if len(f) > 12 else (0, 0)
    return {"cpu.time": total, "cpu.user": user, "cpu.system": system}


def _vcpu_threads(q) -> list[tuple[int, int]]:
    """(vCPU index, host thread id) from query-cpus-fast."""
    from virtctl.drivers.qemu.qmp import QMPError

    try:
        cpus = q.command("query-cpus-fast") or []
    except (QMPError, OSError) as exc:
        raise rt.qmp_error(exc, "vcpu statistics") from None
    return [(c.get("cpu-index", i), c.get("thread-id", 0)) for i, c in enumerate(cpus)]


def _net_figures(dev: str) -> dict[str, int]:
    """domstats' net.N.* figures of tap ``dev`` ({} when it is gone)."""
    from virtctl.drivers.qemu.network.domif import tap_counters

    names = {"bytes": "bytes", "packets": "pkts", "errs": "errs", "drop": "drop"}
    return {f"{k[:2]}.{names[k[3:]]}": v for k, v in (tap_counters(dev) or {}).items()}


_IO_STATUS = {"failed": "unspecified error", "nospace": "no space"}


class QemuMonitorMixin:
    stats_groups = ("state", "cpu-total", "balloon", "vcpu", "interface", "block")

    def domain_stats(self, uuid: str, groups: list[str], *, backing: bool = False,
                     nowait: bool = False) -> list[tuple[str, object]]:
        from virtctl.api.types import DomainState

        rec = self.get(uuid)
        out: list[tuple[str, object]] = []
        if "state" in groups:
            out += [("state.state", int(rec.state)), ("state.reason", int(rec.reason))]
        live = [g for g in groups if g != "state"]
        if not live or rec.state in (DomainState.SHUTOFF, DomainState.NOSTATE) or not rec.active:
            return out
        try:
            with self._running(uuid) as run, run.qmp() as q:
                out += self._live_stats(uuid, run, q, live)
        except OperationInvalid:  # stopped between the record and the lock: its state only
            pass
        return out

    def _live_stats(self, uuid: str, run, q, groups: list[str]) -> list[tuple[str, object]]:
        from virtctl.drivers.qemu.qmp import QMPError
        from virtctl.drivers.qemu.stats import _available, _rss_kib, balloon_figures, match_blockstats
        from virtctl.xml import memballoon

        live_def = self._live(uuid)
        pid = run.record.get("pid") or 0
        out: list[tuple[str, object]] = []
        if "cpu-total" in groups:
            out += list(process_cpu(pid).items())
        if "balloon" in groups and live_def is not None:
            figures = balloon_figures(q, "domstats") if memballoon.balloon(live_def) is not None else {}
            out.append(("balloon.current", figures.pop("actual", live_def.memory_kib)))
            out.append(("balloon.maximum", live_def.max_memory_kib))
            for k, v in figures.items():
                out.append((f"balloon.{'last-update' if k == 'last_update' else k}", v))
            rss = _rss_kib(pid)
            if rss is not None:
                out.append(("balloon.rss", rss))
        if "vcpu" in groups and live_def is not None:
            threads = _vcpu_threads(q)
            out += [("vcpu.current", len(threads)), ("vcpu.maximum", live_def.max_vcpus)]
            for idx, tid in threads:
                run_ns, wait_ns = _schedstat(f"/proc/{pid}/task/{tid}/schedstat")
                out += [(f"vcpu.{idx}.state", 1), (f"vcpu.{idx}.time", run_ns), (f"vcpu.{idx}.wait", wait_ns)]
        if "interface" in groups and live_def is not None:
            nics = live_def.interfaces()
            out.append(("net.count", len(nics)))
            for i, nic in enumerate(nics):
                if nic.target:
                    out.append((f"net.{i}.name", nic.target))
                    out += [(f"net.{i}.{k}", v) for k, v in _net_figures(nic.target).items()]
        if "block" in groups and live_def is not None:
            try:
                stats = q.command("query-blockstats") or []
                blocks = q.command("query-block") or []
            except (QMPError, OSError) as exc:
                raise rt.qmp_error(exc, "block statistics") from None
            images = {}
            for b in blocks:
                qdev = b.get("qdev") or b.get("device") or ""
                img = (b.get("inserted") or {}).get("image") or {}
                images[qdev] = img
            disks = match_blockstats(live_def, stats)
            out.append(("block.count", len(disks)))
            for i, (dev, path, alias, s) in enumerate(disks):
                out.append((f"block.{i}.name", dev))
                if path:
                    out.append((f"block.{i}.path", path))
                for qkey, key in (("rd_operations", "rd.reqs"), ("rd_bytes", "rd.bytes"),
                                  ("rd_total_time_ns", "rd.times"), ("wr_operations", "wr.reqs"),
                                  ("wr_bytes", "wr.bytes"), ("wr_total_time_ns", "wr.times"),
                                  ("flush_operations", "fl.reqs"), ("flush_total_time_ns", "fl.times")):
                    v = _available(s.get(qkey))
                    if v is not None:
                        out.append((f"block.{i}.{key}", v))
                img = next((im for qd, im in images.items()
                            if alias and (qd == alias or qd.startswith(f"/machine/peripheral/{alias}/"))), {})
                if _available(s.get("wr_highest_offset")) is not None:
                    out.append((f"block.{i}.allocation", s["wr_highest_offset"]))
                if img.get("virtual-size") is not None:
                    out.append((f"block.{i}.capacity", img["virtual-size"]))
                if img.get("actual-size") is not None:
                    out.append((f"block.{i}.physical", img["actual-size"]))
        return out

    def cpu_stats(self, uuid: str) -> dict:
        with self._running(uuid) as run:
            cpu = process_cpu(run.record.get("pid") or 0)
        return {"cpus": [], "total": {"cpu_time": cpu["cpu.time"], "user_time": cpu["cpu.user"],
                                      "system_time": cpu["cpu.system"]}}

    def vcpu_info(self, uuid: str) -> dict:
        host = os.cpu_count() or 1
        rec = self.get(uuid)
        if not rec.active:
            v = self._checked_view(uuid)
            aff = _cpuset(v.config, host)
            return {"host_cpus": host, "vcpus": [{"vcpu": i, "cpu": None, "state": None, "cpu_time_ns": None,
                                                  "affinity": aff} for i in range(v.config.max_vcpus)]}
        with self._running(uuid) as run, run.qmp() as q:
            pid = run.record.get("pid") or 0
            threads = _vcpu_threads(q)
        vcpus = []
        for idx, tid in threads:
            f = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
            try:
                aff = sorted(os.sched_getaffinity(tid))
            except OSError:
                aff = list(range(host))
            vcpus.append({"vcpu": idx, "cpu": int(f[36]) if len(f) > 36 else 0, "state": "running",
                          "cpu_time_ns": _schedstat(f"/proc/{pid}/task/{tid}/schedstat")[0], "affinity": aff})
        return {"host_cpus": host, "vcpus": vcpus}

    def disk_errors(self, uuid: str) -> list[tuple[str, str]]:
        from virtctl.drivers.qemu.stats import match_blockstats

        with self._running(uuid) as run, run.qmp() as q:
            live_def = self._live(uuid)
            blocks = self._qmp_call(q, "query-block", what="domblkerror") or []
        out = []
        for dev, _path, alias, _s in match_blockstats(live_def, []):
            for b in blocks:
                qdev = b.get("qdev") or b.get("device") or ""
                if alias and (qdev == alias or qdev.startswith(f"/machine/peripheral/{alias}/")):
                    err = _IO_STATUS.get(b.get("io-status", "ok"))
                    if err:
                        out.append((dev, err))
        return out

    def control_info(self, uuid: str) -> dict:
        """ok; job (a job of another process holds the domain); occupied (the
        domain lock is held without a job); error (QEMU's monitor does not answer)."""
        from virtctl.drivers.qemu import jobs

        rec = self.get(uuid)
        if not rec.active:
            raise OperationInvalid("Requested operation is not valid: domain is not running")
        job = jobs.current(self.state, uuid)
        if job is not None:
            return {"state": "job", "details": job.get("operation", ""),
                    "state_time_ms": job.get("time_elapsed_ms", 0)}
        try:
            with self._running(uuid) as run, run.qmp(timeout=5) as q:
                q.command("query-status")
        except OperationTimeout:
            return {"state": "occupied", "details": "", "state_time_ms": 0}
        except OperationFailed as exc:
            return {"state": "error", "details": exc.message, "state_time_ms": 0}
        return {"state": "ok", "details": "", "state_time_ms": 0}

    def job_info(self, uuid: str, *, completed: bool = False, keep_completed: bool = False) -> dict:
        from virtctl.drivers.qemu import jobs

        self.get(uuid)  # NO_DOMAIN first
        return jobs.info(self.state, uuid, completed=completed, keep_completed=keep_completed)

    def abort_job(self, uuid: str, *, postcopy: bool = False) -> None:
        from virtctl.drivers.qemu import jobs

        if postcopy:
            raise NotSupported("this function is not supported by the connection driver: domjobabort --postcopy",
                               detail={"driver": "qemu", "feature": "domjobabort --postcopy"})
        rec = self.get(uuid)
        if not rec.active:
            raise OperationInvalid("Requested operation is not valid: domain is not running")
        if not jobs.request_abort(self.state, uuid):
            raise OperationInvalid("Requested operation is not valid: no job is active on the domain")


def _cpuset(definition, host: int) -> list[int]:
    el = definition.root.find("vcpu")
    spec = el.get("cpuset") if el is not None else None
    if not spec:
        return list(range(host))
    cpus: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        neg = part.startswith("^")
        part = part.lstrip("^")
        lo, _, hi = part.partition("-")
        try:
            rng = range(int(lo), int(hi or lo) + 1)
        except ValueError:
            continue
        cpus = cpus - set(rng) if neg else cpus | set(rng)
    return sorted(c for c in cpus if c < host)
