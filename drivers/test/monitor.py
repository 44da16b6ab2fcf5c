"""domstats, cpu-stats, vcpuinfo, domblkerror, domcontrol and domtime for the
test driver (a mixin of ``TestDomainDriver``), with the fixed figures of
libvirt's test driver (testDomainGetCPUStats, testDomainGetVcpus, ...).

* cpu-stats: one entry per core of the node (``<cores>``): cpu_time
  48772617035 ns / cores + i, vcpu_time 1234567890 ns less; the total
  48772617035 ns, user 5.54 s, system 6.46 s;
* vcpuinfo: the host CPU is the node's last, affinity every node CPU
  within the 8 of the test host's CPU map;
* domblkerror: every disk, "unspecified error" and "no space" in turn;
* domstats: the state and iothread groups (libvirt's test driver fills
  no other); the guest clock is 627319920 s.
"""
from __future__ import annotations

from virtctl.errors import OperationInvalid

_TEST_CLOCK = 627319920
_CPU_TIME = 48772617035
_VCPU_LESS = 1234567890
_HOST_MAP_CPUS = 8  # testNodeGetCPUMap: the test host's CPU map has 8 CPUs
_DISK_ERRORS = ("unspecified error", "no space")


class TestMonitorMixin:
    stats_groups = ("state", "iothread")

    def _active(self, uuid: str):
        d = self._get(uuid)
        if d.id is None:
            raise OperationInvalid("Requested operation is not valid: domain is not running")
        return d

    def _node_cpus(self) -> int:
        n = self.node
        return n.nodes * n.sockets * n.cores * n.threads

    def domain_stats(self, uuid: str, groups: list[str], *, backing: bool = False,
                     nowait: bool = False) -> list[tuple[str, object]]:
        d = self._get(uuid)
        out: list[tuple[str, object]] = []
        if "state" in groups:
            out += [("state.state", int(d.state)), ("state.reason", int(d.reason))]
        if "iothread" in groups and d.id is not None:
            n = _iothreads(d.current)
            if n:
                out.append(("iothread.count", n))
                for i in range(1, n + 1):
                    out += [(f"iothread.{i}.poll-max-ns", 32768), (f"iothread.{i}.poll-grow", 0),
                            (f"iothread.{i}.poll-shrink", 0)]
        return out

    def cpu_stats(self, uuid: str) -> dict:
        self._active(uuid)
        count = max(self.node.cores, 1)
        cpus = [{"cpu_time": _CPU_TIME // count + i, "vcpu_time": _CPU_TIME // count + i - _VCPU_LESS}
                for i in range(count)]
        return {"cpus": cpus, "total": {"cpu_time": _CPU_TIME, "user_time": 5540000000,
                                        "system_time": 6460000000}}

    def vcpu_info(self, uuid: str) -> dict:
        import time

        d = self._get(uuid)
        hostcpus = self._node_cpus()
        affinity = list(range(min(hostcpus, _HOST_MAP_CPUS)))
        if d.id is None:
            vcpus = [{"vcpu": i, "cpu": None, "state": None, "cpu_time_ns": None, "affinity": affinity}
                     for i in range(d.config.max_vcpus)]
        else:
            base = time.time_ns() // 1000 // 10  # libvirt's fake, increasing CPU time
            vcpus = [{"vcpu": i, "cpu": hostcpus - 1, "state": "running", "cpu_time_ns": base,
                      "affinity": affinity} for i in range(d.current.vcpus)]
        return {"host_cpus": _HOST_MAP_CPUS, "vcpus": vcpus}

    def disk_errors(self, uuid: str) -> list[tuple[str, str]]:
        d = self._active(uuid)
        out = []
        for i, el in enumerate(d.current.root.findall("devices/disk")):
            tgt = el.find("target")
            out.append((tgt.get("dev") if tgt is not None else "", _DISK_ERRORS[i % 2]))
        return out

    def control_info(self, uuid: str) -> dict:
        self._active(uuid)
        return {"state": "ok", "details": "", "state_time_ms": 0}

    def get_time(self, uuid: str) -> tuple[int, int]:
        self._active(uuid)
        return _TEST_CLOCK, 0

    def set_time(self, uuid: str, seconds: int | None, *, sync: bool = False) -> None:
        self._active(uuid)  # libvirt's test driver accepts and forgets the time


def _iothreads(definition) -> int:
    el = definition.root.find("iothreads")
    try:
        return int(el.text) if el is not None and el.text else 0
    except ValueError:
        return 0
