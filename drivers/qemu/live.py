"""The live definition of a running domain: what ``dumpxml`` adds while it runs.

``<alias name='...'/>`` on each device (libvirt's naming), the VNC port QEMU
chose, and the balloon target applied at start.  The ``id`` attribute is
added when the XML is shown (it lives in the runtime record).
"""
from __future__ import annotations

from virtctl.xml import xmlapi

_PLAIN = {"interface": "net", "serial": "serial", "parallel": "parallel", "channel": "channel",
          "input": "input", "video": "video", "sound": "sound", "hostdev": "hostdev",
          "redirdev": "redir", "watchdog": "watchdog", "rng": "rng", "memballoon": "balloon",
          "tpm": "tpm", "smartcard": "smartcard", "filesystem": "fs", "panic": "panic",
          "shmem": "shmem", "vsock": "vsock", "graphics": None, "emulator": None,
          "console": None, "audio": None, "hub": "hub"}


def _disk_alias(el, counters: dict) -> str:
    tgt = el.find("target")
    bus = tgt.get("bus", "") if tgt is not None else ""
    addr = el.find("address")
    unit = int(addr.get("unit", "0")) if addr is not None and addr.get("unit", "").isdigit() else None
    n = counters.setdefault(f"disk-{bus}", 0)
    counters[f"disk-{bus}"] = n + 1
    if bus == "virtio":  # libvirt's (and the argv builder's) rule: the target's index
        from virtctl.xml.domain import target_index

        index = target_index(tgt.get("dev", "") if tgt is not None else "")[1]
        return f"virtio-disk{index if index >= 0 else n}"
    # ide/sata/scsi: the address, else what the target's index implies (the argv builder's ids)
    from virtctl.xml.domain import target_index

    index = target_index(tgt.get("dev", "") if tgt is not None else "")[1]
    drive = addr is not None and addr.get("type") == "drive" and unit is not None
    if bus == "ide":
        if drive and addr.get("bus", "").isdigit():
            return f"ide{addr.get('controller', '0')}-{addr.get('bus')}-{unit}"
        u = index if index >= 0 else n
        return f"ide{u // 4}-{(u % 4) // 2}-{u % 2}"
    if bus == "sata":
        if drive:
            return f"sata{addr.get('controller', '0')}-0-{unit}"
        u = index if index >= 0 else n
        return f"sata{u // 6}-0-{u % 6}"
    if bus == "scsi":
        return f"scsi0-0-0-{unit if unit is not None else (index if index >= 0 else n)}"
    if bus == "fdc":
        return f"fdc0-0-{n}"
    if bus == "usb":
        return f"usb-disk{n}"
    return f"{bus or 'disk'}-disk{n}"


def _controller_alias(el) -> str:
    ctype, index = el.get("type", ""), el.get("index", "0")
    if ctype == "pci":
        return f"pci.{index}"
    if ctype in ("usb", "ide", "fdc") and index == "0":
        return ctype
    return f"{ctype}{index}"


def assign_aliases(root) -> None:
    """Give every device of ``root`` (a live definition) an ``<alias>``."""
    devices = root.find("devices")
    if devices is None:
        return
    counters: dict = {}
    serial_aliases: list[str] = []
    for el in list(devices):
        if not xmlapi.is_element(el) or el.find("alias") is not None:
            continue
        tag = el.tag
        if tag == "disk":
            name = _disk_alias(el, counters)
        elif tag == "controller":
            name = _controller_alias(el)
        elif tag == "console":
            # libvirt: the first console duplicates the first serial port
            n = counters.setdefault("console", 0)
            counters["console"] = n + 1
            name = serial_aliases[0] if n == 0 and serial_aliases else f"console{n}"
        else:
            prefix = _PLAIN.get(tag, tag)
            if prefix is None:
                continue
            n = counters.setdefault(tag, 0)
            counters[tag] = n + 1
            name = f"{prefix}{n}"
            if tag == "serial":
                serial_aliases.append(name)
        index = len(el)
        for i, child in enumerate(el):
            if xmlapi.is_element(child) and child.tag == "address":
                index = i
                break
        xmlapi.sub(el, "alias", {"name": name}, index=index)


def set_vnc_port(root, vnc_info: dict | None) -> None:
    """Write the port QEMU listens on into an autoport ``<graphics type='vnc'>``."""
    if not vnc_info:
        return
    service = vnc_info.get("service")
    for g in root.findall("devices/graphics"):
        if g.get("type") != "vnc":
            continue
        if service and str(service).isdigit() and g.get("port") in (None, "-1"):
            g.set("port", str(service))
        break


def hide_secrets(root) -> None:
    """Drop passwords (graphics ``passwd``) unless --security-info."""
    for g in root.findall("devices/graphics"):
        g.attrib.pop("passwd", None)
