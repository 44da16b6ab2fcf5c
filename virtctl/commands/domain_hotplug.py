"""Hotplug: attach-device, detach-device, detach-device-alias, update-device,
attach-disk, detach-disk, attach-interface, detach-interface, change-media.

The *-disk/-interface/change-media commands build (or find) a device XML as
virsh does and go through the same four API calls as the *-device ones.
Which definitions change follows virsh's rules (``_affect``): --config or
--persistent: the persistent one; --live: the running one; --persistent on a
running domain: both; --current: whichever the domain's state implies; no
option at all: the running one (virsh's legacy call).
"""
from __future__ import annotations

import click

from virtctl.cli.options import command, domain_arg, mutually_exclusive, option, positional
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg, VirtError

_DISK_TYPES = ("disk", "cdrom", "floppy", "lun")
_IFACE_TYPES = ("network", "bridge", "user")


def _flags(f=None, *, persistent: bool = True):
    """virsh's --persistent --config --live --current, with its exclusions."""
    def deco(f):
        f = click.option("--current", is_flag=True, help="affect current domain")(f)
        f = click.option("--live", is_flag=True, help="affect running domain")(f)
        f = click.option("--config", is_flag=True, help="affect next boot")(f)
        if persistent:
            f = click.option("--persistent", is_flag=True, help="make live change persistent")(f)
        f = mutually_exclusive("current", "config")(f)
        f = mutually_exclusive("current", "live")(f)
        if persistent:
            f = mutually_exclusive("persistent", "current")(f)
        return f
    return deco(f) if f is not None else deco


def _affect(dom, persistent: bool, config: bool, live: bool, current: bool) -> tuple[bool, bool]:
    """(live, config) as virsh computes its flags; neither = the current state."""
    cfg = config or persistent
    lv = live or (persistent and dom.info().active)
    if not (lv or cfg or current):
        return True, False  # virsh's virDomainAttachDevice (no flags): the running domain
    return lv, cfg


def _read(path: str) -> str:
    from virtctl.commands.domain_lifecycle import _read_xml

    return _read_xml(path)


def _report(session, dom, message: str, action: str, result: dict, live: bool, config: bool, **data) -> None:
    data.update({k: v for k, v in (result or {}).items() if v is not None and k not in data})
    session.done(dom, message, action, live=live, config=config, **data)


def _node_dump(el) -> str:
    """A device as virsh prints one it found in the domain's XML (libxml2's
    node dump: double quotes, the document's indentation, no final newline)."""
    from virtctl.xml import xmlapi

    out: list[str] = []
    xmlapi._format(el, 2, out, '"')
    return "\n".join(out)[4:]


# --- the *-device commands ------------------------------------------------------------------


@command("attach-device", help="""Attach a device (disk, interface, ...) from an XML file.

\b
Examples:
  virtctl attach-device web1 disk.xml --live
  virtctl attach-device web1 nic.xml --persistent""")
@domain_arg()
@positional("file", help="XML file", completer="file")
@_flags
@pass_session
def attach_device(session, domain, file, persistent, config, live, current):
    xml = _read(session.value("file", file))
    dom = session.domain(domain)
    lv, cfg = _affect(dom, persistent, config, live, current)
    with session.context("Failed to attach device from {file}", file=file):
        res = dom.attach_device(xml, live=lv, config=cfg, source=file)
    _report(session, dom, "Device attached successfully", "attached", res, lv, cfg, file=file)


@command("detach-device", help="""Detach the device an XML file describes (a disk by its target,
an interface by its MAC, any device by its alias).

\b
Example:
  virtctl detach-device web1 disk.xml --live --config""")
@domain_arg()
@positional("file", help="XML file", completer="file")
@_flags
@pass_session
def detach_device(session, domain, file, persistent, config, live, current):
    xml = _read(session.value("file", file))
    dom = session.domain(domain)
    lv, cfg = _affect(dom, persistent, config, live, current)
    with session.context("Failed to detach device from {file}", file=file):
        res = dom.detach_device(xml, live=lv, config=cfg, source=file)
    _report(session, dom, "Device detached successfully", "detached", res, lv, cfg, file=file)


