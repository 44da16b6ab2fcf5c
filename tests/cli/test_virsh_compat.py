"""Side by side with the real virsh: the same command strings on the test
driver give the same stdout and the same success or failure.

virsh is the oracle (Debian's libvirt-clients); these tests are skipped
where it is absent, and .ci/run installs it.  Lines that differ by nature
are normalised: ``CPU time`` (the test driver reports the wall clock) and
``version`` (virtctl names itself, not libvirt).
"""
from __future__ import annotations

import textwrap

import pytest

from virsh_side import VIRSH, VIRTCTL, compare, needs_virsh
from virsh_side import norm as _norm
from virsh_side import run as _run

pytestmark = needs_virsh

NODE_XML = textwrap.dedent("""\
    <node>
      <cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads><mhz>2000</mhz><model>Xeon</model></cpu>
      <memory>8192000</memory>
      <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
        <name>alpha</name><uuid>aaaaaaaa-2222-3333-4444-555555555555</uuid><memory>1024</memory><os><type>hvm</type></os>
        <test:runstate>5</test:runstate>
      </domain>
      <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
        <name>beta</name><uuid>11111111-2222-3333-4444-555555555555</uuid><title>Beta box</title><memory unit="MiB">2</memory><vcpu>3</vcpu><os><type>hvm</type></os>
        <devices>
          <disk type="file" device="cdrom"><source file="/iso/a.iso"/><target dev="hdc" bus="ide"/></disk>
          <disk type="file" device="disk"><source file="/iso/a.img"/><target dev="vdc" bus="virtio"/><readonly/></disk>
          <disk type="block" device="disk"><source dev="/dev/sdb"/><target dev="vdb" bus="virtio"/></disk>
          <interface type="bridge"><mac address="52:54:00:11:22:33"/><source bridge="br0"/><model type="virtio"/></interface>
        </devices>
        <test:runstate>3</test:runstate>
      </domain>
      <domain type="test"><name>gamma</name><uuid>99999999-2222-3333-4444-555555555555</uuid><memory>4096</memory><os><type>hvm</type></os></domain>
      <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0"><name>delta</name><uuid>dddddddd-2222-3333-4444-555555555555</uuid><memory>4096</memory><os><type>hvm</type></os><test:transient/></domain>
      <domain file="epsilon.xml"/>
    </node>
    """)

EPSILON_XML = """<domain type='test'><name>epsilon</name><uuid>eeeeeeee-2222-3333-4444-555555555555</uuid>
<memory unit='GiB'>1</memory><currentMemory unit='MiB'>512</currentMemory><vcpu current='1'>4</vcpu>
<os><type>hvm</type></os></domain>"""

MIXED_XML = """<domain type='test'><name>mixed</name><uuid>12345678-1234-1234-1234-123456789abc</uuid><memory>1024</memory><os><type>hvm</type></os>
<devices>
<disk type='file' device='disk'><source file='/a'/><target dev='sdb' bus='sata'/></disk>
<disk type='file' device='cdrom'><source file='/b'/><target dev='hdd' bus='ide'/></disk>
<disk type='file' device='disk'><source file='/c'/><target dev='sdq' bus='scsi'/></disk>
<disk type='file' device='disk'><source file='/e'/><target dev='hda' bus='ide'/></disk>
<disk type='file' device='floppy'><source file='/f'/><target dev='fdb' bus='fdc'/></disk>
<disk type='file' device='disk'><source file='/g'/><target dev='vdb' bus='virtio'/></disk>
<disk type='file' device='disk'><source file='/h'/><target dev='vda' bus='virtio'/></disk>
<controller type='usb' index='0'/>
<controller type='scsi' index='3'/>
</devices></domain>
"""

DOMAIN_XML = """<domain type='test'>
  <name>vm1</name>
  <uuid>4d001c39-4ef5-4551-ae04-b25458819f61</uuid>
  <memory unit='MiB'>512</memory>
  <os><type>hvm</type></os>
</domain>
"""

