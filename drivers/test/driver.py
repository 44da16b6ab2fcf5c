"""The test driver's connection: ``test:///default`` or ``test:///PATH.xml``.

State lives in this object only (per connection, like libvirt's test
driver), so every one-shot command starts from the same initial objects.
"""
from __future__ import annotations

import os

from virtctl import __version__
from virtctl.api.types import NodeInfo, Version
from virtctl.drivers.base import Driver
from virtctl.drivers.test import node
from virtctl.drivers.test.domains import TestDomainDriver
from virtctl.errors import ConnectFailed, VirtError


class TestDriver(Driver):
    name = "test"

    def __init__(self, uri, *, readonly: bool = False):
        super().__init__(uri, readonly=readonly)
        if uri.host:
            raise ConnectFailed(f"remote connections are not supported: '{uri.text}'")
        if uri.path == "/default":
            conf = node.load_default()  # parses nothing until a command needs XML
        elif uri.path.startswith("/") and uri.path != "/":
            if not os.path.exists(uri.path):
                raise ConnectFailed(f"failed to connect to '{uri.text}': no such file: {uri.path}")
            try:
                from virtctl.xml import xmlapi

                conf = node.load(xmlapi.read_file(uri.path), source=uri.path)
            except VirtError as exc:
                raise ConnectFailed(f"failed to load node file: {exc.message}",
                                    detail={"cause": exc.to_json()}) from None
        else:
            raise ConnectFailed(
                f"invalid test driver URI '{uri.text}': use test:///default or test:///ABSOLUTE/PATH.xml")
        self._node = conf
        self.domains = TestDomainDriver()
        self.domains.load(conf.domains)
        self.domains.node = conf.info  # cpu-stats and vcpuinfo figures follow the node's CPUs
        from virtctl.drivers.test.snapshots import TestSnapshotDriver

        self.snapshots = TestSnapshotDriver(self.domains)
        self.domains.snapshot_store = self.snapshots
        from virtctl.drivers.test.storage import TestPoolDriver

        self.pools = TestPoolDriver()
        # test:///default's pools are parsed on first use (node.load_default)
        self.pools.load((lambda: conf.pools) if conf.lazy_objects else conf.pools, source=uri.path)
        from virtctl.drivers.test.networks import TestNetworkDriver

        self.networks = TestNetworkDriver()
        self.networks.load((lambda: conf.networks) if conf.lazy_objects else conf.networks, uri.path,
                           trusted=uri.path == "/default")

    def event_follower(self):
        # nothing but this process changes a test connection, and it is waiting: virsh's
        # event on test:///default in a batch sees nothing either
        from virtctl.drivers.qemu.events import IdleFollower

        return IdleFollower()

    def hostname(self) -> str:
        import socket

        return socket.gethostname()

    def version(self) -> Version:
        return Version(library=__version__, api_driver="TEST", hypervisor="TEST 0.0.2")

    def node_info(self) -> NodeInfo:
        return self._node.info

    # --- host statistics: libvirt's test driver's fixed figures (drivers/test/host.py) -----------
    def node_cpu_stats(self, cpu: int | None = None) -> dict:
        from virtctl.drivers.test import host

        return host.node_cpu_stats(cpu)

    def capabilities(self) -> str:
        from virtctl.drivers.test import host

        return host.capabilities(self.uri.path == "/default")

    def max_vcpus(self, type: str | None = None) -> int:  # noqa: A002
        from virtctl.drivers.test.domains import TEST_MAX_VCPUS

        return TEST_MAX_VCPUS

    def sysinfo(self) -> str:
        from virtctl.drivers.test import host

        return host.SYSINFO

    def _cells(self) -> list[int]:
        from virtctl.drivers.test import host

        return host.cells(self.uri.path == "/default")

    def free_memory(self) -> int:
        return sum(free for _, free in self._cells())

    def cells_free_memory(self, start: int = 0, count: int | None = None) -> list[int]:
        from virtctl.errors import InvalidArg

        cells = self._cells()
        if start >= len(cells) and count is not None:
            raise InvalidArg("invalid argument: Range exceeds available cells")
        end = len(cells) if count is None else start + count
        if end > len(cells):
            raise InvalidArg("invalid argument: Range exceeds available cells")
        return [mem for mem, _ in cells[start:end]]
