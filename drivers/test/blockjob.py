"""Block devices of the test driver (a mixin of ``TestDomainDriver``): as
libvirt's test driver, ``domblkinfo`` answers with fixed figures for any
disk of the domain, active or not, and every block job (commit, pull, copy,
job info/abort/speed, resize) is NOT_SUPPORTED (the defaults of
drivers/base.py)."""
from __future__ import annotations

from virtctl.errors import InvalidArg

# testDomainGetBlockInfo's figures (libvirt src/test/test_driver.c)
_CAPACITY, _ALLOCATION, _PHYSICAL = 1099506450432, 1099511627776, 1099511627776


def find_disk(root, disk: str):
    """The ``<disk>`` of a domain element whose target is ``disk`` or whose
    source (file, dev, volume) is it; None if none (virDomainDiskByName)."""
    for d in root.findall("devices/disk"):
        tgt = d.find("target")
        if tgt is not None and tgt.get("dev") == disk:
            return d
    for d in root.findall("devices/disk"):
        src = d.find("source")
        if src is not None and disk in (src.get("file"), src.get("dev")):
            return d
    return None


class TestBlockMixin:
    def block_info(self, uuid: str, disk: str) -> dict:
        d = self._get(uuid)
        cur = (self._live(d) if d.id is not None else None) or d.config
        if find_disk(cur.root, disk) is None:
            raise InvalidArg(f"invalid argument: invalid path {disk} not assigned to domain",
                             detail={"disk": disk})
        return {"capacity": _CAPACITY, "allocation": _ALLOCATION, "physical": _PHYSICAL}
