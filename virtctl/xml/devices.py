"""One device of a domain definition: parsed from a device XML, matched,
added, removed and updated in a definition (attach-device, detach-device,
update-device and the commands built on them).

Both drivers edit their definitions through these functions, so the same
device XML gives the same result and the same errors everywhere; the qemu
driver only adds what QEMU must be told (drivers/qemu/hotplug/).
"""
from __future__ import annotations

from virtctl.errors import InvalidArg, OperationFailed, OperationInvalid, VirtError, XMLError
from virtctl.xml import xmlapi

# the device kinds a definition's <devices> holds (libvirt's virDomainDeviceType names)
DEVICE_TAGS = ("disk", "controller", "lease", "filesystem", "interface", "input", "sound", "video",
               "hostdev", "watchdog", "graphics", "hub", "redirdev", "smartcard", "chardev", "memballoon",
               "nvram", "rng", "shmem", "tpm", "panic", "memory", "iommu", "vsock", "audio",
               "serial", "parallel", "console", "channel")
REMOVABLE = ("cdrom", "floppy")


def parse_device(xml: str | bytes, source: str = "<input>"):
    """The device element of a device XML document; XML_ERROR for another kind of document."""
    root = xmlapi.parse(xml, source)
    xmlapi.check_limits(root, source)
    if root.tag not in DEVICE_TAGS:
        raise XMLError(f"XML error: unknown device type '{root.tag}'", detail={"source": source})
    return root


def disk_target(el) -> str | None:
    t = el.find("target")
    return t.get("dev") if t is not None else None


def disk_source(el) -> str | None:
    s = el.find("source")
    if s is None:
        return None
    return s.get("file") or s.get("dev") or s.get("dir") or s.get("volume") or s.get("name")


def mac_of(el) -> str | None:
    m = el.find("mac")
    return m.get("address").lower() if m is not None and m.get("address") else None


def alias_of(el) -> str | None:
    a = el.find("alias")
    return a.get("name") if a is not None else None


def _canon(el) -> str:
    """An element's XML without what a driver adds (alias, address, generated target)."""
    c = xmlapi.copy(el)
    for tag in ("alias", "address"):
        for x in c.findall(tag):
            c.remove(x)
    return xmlapi.tostring(c)


def find_disk(root, name: str):
    """The disk whose target or source path is ``name`` (virsh's lookup), or None."""
    for d in root.findall("devices/disk"):
        if disk_target(d) == name:
            return d
    for d in root.findall("devices/disk"):
        if name and disk_source(d) == name:
            return d
    return None


def find_match(root, el):
    """The device of ``root`` that ``el`` designates (for detach/update), or None:
    a disk by its target, an interface by its MAC (else its type and source, if
    only one matches), any device by its alias, else by equal XML."""
    devices = root.find("devices")
    if devices is None:
        return None
    same = [d for d in devices if xmlapi.is_element(d) and d.tag == el.tag]
    alias = alias_of(el)
    if alias:
        for d in same:
            if alias_of(d) == alias:
                return d
    if el.tag == "disk":
        tgt = disk_target(el)
        return next((d for d in same if disk_target(d) == tgt), None)
    if el.tag == "interface":
        mac = mac_of(el)
        if mac:
            return next((d for d in same if mac_of(d) == mac), None)
        cands = [d for d in same if d.get("type") == el.get("type")]
        src = el.find("source")
        if src is not None:
            cands = [d for d in cands if d.find("source") is not None and
                     dict(d.find("source").attrib) == dict(src.attrib)]
        if len(cands) > 1:
            raise OperationFailed("operation failed: multiple devices matching MAC address and other "
                                  "parameters found", detail={"matches": len(cands)})
        return cands[0] if cands else None
    want = _canon(el)
    return next((d for d in same if _canon(d) == want), None)


def find_alias(root, alias: str):
    for d in root.findall("devices/*"):
        if alias_of(d) == alias:
            return d
    return None


def describe(el) -> str:
    if el.tag == "disk":
        return f"disk {disk_target(el)}"
    if el.tag == "interface":
        return f"interface {mac_of(el) or el.get('type')}"
    return el.tag


def not_found(el) -> VirtError:
    if el.tag == "disk":
        return OperationFailed(f"operation failed: disk {disk_target(el)} not found",
                               detail={"target": disk_target(el)})
    if el.tag == "interface":
        mac = mac_of(el)
        return OperationFailed(f"operation failed: no device matching MAC address {mac} found" if mac else
                               "operation failed: no matching network device was found", detail={"mac": mac})
    return OperationFailed(f"operation failed: matching {el.tag} device was not found", detail={"device": el.tag})


