"""Statistics, jobs, metadata and the small domain commands on a libvirt
connection (domstats, cpu-stats, vcpuinfo, domblkerror, domcontrol, domtime,
domjobinfo, domjobabort, desc, metadata, inject-nmi, dompmsuspend,
dompmwakeup, send-process-signal, vncdisplay): a mixin of
domains.LibvirtDomainDriver (``self.lv``, ``self.conn``, ``self._dom``)."""
from __future__ import annotations


class DomainStatsMixin:
    pass
