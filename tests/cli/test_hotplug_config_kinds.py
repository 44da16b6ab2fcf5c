"""attach-device / detach-device --config of every device kind on the QEMU
driver (qemu:///embed, a shut-off domain: no QEMU runs): libvirt 9.0's
qemuDomainAttachDeviceConfig / DetachDeviceConfig rules and words (taken
from its QEMU driver; tests/integration/test_qemu_hotplug_devices.py puts
the same device XMLs to a private libvirtd and compares), then the schema
and the argv builder as at define; a refusal leaves the definition as it was."""
from __future__ import annotations

import json

import pytest

from cli_runner import run

BASE = """<domain type='qemu'><name>k</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type machine='{machine}'>hvm</type></os><devices>{devices}</devices></domain>"""
RNG = "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
CHAN = "<channel type='unix'><target type='virtio' name='org.example.1'/></channel>"


@pytest.fixture
def dom(tmp_path):
    """define(devices, machine) -> (run(cmds), inactive XML())"""
    uri = f"qemu:///embed?root={tmp_path}/root"

    def define(devices: str = "", machine: str = "pc"):
        f = tmp_path / "d.xml"
        f.write_text(BASE.format(machine=machine, devices=devices))
        r = run("-c", uri, f"define {f}")
        assert r.status == 0, r.err
        return uri

    return define


def _dev(tmp_path, xml: str, name: str = "dev.xml") -> str:
    p = tmp_path / name
    p.write_text(xml)
    return str(p)


def _inactive(uri: str) -> str:
    r = run("-c", uri, "dumpxml k --inactive")
    assert r.status == 0, r.err
    return r.out


# (existing devices, device XML, exit status, words of the error)
REFUSED_ATTACH = [
    ("", "<memballoon model='virtio'/>", 6, "Operation not supported: persistent attach of device 'memballoon' is not supported"),
    ("", "<video><model type='virtio'/></video>", 6, "persistent attach of device 'video' is not supported"),
    ("", "<graphics type='vnc'/>", 6, "persistent attach of device 'graphics' is not supported"),
    ("", "<panic model='isa'/>", 6, "persistent attach of device 'panic' is not supported"),
    ("", "<tpm model='tpm-tis'><backend type='emulator'/></tpm>", 6, "persistent attach of device 'tpm' is not supported"),
    ("<controller type='scsi' index='0' model='virtio-scsi'/>", "<controller type='scsi' index='0' model='virtio-scsi'/>",
     4, "Requested operation is not valid: controller index='0' already exists"),
    ("<watchdog model='i6300esb'/>", "<watchdog model='ib700'/>", 4, "Requested operation is not valid: domain already has a watchdog"),
    (CHAN, CHAN, 4, "Requested operation is not valid: chardev already exists"),
    ("", "<console type='pty'/>", 6, "attaching serial console is not supported"),
    ("<filesystem type='mount'><source dir='/tmp'/><target dir='t1'/></filesystem>",
     "<filesystem type='mount'><source dir='/var'/><target dir='t1'/></filesystem>", 4, "Target already exists"),
    ("<vsock model='virtio'><cid auto='yes'/></vsock>", "<vsock model='virtio'><cid auto='yes'/></vsock>", 4,
     "domain already has a vsock device"),
    ("<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>",
     "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>", 4,
     "device is already in the domain configuration"),
    ("<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
     "<address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/></rng>",
     "<rng model='virtio'><backend model='random'>/dev/random</backend>"
     "<address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/></rng>", 6,
     "a device with the same address already exists"),
    # libvirt takes these; virtctl's QEMU command line cannot have them: the argv builder's refusal
    ("", "<watchdog model='i6300esb'/>", 6, "<watchdog model='i6300esb'> is not supported by the qemu driver"),
    ("", "<sound model='ich6'/>", 6, "<sound model='ich6'> is not supported"),
    ("", "<filesystem type='mount'><source dir='/tmp'/><target dir='t1'/></filesystem>", 6, "<filesystem"),
    # the schema
    ("", "<rng model='virtio'><backend model='bogus'>/dev/urandom</backend></rng>", 5, "bogus"),
]


@pytest.mark.parametrize("have,xml,status,words", REFUSED_ATTACH,
                         ids=[f"{i}-{x[1][1:x[1].index(' ')]}" for i, x in enumerate(REFUSED_ATTACH)])
