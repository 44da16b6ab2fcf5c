"""Hotplug of an rng and a virtio-serial channel against real QEMU (TCG) and
the test guest, through the installed entry point:

* ``<rng model='virtio'>`` (object rng-random + virtio-rng-pci on a free
  pcie-root-port): the guest's virtio bus shows the entropy device (virtio
  device id 0x0004) and loses it on detach; QEMU's objects and the live
  definition follow.  The test guest has no virtio_rng module (so no
  /dev/hwrng): the guest's /sys/bus/virtio/devices is what it sees;
* a unix ``<channel>`` (chardev-add + virtserialport on the domain's
  virtio-serial controller): QEMU listens on its socket (the test connects),
  the live definition shows its alias and virtio-serial address; detach
  removes the port, the chardev and the socket;
* a device QEMU refuses leaves no object or chardev behind; a kill -9
  between object-add / chardev-add and device_add is finished by the next
  command; other kinds live are NOT_SUPPORTED naming the element.

One q35 domain for the module (booting is the slow part).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import VIRTCTL, Env
from integration.test_qemu_confine import qemu_user  # noqa: F401,F811 - the fixture
from integration.test_qemu_hotplug import guest_run
from qmp_raw import qmp_command

pytestmark = pytest.mark.qemu
NAME = "hpd"
RNG = "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
VIRTIO_ENTROPY = "0x0004"


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("hpdev")
    e = Env(base / "root", test_guest)
    e.base = base
    text = e.xml(NAME).replace("<type machine='pc'>", "<type machine='q35'>").replace(
        "<serial type='pty'/>",
        "<controller type='virtio-serial'/>\n    <serial type='pty'/>")
    xml = base / "hpd.xml"
    xml.write_text(text)
    e.ok("define", str(xml))
    e.ok("start", NAME)
    e.dom_uuid = e.uuid(NAME)
    e.wait_ready(e.dom_uuid)
    e.qmp_path = e.record(NAME)["paths"]["qmp"]
    yield e
    e.cleanup()


def dev_file(env, name: str, xml: str) -> str:
    p = env.base / name
    p.write_text(xml)
    return str(p)


def qmp(env, command: str, args: dict | None = None):
    """Ask QEMU directly (between virtctl commands: read-only questions), not
    through a virtctl process per question (the suite's time)."""
    return qmp_command(env.qmp_path, command, args, timeout=30)


def objects(env) -> set[str]:
    return {o["name"] for o in qmp(env, "qom-list", {"path": "/objects"}) if o["name"].startswith("objrng")}


def chardevs(env) -> set[str]:
    return {c["label"] for c in qmp(env, "query-chardev") if c["label"].startswith("charchannel")}


def peripherals(env) -> set[str]:
    return {p["name"] for p in qmp(env, "qom-list", {"path": "/machine/peripheral"})}


def both_xml(env) -> tuple[str, str]:
    """dumpxml and dumpxml --inactive, from one virtctl process."""
    live, inactive = env.ok(f"dumpxml {NAME}; echo ===; dumpxml {NAME} --inactive").split("===\n")
    return live, inactive


def virtio_ids(env) -> list[str]:
    return guest_run(env, "cat /sys/bus/virtio/devices/*/device")


def until(what, pred, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if pred(got):
            return got
        assert time.monotonic() < deadline, f"still {got!r}"
        time.sleep(0.3)


def test_rng_hotplug_seen_by_the_guest_and_removed(env):
    assert VIRTIO_ENTROPY not in virtio_ids(env)
    f = dev_file(env, "rng.xml", RNG)
    out = env.ok("attach-device", NAME, f, "--live")
    assert out == "Device attached successfully\n\n"
    until(lambda: virtio_ids(env), lambda ids: VIRTIO_ENTROPY in ids)
    live, inactive = both_xml(env)
    rng = live[live.index("<rng"):live.index("</rng>")]
    assert "<alias name='rng0'/>" in rng
    assert "<address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>" in rng  # pcie-root-port 1
    assert "<rng" not in inactive  # --live only
    assert objects(env) == {"objrng0"} and "rng0" in peripherals(env)
    # QEMU's device is what dumpxml says: virtio-rng-pci on pci.1, backed by objrng0
    assert qmp(env, "qom-get", {"path": "/machine/peripheral/rng0", "property": "rng"}) == "/objects/objrng0"
    assert qmp(env, "qom-get", {"path": "/objects/objrng0", "property": "filename"}) == "/dev/urandom"

    r = env.run("--json", "detach-device", NAME, f, "--live")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["action"] == "detached"
    until(lambda: virtio_ids(env), lambda ids: VIRTIO_ENTROPY not in ids)
    assert "<rng" not in env.ok("dumpxml", NAME)
    assert objects(env) == set() and "rng0" not in peripherals(env)
    assert not env.record(NAME).get("unplugs")


def _connects(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def test_channel_hotplug_live_and_config(env):
    f = dev_file(env, "chan.xml", "<channel type='unix'><target type='virtio' name='org.example.hp'/></channel>")
    out = env.ok("attach-device", NAME, f, "--live", "--config")
    assert out == "Device attached successfully\n\n"
    live, inactive = both_xml(env)
    chan = live[live.index("<channel"):live.index("</channel>")]
    assert "<alias name='channel0'/>" in chan and "name='org.example.hp'" in chan
    assert "<address type='virtio-serial' controller='0' bus='0' port='1'/>" in chan
    assert "org.example.hp" in inactive and "<alias" not in inactive
    assert chardevs(env) == {"charchannel0"} and "channel0" in peripherals(env)
    assert qmp(env, "qom-get", {"path": "/machine/peripheral/channel0", "property": "name"}) == "org.example.hp"
    sock = Path(env.state.sock_dir(env.dom_uuid)) / "chardev" / "channel0.sock"
    assert _connects(str(sock))  # QEMU listens on the channel's socket

    # a second port on the one QEMU gave the first: QEMU refuses, the chardev goes again
    g = dev_file(env, "chan2.xml", "<channel type='unix'><target type='virtio' name='org.example.two'/>"
                                   "<address type='virtio-serial' controller='0' bus='0' port='1'/></channel>")
    before = both_xml(env)
    r = env.run("attach-device", NAME, g, "--live")
    assert r.returncode == 1, r.stderr
    assert "QEMU refused" in r.stderr and "Failed to attach device" in r.stderr
    assert chardevs(env) == {"charchannel0"} and "channel1" not in peripherals(env)
    assert not (sock.parent / "channel1.sock").exists()
    assert both_xml(env) == before and not env.record(NAME).get("hotplug")

    # the same name again: libvirt's refusal, before QEMU is asked
    r = env.run("attach-device", NAME, f, "--live")
    assert r.returncode == 4 and "chardev already exists" in r.stderr, r.stderr

    env.ok("detach-device", NAME, f, "--live", "--config")
    live, inactive = both_xml(env)
    assert "org.example.hp" not in live and "org.example.hp" not in inactive
    assert chardevs(env) == set() and "channel0" not in peripherals(env)
    assert not sock.exists()


def test_rng_refused_by_qemu_leaves_no_object(env):
    # slot 0x1f of q35's root complex is the ICH9 LPC bridge: device_add fails after object-add
    f = dev_file(env, "rng-bad.xml", "<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
                                     "<address type='pci' domain='0x0000' bus='0x00' slot='0x1f' "
                                     "function='0x0'/></rng>")
    before = both_xml(env)
    r = env.run("attach-device", NAME, f, "--live")
    assert r.returncode == 1, r.stderr
    assert "QEMU refused" in r.stderr and "does not support hotplugging" in r.stderr, r.stderr
    assert objects(env) == set()
    assert both_xml(env) == before and not env.record(NAME).get("hotplug")


@pytest.mark.parametrize("point,xml,gone", [
    ("hotplug:object-added", RNG, objects),
    ("hotplug:chardev-added", "<channel type='unix'><target type='virtio' name='org.example.k'/></channel>", chardevs),
])
def test_kill_between_backend_and_device_add_is_repaired(env, point, xml, gone):
    f = dev_file(env, "killed.xml", xml)
    before = both_xml(env)
    r = subprocess.run([VIRTCTL, "-c", env.uri, "attach-device", NAME, f, "--live"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "VIRTCTL_KILL_AT": point})
    assert r.returncode == -9, r.stderr
    rec = json.loads(Path(env.state.record_file(env.dom_uuid)).read_text())  # raw: no repair yet
    assert rec["hotplug"]["op"] == "attach" and (rec["hotplug"].get("object") or rec["hotplug"].get("chardev"))
    # QEMU has the backend and no device (asked directly: any virtctl command repairs first)
    raw_objects = {o["name"] for o in qmp_command(rec["paths"]["qmp"], "qom-list", {"path": "/objects"})}
    raw_chardevs = {c["label"] for c in qmp_command(rec["paths"]["qmp"], "query-chardev")}
    assert (rec["hotplug"].get("object") in raw_objects) or (rec["hotplug"].get("chardev") in raw_chardevs)
    assert rec["hotplug"]["id"] not in {p["name"] for p in qmp_command(
        rec["paths"]["qmp"], "qom-list", {"path": "/machine/peripheral"})}
    assert both_xml(env) == before  # the next command (this one) removed the backend
    assert gone(env) == set() and not env.record(NAME).get("hotplug")
    env.ok("attach-device", NAME, f, "--live")  # and it can be done again
    assert gone(env)
    env.ok("detach-device", NAME, f, "--live")
    assert gone(env) == set()


def test_other_kinds_live_are_not_supported_by_name(env):
    before = both_xml(env)
    f = dev_file(env, "wd.xml", "<watchdog model='i6300esb'/>")
    r = env.run("attach-device", NAME, f, "--live")
    assert r.returncode == 6 and "hotplug of <watchdog> is not supported" in r.stderr, r.stderr
    r = env.run("attach-device", NAME, f, "--live", "--config")
    assert r.returncode == 6 and "<watchdog>" in r.stderr, r.stderr
    m = dev_file(env, "mb.xml", "<memballoon model='virtio'/>")
    r = env.run("detach-device", NAME, m, "--live")
    assert r.returncode == 6 and "live detach of <memballoon>" in r.stderr, r.stderr
    # --config of a running domain's persistent definition: the kinds libvirt takes
    c = dev_file(env, "ctl.xml", "<controller type='scsi' model='virtio-scsi'/>")
    env.ok("attach-device", NAME, c, "--config")
    live, inactive = both_xml(env)
    assert "virtio-scsi" in inactive and "virtio-scsi" not in live
    env.ok("detach-device", NAME, dev_file(env, "ctl0.xml", "<controller type='scsi' index='0'/>"), "--config")
    assert both_xml(env) == before


# --- --config against libvirt itself ---------------------------------------------------------
LV_BASE = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<controller type='usb' model='none'/><memballoon model='none'/><serial type='pty'/>{devices}</devices></domain>"""
CHAN_HP = "<channel type='unix'><target type='virtio' name='org.example.1'/></channel>"
SEQUENCES = [
    ("", [("attach", "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>"),
          ("detach", "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"),
          ("detach", "<rng model='virtio'><backend model='random'>/dev/random</backend>"
                     "<address type='pci' domain='0x0000' bus='0x00' slot='0x1e' function='0x0'/></rng>"),
          ("detach", "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>"),
          ("detach", "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>")]),
    ("", [("attach", "<controller type='scsi' model='virtio-scsi'/>"),
          ("attach", "<controller type='scsi' index='0' model='virtio-scsi'/>"),
          ("detach", "<controller type='scsi' model='virtio-scsi'/>"),
          ("detach", "<controller type='scsi' index='0'/>"),
          ("detach", "<controller type='scsi' index='0'/>")]),
    ("", [("attach", CHAN_HP), ("attach", CHAN_HP),
          ("detach", "<channel type='pty'><target type='virtio' name='org.example.1'/></channel>"),
          ("detach", "<channel type='unix'><target type='virtio' name='org.example.2'/></channel>"),
          ("detach", CHAN_HP), ("detach", CHAN_HP)]),
    ("", [("attach", "<serial type='pty'/>"), ("detach", "<serial type='pty'/>"),
          ("detach", "<serial type='pty'><target port='1'/></serial>"),
          ("attach", "<console type='pty'/>")]),
    ("", [("attach", "<memballoon model='virtio'/>"), ("detach", "<memballoon model='virtio'/>"),
          ("attach", "<video><model type='virtio'/></video>"), ("attach", "<graphics type='vnc'/>"),
          ("detach", "<graphics type='vnc'/>"), ("detach", "<watchdog model='ib700'/>"),
          ("detach", "<sound model='ich6'/>"), ("detach", "<vsock model='virtio'><cid auto='yes'/></vsock>"),
          ("detach", "<filesystem type='mount'><source dir='/var'/><target dir='t2'/></filesystem>"),
          ("detach", "<shmem name='s1'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>"),
          ("detach", "<lease><lockspace>s</lockspace><key>k</key><target path='/tmp/x'/></lease>")]),
]


@pytest.mark.parametrize("devices,steps", SEQUENCES, ids=["rng", "controller", "channel", "serial", "others"])
def test_config_rules_and_words_are_libvirts(libvirtd, tmp_path, devices, steps):
    """The same attach/detach --config steps on a private libvirtd (libvirt
    9.0's QEMU driver) and on virtctl's: the same successes, libvirt's words
    in virtctl's refusals."""
    import libvirt

    from cli_runner import run

    name = f"cfg{abs(hash(str(steps))) % 10000}"
    xml = LV_BASE.format(name=name, devices=devices)
    conn = libvirt.open(libvirtd.uri)
    dom = conn.defineXML(xml)
    uri = f"qemu:///embed?root={tmp_path}/root"
    (tmp_path / "d.xml").write_text(xml)
    assert run("-c", uri, f"define {tmp_path / 'd.xml'}").status == 0
    try:
        for i, (op, dev) in enumerate(steps):
            try:
                (dom.attachDeviceFlags if op == "attach" else dom.detachDeviceFlags)(
                    dev, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
                want = None
            except libvirt.libvirtError as exc:
                want = exc.get_error_message().strip()
            f = tmp_path / f"s{i}.xml"
            f.write_text(dev)
            r = run("-c", uri, f"{op}-device {name} {f} --config")
            if want is None:
                assert r.status == 0, (op, dev, r.err)
            else:
                assert r.status != 0 and want in r.err, (op, dev, want, r.err)
    finally:
        dom.undefine()
        conn.close()


# --- disks on a confined QEMU (qemu:///system's way: QEMU opens no host path) ------------------
@pytest.fixture(scope="module")
def cenv(tmp_path_factory, test_guest, qemu_user):  # noqa: F811
    from integration.test_qemu_confine import confined_env, guest_xml, write

    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("hpconf")
    e = confined_env(base / "root", test_guest)
    e.base = base
    cdrom = "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/></disk>"
    e.ok("define", write(base / "cf.xml", guest_xml(e, "cf", cdrom)))
    e.ok("start", "cf")
    e.dom_uuid = e.uuid("cf")
    e.wait_ready(e.dom_uuid)
    e.qmp_path = e.record("cf")["paths"]["qmp"]
    yield e
    e.cleanup()


def _qemu_holds(pid: int, path: str) -> bool:
    fds = []
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except OSError:
            pass
    return path in fds


def _hp_fdsets(env) -> list:
    return [s for s in qmp_command(env.qmp_path, "query-fdsets")
            if any(f.get("opaque", "").startswith("hp-") for f in s["fds"])]


def test_disk_hotplug_on_a_confined_qemu_passes_the_image_as_descriptors(cenv):
    env = cenv
    img = str(env.base / "conf.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img, "16M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x42 0 512", img], check=True, capture_output=True)
    os.chmod(img, 0o600)  # root's: the QEMU user could not open it by path
    pid = env.record("cf")["pid"]
    had = set(guest_run(env, "ls /sys/block"))
    out = env.ok("attach-disk", "cf", img, "vdb", "--subdriver", "qcow2", "--live")
    assert out == "Disk attached successfully\n\n"
    sets = _hp_fdsets(env)
    assert len(sets) == 1 and len(sets[0]["fds"]) == 2  # read-write and read-only, as at start
    fdset = sets[0]["fdset-id"]
    files = [(b.get("inserted") or {}).get("file") for b in qmp_command(env.qmp_path, "query-block")]
    assert f"/dev/fdset/{fdset}" in files
    assert _qemu_holds(pid, img)
    # the guest names it by discovery (its first virtio disk: vda)
    seen = until(lambda: guest_run(env, "ls /sys/block"), lambda o: set(o) - had)
    (new,) = set(seen) - had
    assert guest_run(env, f"echo $(head -c 8 /dev/{new})") == ["BBBBBBBB"]
    assert img in env.ok("dumpxml", "cf")

    env.ok("detach-disk", "cf", "vdb", "--live")
    until(lambda: guest_run(env, "ls /sys/block"), lambda o: new not in o)
    assert _hp_fdsets(env) == [] and not _qemu_holds(pid, img)
    assert img not in env.ok("dumpxml", "cf")

    # killed between add-fd and blockdev-add: the next command removes the descriptors
    r = subprocess.run([VIRTCTL, "-c", env.uri, "attach-disk", "cf", img, "vdc", "--subdriver", "qcow2", "--live"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "VIRTCTL_KILL_AT": "hotplug:fd-added"})
    assert r.returncode == -9, r.stderr
    assert len(_hp_fdsets(env)) == 1  # QEMU holds them (asked directly: no repair yet)
    assert img not in env.ok("dumpxml", "cf")  # a virtctl command: repaired first
    assert _hp_fdsets(env) == [] and not _qemu_holds(pid, img)
    assert not env.record("cf").get("hotplug")


def test_change_media_on_a_confined_qemu(cenv):
    env = cenv
    pid = env.record("cf")["pid"]
    isos = []
    for n in (1, 2):
        p = env.base / f"m{n}.iso"
        p.write_bytes(bytes([0x40 + n]) * 4096)
        os.chmod(p, 0o600)
        isos.append(str(p))

    def medium():
        return next((b.get("inserted") or {}).get("file") for b in qmp_command(env.qmp_path, "query-block")
                    if b.get("qdev", "").endswith("ide0-1-0") or b.get("device") == "ide0-1-0")

    env.ok("change-media", "cf", "hdc", isos[0], "--insert", "--live")
    (s1,) = [s["fdset-id"] for s in _hp_fdsets(env)]
    assert medium() == f"/dev/fdset/{s1}" and _qemu_holds(pid, isos[0])
    env.ok("change-media", "cf", "hdc", isos[1], "--update", "--live")  # the old medium's set goes
    (s2,) = [s["fdset-id"] for s in _hp_fdsets(env)]
    assert s2 != s1 and medium() == f"/dev/fdset/{s2}"
    assert _qemu_holds(pid, isos[1]) and not _qemu_holds(pid, isos[0])
    env.ok("change-media", "cf", "hdc", "--eject", "--live")
    assert _hp_fdsets(env) == [] and not _qemu_holds(pid, isos[1])
    assert medium() is None and isos[1] not in env.ok("dumpxml", "cf")
