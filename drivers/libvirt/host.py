"""Host information on a libvirt connection (nodecpustats, nodememstats,
capabilities, domcapabilities, maxvcpus, sysinfo, freecell): a mixin of
driver.LibvirtDriver (``self.lv``, ``self.conn``).

Each method is one libvirt call; libvirt's names of the figures become
virtctl's (``kernel`` is nodecpustats's ``system``)."""
from __future__ import annotations

from virtctl.drivers.libvirt.errors import mapped

# virNodeGetCPUStats's field names -> virtctl's (commands/host_stats.py)
_CPU_NAMES = {"kernel": "system"}


class HostMixin:
    def node_cpu_stats(self, cpu: int | None = None) -> dict:
        lv = self.lv
        with mapped(lv):
            stats = self.conn.getCPUStats(lv.VIR_NODE_CPU_STATS_ALL_CPUS if cpu is None else cpu, 0)
        return {_CPU_NAMES.get(k, k): v for k, v in stats.items()}

    def node_memory_stats(self, cell: int | None = None) -> dict:
        lv = self.lv
        with mapped(lv):
            return dict(self.conn.getMemoryStats(lv.VIR_NODE_MEMORY_STATS_ALL_CELLS if cell is None else cell, 0))

    def capabilities(self) -> str:
        with mapped(self.lv):
            return self.conn.getCapabilities()

    def domain_capabilities(self, *, virttype=None, emulatorbin=None, arch=None, machine=None) -> str:
        with mapped(self.lv):
            return self.conn.getDomainCapabilities(emulatorbin, arch, machine, virttype, 0)

    def max_vcpus(self, type: str | None = None) -> int:  # noqa: A002
        # virsh asks the domain capabilities first (their <vcpu max>), then the
        # older call: a driver without domain capabilities answers the latter
        import xml.etree.ElementTree as ET

        lv = self.lv
        try:
            caps = self.conn.getDomainCapabilities(None, None, None, type, 0)
            el = ET.fromstring(caps).find("vcpu")
            if el is not None and el.get("max"):
                return int(el.get("max"))
        except (lv.libvirtError, ET.ParseError, ValueError):
            pass
        with mapped(lv):
            return self.conn.getMaxVcpus(type)

    def sysinfo(self) -> str:
        with mapped(self.lv):
            return self.conn.getSysinfo(0)

    def free_memory(self) -> int:
        with mapped(self.lv):
            return self.conn.getFreeMemory()

    def cells_free_memory(self, start: int = 0, count: int | None = None) -> list[int]:
        lv = self.lv
        with mapped(lv):
            if count is not None:
                return list(self.conn.getCellsFreeMemory(start, count))
            # every cell (freecell --all): as virsh, the cells the capabilities
            # list, each asked for alone
            import xml.etree.ElementTree as ET

            cells = ET.fromstring(self.conn.getCapabilities()).findall("host/topology/cells/cell")
            return [self.conn.getCellsFreeMemory(int(c.get("id", 0)), 1)[0] for c in cells][start:]