@command("detach-device-alias", help="""Detach the device with the given alias (dumpxml shows
aliases of a running domain: virtio-disk1, net0, ...).

\b
Example:
  virtctl detach-device-alias web1 virtio-disk1""")
@domain_arg()
@positional("alias", help="device alias", completer="alias")
@_flags(persistent=False)
@pass_session
def detach_device_alias(session, domain, alias, config, live, current):
    dom = session.domain(domain)
    alias = session.value("alias", alias)
    lv, cfg = (live, config)  # virsh always calls virDomainDetachDeviceAlias with its flags
    with session.context("Failed to detach device with alias {alias}", alias=alias):
        res = dom.detach_device_alias(alias, live=lv, config=cfg)
    _report(session, dom, "Device detach request sent successfully", "detached", res, lv, cfg, alias=alias)


@command("update-device", help="""Update a device from an XML file: a cdrom or floppy's media,
an interface's settings (the device is found as detach-device finds it).

\b
Example:
  virtctl update-device web1 cdrom.xml --live""")
@domain_arg()
@positional("file", help="XML file", completer="file")
@_flags
@click.option("--force", is_flag=True, help="force device update")
@pass_session
def update_device(session, domain, file, persistent, config, live, current, force):
    xml = _read(session.value("file", file))
    dom = session.domain(domain)
    lv, cfg = _affect(dom, persistent, config, live, current)
    if not (live or config or persistent or current):
        lv, cfg = False, False  # virsh's update-device always passes its flags: none = current
    with session.context("Failed to update device from {file}", file=file):
        res = dom.update_device(xml, live=lv, config=cfg, force=force, source=file)
    _report(session, dom, "Device updated successfully", "updated", res, lv, cfg, file=file)


# --- disks ----------------------------------------------------------------------------------


def _address(text: str, target: str) -> dict:
    """virsh's --address: pci:D.B.S.F, scsi:C.B.U, ide:C.B.U, sata:C.B.U, usb:B.P."""
    kind, _, rest = text.partition(":")
    parts = rest.split(".") if rest else []
    try:
        if kind == "pci" and len(parts) == 4:
            d, b, s, f = (int(p, 16) for p in parts)
            addr = {"type": "pci", "domain": f"0x{d:04x}", "bus": f"0x{b:02x}", "slot": f"0x{s:02x}",
                    "function": f"0x{f:x}"}
        elif kind in ("scsi", "ide", "sata") and len(parts) == 3:
            c, b, u = (int(p, 10) for p in parts)
            addr = {"type": "drive", "controller": str(c), "bus": str(b), "unit": str(u)}
        elif kind == "usb" and len(parts) == 2:
            b, p = (int(x, 10) for x in parts)
            addr = {"type": "usb", "bus": str(b), "port": str(p)}
        else:
            raise ValueError
    except ValueError:
        raise InvalidArg("Invalid address.", detail={"address": text}) from None
    want = {"vd": ("pci", "expecting a pci:0000.00.00.00 address."),
            "sd": ("scsi", "expecting a scsi:00.00.00 address."),
            "hd": ("ide", "expecting an ide:00.00.00 address.")}
    for prefix, (k, message) in want.items():
        if target.startswith(prefix) and kind != k and not (prefix == "sd" and kind in ("usb", "sata")):
            raise InvalidArg(message, detail={"address": text})
    return addr


