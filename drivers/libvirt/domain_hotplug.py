"""Device hotplug on a libvirt connection (attach-device, detach-device,
detach-device-alias, update-device and the commands built on them): a mixin
of domains.LibvirtDomainDriver (``self.lv``, ``self.conn``, ``self._dom``)."""
from __future__ import annotations


class HotplugMixin:
    pass
