"""The domain model: typed access to a ``<domain>`` definition.

A :class:`DomainDef` wraps the parsed element tree.  Properties read and
write the tree directly, so elements the model does not interpret survive a
round trip untouched.  ``normalize`` fills the defaults libvirt fills
(UUID, currentMemory, MAC addresses, ...) and puts elements in libvirt's
order, so that ``dumpxml`` reads like libvirt's.
"""
from __future__ import annotations

from dataclasses import dataclass

from virtctl.errors import InvalidArg, XMLError
from virtctl.xml import xmlapi
from virtctl.xml.disk_order import disk_bus as _disk_bus
from virtctl.xml.disk_order import disk_dev as _disk_dev
from virtctl.xml.disk_order import order_disks, target_index  # noqa: F401 - target_index re-exported
from virtctl.xml.domain_checks import (  # noqa: F401 - the limits and check_name re-exported
    MAX_DEVICES,
    MAX_VCPUS,
    MEMORY_MISSING,
    NAME_MAX,
    check_devices,
    check_name,
    check_vcpu_request,
    check_vcpus,
    numa_kib,
    size_kib,
)

# How much larger than its text a document can format: escaping at most 6
# times a character ("'" -> "&apos;"), indentation at most 2 x 250 levels
# on two lines per element of at least 4 characters ("<a/>").  Smaller
# documents (under 40 KiB) need no trial formatting to know they fit.
_MAX_GROWTH = 256

# The bus a disk target name implies (libvirt's virDomainDiskDefAssignAddress
# defaults, for targets written without bus=).
_BUS_OF_PREFIX = {"hd": "ide", "sd": "scsi", "vd": "virtio", "xvd": "xen", "ubd": "uml", "fd": "fdc"}

# Interface target names that libvirt treats as generated and forgets when a
# definition is parsed (virDomainNetDefParseXML): a driver may add its own.
GENERATED_IFNAME_PREFIXES = ("vnet", "macvtap", "macvlan")

# libvirt's order of the top-level children of <domain> (virDomainDefFormat).
TOP_ORDER = [
    "name", "uuid", "genid", "title", "description", "metadata", "maxMemory", "memory",
    "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu", "vcpus", "iothreads",
    "iothreadids", "cputune", "numatune", "resource", "sysinfo", "bootloader", "bootloader_args",
    "os", "idmap", "features", "cpu", "clock", "on_poweroff", "on_reboot", "on_crash",
    "on_lockfailure", "pm", "perf", "devices", "seclabel", "keywrap", "launchSecurity",
]
# libvirt's order of device kinds inside <devices>.
DEVICE_ORDER = [
    "emulator", "disk", "controller", "lease", "filesystem", "interface", "smartcard", "serial",
    "parallel", "console", "channel", "input", "tpm", "graphics", "sound", "audio", "video",
    "hostdev", "redirdev", "redirfilter", "hub", "watchdog", "memballoon", "rng", "nvram",
    "panic", "shmem", "memory", "iommu", "vsock", "crypto",
]


def new_uuid() -> str:
    import uuid  # lazily: uuid pulls in platform and socket (~15 ms at start-up)

    return str(uuid.uuid4())


def new_mac() -> str:
    # 52:54:00 is the prefix QEMU and libvirt use for generated addresses.
    import secrets

    return "52:54:00:" + ":".join(f"{secrets.randbelow(256):02x}" for _ in range(3))


@dataclass(frozen=True)
class Disk:
    type: str
    device: str
    source: str | None
    target: str | None
    bus: str | None
    driver_type: str | None
    readonly: bool


@dataclass(frozen=True)
class Interface:
    type: str
    source: str | None
    target: str | None
    model: str | None
    mac: str | None


def _disk_source(el) -> str | None:
    src = el.find("source")
    if src is None:
        return None
    for attr in ("file", "dev", "dir", "name", "volume", "pool"):
        if src.get(attr):
            if attr == "volume" and src.get("pool"):
                return f"{src.get('pool')}/{src.get('volume')}"
            return src.get(attr)
    return None


def _iface_source(el) -> str | None:
    src = el.find("source")
    if src is None:
        return None
    for attr in ("network", "bridge", "dev", "path", "name"):
        if src.get(attr):
            return src.get(attr)
    return None


