"""``<disk type='volume'><source pool='P' volume='V'/>`` at start: the
volume's file, so the argv builder sees ``<disk type='file'>`` with the
volume's path (and its format, when ``<driver type>`` is not given)."""
from __future__ import annotations

from virtctl.errors import NoStoragePool, NoStorageVol, OperationFailed


def has_volume_disks(definition) -> bool:
    return any(d.get("type") == "volume" for d in definition.root.findall("devices/disk"))


def resolve(state, definition):
    """``definition`` itself when no disk names a volume, else a copy with
    each volume disk turned into a file disk."""
    if not has_volume_disks(definition):
        return definition
    from virtctl.drivers.qemu.storage.pools import QemuPoolDriver
    from virtctl.xml import xmlapi

    pools = QemuPoolDriver(state)
    live = definition.copy()
    for disk in live.root.findall("devices/disk"):
        if disk.get("type") != "volume":
            continue
        src = disk.find("source")
        pool, vol = (src.get("pool"), src.get("volume")) if src is not None else (None, None)
        tgt = disk.find("target")
        dev = tgt.get("dev", "?") if tgt is not None else "?"
        if not pool or not vol:
            raise OperationFailed(f"disk '{dev}': <disk type='volume'> needs <source pool=... volume=...>")
        rec = next((p for p in pools.list() if p.name == pool), None)
        if rec is None:
            raise NoStoragePool(f"disk '{dev}': no storage pool with matching name '{pool}'", detail={"pool": pool})
        try:
            v = pools.volume_by_name(rec.uuid, vol)
        except NoStorageVol:
            raise NoStorageVol(f"disk '{dev}': no storage vol '{vol}' in pool '{pool}'",
                               detail={"pool": pool, "vol": vol}) from None
        disk.set("type", "file")
        for a in ("pool", "volume", "mode"):
            src.attrib.pop(a, None)
        src.set("file", v.path)
        drv = disk.find("driver")
        if drv is None:
            drv = xmlapi.element("driver", {"name": "qemu"})
            disk.insert(0, drv)
        if not drv.get("type"):
            drv.set("type", v.format)
    return live
