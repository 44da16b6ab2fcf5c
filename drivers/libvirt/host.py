"""Host information on a libvirt connection (nodecpustats, nodememstats,
capabilities, domcapabilities, maxvcpus, sysinfo, freecell): a mixin of
driver.LibvirtDriver (``self.lv``, ``self.conn``)."""
from __future__ import annotations


class HostMixin:
    pass
