"""The native QEMU driver's connection: ``qemu:///session``, ``qemu:///system``,
``qemu:///embed?root=DIR``.  No daemon: every command reads the state on disk
(state.py) and talks to each QEMU over QMP (runtime.py)."""
from __future__ import annotations

import os

from virtctl import __version__
from virtctl.api.types import NodeInfo, Version
from virtctl.drivers.base import Driver
from virtctl.drivers.qemu.domains import QemuDomainDriver
from virtctl.drivers.qemu.state import StateRoot
from virtctl.errors import ConnectFailed, OperationFailed
from virtctl.lazy import lazy

socket = lazy("socket")
subprocess = lazy("subprocess")


class QemuDriver(Driver):
    name = "qemu"

    def __init__(self, uri, *, readonly: bool = False):
        super().__init__(uri, readonly=readonly)
        if uri.host:
            raise ConnectFailed(f"remote connections are not supported: '{uri.text}'")
        if uri.transport:
            raise ConnectFailed(f"transport '{uri.transport}' is not supported: '{uri.text}'")
        self.state = StateRoot.for_uri(uri.path, uri.query)
        # who QEMU runs as (confine.py: qemu:///system confines by default), and
        # whether an image may name backing files the definition does not (backing.py);
        # imported only when the URI has a say
        self.state.confine, self.state.backing_named = None, False
        if self.state.kind == "system" or {"confine", "qemu_user"} & uri.query.keys():
            from virtctl.drivers.qemu import confine

            self.state.confine = confine.settings(self.state.kind, uri.query)
        if "backing" in uri.query or self.state.confine is not None:
            from virtctl.drivers.qemu import backing

            self.state.backing_named = backing.settings(uri.query, confined=self.state.confine is not None)
        if self.state.kind == "system" and os.geteuid() != 0:
            raise ConnectFailed("qemu:///system needs root (use qemu:///session)")
        self.state.ensure()
        self.domains = QemuDomainDriver(self.state)
        self.networks = _LazyNetworks(self)  # network/driver.py, imported by the first net-* call

    def _network_users(self, name: str, bridge: str | None) -> list[str]:
        """The running domains with an interface on network ``name`` (or its bridge)."""
        from virtctl.drivers.qemu.network.resolve import network_users

        return network_users(self.domains, name, bridge)

    @property
    def pools(self):
        """The pool driver, built (and imported) on first use, as ``snapshots``:
        a domain command never loads the storage code."""
        pools = self.__dict__.get("_pools")
        if pools is None and not isinstance(self.__dict__.get("domains"), QemuDomainDriver):
            return self._pool_placeholder  # Driver.__init__, before the domains exist
        if pools is None:
            from virtctl.drivers.qemu.storage.pools import QemuPoolDriver

            pools = self.__dict__["_pools"] = QemuPoolDriver(self.state, users=self._volume_users)
            pools.live_resize = self._volume_live_resize
        return pools

    @pools.setter
    def pools(self, value) -> None:
        self.__dict__["_pool_placeholder"] = value  # Driver.__init__'s: replaced on first use

    @property
    def snapshots(self):
        """The snapshot driver, built (and imported) on first use: a one-shot
        command that has no snapshot in it never loads it."""
        snaps = self.__dict__.get("_snapshots")
        if snaps is None and not isinstance(self.__dict__.get("domains"), QemuDomainDriver):
            return self._snapshot_placeholder  # Driver.__init__, before the domains exist
        if snaps is None:
            from virtctl.drivers.qemu.snapshot.driver import QemuSnapshotDriver

            snaps = self.__dict__["_snapshots"] = QemuSnapshotDriver(self.domains)
        return snaps

    @snapshots.setter
    def snapshots(self, value) -> None:
        self.__dict__["_snapshot_placeholder"] = value  # Driver.__init__'s: replaced on first use

    def _volume_users(self, path: str, pool: str, name: str) -> list[str]:
        """The running domains whose disks use the volume (by path, or by
        pool and volume name): vol-delete and a shrinking vol-resize refuse."""
        from virtctl.xml import xmlapi

        users = []
        for rec in self.domains.list():
            if not rec.active:
                continue
            try:
                root = xmlapi.parse(self.domains.get_xml(rec.uuid))
            except Exception:  # a domain that just went away uses nothing
                continue
            for d in root.findall("devices/disk"):
                src = d.find("source")
                if src is None:
                    continue
                if src.get("file") == path or src.get("dev") == path or \
                        (src.get("pool") == pool and src.get("volume") == name):
                    users.append(rec.name)
                    break
        return users

    def _volume_live_resize(self, path: str, pool: str, name: str, size: int) -> None:
        """vol-resize of a volume running domains use as a disk's image: QMP
        block_resize in each (blockjob.py), so the guests see the new size."""
        from virtctl.xml import xmlapi

        for rec in self.domains.list():
            if not rec.active:
                continue
            try:
                root = xmlapi.parse(self.domains.get_xml(rec.uuid))
            except Exception:  # a domain that just went away uses nothing
                continue
            for d in root.findall("devices/disk"):
                src, tgt = d.find("source"), d.find("target")
                if src is not None and tgt is not None and (src.get("file") == path or src.get("dev") == path or
                                                            (src.get("pool") == pool and src.get("volume") == name)):
                    self.domains.block_resize(rec.uuid, tgt.get("dev"), size)
    def event_follower(self):
        from virtctl.drivers.qemu import events

        return events.Follower(self.state)

    def close(self) -> None:
        self.domains.close()

    def hostname(self) -> str:
        return socket.gethostname()

    def version(self) -> Version:
        from virtctl.drivers.qemu.argv import DEFAULT_EMULATOR
        import shutil

        qemu = shutil.which(DEFAULT_EMULATOR)
        hv = "QEMU (not installed)"
        if qemu:
            try:
                out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=10).stdout
                words = out.split()
                hv = f"QEMU {words[3]}" if len(words) > 3 else "QEMU"
            except (OSError, subprocess.SubprocessError):
                raise OperationFailed(f"cannot run '{qemu} --version'") from None
        return Version(library=__version__, api_driver="QEMU", hypervisor=hv)

    def node_info(self) -> NodeInfo:
        mem_kib, mhz, model = 0, 0, os.uname().machine
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        mem_kib = int(line.split()[1])
                        break
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("cpu MHz"):
                        mhz = int(float(line.split(":")[1]))
                        break
        except (OSError, ValueError):
            pass
        cpus = os.cpu_count() or 1
        return NodeInfo(model=model, memory_kib=mem_kib, cpus=cpus, mhz=mhz, nodes=1, sockets=1,
                        cores=cpus, threads=1)

    # --- host statistics and capabilities (drivers/qemu/host.py) ---------------------------------
    def node_cpu_stats(self, cpu: int | None = None) -> dict:
        from virtctl.drivers.qemu import host

        return host.node_cpu_stats(cpu)

    def node_memory_stats(self, cell: int | None = None) -> dict:
        from virtctl.drivers.qemu import host

        return host.node_memory_stats(cell)

    def capabilities(self) -> str:
        from virtctl.drivers.qemu import host

        return host.capabilities(self.state)

    def domain_capabilities(self, *, virttype=None, emulatorbin=None, arch=None, machine=None) -> str:
        from virtctl.drivers.qemu import host

        return host.domain_capabilities(self.state, virttype=virttype, emulatorbin=emulatorbin, arch=arch,
                                        machine=machine)

    def max_vcpus(self, type: str | None = None) -> int:  # noqa: A002
        from virtctl.drivers.qemu import host

        return host.max_vcpus(self.state, type)

    def sysinfo(self) -> str:
        from virtctl.drivers.qemu import host

        return host.sysinfo()

    def free_memory(self) -> int:
        from virtctl.drivers.qemu import host

        return host.free_memory()

    def cells_free_memory(self, start: int = 0, count: int | None = None) -> list[int]:
        from virtctl.drivers.qemu import host

        return host.cells_free_memory(start, count)

class _LazyNetworks:
    """The connection's QemuNetworkDriver, made on first use (one-shot
    commands that never touch networks never import it)."""

    def __init__(self, drv):
        self._drv, self._real = drv, None

    def __getattr__(self, attr):
        if self._real is None:
            from virtctl.drivers.qemu.network.driver import QemuNetworkDriver

            self._real = QemuNetworkDriver(self._drv.state, users=self._drv._network_users)
        return getattr(self._real, attr)
