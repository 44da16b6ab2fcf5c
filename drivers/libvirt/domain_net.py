"""The domain side of networking on a libvirt connection (domifaddr,
domifstat, domif-setlink): a mixin of domains.LibvirtDomainDriver, which
gives ``self.lv``, ``self.conn`` and ``self._dom(uuid)``."""
from __future__ import annotations


class DomainNetMixin:
    pass
