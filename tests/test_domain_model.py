"""The domain model: typed access, units, defaults, name rules, round trip."""
from __future__ import annotations

import pytest

from virtctl.errors import XMLError
from virtctl.xml import xmlapi
from virtctl.xml.domain import DomainDef, check_name, target_index
from virtctl.xml.units import parse_scaled, to_kib

FULL = """<domain type='kvm' xmlns:app='http://example.org/app'>
  <name>full</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <title>Full</title>
  <description>desc</description>
  <metadata><app:tag>keep me</app:tag></metadata>
  <memory unit='GiB'>2</memory>
  <currentMemory unit='MiB'>1024</currentMemory>
  <vcpu current='2'>4</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/boot/vmlinuz</kernel><initrd>/boot/initrd</initrd><cmdline>console=ttyS0</cmdline>
    <boot dev='hd'/><boot dev='cdrom'/>
  </os>
  <features><acpi/><apic/><hyperv mode='custom'><relaxed state='on'/></hyperv></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model><topology sockets='1' dies='1' cores='2' threads='2'/><feature policy='require' name='vmx'/></cpu>
  <clock offset='localtime'><timer name='rtc' tickpolicy='catchup'/><timer name='hpet' present='no'/></clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/b.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='disk'><source file='/img/a.img'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
    <controller type='usb' index='0' model='qemu-xhci'/>
    <controller type='pci' index='1' model='pcie-root-port'/>
    <interface type='user'><model type='virtio'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <graphics type='vnc' port='-1' autoport='yes' passwd='secret'><listen type='address' address='127.0.0.1'/></graphics>
    <video><model type='virtio'/></video>
    <input type='tablet' bus='usb'/>
    <memballoon model='virtio'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>
"""


def test_typed_access():
    d = DomainDef.parse(FULL)
    assert (d.name, d.uuid, d.title, d.description) == ("full", "11111111-2222-3333-4444-555555555555", "Full", "desc")
    assert (d.max_memory_kib, d.memory_kib, d.max_vcpus, d.vcpus) == (2097152, 1048576, 4, 2)
    os_ = d.os
    assert (os_.arch, os_.machine, os_.kernel, os_.cmdline, os_.boot_devices) == (
        "x86_64", "q35", "/boot/vmlinuz", "console=ttyS0", ("hd", "cdrom"))
    assert "acpi" in d.features and d.features["hyperv.relaxed"] == {"state": "on"}
    assert (d.cpu.mode, d.cpu.model, d.cpu.cores, d.cpu.threads, d.cpu.features) == (
        "custom", "qemu64", 2, 2, {"vmx": "require"})
    assert d.clock.offset == "localtime" and d.clock.timers["hpet"]["present"] == "no"
    assert d.lifecycle == {"on_poweroff": "destroy", "on_reboot": "destroy", "on_crash": "destroy"}
    assert [(c.type, c.model, c.index) for c in d.devices_of("controller")] == [
        ("usb", "qemu-xhci", 0), ("pci", "pcie-root-port", 1)]
    ch = d.devices_of("channel")[0]
    assert (ch.target_type, ch.target_name) == ("virtio", "org.qemu.guest_agent.0")
    g = d.devices_of("graphics")[0]
    assert (g.type, g.autoport, g.listen, g.has_password) == ("vnc", True, "127.0.0.1", True)
    assert [v.model for v in d.devices_of("video")] == ["virtio"]
    assert [(i.type, i.get(".", "bus")) for i in d.devices_of("input")] == [("tablet", "usb")]
    assert d.devices_of("rng")[0].model == "virtio"
    assert [(x.type, x.device, x.target, x.driver_type, x.readonly) for x in d.disks()] == [
        ("file", "disk", "vdb", "qcow2", False), ("file", "disk", "vda", None, False),
        ("file", "cdrom", "sda", None, True)]
    assert d.interfaces()[0].model == "virtio"


def test_normalize_fills_defaults_and_keeps_unknown():
    d = DomainDef.parse(FULL)
    d.normalize()
    out = d.to_xml()
    assert "<app:tag>keep me</app:tag>" in out and "xmlns:app='http://example.org/app'" in out
    assert [x.target for x in d.disks()] == ["vda", "vdb", "sda"]  # sorted within the bus
    assert d.interfaces()[0].mac.startswith("52:54:00:")
    assert "<on_crash>destroy</on_crash>" in out
    again = DomainDef.parse(out)
    again.normalize()
    assert again.to_xml() == out


def test_generated_uuid_and_round_trip():
    d = DomainDef.parse("<domain type='qemu'><name>g</name><memory>1024</memory><os><type>hvm</type></os></domain>")
    d.normalize()
    assert d.uuid and len(d.uuid) == 36
    assert "<memory unit='KiB'>1024</memory>" in d.to_xml()


@pytest.mark.parametrize("name", ["a/b", "..", ".", "-x", "a\nb", "tab\there", "", " lead", "x" * 201])
def test_bad_names(name):
    with pytest.raises(XMLError):
        check_name(name)


@pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                                  "\u2066", "\u2067", "\u2068", "\u2069"])
def test_bidirectional_controls_are_refused_in_names(char):
    with pytest.raises(XMLError) as exc:
        check_name(f"invoice{char}fdp.exe")
    # the message shows the character escaped, never raw
    assert exc.value.message == (f"domain name 'invoice\\u{ord(char):04x}fdp.exe' cannot contain "
                                 f"bidirectional control characters (U+{ord(char):04X})")


@pytest.mark.parametrize("char", ["\u2028", "\u2029"])
def test_line_and_paragraph_separators_are_refused_in_names(char):
    with pytest.raises(XMLError) as exc:
        check_name(f"two{char}lines")
    assert exc.value.message.endswith(f"cannot contain a line or paragraph separator (U+{ord(char):04X})")


@pytest.mark.parametrize("char", ["\x80", "\x9b", "\x9f", "\x7f", "\x1b"])
def test_c0_and_c1_controls_are_refused_in_names(char):
    with pytest.raises(XMLError) as exc:
        check_name(f"esc{char}[31m")
    assert exc.value.message.endswith("cannot contain control characters")


@pytest.mark.parametrize("name", ["ok", "with space", "ünïcödé", "comma,name", "a=b", "7",
                                  "\u05e9\u05dc\u05d5\u05dd", "\u200f\u05d0", "\u2027\u202f\u2065\u206a"])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("value,unit,kib", [
    (1, "KiB", 1), (1, None, 1), (1, "k", 1), (1, "M", 1024), (1, "MiB", 1024), (1, "MB", 977),
    (1, "G", 1048576), (1, "GB", 976563), (1, "T", 1024**3), (1, "b", 1), (1025, "bytes", 2),
])
def test_units(value, unit, kib):
    assert to_kib(value, unit) == kib


def test_scaled_arguments():
    assert parse_scaled("512M") == 524288
    for bad in ("-1", "1Q", "", "12.5G", "99999999999999999999"):
        with pytest.raises(Exception):
            parse_scaled(bad)


def test_target_index():
    assert target_index("vda") < target_index("vdb") < target_index("vdz") < target_index("vdaa")
    assert target_index("hdc") == ("hd", 2)


def test_attribute_white_space_survives_round_trip():
    from virtctl.xml import xmlapi

    el = xmlapi.element("source", {"file": "/img/a\nb\tc\rd 'q' \"dq\" <&>"})
    back = xmlapi.parse(xmlapi.tostring(el))
    assert back.get("file") == "/img/a\nb\tc\rd 'q' \"dq\" <&>"


def _libvirt_disk_order(disks: list[tuple[str, str]]) -> list[int]:
    """The oracle: libvirt's virDomainDiskInsert, run literally (quadratic),
    on (bus, target) pairs; returns the document positions in the final order."""
    placed: list[int] = []
    for i, (bus, dev) in enumerate(disks):
        at = -1
        for k in range(len(placed) - 1, -1, -1):
            pbus, pdev = disks[placed[k]]
            if pbus == bus and target_index(pdev)[1] > target_index(dev)[1]:
                at = k
            elif pbus == bus and at == -1:
                at = k + 1
        placed.insert(len(placed) if at == -1 else at, i)
    return placed


def test_disk_order_is_libvirts_on_random_definitions():
    import random

    rnd = random.Random(9)
    for _ in range(2000):
        disks = [(rnd.choice(["virtio", "sata", "scsi", ""]),
                  rnd.choice(["vda", "vdb", "vdc", "sda", "sdb", "hda", "odd", "vdaa", ""]))
                 for _ in range(rnd.randint(0, 14))]
        parts = []
        for i, (bus, dev) in enumerate(disks):
            attrs = (f" dev='{dev}'" if dev else "") + (f" bus='{bus}'" if bus else "")
            parts.append(f"<disk type='file' device='disk'><serial>{i}</serial><target{attrs}/></disk>")
            if rnd.random() < 0.2:  # other devices between disks keep their order
                parts.append(f"<interface type='user'><mac address='52:54:00:00:00:{i:02x}'/></interface>")
        d = DomainDef(xmlapi.parse("<domain><name>x</name><devices>" + "".join(parts) + "</devices></domain>"))
        d._order_disks()
        got = [int(el.findtext("serial")) for el in d.root.findall("devices/disk")]
        assert got == _libvirt_disk_order(disks), disks
        macs = [m.get("address") for m in d.root.findall("devices/interface/mac")]
        assert macs == sorted(macs)


def test_disk_order_of_many_disks_in_reverse():
    n = 3000  # a size the quadratic insertion could not sort in seconds
    devs = [f"sd{chr(97 + i // 26 // 26 % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i % 26)}" for i in range(n)]
    body = "".join(f"<disk type='file' device='disk'><target dev='{d}' bus='scsi'/></disk>" for d in reversed(devs))
    d = DomainDef(xmlapi.parse(f"<domain><name>x</name><devices>{body}</devices></domain>"))
    d._order_disks()
    assert [x.target for x in d.disks()] == devs