def disk_xml(source: str, target: str, *, targetbus=None, driver=None, subdriver=None, cache=None,
             io=None, type_=None, mode=None, sourcetype=None, serial=None, wwn=None, alias=None,
             address=None, multifunction=False, rawio=False, iothread=None) -> str:
    """The <disk> virsh's attach-disk writes, in its element and attribute order."""
    from virtctl.xml.xmlapi import _esc_attr, _esc_text

    def a(v):
        return _esc_attr(str(v))

    if sourcetype not in (None, "file", "block"):
        raise InvalidArg(f"Unknown source type: '{sourcetype}'", detail={"sourcetype": sourcetype})
    if mode not in (None, "readonly", "shareable"):
        raise InvalidArg(f"No support for {mode} in command 'attach-disk'", detail={"mode": mode})
    if type_ is not None and type_ not in _DISK_TYPES:
        raise InvalidArg(f"No support for {type_} in command 'attach-disk'", detail={"type": type_})
    block = sourcetype == "block"
    head = f"<disk type='{'block' if block else 'file'}'"
    if type_:
        head += f" device='{a(type_)}'"
    if rawio:
        head += " rawio='yes'"
    lines = [head + ">"]
    if driver or subdriver or iothread or cache or io:
        d = "  <driver"
        for k, v in (("name", driver), ("type", subdriver), ("iothread", iothread), ("cache", cache),
                     ("io", io)):
            if v:
                d += f" {k}='{a(v)}'"
        lines.append(d + "/>")
    if source:
        lines.append(f"  <source {'dev' if block else 'file'}='{a(source)}'/>")
    t = f"  <target dev='{a(target)}'"
    if targetbus:
        t += f" bus='{a(targetbus)}'"
    lines.append(t + "/>")
    if mode:
        lines.append(f"  <{mode}/>")
    if serial:
        lines.append(f"  <serial>{_esc_text(serial)}</serial>")
    if wwn:
        lines.append(f"  <wwn>{_esc_text(wwn)}</wwn>")
    if alias:
        lines.append(f"  <alias name='{a(alias)}'/>")
    if address:
        addr = _address(address, target)
        if multifunction and addr["type"] == "pci":
            addr["multifunction"] = "on"
        lines.append("  <address " + " ".join(f"{k}='{a(v)}'" for k, v in addr.items()) + "/>")
    lines.append("</disk>")
    return "\n".join(lines) + "\n"


@command("attach-disk", help="""Attach a new disk (an image file or block device) to a domain.

The disk XML is built from the options (--print-xml shows it).  On a
running QEMU domain the disk is hot-plugged (virtio disks get a free PCI
slot: on q35 a free pcie-root-port).

\b
Examples:
  virtctl attach-disk web1 /var/lib/images/data.qcow2 vdb --subdriver qcow2 --live
  virtctl attach-disk web1 /srv/iso/debian.iso sdc --type cdrom --mode readonly --config""")
@domain_arg()
@positional("source", help="source of disk device or name of network disk", completer="file")
@positional("target", help="target of disk device", completer="none")
@option("--targetbus", help="target bus of disk device", completer="enum:virtio|scsi|sata|ide|usb|fdc")
@option("--driver", help="driver of disk device", completer="enum:qemu")
@option("--subdriver", help="subdriver of disk device (raw, qcow2, ...)", completer="enum:raw|qcow2")
@option("--iothread", help="IOThread to be used by supported device", completer="none")
@option("--cache", help="cache mode of disk device",
        completer="enum:default|none|writethrough|writeback|directsync|unsafe")