class DomainDef:
    """A domain definition.  Construct with :meth:`parse` or :meth:`from_element`."""

    def __init__(self, root):
        if root.tag != "domain":
            raise XMLError(f"expected a <domain> document, found <{root.tag}>")
        self.root = root

    # --- construction -------------------------------------------------------
    @classmethod
    def parse(cls, text: str | bytes, *, source: str = "<input>", validate: bool = True) -> "DomainDef":
        root = xmlapi.parse(text, source=source)
        if root.tag != "domain":
            raise XMLError(f"{source}: expected a <domain> document, found <{root.tag}>")
        d = cls(root)
        if validate:
            d._check_limits(source)  # first: validating thousands of devices takes a while
            from virtctl.xml import validate as v

            v.validate(root, "domain", source=source, text=text)
        d.check(source, new=validate)
        if validate and len(text) * _MAX_GROWTH > xmlapi.MAX_BYTES:
            # a definition that would format past the limit could be kept but
            # never read back: refuse it now (tostring raises), not at dumpxml
            d.to_xml()
        return d

    def copy(self) -> "DomainDef":
        return DomainDef(xmlapi.copy(self.root))

    def _check_limits(self, source: str) -> None:
        check_devices(self.root, source)

    def _numa_kib(self) -> int:
        return numa_kib(self.root)

    def _memory_total_kib(self) -> int:
        """<memory>, or the NUMA cells' total where <memory> is 0 or missing
        (libvirt's rule)."""
        return self._mem("memory") or self._numa_kib()

    def check(self, source: str = "<input>", *, new: bool = True) -> None:
        """Semantic checks the schema cannot make, with libvirt's messages
        where libvirt makes the same check.

        ``new`` (a definition given by the user): also the vCPU counts,
        memory sizes and ``MAX_DEVICES``.  A definition read back from a
        driver's state is not refused for them: devices a driver added, or
        a definition stored by an older virtctl, never make it unreadable."""
        check_name(self.name)
        if new:
            check_vcpus(self.root)
            if self._memory_total_kib() == 0:
                raise XMLError(MEMORY_MISSING)
            for tag in ("maxMemory", "currentMemory"):
                self._mem(tag)  # numerical overflow
        elif self.root.find("memory") is None and self.root.find("maxMemory") is None:
            raise XMLError(MEMORY_MISSING)
        if "\n" in self.title:
            raise XMLError(f"{source}: /domain/title: a title cannot contain newlines")
        u = self.root.findtext("uuid")
        if u is not None:
            from virtctl.api.connection import canonical_uuid

            try:
                canonical_uuid(u)
            except InvalidArg:
                raise XMLError(f"{source}: /domain/uuid: malformed UUID '{u}'") from None
        if new:
            self._check_limits(source)

    def to_xml(self) -> str:
        """The definition as libvirt formats it.  Raises XMLError rather than
        return a text that xmlapi.parse would refuse (what normalisation
        added can push a document past a limit): a driver formats before it
        writes, so nothing is written that could not be read back."""
        xmlapi.check_limits(self.root, "the formatted definition")
        return xmlapi.tostring(self.root)

    # --- simple properties ----------------------------------------------------
    def _text(self, tag: str) -> str | None:
        el = self.root.find(tag)
        return None if el is None else (el.text or "")

    def _set_text(self, tag: str, value: str | None) -> None:
        el = self.root.find(tag)
        if value is None:
            if el is not None:
                self.root.remove(el)
            return
        if el is None:
            el = xmlapi.sub(self.root, tag)
        el.text = value
        self._order_top()

    @property
    def type(self) -> str:
        return self.root.get("type", "")

    @property
    def name(self) -> str:
        return self._text("name") or ""

    @name.setter
    def name(self, value: str) -> None:
        self._set_text("name", check_name(value))

    @property
    def uuid(self) -> str | None:
        u = self._text("uuid")
        if u is None:
            return None
        from virtctl.api.connection import canonical_uuid

        return canonical_uuid(u)

    @uuid.setter
    def uuid(self, value: str) -> None:
        self._set_text("uuid", value)

    @property
    def title(self) -> str:
        return self._text("title") or ""

    @property
    def description(self) -> str:
        return self._text("description") or ""

    @property
    def os_type(self) -> str:
        return self.root.findtext("os/type") or ""

    # --- memory (KiB) -----------------------------------------------------------
    def _mem(self, tag: str) -> int | None:
        el = self.root.find(tag)
        if el is None:
            return None
        text = (el.text or "").strip()
        try:
            value = int(text)
        except ValueError:
            raise XMLError(f"/domain/{tag}: '{el.text}' is not a number") from None
        return size_kib(value, el.get("unit"), text, tag)

    def _set_mem(self, tag: str, kib: int) -> None:
        el = self.root.find(tag)
        if el is None:
            el = xmlapi.sub(self.root, tag)
            self._order_top()
        el.text = str(kib)
        el.set("unit", "KiB")

    @property
    def max_memory_kib(self) -> int:
        return self._mem("memory") or 0

    @max_memory_kib.setter
    def max_memory_kib(self, kib: int) -> None:
        self._set_mem("memory", kib)

    @property
    def memory_kib(self) -> int:
        cur = self._mem("currentMemory")
        return cur if cur is not None else self.max_memory_kib

    @memory_kib.setter
    def memory_kib(self, kib: int) -> None:
        self._set_mem("currentMemory", kib)

    # --- vCPUs ------------------------------------------------------------------
    @property
    def max_vcpus(self) -> int:
        el = self.root.find("vcpu")
        if el is None:
            return 1
        try:
            return int((el.text or "1").strip())
        except ValueError:
            raise XMLError(f"/domain/vcpu: '{el.text}' is not a number") from None

    @property
    def vcpus(self) -> int:
        el = self.root.find("vcpu")
        if el is not None and el.get("current"):
            return int(el.get("current"))
        return self.max_vcpus

    def set_vcpus(self, count: int, *, maximum: bool = False) -> None:
        check_vcpu_request(count)
        el = self.root.find("vcpu")
        if el is None:
            el = xmlapi.sub(self.root, "vcpu", {"placement": "static"}, "1")
            self._order_top()
        if maximum:
            cur = self.vcpus
            el.text = str(count)
            if cur < count:
                el.set("current", str(cur))
            else:
                el.attrib.pop("current", None)
        else:
            if count == self.max_vcpus:
                el.attrib.pop("current", None)
            else:
                el.set("current", str(count))

    # --- devices ----------------------------------------------------------------
    @property
    def devices(self):
        el = self.root.find("devices")
        if el is None:
            el = xmlapi.sub(self.root, "devices")
            self._order_top()
        return el

    def disks(self) -> list[Disk]:
        out = []
        for el in self.root.findall("devices/disk"):
            tgt = el.find("target")
            drv = el.find("driver")
            out.append(Disk(
                type=el.get("type", "file"), device=el.get("device", "disk"),
                source=_disk_source(el),
                target=tgt.get("dev") if tgt is not None else None,
                bus=tgt.get("bus") if tgt is not None else None,
                driver_type=drv.get("type") if drv is not None else None,
                readonly=el.find("readonly") is not None,
            ))
        return out

    def interfaces(self) -> list[Interface]:
        out = []
        for el in self.root.findall("devices/interface"):
            tgt, model, mac = el.find("target"), el.find("model"), el.find("mac")
            out.append(Interface(
                type=el.get("type", ""), source=_iface_source(el),
                target=tgt.get("dev") if tgt is not None else None,
                model=model.get("type") if model is not None else None,
                mac=mac.get("address") if mac is not None else None,
            ))
        return out

    # --- the rest, as typed views (virtctl/xml/model_parts.py) -------------------
    @property
    def os(self):
        return _parts().read_os(self.root)

    @property
    def features(self) -> dict[str, dict[str, str]]:
        return _parts().read_features(self.root)

    @property
    def clock(self):
        return _parts().read_clock(self.root)

    @property
    def cpu(self):
        return _parts().read_cpu(self.root)

    @property
    def lifecycle(self) -> dict[str, str]:
        """``on_poweroff``/``on_reboot``/``on_crash`` with libvirt's defaults."""
        return _parts().read_lifecycle(self.root)

    @property
    def metadata(self):
        """The ``<metadata>`` element (foreign-namespace children), or None."""
        return self.root.find("metadata")

    def devices_of(self, kind: str) -> list:
        """Typed views of ``<devices>/<kind>`` (controller, serial, console,
        channel, graphics, video, input, memballoon, rng, ...)."""
        return _parts().read_devices(self.root, kind)

    # --- normalisation ------------------------------------------------------------
    def normalize(self, *, arch: str = "x86_64",
                  ifname_prefixes: tuple[str, ...] = GENERATED_IFNAME_PREFIXES) -> None:
        """Fill libvirt's defaults and order elements as libvirt formats them.

        ``ifname_prefixes``: interface target names starting with one of
        these are forgotten, as libvirt forgets them (see
        :meth:`forget_generated_ifnames`)."""
        r = self.root
        if r.find("uuid") is None:
            xmlapi.sub(r, "uuid", text=new_uuid())
        else:
            r.find("uuid").text = self.uuid
        if not self._mem("memory") and self._numa_kib():
            self.max_memory_kib = self._numa_kib()  # libvirt: the cells' total
        if r.find("memory") is not None:
            self.max_memory_kib = self.max_memory_kib
            # libvirt: a currentMemory of 0 or above the maximum is the maximum
            cur = self.memory_kib
            self.memory_kib = cur if 0 < cur <= self.max_memory_kib else self.max_memory_kib
        vcpu = r.find("vcpu")
        if vcpu is None:
            xmlapi.sub(r, "vcpu", {"placement": "static"}, "1")
        elif vcpu.get("placement") is None:
            # libvirt writes placement first
            attrs = dict(vcpu.attrib)
            vcpu.attrib.clear()
            vcpu.set("placement", "static")
            for k, v in attrs.items():
                vcpu.set(k, v)
        os_el = r.find("os")
        if os_el is None:
            os_el = xmlapi.sub(r, "os")
        os_type = os_el.find("type")
        if os_type is None:
            os_type = xmlapi.sub(os_el, "type", text="hvm", index=0)
        if os_type.get("arch") is None:
            # libvirt writes arch before machine
            attrs = dict(os_type.attrib)
            os_type.attrib.clear()
            os_type.set("arch", arch)
            for k, v in attrs.items():
                os_type.set(k, v)
        if os_el.find("boot") is None and os_el.find("kernel") is None and r.find("devices/*/boot") is None:
            xmlapi.sub(os_el, "boot", {"dev": "hd"})
        if r.find("clock") is None:
            xmlapi.sub(r, "clock", {"offset": "utc"})
        for tag, default in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
            if r.find(tag) is None:
                xmlapi.sub(r, tag, text=default)
        self.devices  # noqa: B018 - creates <devices> when missing
        for el in r.findall("devices/interface"):
            if el.find("mac") is None:
                xmlapi.sub(el, "mac", {"address": new_mac()}, index=0)
        self.forget_generated_ifnames(ifname_prefixes)
        self._order_top()
        self._order_devices()
        self._order_disks()
        # what was added must not push the definition past a limit: refused
        # here, at define, rather than when it is first formatted
        xmlapi.check_limits(self.root, "the formatted definition")

    def forget_generated_ifnames(self, prefixes: tuple[str, ...] = GENERATED_IFNAME_PREFIXES) -> None:
        """Drop ``<target dev>`` of interfaces whose name a driver would have
        generated (``vnet0``, ``macvtap1``, ...): libvirt forgets such names
        when it parses a definition, so that a name given to a running
        domain's tap device never pins it in the stored definition (a name
        like ``vif1.0``, a Xen one, is kept by every driver but libxl's)."""
        for tgt in self.root.findall("devices/interface/target"):
            if (tgt.get("dev") or "").startswith(prefixes):
                tgt.attrib.pop("dev")
                if not len(tgt.attrib) and not len(tgt):
                    tgt.getparent().remove(tgt)

    def name_interfaces(self, prefix: str) -> None:
        """Give each interface without a target device the first unused
        ``PREFIXn`` (libvirt's test driver does this with ``testnet``)."""
        ifaces = self.root.findall("devices/interface")
        used = {t.get("dev") for t in self.root.findall("devices/interface/target")}
        n = 0
        for el in ifaces:
            if el.find("target") is not None:
                continue
            while f"{prefix}{n}" in used:
                n += 1
            used.add(f"{prefix}{n}")
            anchor = el.find("source")
            if anchor is None:
                anchor = el.find("mac")
            index = list(el).index(anchor) + 1 if anchor is not None else 0
            xmlapi.sub(el, "target", {"dev": f"{prefix}{n}"}, index=index)

    def _order_disks(self) -> None:
        order_disks(self.root)

    def _fill_disk_buses(self) -> None:
        """A disk target without ``bus`` gets the bus its name implies, as
        libvirt's post-parse gives it (``sdb`` -> scsi, ``hda`` -> ide)."""
        for tgt in self.root.findall("devices/disk/target"):
            if tgt.get("bus") is None:
                bus = _BUS_OF_PREFIX.get(target_index(tgt.get("dev", ""))[0])
                if bus is not None:
                    tgt.set("bus", bus)

    def assign_drive_addresses(self) -> None:
        """libvirt's generic defaults for disks on drive buses: a target
        without ``bus`` gets the one its name implies; a cdrom is read-only;
        ide/sata/scsi/fdc disks without an address get a drive address
        computed from the target name; the disk controllers they name are
        added when missing (in libvirt's order: scsi, fdc, ide, sata)."""
        # after normalize's ordering: libvirt orders disks by the bus as written
        self._fill_disk_buses()
        per_controller = {"ide": 4, "sata": 6, "scsi": 7, "fdc": 2}
        needed: dict[str, int] = {}
        for disk in self.root.findall("devices/disk"):
            bus = _disk_bus(disk)
            if disk.get("device") == "cdrom" and disk.find("readonly") is None:
                target = disk.find("target")
                xmlapi.sub(disk, "readonly", index=list(disk).index(target) + 1 if target is not None else None)
            if bus not in per_controller:
                continue
            addr = disk.find("address")
            if addr is None:
                idx = max(target_index(_disk_dev(disk))[1], 0)
                if bus == "ide":
                    ctl, b, unit = idx // 4, (idx % 4) // 2, idx % 2
                elif bus == "fdc":
                    ctl, b, unit = 0, 0, idx
                else:
                    ctl, b, unit = idx // per_controller[bus], 0, idx % per_controller[bus]
                addr = xmlapi.sub(disk, "address", {"type": "drive", "controller": ctl, "bus": b,
                                                    "target": 0, "unit": unit})
            if addr.get("type") == "drive":
                needed[bus] = max(needed.get(bus, 0), int(addr.get("controller", "0")))
        have = {(c.get("type"), c.get("index")) for c in self.root.findall("devices/controller")}
        dev = self.root.find("devices")
        for bus in ("scsi", "fdc", "ide", "sata"):
            for index in range(needed[bus] + 1) if bus in needed else ():
                if (bus, str(index)) not in have:
                    xmlapi.sub(dev, "controller", {"type": bus, "index": index})
        self._order_devices()

    def _order_top(self) -> None:
        _stable_order(self.root, TOP_ORDER)

    def _order_devices(self) -> None:
        dev = self.root.find("devices")
        if dev is not None:
            _stable_order(dev, DEVICE_ORDER)


def _parts():
    # imported on first use: its dataclasses cost ~10 ms that `list` never needs
    from virtctl.xml import model_parts

    return model_parts


def _stable_order(parent, order: list[str]) -> None:
    """Reorder children of ``parent`` by ``order``; unknown tags keep their
    relative place at the end (a stable sort, so same-kind order is kept)."""
    rank = {t: i for i, t in enumerate(order)}
    children = [c for c in parent if xmlapi.is_element(c)]
    keyed = sorted(enumerate(children), key=lambda ic: (rank.get(ic[1].tag, len(order)), ic[0]))
    if [c for _, c in keyed] == children:
        return
    for c in children:
        parent.remove(c)
    for _, c in keyed:
        parent.append(c)
