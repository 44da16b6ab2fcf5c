"""The domain model: typed access, units, defaults, name rules, round trip."""
from __future__ import annotations

import pytest

from virtctl.errors import XMLError
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


@pytest.mark.parametrize("name", ["ok", "with space", "ünïcödé", "comma,name", "a=b", "7"])
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