@option("--io", help="io policy of disk device", completer="enum:threads|native|io_uring")
@option("--type", "type_", help="target device type", completer="enum:disk|cdrom|floppy|lun")
@option("--mode", help="mode of device reading and writing", completer="enum:readonly|shareable")
@option("--sourcetype", help="type of source (block|file|network)", completer="enum:file|block")
@option("--serial", help="serial of disk device", completer="none")
@option("--wwn", help="wwn of disk device", completer="none")
@option("--alias", help="custom alias name of disk device", completer="none")
@click.option("--rawio", is_flag=True, help="needs rawio capability")
@option("--address", help="address of disk device", completer="none")
@click.option("--multifunction", is_flag=True, help="use multifunction pci under specified address")
@click.option("--print-xml", is_flag=True, help="print XML document rather than attach the disk")
@_flags
@pass_session
def attach_disk(session, domain, source, target, targetbus, driver, subdriver, iothread, cache, io, type_,
                mode, sourcetype, serial, wwn, alias, rawio, address, multifunction, print_xml,
                persistent, config, live, current):
    dom = session.domain(domain)
    xml = disk_xml(source, session.value("target", target), targetbus=targetbus, driver=driver,
                   subdriver=subdriver, cache=cache, io=io, type_=type_, mode=mode, sourcetype=sourcetype,
                   serial=serial, wwn=wwn, alias=alias, address=address, multifunction=multifunction,
                   rawio=rawio, iothread=iothread)
    if print_xml:
        session.emit({"xml": xml}, xml)
        return
    lv, cfg = _affect(dom, persistent, config, live, current)
    with session.context("Failed to attach disk"):
        res = dom.attach_device(xml, live=lv, config=cfg, source="attach-disk")
    _report(session, dom, "Disk attached successfully", "attached", res, lv, cfg, device="disk",
            target=target, source=source)


def _domain_doc(dom, lv: bool, cfg: bool):
    """The definition virsh looks the device up in: the persistent one for
    --config alone, else the running one."""
    from virtctl.xml import xmlapi

    inactive = cfg and not lv
    return xmlapi.parse(dom.xml(inactive=inactive))


@command("detach-disk", help="""Detach a disk, named by its target (vdb) or source path.

\b
Example:
  virtctl detach-disk web1 vdb --live --config""")
@domain_arg()
@positional("target", help="target of disk device", completer="disk")
@_flags
@click.option("--print-xml", is_flag=True, help="print XML document rather than detach the disk")
@pass_session
def detach_disk(session, domain, target, persistent, config, live, current, print_xml):
    from virtctl.xml import devices, xmlapi

    dom = session.domain(domain)
    target = session.value("target", target)
    lv, cfg = _affect(dom, persistent, config, live, current)
    disk = devices.find_disk(_domain_doc(dom, lv, cfg), target)
    if disk is None:
        raise VirtError(f"No disk found whose source path or target is {target}", code="INVALID_ARG",
                        detail={"target": target})
    if print_xml:
        text = _node_dump(disk)
        session.emit({"xml": xmlapi.tostring(disk)}, text)  # (no newline: virsh prints none)
        return
    with session.context("Failed to detach disk"):
        res = dom.detach_device(xmlapi.tostring(disk), live=lv, config=cfg, source="detach-disk")
    _report(session, dom, "Disk detached successfully", "detached", res, lv, cfg, device="disk",
            target=devices.disk_target(disk))


# --- interfaces -------------------------------------------------------------------------------


def interface_xml(type_: str, source: str | None, *, target=None, mac=None, script=None, model=None,
                  alias=None, managed=False) -> str:
    """The <interface> virsh's attach-interface writes, in its order."""
    from virtctl.xml.xmlapi import _esc_attr

    def a(v):
        return _esc_attr(str(v))

    if type_ not in _IFACE_TYPES:
        raise InvalidArg(f"No support for {type_} in command 'attach-interface'", detail={"type": type_})
    if type_ != "user" and not source:
        from virtctl.errors import UsageError

        raise UsageError("command 'attach-interface' requires <source> option")
    lines = [f"<interface type='{type_}'" + (" managed='yes'" if managed else "") + ">"]
    if type_ == "network":
        lines.append(f"  <source network='{a(source)}'/>")
    elif type_ == "bridge":
        lines.append(f"  <source bridge='{a(source)}'/>")
    if target:
        lines.append(f"  <target dev='{a(target)}'/>")
    if mac:
        lines.append(f"  <mac address='{a(mac)}'/>")
    if script:
        lines.append(f"  <script path='{a(script)}'/>")
    if model:
        lines.append(f"  <model type='{a(model)}'/>")
    if alias:
        lines.append(f"  <alias name='{a(alias)}'/>")
    lines.append("</interface>")
    return "\n".join(lines) + "\n"


