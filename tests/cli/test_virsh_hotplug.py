"""Hotplug commands against virsh on test:///default, where libvirt's test
driver answers: --print-xml (the XML virsh builds), lookups that fail before
the driver is called, option rules and bad values.  (Where libvirt's test
driver refuses the change itself, virtctl's applies it: test_hotplug_commands.py.)"""
from __future__ import annotations

import pytest

from virsh_side import both, compare, needs_virsh

pytestmark = needs_virsh

URI = "test:///default"
CASES = [
    "attach-disk test /tmp/hp.img vdb --print-xml",
    "attach-disk test /tmp/hp.img vdb --print-xml --mode readonly --driver qemu --subdriver qcow2 --cache none "
    "--serial abc --targetbus virtio --sourcetype file --type disk",
    "attach-disk test /dev/sdb sdb --sourcetype block --type cdrom --print-xml --address scsi:0.0.1",
    "attach-disk test /tmp/a vdb --address pci:0000.00.0a.0 --print-xml",
    "attach-disk test /tmp/a vdb --address pci:0.0.10.0 --multifunction --print-xml",
    "attach-disk test /tmp/a vdb --type cdrom --mode shareable --print-xml",
    "attach-disk test /tmp/a vdb --subdriver qcow2 --print-xml",
    "attach-disk test /tmp/a hdc --type cdrom --targetbus sata --print-xml",
    "attach-disk test /tmp/a vdb --targetbus bogus --print-xml",
    "attach-disk test '/tmp/it'\\''s & <x>' vdb --print-xml",
    "attach-disk test /tmp/a vdb --address bogus --print-xml",
    "attach-disk test /tmp/a vdb --sourcetype bogus --print-xml",
    "attach-disk test /tmp/hp.img vdb --mode bogus",
    "attach-disk test /tmp/hp.img vdb --current --live",
    "attach-disk test /tmp/hp.img vdb --current --config",
    "attach-disk test /tmp/hp.img vdb --persistent --current",
    "attach-disk test /tmp/hp.img",
    "attach-disk nosuch /tmp/hp.img vdb",
    "attach-interface test network default --print-xml --mac 52:54:00:11:22:33 --model virtio --target vnet9",
    "attach-interface test bridge br0 --print-xml --model e1000",
    "attach-interface test network default --mac zz --print-xml",
    "attach-interface test bogus x",
    "detach-disk test vda --print-xml",
    "detach-disk test /guest/diskimage1 --print-xml",
    "detach-disk test vdz",
    "detach-interface test network --print-xml",
    "detach-interface test bridge",
    "detach-interface test network --mac 52:54:00:11:22:33",
    "change-media test vda --eject",
    "change-media test hdc /tmp/x.iso --insert",
    "change-media test vda /tmp/x --insert --eject",
    "change-media test vda /tmp/x --update --insert",
    "change-media test vda --current --live",
    "attach-device test /nonexistent.xml",
    "detach-device test /nonexistent.xml",
    "update-device test /nonexistent.xml",
    "detach-device-alias test",
    "update-device test /nonexistent.xml --persistent --current",
]


@pytest.mark.parametrize("cmd", CASES)
def test_hotplug_matches_virsh(cmd, tmp_path):
    compare(URI, cmd, tmp_path)


@pytest.mark.parametrize("cmd", [
    "detach-disk test vdz", "attach-disk test /tmp/a vdb --address bogus --print-xml",
    "attach-interface test bogus x", "change-media test vda /tmp/x --insert --eject",
    "attach-disk test /tmp/hp.img vdb --persistent --current", "detach-interface test bridge",
])
def test_hotplug_errors_match_virsh(cmd, tmp_path):
    theirs, ours = both(URI, cmd, tmp_path)
    assert ours.returncode != 0 and theirs.returncode != 0
    assert ours.stderr == theirs.stderr
