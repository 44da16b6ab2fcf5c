"""Hand-written bad documents: each problem's text, line, column and XPath
must point at the culprit, not at its container."""
from __future__ import annotations

import pytest

from virtctl.errors import XMLError
from virtctl.xml import validate as V
from virtctl.xml import xmlapi

GOOD = """\
<domain type='kvm'>
  <name>demo</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>219136</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/images/a.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/var/lib/images/b.img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <controller type='usb' index='0' model='qemu-xhci'/>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


def problems_of(text: str, kind: str | None = None) -> list[str]:
    root = xmlapi.parse(text, source="domain.xml")
    return [str(p) for p in V.problems(root, kind, source="domain.xml", text=text)]


def only_problem(text: str) -> str:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]


def test_good_document_has_no_problem():
    assert problems_of(GOOD) == []
    V.validate(xmlapi.parse(GOOD))


def test_bad_enum_value_lists_allowed_values():
    bad = GOOD.replace("<target dev='vdb' bus='virtio'/>", "<target dev='vdb' bus='virtioo'/>")
    assert only_problem(bad) == (
        "domain.xml:17:25: /domain/devices/disk[2]/target: attribute 'bus' has invalid value "
        "'virtioo' (expected one of: ide, fdc, scsi, virtio, xen, usb, …)")


def test_unknown_element_deep_in_devices():
    bad = GOOD.replace("      <model type='virtio'/>\n",
                       "      <model type='virtio'/>\n      <frobnicate level='3'/>\n")
    assert only_problem(bad) == (
        "domain.xml:23:7: /domain/devices/interface/frobnicate: unknown element <frobnicate> in <interface>")


def test_unknown_attribute():
    bad = GOOD.replace("<source file='/var/lib/images/a.img'/>",
                       "<source file='/var/lib/images/a.img' speed='fast'/>")
    assert only_problem(bad) == (
        "domain.xml:12:44: /domain/devices/disk[1]/source: unknown attribute 'speed'")


def test_missing_required_element():
    bad = GOOD.replace("      <target dev='vda' bus='virtio'/>\n", "")
    assert only_problem(bad) == (
        "domain.xml:11:5: /domain/devices/disk[1]: missing required element <target>")


def test_missing_required_attribute():
    bad = GOOD.replace("<target dev='vdb' bus='virtio'/>", "<target bus='virtio'/>")
    assert only_problem(bad) == (
        "domain.xml:17:7: /domain/devices/disk[2]/target: missing required attribute 'dev'")


def test_attribute_not_allowed_with_this_type():
    bad = GOOD.replace("<disk type='file' device='disk'>\n      <source file='/var/lib/images/b.img'/>",
                       "<disk type='file' device='lun'>\n      <source file='/var/lib/images/b.img'/>")
    assert only_problem(bad) == (
        "domain.xml:15:23: /domain/devices/disk[2]: attribute 'device' has invalid value 'lun' "
        "(expected one of: disk, cdrom, floppy)")


def test_bad_uuid():
    bad = GOOD.replace("d65c16db1809", "d65c16db18zz")
    assert only_problem(bad) == (
        "domain.xml:3:3: /domain/uuid: invalid value 'c7a5fdbd-edaf-9455-926a-d65c16db18zz' "
        "(expected a UUID such as 4dea22b3-1d52-d8f3-2516-782e98ab3fa0)")


def test_wrong_memory_unit():
    bad = GOOD.replace("<memory unit='KiB'>", "<memory unit='KX'>")
    assert only_problem(bad) == (
        "domain.xml:4:11: /domain/memory: attribute 'unit' has invalid value 'KX' "
        "(expected a unit such as KiB, MiB, GiB, KB or bytes)")


def test_text_in_a_number_field():
    bad = GOOD.replace("<memory unit='KiB'>219136</memory>", "<memory unit='KiB'>lots</memory>")
    assert only_problem(bad) == (
        "domain.xml:4:3: /domain/memory: invalid value 'lots' "
        "(expected an unsigned integer)")


def test_pci_slot_out_of_range():
    bad = GOOD.replace("<model type='virtio'/>",
                       "<model type='virtio'/>\n      <address type='pci' bus='0x00' slot='0x20' function='0x0'/>")
    assert only_problem(bad) == (
        "domain.xml:23:38: /domain/devices/interface/address: attribute 'slot' has invalid value "
        "'0x20' (expected a PCI slot number (0x00 to 0x1f))")


def test_wrong_root_element():
    text = "<domian type='kvm'>\n  <name>x</name>\n</domian>\n"
    with pytest.raises(XMLError) as exc:
        V.detect_kind(xmlapi.parse(text))
    assert str(exc.value) == (
        "unknown root element <domian> (expected one of: <domain>, <network>, <pool>, <volume>, "
        "<domainsnapshot>, <node>)")
    assert problems_of(text, "domain") == [
        "domain.xml:1:1: /domian: wrong root element <domian> (expected <domain> for a domain document)"]


def test_several_problems_one_error():
    bad = (GOOD.replace("<memory unit='KiB'>", "<memory unit='KX'>")
               .replace("bus='virtio'/>\n    </disk>\n    <interface",
                        "bus='virtioo'/>\n    </disk>\n    <interface"))
    with pytest.raises(XMLError) as exc:
        V.validate(xmlapi.parse(bad), source="domain.xml", text=bad)
    err = exc.value
    assert err.code == "XML_ERROR" and err.exit_status == 5
    assert err.message == (
        "domain.xml:4:11: /domain/memory: attribute 'unit' has invalid value 'KX' "
        "(expected a unit such as KiB, MiB, GiB, KB or bytes) (and 1 more problem)")
    probs = err.detail["problems"]
    assert [p["xpath"] for p in probs] == ["/domain/memory", "/domain/devices/disk[2]/target"]
    assert probs[1] == {"source": "domain.xml", "line": 17, "column": 25,
                        "xpath": "/domain/devices/disk[2]/target",
                        "message": "attribute 'bus' has invalid value 'virtioo' "
                                   "(expected one of: ide, fdc, scsi, virtio, xen, usb, …)"}


def test_without_text_no_column():
    bad = GOOD.replace("<memory unit='KiB'>", "<memory unit='KX'>")
    (p,) = V.problems(xmlapi.parse(bad), source="d.xml")
    assert (p.line, p.column) == (4, 0)
    assert str(p).startswith("d.xml:4: /domain/memory: ")


def test_network_and_pool_and_node():
    net = "<network>\n  <name>n</name>\n  <forward mode='nate'/>\n</network>\n"
    assert problems_of(net) == [
        "domain.xml:3:12: /network/forward: attribute 'mode' has invalid value 'nate' "
        "(expected one of: nat, route, open, bridge, private, vepa, …)"]
    pool = "<pool type='dir'>\n  <name>p</name>\n  <target><path>/x</path><size/></target>\n</pool>\n"
    assert problems_of(pool) == [
        "domain.xml:3:26: /pool/target/size: unknown element <size> in <target>"]
    node = ("<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
            "  <domain type='test'>\n    <name>a</name>\n    <os><type>hvm</type></os>\n"
            "    <test:runstate>9</test:runstate>\n  </domain>\n</node>\n")
    assert problems_of(node) == [
        "domain.xml:5:5: /node/domain/test:runstate: invalid value '9' (expected an integer from 0 to 7)"]


def test_kinds_table():
    assert V.KINDS == {"domain": "domain", "network": "network", "pool": "pool",
                       "volume": "volume", "domainsnapshot": "domainsnapshot", "node": "node"}
