"""Network operations on a libvirt connection (base.NetworkDriver onto
virNetwork*), errors through errors.TABLE."""
from __future__ import annotations

from virtctl.drivers.base import NetworkDriver


class LibvirtNetworkDriver(NetworkDriver):
    driver_name = "libvirt"

    def __init__(self, lv, conn):
        self.lv, self.conn = lv, conn
