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
        from virtctl.drivers.qemu.storage.pools import QemuPoolDriver

        self.pools = QemuPoolDriver(self.state, users=self._volume_users)

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