@command("attach-interface", help="""Attach a new network interface: on a virtual network, on a host
bridge, or QEMU's user networking (type 'user', virtctl's addition: no source).

\b
Examples:
  virtctl attach-interface web1 network default --model virtio --live
  virtctl attach-interface web1 user --model virtio --mac 52:54:00:12:34:56""")
@domain_arg()
@positional("type", help="network interface type", completer="enum:network|bridge|user")
@positional("source", required=False, help="source of network interface (none for type user)",
            completer="network:all")
@option("--target", help="target network name", completer="none")
@option("--mac", help="MAC address", completer="none")
@option("--script", help="script used to bridge network interface", completer="file")
@option("--model", help="model type", completer="enum:virtio|e1000|e1000e|rtl8139")
@option("--alias", help="custom alias name of interface device", completer="none")
@_flags
@click.option("--print-xml", is_flag=True, help="print XML document rather than attach the interface")
@click.option("--managed", is_flag=True, help="automatically detach/attach the device from/to host")
@pass_session
def attach_interface(session, domain, type, source, target, mac, script, model, alias, persistent, config,  # noqa: A002
                     live, current, print_xml, managed):
    dom = session.domain(domain)
    xml = interface_xml(session.value("type", type), source, target=target, mac=mac, script=script,
                        model=model, alias=alias, managed=managed)
    if print_xml:
        session.emit({"xml": xml}, xml)
        return
    if mac is not None:
        _check_mac(mac)
    lv, cfg = _affect(dom, persistent, config, live, current)
    with session.context("Failed to attach interface"):
        res = dom.attach_device(xml, live=lv, config=cfg, source="attach-interface")
    _report(session, dom, "Interface attached successfully", "attached", res, lv, cfg, device="interface",
            type=type)


def _check_mac(mac: str) -> None:
    import re

    if not re.fullmatch(r"[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){5}", mac):
        raise InvalidArg(f"unable to parse mac address '{mac}'", detail={"mac": mac})


@command("detach-interface", help="""Detach a network interface, by its type (and its MAC when the
domain has several of that type).

\b
Example:
  virtctl detach-interface web1 network --mac 52:54:00:12:34:56 --live""")
@domain_arg()
@positional("type", help="network interface type", completer="enum:network|bridge|user")
@option("--mac", help="MAC address", completer="mac")
@_flags
@click.option("--print-xml", is_flag=True, help="print XML document rather than detach the interface")
@pass_session
def detach_interface(session, domain, type, mac, persistent, config, live, current, print_xml):  # noqa: A002
    from virtctl.xml import devices, xmlapi

    dom = session.domain(domain)
    type = session.value("type", type)  # noqa: A001
    lv, cfg = _affect(dom, persistent, config, live, current)
    ifaces = [i for i in _domain_doc(dom, lv, cfg).findall("devices/interface") if i.get("type") == type]
    more = {"more": ["Failed to detach interface"]}  # virsh: the reason first, then the context line
    if not ifaces:
        raise VirtError(f"No interface found whose type is {type}", code="INVALID_ARG",
                        detail={"type": type, **more})
    if mac:
        found = [i for i in ifaces if devices.mac_of(i) == mac.lower()]
        if not found:
            raise VirtError(f"No interface with MAC address {mac} was found", code="INVALID_ARG",
                            detail={"mac": mac, **more})
    elif len(ifaces) > 1:
        raise VirtError(f"Domain has {len(ifaces)} interfaces. Please specify which one to detach "
                        "using --mac", code="INVALID_ARG", detail={"count": len(ifaces), **more})
    else:
        found = ifaces
    iface = found[0]
    if print_xml:
        session.emit({"xml": xmlapi.tostring(iface)}, _node_dump(iface))
        return
    with session.context("Failed to detach interface"):
        res = dom.detach_device(xmlapi.tostring(iface), live=lv, config=cfg, source="detach-interface")
    _report(session, dom, "Interface detached successfully", "detached", res, lv, cfg, device="interface",
            type=type, mac=devices.mac_of(iface))


