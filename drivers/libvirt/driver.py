"""A connection to libvirt (``libvirt:URI``, or any URI with a transport or a
host, or a hypervisor scheme virtctl has no driver of its own for: see
drivers.route and the README's URI table)."""
from __future__ import annotations

from virtctl.api.types import NodeInfo, Version
from virtctl.drivers.base import Driver
from virtctl.drivers.libvirt.errors import convert, import_binding, mapped
from virtctl.drivers.libvirt.host import HostMixin
from virtctl.errors import ConnectFailed

PREFIX = "libvirt:"


def libvirt_uri(text: str) -> str:
    """The URI libvirt is given: ``libvirt:test:///default`` -> ``test:///default``."""
    return text[len(PREFIX):] if text.startswith(PREFIX) else text


def _version(n: int) -> str:
    return f"{n // 1000000}.{n // 1000 % 1000}.{n % 1000}"


class LibvirtDriver(HostMixin, Driver):
    name = "libvirt"

    def __init__(self, uri, *, readonly: bool = False):
        super().__init__(uri, readonly=readonly)
        lv = self.lv = import_binding()
        self.target = libvirt_uri(uri.text)
        from virtctl.drivers.libvirt.events import register_impl

        register_impl(lv)  # before the open: events and console streams need it (events.py)
        try:
            self.conn = lv.openReadOnly(self.target) if readonly else lv.open(self.target)
        except lv.libvirtError as exc:
            err = convert(lv, exc)
            raise ConnectFailed(f"failed to connect to the hypervisor: {err.message}",
                                detail={"uri": self.target, **err.detail}) from None
        from virtctl.drivers.libvirt.domains import LibvirtDomainDriver

        from virtctl.drivers.libvirt.networks import LibvirtNetworkDriver
        from virtctl.drivers.libvirt.snapshots import LibvirtSnapshotDriver
        from virtctl.drivers.libvirt.storage import LibvirtPoolDriver

        self.domains = LibvirtDomainDriver(lv, self.conn)
        self.networks = LibvirtNetworkDriver(lv, self.conn)
        self.pools = LibvirtPoolDriver(lv, self.conn)
        self.snapshots = LibvirtSnapshotDriver(lv, self.conn)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except self.lv.libvirtError:
                pass  # a connection already cut
            self.conn = None

    def hostname(self) -> str:
        with mapped(self.lv):
            return self.conn.getHostname()

    def version(self) -> Version:
        with mapped(self.lv):
            kind = self.conn.getType()
            try:
                hv = f"{kind} {_version(self.conn.getVersion())}"
            except self.lv.libvirtError:
                hv = kind
        from virtctl import __version__

        return Version(library=__version__, api_driver=kind, hypervisor=hv)

    def node_info(self) -> NodeInfo:
        with mapped(self.lv):
            model, mem_mib, cpus, mhz, nodes, sockets, cores, threads = self.conn.getInfo()
        return NodeInfo(model=model, memory_kib=mem_mib * 1024, cpus=cpus, mhz=mhz, nodes=nodes,
                        sockets=sockets, cores=cores, threads=threads)

    def canonical_uri(self) -> str:
        with mapped(self.lv):
            return PREFIX + self.conn.getURI() if self.uri.text.startswith(PREFIX) else self.conn.getURI()

    def event_follower(self):
        from virtctl.drivers.libvirt.events import Follower

        return Follower(self.lv, self.conn)
