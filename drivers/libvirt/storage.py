"""Storage pool and volume operations on a libvirt connection
(base.PoolDriver onto virStoragePool*/virStorageVol*), errors through errors.TABLE."""
from __future__ import annotations

from virtctl.drivers.base import PoolDriver


class LibvirtPoolDriver(PoolDriver):
    driver_name = "libvirt"

    def __init__(self, lv, conn):
        self.lv, self.conn = lv, conn
