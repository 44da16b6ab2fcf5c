"""Block jobs and block device information on a libvirt connection
(blockcommit, blockpull, blockcopy, blockjob, blockresize, domblkinfo): a
mixin of domains.LibvirtDomainDriver (``self.lv``, ``self.conn``, ``self._dom``)."""
from __future__ import annotations


class BlockJobMixin:
    pass
