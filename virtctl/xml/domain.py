"""The domain model: typed access to a ``<domain>`` definition.

A :class:`DomainDef` wraps the parsed element tree.  Properties read and
write the tree directly, so elements the model does not interpret survive a
round trip untouched.  ``normalize`` fills the defaults libvirt fills
(UUID, currentMemory, MAC addresses, ...) and puts elements in libvirt's
order, so that ``dumpxml`` reads like libvirt's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from virtctl.errors import InvalidArg, XMLError
from virtctl.xml import xmlapi
from virtctl.xml.units import to_kib

NAME_MAX = 200  # bytes; generous, but keeps file and socket names sane

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


def check_name(name: str | None, what: str = "domain") -> str:
    """Refuse names that break paths, terminals or command lines.

    libvirt's schema accepts ``a/b`` and ``..``; we refuse them in code
    (see RELIABILITY.md).  A leading ``-`` is refused because such a name
    cannot be typed as an argument."""
    if name is None or name == "":
        raise XMLError(f"{what} name must not be empty")
    if "/" in name:
        raise XMLError(f"{what} name '{name}' cannot contain '/'")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise XMLError(f"{what} name {name!r} cannot contain control characters")
    if name in (".", ".."):
        raise XMLError(f"{what} name '{name}' is not allowed")
    if name.startswith("-"):
        raise XMLError(f"{what} name '{name}' cannot start with '-'")
    if name != name.strip():
        raise XMLError(f"{what} name {name!r} cannot start or end with white space")
    if len(name.encode("utf-8")) > NAME_MAX:
        raise XMLError(f"{what} name is longer than {NAME_MAX} bytes")
    return name


_TARGET_RE = re.compile(r"^(fd|hd|vd|sd|xvd|ubd)([a-z]+)$")


def target_index(dev: str) -> tuple[str, int]:
    """Order key of a disk target name: ``vdb`` -> (``vd``, 1), ``sdaa`` -> (``sd``, 26)."""
    m = _TARGET_RE.match(dev or "")
    if not m:
        return (dev or "", -1)
    n = 0
    for ch in m.group(2):
        n = n * 26 + (ord(ch) - 96)
    return m.group(1), n - 1


def _disk_bus(d) -> str:
    t = d.find("target")
    return t.get("bus", "") if t is not None else ""


def _disk_dev(d) -> str:
    t = d.find("target")
    return t.get("dev", "") if t is not None else ""


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
        if validate:
            from virtctl.xml import validate as v

            v.validate(root, "domain", source=source, text=text)
        d = cls(root)
        d.check(source)
        return d

    def copy(self) -> "DomainDef":
        return DomainDef(xmlapi.copy(self.root))

    def check(self, source: str = "<input>") -> None:
        """Semantic checks the schema cannot make."""
        check_name(self.name)
        if self.root.find("memory") is None and self.root.find("maxMemory") is None:
            raise XMLError(f"{source}: /domain: missing required element <memory> "
                           f"(the memory size must be given)")
        if "\n" in self.title:
            raise XMLError(f"{source}: /domain/title: a title cannot contain newlines")
        u = self.root.findtext("uuid")
        if u is not None:
            from virtctl.api.connection import canonical_uuid

            try:
                canonical_uuid(u)
            except InvalidArg:
                raise XMLError(f"{source}: /domain/uuid: malformed UUID '{u}'") from None

    def to_xml(self) -> str:
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
        try:
            value = int((el.text or "").strip())
        except ValueError:
            raise XMLError(f"/domain/{tag}: '{el.text}' is not a number") from None
        try:
            return to_kib(value, el.get("unit"))
        except InvalidArg as exc:
            raise XMLError(f"/domain/{tag}: {exc}") from None

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
    def normalize(self, *, arch: str = "x86_64") -> None:
        """Fill libvirt's defaults and order elements as libvirt formats them."""
        r = self.root
        if r.find("uuid") is None:
            xmlapi.sub(r, "uuid", text=new_uuid())
        else:
            r.find("uuid").text = self.uuid
        if r.find("memory") is not None:
            self.max_memory_kib = self.max_memory_kib
            self.memory_kib = min(self.memory_kib, self.max_memory_kib)
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
        self._order_top()
        self._order_devices()
        self._order_disks()

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
        """Disks in the order libvirt's parser gives them: each disk, in
        document order, goes before the first later-named disk of its bus
        already placed, else after the last disk of its bus, else at the end
        (virDomainDiskInsert)."""
        disks = self.root.findall("devices/disk")
        placed: list = []
        for disk in disks:
            bus, index = _disk_bus(disk), target_index(_disk_dev(disk))[1]
            at = -1
            for i in range(len(placed) - 1, -1, -1):
                if _disk_bus(placed[i]) != bus:
                    continue
                if target_index(_disk_dev(placed[i]))[1] > index:
                    at = i
                elif at == -1:
                    at = i + 1
            placed.insert(len(placed) if at == -1 else at, disk)
        if placed == disks:
            return
        dev = self.root.find("devices")
        first = list(dev).index(disks[0])
        for d in disks:
            dev.remove(d)
        for i, d in enumerate(placed):
            dev.insert(first + i, d)

    def assign_drive_addresses(self) -> None:
        """libvirt's generic defaults for disks on drive buses: a cdrom is
        read-only; ide/sata/scsi/fdc disks without an address get a drive
        address computed from the target name; the disk controllers they
        name are added when missing (in libvirt's order: scsi, fdc, ide,
        sata)."""
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