# command strings run on test:///default
DEFAULT_CASES = [
    "list", "list --all", "list --inactive", "list --name", "list --uuid", "list --id",
    "list --all --name --uuid --id", "list --name --uuid", "list --table --all", "list --title --all",
    "list --persistent", "list --transient", "list --autostart", "list --no-autostart",
    "list --state-running", "list --state-paused", "list --all --state-shutoff",
    "list --all --state-other", "list --with-managed-save", "list --without-managed-save",
    "list --table --name", "list --all --managed-save",
    "dominfo test", "dominfo --domain test", "dominfo 1", "dominfo 6695eb01-f6a4-8304-79aa-97f2502e193f",
    "dominfo nosuch", "dominfo 6695eb01-f6a4-8304-79aa-97f2502e193x", "dominfo", "dominfo test --foo",
    "domstate test", "domstate test --reason", "domid test", "domname 1", "domuuid test",
    "dumpxml test", "dumpxml test --inactive", "dumpxml --domain test --security-info",
    "dumpxml test --xpath //name", "dumpxml test --xpath //disk/source/@file",
    "dumpxml test --xpath '//devices/*' --wrap",
    "destroy test; domstate test --reason; list --all; dominfo test",
    "destroy test; destroy test",
    "destroy test; start test; domid test; domstate test --reason",
    "start test",
    "shutdown test; domstate test --reason; list --all",
    "reboot test; domstate test --reason",
    "reset test; domstate test --reason",
    "suspend test; domstate test --reason; suspend test; resume test; domstate --reason test; resume test",
    "autostart test; list --autostart --name; autostart --disable test; list --autostart",
    "setmem test 1024; dominfo test", "setmem test 1G --live; dominfo test",
    "setmem test -- -1", "setmem test 99999999999999999999", "setmem test 1T",
    "setmaxmem test 1G", "destroy test; setmaxmem test 1G; dominfo test",
    "destroy test; setmaxmem test 4G --config; setmem test 1G --config; dominfo test",
    "vcpucount test", "vcpucount test --live", "vcpucount test --config --maximum",
    "destroy test; vcpucount test",
    "setvcpus test 1; vcpucount test", "setvcpus test 3",
    "destroy test; setvcpus test 1 --config; vcpucount test",
    "destroy test; setvcpus test 4 --maximum --config; vcpucount test",
    "domblklist test", "domblklist test --details", "domblklist test --inactive",
    "domiflist test",
    "destroy test; domrename test foo; list --all; domrename foo test; list --all",
    "domrename test foo",
    "undefine test; list --all; destroy test; list --all",
    "nodeinfo", "uri", "hostname",
    "echo hello world", "echo 'a  b' c\\ d \"e;f\"", "echo a # comment", "echo --shell 'a b' c",
    "echo --xml '<a>'",
    "frob", "list --bogus", "domid",
    "define {dir}/vm1.xml; list --all; dominfo vm1; dumpxml vm1",
    "define {dir}/vm1.xml; start vm1; list --all; dumpxml vm1; destroy vm1; list --all",
    "create {dir}/vm1.xml; list --all; dominfo vm1; destroy vm1; list --all",
    "define {dir}/nosuch.xml",
    "define {dir}/vm1.xml; undefine vm1; list --all",
    "define {dir}/mixed.xml; dumpxml mixed; domblklist mixed --details",
]

NODE_CASES = [
    "list --all", "list", "list --inactive", "list --transient --all", "list --persistent --all",
    "list --all --title", "list --all --state-paused", "list --all --name", "list --all --uuid --id",
    "nodeinfo", "uri",
    "dominfo beta", "dominfo alpha", "dominfo epsilon", "dominfo delta",
    "domstate --reason alpha", "domstate beta --reason", "domstate gamma --reason",
    "dumpxml beta", "dumpxml epsilon", "dumpxml alpha",
    "domblklist beta --details", "domiflist beta",
    "vcpucount epsilon", "vcpucount alpha",
    "start alpha; list --all", "resume beta; domstate beta --reason",
    "destroy delta; list --all",
    "destroy epsilon; setvcpus epsilon 2 --config; vcpucount epsilon",
]

@pytest.fixture
def files(tmp_path):
    (tmp_path / "vm1.xml").write_text(DOMAIN_XML)
    (tmp_path / "epsilon.xml").write_text(EPSILON_XML)
    (tmp_path / "mixed.xml").write_text(MIXED_XML)
    node = tmp_path / "node.xml"
    node.write_text(NODE_XML)
    return tmp_path


@pytest.mark.parametrize("cmd", DEFAULT_CASES)
def test_default_driver_matches_virsh(cmd, files):
    compare("test:///default", cmd.format(dir=files), files)


@pytest.mark.parametrize("cmd", NODE_CASES)
def test_node_file_matches_virsh(cmd, files):
    compare(f"test://{files}/node.xml", cmd, files)


def test_argv_form_matches_command_string(files):
    """``virtctl dominfo test`` (argv) and ``virtctl 'dominfo test'`` agree."""
    a = _run([VIRTCTL, "-c", "test:///default", "dominfo", "--domain", "test"], files)
    b = _run([VIRSH, "-c", "test:///default", "dominfo", "--domain", "test"], files)
    assert _norm(a.stdout) == _norm(b.stdout)


def test_quiet_matches_virsh(files):
    for cmd in ("list --all", "destroy test; list --all", "domblklist test"):
        a = _run([VIRTCTL, "-q", "-c", "test:///default", cmd], files)
        b = _run([VIRSH, "-q", "-c", "test:///default", cmd], files)
        assert a.stdout == b.stdout, cmd