# --- media ------------------------------------------------------------------------------------


@command("change-media", help="""Insert, eject or change the media of a CD-ROM or floppy drive
(named by its target or current source).

\b
Examples:
  virtctl change-media web1 sdc /srv/iso/debian.iso --insert --live
  virtctl change-media web1 sdc --eject --config""")
@domain_arg()
@positional("path", help="Fully-qualified path or target of disk device", completer="disk")
@option("--source", help="source of the media", completer="file", positional=True, required=False)
@click.option("--eject", is_flag=True, help="Eject the media")
@click.option("--insert", is_flag=True, help="Insert the media")
@click.option("--update", is_flag=True, help="Update the media")
@click.option("--current", is_flag=True, help="can be either or both of --live and --config, depends on "
              "implementation hypervisor driver")
@click.option("--live", is_flag=True, help="alter live configuration of running domain")
@click.option("--config", is_flag=True, help="alter persistent configuration, effect observed on next boot")
@click.option("--force", is_flag=True, help="force media changing")
@click.option("--print-xml", is_flag=True, help="print XML document rather than change media")
@click.option("--block", is_flag=True, help="source media is a block device")
@mutually_exclusive("eject", "insert")
@mutually_exclusive("eject", "update")
@mutually_exclusive("insert", "update")
@mutually_exclusive("current", "live")
@mutually_exclusive("current", "config")
@pass_session
def change_media(session, domain, path, source, eject, insert, update, current, live, config, force,
                 print_xml, block):
    from virtctl.xml import devices, xmlapi

    dom = session.domain(domain)
    path = session.value("path", path)
    action = "eject" if eject else "insert" if insert else "update"
    if action != "eject" and not source:
        raise InvalidArg("No disk source specified for change-media", detail={"action": action})
    disk = devices.find_disk(_domain_doc(dom, live, config), path)
    if disk is None:
        raise VirtError(f"No disk found whose source path or target is {path}", code="INVALID_ARG",
                        detail={"path": path})
    target = devices.disk_target(disk)
    if disk.get("device", "disk") not in devices.REMOVABLE:
        raise InvalidArg(f"The disk device '{target}' is not removable", detail={"target": target})
    src = disk.find("source")
    has_media = src is not None and devices.disk_source(disk) is not None
    if action == "eject" and not has_media:
        raise OperationInvalidMedia(f"The disk device '{target}' doesn't have media")
    if action == "insert" and has_media:
        raise OperationInvalidMedia(f"The disk device '{target}' already has media")
    new = xmlapi.copy(disk)
    for x in new.findall("source"):
        new.remove(x)
    for x in new.findall("alias"):
        new.remove(x)
    if action != "eject":
        kind = "block" if block else "file"
        new.set("type", kind)
        tgt = new.find("target")
        index = list(new).index(tgt) if tgt is not None else len(new)
        xmlapi.sub(new, "source", {"dev" if block else "file": source}, index=index)
    xml = xmlapi.tostring(new)
    if print_xml:
        session.emit({"xml": xml}, xml)
        return
    with session.context("Failed to complete action {action} on media", action=action):
        res = dom.update_device(xml, live=live, config=config, force=force, source="change-media")
    message = {"eject": "Successfully ejected media.", "insert": "Successfully inserted media.",
               "update": "Successfully updated media."}[action]
    _report(session, dom, message, {"eject": "ejected", "insert": "inserted", "update": "updated"}[action],
            res, live, config, device="disk", target=target, source=source if action != "eject" else None)


def OperationInvalidMedia(message: str) -> VirtError:  # noqa: N802 - reads as the error it makes
    return VirtError(message, code="INVALID_ARG")
