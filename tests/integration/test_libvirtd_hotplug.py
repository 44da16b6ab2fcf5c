"""Hotplug through the libvirt driver against a real libvirtd
(tests/integration/libvirtd_fixture.py) and the test guest under TCG:
attach-disk --live of a qcow2 image to the running guest (libvirt's alias in
dumpxml and in --json, the guest's kernel sees a new /sys/block/vdX),
detach-disk --live (gone from dumpxml and from the guest), detach-device-alias,
change-media --live (update-device), and --config changes of the persistent
definition only (disks, interfaces, media).

One domain for the module (booting is the slow part), no disk at boot but an
empty IDE CD-ROM (change-media --live): the hot-plugged disk is the guest's
first virtio disk.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from integration.libvirtd_fixture import LibvirtdEnv
from integration.test_qemu_driver import VIRTCTL

pytestmark = pytest.mark.qemu
NAME = "lvhot1"


class HotEnv(LibvirtdEnv):
    def xml(self, name: str | None = None, devices: str = "") -> str:
        # an empty CD-ROM from the start (IDE media change is live; an IDE drive is not hot-plugged)
        return super().xml(name, "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                                 "<target dev='hdc' bus='ide'/><readonly/></disk>" + devices)


@pytest.fixture(scope="module")
def env(libvirtd, test_guest, tmp_path_factory):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = HotEnv(libvirtd, tmp_path_factory.mktemp("lvhot"), guest=test_guest, name=NAME)
    p = e.base / "g.xml"
    p.write_text(e.xml())
    e.ok("define", str(p))
    e.ok("start", NAME)
    e.wait_serial(test_guest.ready_line)
    yield e
    for args in (("destroy", NAME), ("undefine", NAME)):
        e.run(*args)


def _qcow2(env, name: str) -> str:
    path = str(env.base / name)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "16M"], check=True)
    return path


def _vd(lines: list[str]) -> set[str]:
    return {w for ln in lines for w in ln.split() if w.startswith("vd")}


def test_attach_disk_live_seen_by_the_guest_then_detached(env):
    img = _qcow2(env, "data.qcow2")
    before = _vd(env.guest_run("ls /sys/block"))
    r = env.run("--json", "attach-disk", NAME, img, "vdb", "--subdriver", "qcow2", "--targetbus", "virtio",
                "--live")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["action"] == "attached" and got["target"] == "vdb", got
    live = env.ok("dumpxml", NAME)
    assert img in live and "<target dev='vdb' bus='virtio'/>" in live
    assert got.get("alias") and f"<alias name='{got['alias']}'/>" in live, (got, live)
    assert img not in env.ok("dumpxml", NAME, "--inactive")  # --live only
    assert env.ok("domblklist", NAME).count(img) == 1
    seen = env.guest_until("ls /sys/block", lambda o: len(_vd(o) - before) == 1)
    new = (_vd(seen) - before).pop()
    assert env.guest_run(f"cat /sys/block/{new}/size") == [str(16 * 1024 * 1024 // 512)]

    out = env.ok("detach-disk", NAME, "vdb", "--live")
    assert out == "Disk detached successfully\n\n"
    env.guest_until("ls /sys/block", lambda o: new not in _vd(o))
    deadline = time.monotonic() + 60  # libvirt removes it once QEMU says the guest let go
    while img in env.ok("dumpxml", NAME):
        assert time.monotonic() < deadline, env.ok("dumpxml", NAME)
        time.sleep(0.5)
    # once more: the device is gone, libvirt says so
    r = env.run("detach-disk", NAME, "vdb", "--live")
    assert r.returncode != 0 and "No disk found whose source path or target is vdb" in r.stderr, r.stderr


def test_config_attach_and_detach_change_only_the_persistent_definition(env):
    img = _qcow2(env, "cfg.qcow2")
    assert env.ok("attach-disk", NAME, img, "vdc", "--subdriver", "qcow2", "--config") == \
        "Disk attached successfully\n\n"
    assert img in env.ok("dumpxml", NAME, "--inactive")
    assert img not in env.ok("dumpxml", NAME)
    # libvirt's own refusal, passed on: the target is taken in the persistent definition
    r = env.run("attach-disk", NAME, img, "vdc", "--config")
    assert r.returncode != 0 and "vdc" in r.stderr, r.stderr
    assert env.ok("detach-disk", NAME, "vdc", "--config") == "Disk detached successfully\n\n"
    assert img not in env.ok("dumpxml", NAME, "--inactive")


def test_detach_device_alias_live(env):
    img = _qcow2(env, "alias.qcow2")
    env.ok("attach-disk", NAME, img, "vdd", "--subdriver", "qcow2", "--alias", "ua-lvhot", "--live")
    assert "<alias name='ua-lvhot'/>" in env.ok("dumpxml", NAME)
    r = env.run("--json", "detach-device-alias", NAME, "ua-lvhot", "--live")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["action"], got["alias"], got["device"]) == ("detached", "ua-lvhot", "disk"), got
    deadline = time.monotonic() + 60  # the request is sent; the guest lets go in its own time
    while img in env.ok("dumpxml", NAME):
        assert time.monotonic() < deadline, env.ok("dumpxml", NAME)
        time.sleep(0.5)


def test_interface_and_media_commands_on_the_persistent_definition(env):
    mac = "52:54:00:4c:56:01"
    assert env.ok("attach-interface", NAME, "user", "--model", "virtio", "--mac", mac, "--config") == \
        "Interface attached successfully\n\n"
    inactive = env.ok("dumpxml", NAME, "--inactive")
    assert f"<mac address='{mac}'/>" in inactive and "<interface type='user'>" in inactive
    assert mac not in env.ok("dumpxml", NAME)
    assert env.ok("detach-interface", NAME, "user", "--mac", mac, "--config") == \
        "Interface detached successfully\n\n"
    assert mac not in env.ok("dumpxml", NAME, "--inactive")
    # no --mac: libvirt makes one up; --json reports it (read back from the definition)
    r = env.run("--json", "attach-interface", NAME, "user", "--config")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout).get("mac")
    assert made and f"<mac address='{made}'/>" in env.ok("dumpxml", NAME, "--inactive"), r.stdout
    env.ok("detach-interface", NAME, "user", "--config")
    assert made not in env.ok("dumpxml", NAME, "--inactive")

    iso = env.base / "media.iso"
    iso.write_bytes(b"\0" * 65536)
    cd = env.base / "cdrom.xml"
    cd.write_text("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                  "<target dev='hdd' bus='ide'/><readonly/></disk>")
    assert env.ok("attach-device", NAME, str(cd), "--config") == "Device attached successfully\n\n"
    assert env.ok("change-media", NAME, "hdd", str(iso), "--insert", "--config").strip() == \
        "Successfully inserted media."
    assert str(iso) in env.ok("dumpxml", NAME, "--inactive")
    assert env.ok("change-media", NAME, "hdd", "--eject", "--config").strip() == "Successfully ejected media."
    assert str(iso) not in env.ok("dumpxml", NAME, "--inactive")
    env.ok("detach-disk", NAME, "hdd", "--config")


def test_change_media_live(env):
    iso = env.base / "live.iso"
    iso.write_bytes(b"\0" * 65536)
    assert env.ok("change-media", NAME, "hdc", str(iso), "--insert", "--live").strip() == \
        "Successfully inserted media."
    assert str(iso) in env.ok("dumpxml", NAME)
    assert str(iso) not in env.ok("dumpxml", NAME, "--inactive")
    r = env.run("change-media", NAME, "hdc", str(iso), "--insert", "--live")
    assert r.returncode != 0 and "The disk device 'hdc' already has media" in r.stderr, r.stderr
    assert env.ok("change-media", NAME, "hdc", "--eject", "--live", "--force").strip() == \
        "Successfully ejected media."
    assert str(iso) not in env.ok("dumpxml", NAME)
