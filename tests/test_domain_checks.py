"""Checks of a definition that the schema cannot make, with libvirt's
messages (virsh -c test:///default define is the oracle): vCPU counts,
memory sizes, generated interface names.  Through the model, and through
the installed virtctl on the test driver and the QEMU driver (define only:
nothing reaches QEMU)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from cli_runner import run_installed
from virtctl.errors import XMLError
from virtctl.xml.domain import MAX_VCPUS, DomainDef


def dom(memory: str = "<memory>1024</memory>", vcpu: str = "<vcpu>1</vcpu>", devices: str = "",
        cpu: str = "", name: str = "chk", dtype: str = "test") -> str:
    return (f"<domain type='{dtype}'><name>{name}</name>{memory}{vcpu}{cpu}<os><type>hvm</type></os>"
            f"<devices>{devices}</devices></domain>")


MEMORY_MISSING = "XML error: Memory size must be specified via <memory> or in the <numa> configuration"
CURRENT_ABOVE = "unsupported configuration: maximum vCPU count must not be less than current vCPU count"

# (document, libvirt's message, or virtctl's where libvirt has none)
REFUSED = [
    (dom(memory="<memory>0</memory>"), MEMORY_MISSING),
    (dom(memory="<memory unit='GiB'>0</memory>"), MEMORY_MISSING),
    (dom(memory=""), MEMORY_MISSING),
    (dom(memory="<maxMemory slots='2' unit='KiB'>4194304</maxMemory>"), MEMORY_MISSING),
    (dom(memory="<memory>9007199254740992</memory>"), "numerical overflow: value too large: 9007199254740992"),
    (dom(memory="<memory unit='KiB'>18014398509481984</memory>"),
     "numerical overflow: value too large: 18014398509481984KiB"),
    (dom(memory="<memory unit='TiB'>17179869184</memory>"), "numerical overflow: value too large: 17179869184TiB"),
    (dom(vcpu="<vcpu current='3'>2</vcpu>"), CURRENT_ABOVE),
    # (counts above 65535 are refused by the schema first: test_schema_refuses_huge_counts)
    (dom(vcpu=f"<vcpu>{MAX_VCPUS + 1}</vcpu>"),
     f"XML error: maximum vcpus count {MAX_VCPUS + 1} is larger than the limit of {MAX_VCPUS}"),
    # the vCPU check comes first, as in libvirt (parse before post-parse)
    (dom(memory="<memory>0</memory>", vcpu="<vcpu current='3'>2</vcpu>"), CURRENT_ABOVE),
]


@pytest.mark.parametrize("xml", [dom(vcpu="<vcpu current='4294967296'>2</vcpu>"),
                                 dom(vcpu="<vcpu>4294967296</vcpu>"), dom(vcpu="<vcpu>2147483648</vcpu>")])
def test_schema_refuses_huge_counts(xml):
    """libvirt's schema counts vCPUs as an unsigned short, and virtctl always
    validates (virsh's define does not, so libvirt's parser answers there)."""
    with pytest.raises(XMLError, match=r"expected an integer from 1 to 65535"):
        DomainDef.parse(xml)


@pytest.mark.parametrize("xml,message", REFUSED)
def test_refused_by_the_model(xml, message):
    with pytest.raises(XMLError) as exc:
        DomainDef.parse(xml)
    assert exc.value.message == message


@pytest.mark.parametrize("uri", ["test:///default", "qemu:///embed"])
@pytest.mark.parametrize("xml,message", [REFUSED[0], REFUSED[7], REFUSED[8]])
def test_refused_at_define_and_create(tmp_path, uri, xml, message):
    if uri == "qemu:///embed":
        uri = f"qemu:///embed?root={tmp_path}/root"
        xml = xml.replace("type='test'", "type='qemu'")
    path = tmp_path / "chk.xml"
    path.write_text(xml)
    for cmd in ("define", "create"):
        r = run_installed("-c", uri, cmd, str(path))
        assert r.status == 5, (cmd, r.err)
        assert f"error: {message}" in r.err
    assert "chk" not in run_installed("-c", uri, "list", "--all", "--name").out


def test_stored_definitions_are_read_back_without_the_new_checks():
    # a definition in a driver's state (validate=False) stays readable even if
    # an older virtctl stored it: it is listed, and can be undefined
    for xml, _ in (REFUSED[0], REFUSED[7], REFUSED[8]):
        assert DomainDef.parse(xml, validate=False).name == "chk"
    with pytest.raises(XMLError) as exc:  # but a definition without any memory is not one
        DomainDef.parse(dom(memory=""), validate=False)
    assert exc.value.message == MEMORY_MISSING


def test_accepted_edges():
    d = DomainDef.parse(dom(memory="<memory>9007199254740991</memory>"))
    assert d.max_memory_kib == 9007199254740991
    d = DomainDef.parse(dom(vcpu=f"<vcpu current='{MAX_VCPUS}'>{MAX_VCPUS}</vcpu>"))
    assert (d.max_vcpus, d.vcpus) == (MAX_VCPUS, MAX_VCPUS)
    d = DomainDef.parse(dom(memory="<memory unit='b'>1</memory>"))
    assert d.max_memory_kib == 1  # rounded up, as libvirt does


def test_current_memory_zero_or_above_is_the_maximum():
    for cur in ("0", "4096"):
        d = DomainDef.parse(dom(memory=f"<memory>1024</memory><currentMemory>{cur}</currentMemory>"))
        d.normalize()
        assert (d.max_memory_kib, d.memory_kib) == (1024, 1024)
        assert "<currentMemory unit='KiB'>1024</currentMemory>" in d.to_xml()


def test_memory_from_numa_cells():
    cpu = ("<cpu><numa><cell id='0' cpus='0' memory='256' unit='MiB'/>"
           "<cell id='1' cpus='1' memory='262144'/></numa></cpu>")
    d = DomainDef.parse(dom(memory="<memory>0</memory>", vcpu="<vcpu>2</vcpu>", cpu=cpu))
    d.normalize()
    assert d.max_memory_kib == 524288 and d.memory_kib == 524288


def test_setting_vcpus_past_the_limit_is_refused():
    from virtctl.errors import InvalidArg

    d = DomainDef.parse(dom())
    with pytest.raises(InvalidArg):
        d.set_vcpus(2147483648, maximum=True)


# --- interface target names libvirt treats as generated ------------------------------

TARGETS = ["vnet0", "vif1.0", "vif", "macvtap3", "macvlan0", "testnet7", "tap0", "vnetx", "VNET0", "vn"]
IFACES = "".join(f"<interface type='user'><mac address='52:54:00:00:00:{i:02x}'/><target dev='{t}'/>"
                 f"<model type='virtio'/></interface>" for i, t in enumerate(TARGETS))
# what `virsh -c test:///default "define F; dumpxml tif"` prints (libvirt 9.0)
VIRSH_TARGETS = ["testnet0", "vif1.0", "vif", "testnet1", "testnet2", "testnet7", "tap0", "testnet3", "VNET0", "vn"]


def _targets(xml: str) -> list[str]:
    import re

    return re.findall(r"<target dev='([^']*)'/>", xml)


def test_generated_names_are_forgotten_by_the_model():
    d = DomainDef.parse(dom(devices=IFACES, name="tif"))
    d.normalize()
    assert _targets(d.to_xml()) == [t for t in TARGETS if not t.startswith(("vnet", "macvtap", "macvlan"))]


def test_test_driver_names_interfaces_as_libvirt(tmp_path):
    path = tmp_path / "tif.xml"
    path.write_text(dom(devices=IFACES, name="tif"))
    r = run_installed("-c", "test:///default", f"define {path}; dumpxml tif")
    assert r.status == 0, r.err
    assert _targets(r.out) == VIRSH_TARGETS
    if shutil.which("virsh"):  # the oracle itself, when installed
        v = subprocess.run(["virsh", "-c", "test:///default", f"define {path}; dumpxml tif"],
                           capture_output=True, text=True, timeout=60)
        assert _targets(v.stdout) == VIRSH_TARGETS


def test_qemu_driver_forgets_generated_names(tmp_path):
    path = tmp_path / "tif.xml"
    path.write_text(dom(devices=IFACES, name="tif", dtype="qemu"))
    uri = f"qemu:///embed?root={tmp_path}/root"
    r = run_installed("-c", uri, f"define {path}; dumpxml tif")
    assert r.status == 0, r.err
    assert _targets(r.out) == ["vif1.0", "vif", "testnet7", "tap0", "VNET0", "vn"]


# --- disk buses implied by the target name -------------------------------------------

BUS_DISKS = ("<disk type='file' device='disk'><source file='/a'/><target dev='sdb'/></disk>"
             "<disk type='file' device='disk'><source file='/b'/><target dev='sda' bus='scsi'/></disk>"
             "<disk type='file' device='disk'><source file='/c'/><target dev='vdb'/></disk>"
             "<disk type='file' device='disk'><source file='/d'/><target dev='vda' bus='virtio'/></disk>")
# `virsh -c test:///default "define F; dumpxml tb"` (libvirt 9.0): ordered by
# the bus as written, then the bus filled in from the name
VIRSH_BUS_LINES = [
    "<target dev='sdb' bus='scsi'/>",
    "<address type='drive' controller='0' bus='0' target='0' unit='1'/>",
    "<target dev='vdb' bus='virtio'/>",
    "<target dev='sda' bus='scsi'/>",
    "<address type='drive' controller='0' bus='0' target='0' unit='0'/>",
    "<target dev='vda' bus='virtio'/>",
    "<controller type='scsi' index='0'/>",
]


def test_disk_bus_from_the_target_name_as_libvirt(tmp_path):
    path = tmp_path / "tb.xml"
    path.write_text(dom(devices=BUS_DISKS, name="tb"))
    r = run_installed("-c", "test:///default", f"define {path}; dumpxml tb")
    assert r.status == 0, r.err
    lines = [ln.strip() for ln in r.out.splitlines() if ln.strip().startswith(("<target", "<address", "<controller"))]
    assert lines == VIRSH_BUS_LINES


# --- names that display as other names -------------------------------------------------

@pytest.mark.parametrize("uri", ["test:///default", "qemu:///embed"])
@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u2028"])
def test_names_with_bidi_or_separators_are_refused(tmp_path, uri, char):
    dtype = "test" if uri.startswith("test") else "qemu"
    if dtype == "qemu":
        uri = f"qemu:///embed?root={tmp_path}/root"
    path = tmp_path / "n.xml"
    path.write_text(dom(name=f"evil{char}lmth.exe", dtype=dtype), encoding="utf-8")
    r = run_installed("-c", uri, "define", str(path))
    assert r.status == 5 and f"U+{ord(char):04X}" in r.err, r.err
    assert char not in r.err  # the message shows it escaped
    path.write_text(dom(name="plain", dtype=dtype))
    r = run_installed("-c", uri, f"define {path}; domrename plain 'x{char}y'; list --all --name")
    assert f"U+{ord(char):04X}" in r.err
    assert "plain" in r.out.split()