def test_attach_config_refusals_change_nothing(dom, tmp_path, have, xml, status, words):
    if "<watchdog" in have or "<filesystem" in have or "<vsock" in have or "<hostdev" in have:
        # kinds virtctl cannot define: put them in the stored definition as libvirt would have it
        uri = dom()
        before = _seed(tmp_path, uri, have)
    else:
        uri = dom(have)
        before = _inactive(uri)
    r = run("-c", uri, f"attach-device k {_dev(tmp_path, xml)} --config")
    assert r.status == status, (r.status, r.err)
    assert words in r.err and "Failed to attach device from" in r.err
    assert _inactive(uri) == before


def _seed(tmp_path, uri: str, devices: str) -> str:
    """Write ``devices`` into the stored persistent definition directly (kinds
    that define refuses), returning dumpxml --inactive after."""
    from lxml import etree

    paths = list((tmp_path / "root").rglob("*.xml"))
    cfg = next(p for p in paths if etree.parse(str(p)).getroot().findtext("name") == "k"
               and "run" not in p.parts)
    tree = etree.parse(str(cfg))
    devs = tree.getroot().find("devices")
    if devs is None:
        devs = etree.SubElement(tree.getroot(), "devices")
    devs.append(etree.fromstring(devices))
    cfg.write_bytes(etree.tostring(tree))
    out = _inactive(uri)
    assert devices.split(" ")[0] in out
    return out


def test_attach_and_detach_config_of_each_kind(dom, tmp_path):
    uri = dom(RNG + "<serial type='pty'/>")
    files = {
        "rng": "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>",
        "ctl": "<controller type='scsi' model='virtio-scsi'/>",
        "chan": CHAN,
        "ser": "<serial type='pty'/>",
        "tablet": "<input type='tablet' bus='usb'/>",
        "vser": "<controller type='virtio-serial'/>",
    }
    paths = {k: _dev(tmp_path, v, f"{k}.xml") for k, v in files.items()}
    cmds = "; ".join(f"attach-device k {p} --config" for p in paths.values())
    r = run("-c", uri, cmds)
    assert r.status == 0, r.err
    assert r.out.count("Device attached successfully") == len(files)
    xml = _inactive(uri)
    # libvirt fills in what it would: the controller's index, the serial's port
    assert "<controller type='scsi' index='0' model='virtio-scsi'/>" in xml
    assert "<controller type='virtio-serial' index='0'/>" in xml
    assert xml.count("<serial type='pty'") == 2 and "<target port='1'/>" in xml
    assert "/dev/random" in xml and "/dev/urandom" in xml and "org.example.1" in xml and "tablet" in xml
    # the definition still starts: domxml-to-native builds it
    r = run("-c", uri, "domxml-to-native qemu-argv --domain k")
    assert r.status == 0, r.err
    assert "virtio-rng-pci" in r.out and r.out.count("virtserialport") == 1 and "virtio-scsi-pci" in r.out

    # detach as libvirt matches: a controller by type and index, a serial by its port,
    # an rng by model and backend, a channel by its source and name, an input by type and bus
    det = {
        "ctl": "<controller type='scsi' index='0'/>",
        "ser": "<serial type='pty'><target port='1'/></serial>",
        "rng": "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>",
        "chan": CHAN,
        "tablet": "<input type='tablet' bus='usb'/>",
    }
    dpaths = {k: _dev(tmp_path, v, f"d-{k}.xml") for k, v in det.items()}
    r = run("-c", uri, "; ".join(f"detach-device k {p} --config" for p in dpaths.values()))
    assert r.status == 0, r.err
    assert r.out.count("Device detached successfully") == len(det)
    xml = _inactive(uri)
    assert "scsi" not in xml and xml.count("<serial") == 1 and "/dev/random" not in xml
    assert "/dev/urandom" in xml and "org.example.1" not in xml and "tablet" not in xml


