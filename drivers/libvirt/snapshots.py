"""Domain snapshot operations on a libvirt connection (base.SnapshotDriver
onto virDomainSnapshot*), errors through errors.TABLE."""
from __future__ import annotations

from virtctl.drivers.base import SnapshotDriver


class LibvirtSnapshotDriver(SnapshotDriver):
    driver_name = "libvirt"

    def __init__(self, lv, conn):
        self.lv, self.conn = lv, conn
