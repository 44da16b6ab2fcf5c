"""``<disk>`` -> ``-blockdev`` nodes and disk devices (part of the pure argv
builder; a mixin of ``argv_devices._Devices``)."""
from __future__ import annotations

from virtctl.drivers.qemu.argv_common import bad, js, unsupported
from virtctl.xml.domain import target_index

# <disk><driver type> -> -blockdev format driver
_FORMATS = {"raw": "raw", "iso": "raw", "qcow2": "qcow2", "qed": "qed", "vmdk": "vmdk",
            "vdi": "vdi", "vhdx": "vhdx", "vpc": "vpc"}
_COW = {"qcow2", "qed", "vmdk"}  # formats that take a "backing" option
# <driver cache> -> (cache.direct, cache.no-flush, device write-cache)
_CACHE = {
    "none": (True, False, "on"), "writethrough": (False, False, "off"),
    "writeback": (False, False, "on"), "directsync": (True, False, "off"),
    "unsafe": (False, True, "on"), "default": (None, None, None),
}

class _Absent:
    pass


_ABSENT = _Absent()


class StorageMixin:
    def disk(self, el) -> None:
        c = self.ctx
        c.use(el)
        dtype = c.attr(el, "type", "file")
        device = c.attr(el, "device", "disk")
        if dtype not in ("file", "block"):
            raise unsupported(el, f"<disk type='{dtype}'>", "only file and block disks are")
        if device not in ("disk", "cdrom"):
            raise unsupported(el, f"<disk device='{device}'>")
        cdrom = device == "cdrom"
        tgt = c.child(el, "target")
        if tgt is None:
            raise bad(el, "<disk> needs a <target dev=...>")
        dev_name = c.attr(tgt, "dev", "")
        prefix, index = target_index(dev_name)
        bus = c.attr(tgt, "bus") or {"vd": "virtio", "sd": "scsi",
                                     "hd": "ide" if self.ctx.family == "pc" else "sata"}.get(prefix)
        if bus is None:
            raise unsupported(tgt, f"<target dev='{dev_name}'>", "give bus= (virtio, sata, ide or scsi)")
        tray = c.attr(tgt, "tray")
        if tray not in (None, "closed"):
            raise unsupported(tgt, f"<target tray='{tray}'>")
        ro = (c.child(el, "readonly") is not None) or cdrom
        drv = c.child(el, "driver")
        if drv is not None and c.attr(drv, "name", "qemu") != "qemu":
            raise unsupported(drv, f"<driver name='{drv.get('name')}'>")
        # No <driver type>: raw.  QEMU must never guess a format from the contents
        # (a guest could write a qcow2 header into a raw disk: CVE-2010-2237).
        fmt = c.attr(drv, "type", "raw")
        if fmt not in _FORMATS:
            raise unsupported(drv, f"<driver type='{fmt}'>")
        cache = c.attr(drv, "cache")
        if cache is not None and cache not in _CACHE:
            raise unsupported(drv, f"<driver cache='{cache}'>")
        io = c.attr(drv, "io")
        if io not in (None, "threads", "native", "io_uring"):
            raise unsupported(drv, f"<driver io='{io}'>")
        discard = c.attr(drv, "discard")
        if discard not in (None, "unmap", "ignore"):
            raise unsupported(drv, f"<driver discard='{discard}'>")
        dz = c.attr(drv, "detect_zeroes")
        if dz not in (None, "off", "on", "unmap"):
            raise unsupported(drv, f"<driver detect_zeroes='{dz}'>")

        src = c.child(el, "source")
        path = None
        if src is not None:
            c.use(src, "index")
            path = c.attr(src, "file" if dtype == "file" else "dev")
        drive = None
        direct, no_flush, write_cache = _CACHE.get(cache or "default")
        if path:
            drive = self.blockdev(el, dtype, path, _FORMATS[fmt], ro, direct, no_flush, io, discard, dz)
        elif not cdrom:
            raise bad(el, "a <disk device='disk'> needs a <source>")
        if ro and not cdrom and bus in ("sata", "ide"):
            raise unsupported(el.find("readonly"), "<readonly/> on an IDE/SATA hard disk",
                              "QEMU's ide-hd cannot be read-only; use bus virtio or scsi")

        dev: dict = {}
        kind = "cd" if cdrom else "hd"
        if bus == "virtio":
            if cdrom:
                raise unsupported(tgt, "<disk device='cdrom'> on bus 'virtio'")
            dev.update(driver="virtio-blk-pci", id=f"virtio-disk{index}")
        elif bus in ("sata", "ide"):
            ctrl, unit_bus, unit = self.drive_address(el, bus, index)
            if bus == "sata":
                if ctrl not in self.sata:
                    raise bad(el, f"no <controller type='sata' index='{ctrl}'>")
                dev.update(driver=f"ide-{kind}", bus=f"{self.sata[ctrl]}.{unit}", id=f"sata{ctrl}-0-{unit}")
            else:
                if self.ctx.family != "pc":
                    raise unsupported(tgt, "<target bus='ide'> on q35", "q35 has no IDE; use sata")
                dev.update(driver=f"ide-{kind}", bus=f"ide.{unit_bus}", unit=unit,
                           id=f"ide{ctrl}-{unit_bus}-{unit}")
        elif bus == "scsi":
            ctrl, unit_bus, unit, target = self.scsi_address(el, index)
            if ctrl not in self.scsi:
                raise bad(el, f"no <controller type='scsi' index='{ctrl}'>")
            dev.update(driver=f"scsi-{kind}", bus=f"{self.scsi[ctrl]}.0", channel=unit_bus,
                       **{"scsi-id": target, "lun": unit}, id=f"scsi{ctrl}-{unit_bus}-{target}-{unit}")
        else:
            raise unsupported(tgt, f"<target bus='{bus}'>")
        if drive:
            dev["drive"] = drive
        if write_cache:
            dev["write-cache"] = write_cache
        serial = c.text(el, "serial")
        if serial:
            dev["serial"] = serial
        bio = c.child(el, "blockio")
        if bio is not None:
            for a, p in (("logical_block_size", "logical_block_size"), ("physical_block_size", "physical_block_size")):
                v = c.attr(bio, a)
                if v is not None:
                    dev[p] = int(v)
        if bus in ("sata", "ide", "scsi"):
            dev["_addr_kind"] = "drive"
        explicit = self.common(el, dev, pci=(bus == "virtio"))
        self.add_device(dev, explicit)

    def blockdev(self, el, dtype, path, fmt, ro, direct, no_flush, io, discard, dz) -> str:
        """-blockdev protocol node + format node; returns the format node name."""
        self.node += 1
        n = self.node
        filename = self.ctx.files.image(path, read_only=ro, block=(dtype == "block"))
        proto: dict = {"driver": "file" if dtype == "file" else "host_device", "filename": filename,
                       "node-name": f"libvirt-{n}-storage", "read-only": ro}
        form: dict = {"node-name": f"libvirt-{n}-format", "read-only": ro, "driver": fmt,
                      "file": f"libvirt-{n}-storage"}
        for node in (proto, form):
            if direct is not None:
                node["cache"] = {"direct": direct, "no-flush": no_flush}
            if discard:
                node["discard"] = discard
        if io:
            proto["aio"] = io
        if dz:
            form["detect-zeroes"] = dz
        backing = self.backing_store(el)
        if backing is not _ABSENT:
            if fmt not in _COW:
                if backing is not None:
                    raise unsupported(el.find("backingStore"), "<backingStore>", f"format '{fmt}' has no backing file")
            else:
                form["backing"] = backing
        # Without <backingStore>, QEMU would open the backing chain recorded in
        # the image header itself: the driver never lets it, it resolves every
        # chain into <backingStore> first (backing.py, run by command.prepare).
        self.out.blockdevs += ["-blockdev", js(proto), "-blockdev", js(form)]
        return form["node-name"]

    def backing_store(self, el):
        """``<backingStore/>`` (empty) -> None (no backing); a chain -> its top node name;
        absent -> _ABSENT (QEMU follows the image header)."""
        c = self.ctx
        bs = c.child(el, "backingStore")
        if bs is None:
            return _ABSENT
        c.use(bs, "index")
        btype = c.attr(bs, "type")
        if btype is None and len(bs) == 0:
            return None
        if btype not in ("file", "block"):
            raise unsupported(bs, f"<backingStore type='{btype}'>")
        f = c.child(bs, "format")
        fmt = c.attr(f, "type")
        if fmt not in _FORMATS:
            raise unsupported(bs, "<backingStore> without <format type=...>" if fmt is None
                              else f"<backingStore><format type='{fmt}'>",
                              "a backing image needs an explicit format")
        src = c.child(bs, "source")
        path = c.attr(src, "file" if btype == "file" else "dev")
        if not path:
            raise bad(bs, "<backingStore> needs a <source>")
        return self.blockdev(bs, btype, path, _FORMATS[fmt], True, None, None, None, None, None)

    def drive_address(self, el, bus: str, index: int) -> tuple[int, int, int]:
        """(controller, bus, unit) of an IDE/SATA disk: <address type='drive'> or from the name."""
        c = self.ctx
        addr = el.find("address")
        if addr is not None and addr.get("type") == "drive":
            c.use(addr, "type")
            return (int(c.attr(addr, "controller", "0")), int(c.attr(addr, "bus", "0")),
                    int(c.attr(addr, "unit", "0")))
        if index < 0:
            raise bad(el, "cannot derive a drive address from the target name")
        if bus == "sata":
            return index // 6, 0, index % 6
        return index // 4, (index % 4) // 2, index % 2

    def scsi_address(self, el, index: int) -> tuple[int, int, int, int]:
        c = self.ctx
        addr = el.find("address")
        if addr is not None and addr.get("type") == "drive":
            c.use(addr, "type")
            return (int(c.attr(addr, "controller", "0")), int(c.attr(addr, "bus", "0")),
                    int(c.attr(addr, "unit", "0")), int(c.attr(addr, "target", "0")))
        if index < 0:
            raise bad(el, "cannot derive a drive address from the target name")
        return 0, 0, index, 0  # virtio-scsi: LUN n of target 0, as libvirt assigns

    # --- network --------------------------------------------------------------------------