def check_new(root, el) -> None:
    """Refuse a device that clashes with one ``root`` has: a disk target or an
    interface MAC in use, an alias in use."""
    if el.tag == "disk":
        tgt = disk_target(el)
        if not tgt:
            raise XMLError("XML error: missing disk target device", detail={"device": "disk"})
        if find_disk_target(root, tgt) is not None:
            raise OperationInvalid(f"Requested operation is not valid: target {tgt} already exists",
                                   detail={"target": tgt})
        if el.find("source") is None and el.get("device", "disk") not in REMOVABLE:
            raise XMLError(f"XML error: disk {tgt} has no source (only a cdrom or floppy may be empty)",
                           detail={"target": tgt})
    if el.tag == "interface":
        mac = mac_of(el)
        if mac and any(mac_of(d) == mac for d in root.findall("devices/interface")):
            raise OperationInvalid(f"Requested operation is not valid: network device with mac {mac} "
                                   "already exists", detail={"mac": mac})
    alias = alias_of(el)
    if alias and find_alias(root, alias) is not None:
        raise OperationInvalid(f"Requested operation is not valid: non unique alias detected: {alias}",
                               detail={"alias": alias})


def find_disk_target(root, tgt: str):
    return next((d for d in root.findall("devices/disk") if disk_target(d) == tgt), None)


def prepare_new(el) -> None:
    """libvirt's defaults on a new device: an interface gets a MAC, a disk
    target its implied bus, a cdrom <readonly/>."""
    if el.tag == "interface" and el.find("mac") is None:
        from virtctl.xml.domain import new_mac

        xmlapi.sub(el, "mac", {"address": new_mac()}, index=0)
    if el.tag == "disk":
        from virtctl.xml.domain import _BUS_OF_PREFIX, target_index

        tgt = el.find("target")
        if tgt is not None and tgt.get("bus") is None:
            bus = _BUS_OF_PREFIX.get(target_index(tgt.get("dev", ""))[0])
            if bus:
                tgt.set("bus", bus)
        if el.get("device") in REMOVABLE and el.find("readonly") is None and el.get("device") == "cdrom":
            xmlapi.sub(el, "readonly", index=list(el).index(tgt) + 1 if tgt is not None else None)


def attached(definition, el, *, source: str = "<device>"):
    """A copy of ``definition`` with ``el`` (a copy) added, validated whole:
    the schema's refusal names what is wrong; ``definition`` is untouched."""
    check_new(definition.root, el)
    new = definition.copy()
    new.devices.append(xmlapi.copy(el))
    new._order_devices()
    new._order_disks()
    return revalidated(new, source)


def revalidated(definition, source: str):
    """``definition`` re-parsed with the schema (a device the schema refuses is an XML error)."""
    from virtctl.xml.domain import DomainDef

    try:
        return DomainDef.parse(definition.to_xml(), source=source, validate=True)
    except XMLError:
        raise
    except VirtError as exc:
        raise XMLError(exc.message, detail=exc.detail) from None


def detached(definition, el):
    """(copy of ``definition`` without the device ``el`` designates, the removed device)."""
    new = definition.copy()
    match = find_match(new.root, el)
    if match is None:
        raise not_found(el)
    removed = xmlapi.copy(match)
    match.getparent().remove(match)
    return new, removed


def detached_alias(definition, alias: str):
    new = definition.copy()
    match = find_alias(new.root, alias)
    if match is None:
        raise OperationFailed(f"operation failed: no device found with alias {alias}", detail={"alias": alias})
    removed = xmlapi.copy(match)
    match.getparent().remove(match)
    return new, removed


def updated(definition, el, *, source: str = "<device>"):
    """(copy of ``definition`` with the device ``el`` designates replaced, the old device).

    A disk may change only its media (cdrom/floppy source) and what virsh's
    change-media changes; an interface keeps its type and MAC (link state,
    source and the rest change); other kinds are not updatable."""
    new = definition.copy()
    match = find_match(new.root, el)
    if match is None:
        raise not_found(el)
    if el.tag == "disk":
        if match.get("device", "disk") not in REMOVABLE:
            raise OperationInvalid(f"Requested operation is not valid: disk '{disk_target(el)}' is not "
                                   "a cdrom or floppy: only their media can be changed",
                                   detail={"target": disk_target(el)})
        if (el.get("device", "disk")) != match.get("device", "disk"):
            raise OperationInvalid("Requested operation is not valid: cannot change disk device type",
                                   detail={"target": disk_target(el)})
    elif el.tag == "interface":
        if el.get("type") != match.get("type"):
            raise OperationInvalid("Requested operation is not valid: cannot change network interface type",
                                   detail={"mac": mac_of(match)})
    else:
        raise OperationInvalid(f"Requested operation is not valid: device type '{el.tag}' cannot be updated",
                               detail={"device": el.tag})
    old = xmlapi.copy(match)
    repl = xmlapi.copy(el)
    for keep in ("alias", "address"):
        had = match.find(keep)
        if had is not None and repl.find(keep) is None:
            repl.append(xmlapi.copy(had))
    if el.tag == "interface" and repl.find("mac") is None and match.find("mac") is not None:
        repl.insert(0, xmlapi.copy(match.find("mac")))
    match.getparent().replace(match, repl)
    return revalidated(new, source), old


def unknown_value(what: str, value: str) -> InvalidArg:
    return InvalidArg(f"No support for {value} in command '{what}'", detail={"value": value})