# (existing devices, device XML to detach, exit status, words)
REFUSED_DETACH = [
    (RNG, "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>", 1,
     "device not found: no matching RNG device was found"),
    (RNG, "<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
          "<address type='pci' domain='0x0000' bus='0x00' slot='0x1f' function='0x0'/></rng>", 1,
     "no matching RNG device was found"),
    ("", "<watchdog model='ib700'/>", 1, "device not found: domain has no watchdog"),
    ("", "<memballoon model='virtio'/>", 6, "Operation not supported: persistent detach of device 'memballoon' is not supported"),
    ("", "<video><model type='vga'/></video>", 6, "persistent detach of device 'video' is not supported"),
    ("<controller type='scsi' index='0' model='virtio-scsi'/>", "<controller type='scsi'/>", 1,
     "device not found: device not present in domain configuration"),
    (CHAN, "<channel type='pty'><target type='virtio' name='org.example.1'/></channel>", 2,
     "invalid argument: device not present in domain configuration"),
    (CHAN, "<channel type='unix'><target type='virtio' name='org.example.2'/></channel>", 2,
     "device not present in domain configuration"),
    ("<serial type='pty'/>", "<serial type='pty'/>", 2, "device not present in domain configuration"),
    ("<input type='tablet' bus='usb'/>", "<input type='tablet' bus='virtio'/>", 1,
     "device not found: matching input device not found"),
    ("", "<sound model='ich6'/>", 1, "device not found: device not present in domain configuration"),
    ("", "<filesystem type='mount'><source dir='/var'/><target dir='t2'/></filesystem>", 1,
     "no matching filesystem device was found"),
    ("", "<vsock model='virtio'><cid auto='yes'/></vsock>", 1, "operation failed: matching vsock device not found"),
    ("", "<shmem name='s1'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>", 1,
     "matching shmem device was not found"),
    ("", "<lease><lockspace>s</lockspace><key>k</key><target path='/tmp/x'/></lease>", 1,
     "device not found: Lease k in lockspace s does not exist"),
]


@pytest.mark.parametrize("have,xml,status,words", REFUSED_DETACH,
                         ids=[f"{i}-{x[1][1:x[1].index(' ') if ' ' in x[1][:12] else x[1].index('>')]}"
                              for i, x in enumerate(REFUSED_DETACH)])
def test_detach_config_refusals_change_nothing(dom, tmp_path, have, xml, status, words):
    uri = dom(have)
    before = _inactive(uri)
    r = run("-c", uri, f"detach-device k {_dev(tmp_path, xml)} --config")
    assert r.status == status, (r.status, r.err)
    assert words in r.err and "Failed to detach device from" in r.err
    assert _inactive(uri) == before


def test_detach_config_of_kinds_define_refuses(dom, tmp_path):
    """A stored definition with a watchdog (as libvirt would keep it): detach
    --config removes it whatever model the XML names (libvirt 9.0's rule)."""
    uri = dom()
    _seed(tmp_path, uri, "<watchdog model='i6300esb'/>")
    f = _dev(tmp_path, "<watchdog model='ib700'/>")
    r = run("-c", uri, f"detach-device k {f} --config")
    assert r.status == 0, r.err
    assert "watchdog" not in _inactive(uri)


def test_json_of_a_config_attach_and_a_refusal(dom, tmp_path):
    uri = dom()
    r = run("-c", uri, "--json", f"attach-device k {_dev(tmp_path, RNG)} --config")
    assert r.status == 0, r.err
    doc = json.loads(r.out)
    assert doc["action"] == "attached" and doc["config"] is True and doc["live"] is False
    f = _dev(tmp_path, "<memballoon model='virtio'/>", "m.xml")
    r = run("-c", uri, "--json", f"attach-device k {f} --config")
    assert r.status == 6
    err = json.loads(r.out or r.err)["error"]
    assert err["code"] == "NOT_SUPPORTED" and "memballoon" in err["message"]


def test_controllers_without_index_count_as_the_builder_numbers_them(dom, tmp_path):
    """A stored controller without index is index 0 of its type (as the argv
    builder and libvirt number it): index 0 is taken, detach by index 0 finds it."""
    uri = dom("<controller type='scsi'/><controller type='virtio-serial'/>")
    a = _dev(tmp_path, "<controller type='scsi' index='0' model='virtio-scsi'/>", "a.xml")
    b = _dev(tmp_path, "<controller type='scsi' model='virtio-scsi'/>", "b.xml")
    c = _dev(tmp_path, "<controller type='virtio-serial' index='0'/>", "c.xml")
    r = run("-c", uri, f"attach-device k {a} --config")
    assert r.status == 4 and "controller index='0' already exists" in r.err
    r = run("-c", uri, f"attach-device k {b} --config; detach-device k {c} --config")
    assert r.status == 0, r.err
    xml = _inactive(uri)
    assert "<controller type='scsi' index='1' model='virtio-scsi'/>" in xml and "virtio-serial" not in xml
