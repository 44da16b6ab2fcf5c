"""Hotplug against real QEMU (TCG) and the test guest, through the installed
entry point: attach-disk / detach-disk seen by the guest, attach-interface
(user networking) seen by the guest, change-media on an empty CD-ROM,
--live / --config / both checked against dumpxml and dumpxml --inactive,
refusals that leave the guest and both definitions unchanged, a kill -9
between blockdev-add and device_add repaired by the next command, and a
detach the guest does not answer (paused) timing out cleanly.

One domain for the module (booting is the slow part): pc machine, a boot
virtio disk (the guest's vda) and an empty IDE CD-ROM.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import VIRTCTL, Env

pytestmark = pytest.mark.qemu
NAME = "hp"


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("hotplug")
    e = Env(base / "root", test_guest)
    e.base = base
    boot = base / "boot.raw"
    with open(boot, "wb") as f:
        f.truncate(1 << 20)
    text = e.xml(NAME).replace(
        "<serial type='pty'/>",
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{boot}'/>"
        "<target dev='vda' bus='virtio'/></disk>\n"
        "    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
        "<target dev='hdc' bus='ide'/></disk>\n    <serial type='pty'/>")
    xml = base / "hp.xml"
    xml.write_text(text)
    e.ok("define", str(xml))
    e.ok("start", NAME)
    e.dom_uuid = e.uuid(NAME)
    e.wait_ready(e.dom_uuid)
    yield e
    e.cleanup()


def guest_run(env, cmd: str, timeout: float = 60) -> list[str]:
    """Run ``cmd`` in the guest's console shell; its output lines."""
    log = env.serial_log(env.dom_uuid)
    before = log.read_bytes().decode(errors="replace")
    start = len(before)
    env.send_serial(env.dom_uuid, f"run {cmd}")
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_bytes().decode(errors="replace")[start:]
        if "VIRTCTL-GUEST-DONE" in text:
            return [ln.split(" ", 1)[1] if " " in ln else "" for ln in text.splitlines()
                    if ln.startswith("VIRTCTL-GUEST-OUT")]
        assert time.monotonic() < deadline, f"no answer to {cmd!r}: {text[-800:]!r}"
        time.sleep(0.05)


def guest_until(env, cmd: str, pred, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        out = guest_run(env, cmd)
        if pred(out):
            return out
        assert time.monotonic() < deadline, f"{cmd!r}: still {out!r}"
        time.sleep(0.3)


def qmp(env, command: str, args: dict | None = None):
    doc = {"execute": command, **({"arguments": args} if args else {})}
    return json.loads(env.ok("qemu-monitor-command", NAME, json.dumps(doc)))["return"]


def hp_nodes(env) -> list[str]:
    return sorted(n["node-name"] for n in qmp(env, "query-named-block-nodes")
                  if n["node-name"].startswith("hp-"))


def both_xml(env) -> tuple[str, str]:
    return env.ok("dumpxml", NAME), env.ok("dumpxml", NAME, "--inactive")


def qcow2(env, name: str, size: str = "16M", marker: bool = False) -> str:
    p = str(env.base / name)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", p, size], check=True)
    if marker:
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x41 0 512", p], check=True,
                       capture_output=True)
    return p


def test_attach_disk_seen_by_guest_then_detached(env):
    img = qcow2(env, "data.qcow2", marker=True)
    out = env.ok("attach-disk", NAME, img, "vdb", "--subdriver", "qcow2", "--live")
    assert out == "Disk attached successfully\n\n"
    guest_until(env, "ls /sys/block", lambda o: "vdb" in o)
    assert guest_run(env, "cat /sys/block/vdb/size") == [str(16 * 1024 * 1024 // 512)]
    assert guest_run(env, "echo $(head -c 8 /dev/vdb)") == ["AAAAAAAA"]
    live, inactive = both_xml(env)
    assert "<alias name='virtio-disk1'/>" in live and img in live
    assert img not in inactive  # --live only
    assert hp_nodes(env) == ["hp-virtio-disk1-1-format", "hp-virtio-disk1-1-storage"]
    assert env.ok("domblklist", NAME).count(img) == 1

    r = env.run("--json", "detach-disk", NAME, "vdb", "--live")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["action"] == "detached"
    guest_until(env, "ls /sys/block", lambda o: "vdb" not in o and "vda" in o)
    assert img not in env.ok("dumpxml", NAME)
    assert hp_nodes(env) == []


def test_attach_interface_user_seen_by_guest(env):
    mac = "52:54:00:aa:bb:01"
    out = env.ok("attach-interface", NAME, "user", "--model", "virtio", "--mac", mac, "--live", "--config")
    assert out == "Interface attached successfully\n\n"
    guest_until(env, "ls /sys/class/net", lambda o: "eth0" in o)
    assert guest_run(env, "cat /sys/class/net/eth0/address") == [mac]
    live, inactive = both_xml(env)
    assert mac in live and mac in inactive and "<alias name='net0'/>" in live
    env.ok("detach-interface", NAME, "user", "--mac", mac, "--live")
    guest_until(env, "ls /sys/class/net", lambda o: "eth0" not in o)
    live, inactive = both_xml(env)
    assert mac not in live and mac in inactive  # --live only: the next boot still has it
    env.ok("detach-interface", NAME, "user", "--mac", mac, "--config")
    assert mac not in env.ok("dumpxml", NAME, "--inactive")


def _live_interface(env, mac: str) -> str:
    from lxml import etree

    root = etree.fromstring(env.ok("dumpxml", NAME).encode())
    (el,) = [i for i in root.iter("interface") if i.find("mac").get("address") == mac]
    return etree.tostring(el, encoding="unicode")


def test_update_device_sets_the_link_of_a_running_interface(env):
    mac = "52:54:00:aa:bb:02"
    env.ok("attach-interface", NAME, "user", "--model", "virtio", "--mac", mac, "--live")
    guest_until(env, "ls /sys/class/net", lambda o: "eth0" in o)
    guest_run(env, "ip link set eth0 up")
    guest_until(env, "cat /sys/class/net/eth0/carrier", lambda o: o == ["1"])
    dev = env.base / "iface.xml"
    xml = _live_interface(env, mac)
    assert "<link" not in xml
    dev.write_text(xml.replace("</interface>", "<link state='down'/></interface>"))
    out = env.ok("update-device", NAME, str(dev), "--live")
    assert out == "Device updated successfully\n\n"
    guest_until(env, "cat /sys/class/net/eth0/carrier", lambda o: o == ["0"])  # QEMU's set_link, seen by the guest
    assert env.ok("domif-getlink", NAME, mac).split() == [mac, "down"]
    live = _live_interface(env, mac)
    assert '<link state="down"/>' in live and '<alias name="net0"/>' in live  # lxml's quotes
    # the live definition's additions may be left out of the file: only the link changes
    dev.write_text(f"<interface type='user'><mac address='{mac}'/><model type='virtio'/>"
                   "<link state='up'/></interface>")
    env.ok("update-device", NAME, str(dev), "--live")
    guest_until(env, "cat /sys/class/net/eth0/carrier", lambda o: o == ["1"])
    assert '<alias name="net0"/>' in _live_interface(env, mac)
    # anything else is refused, naming it, and nothing changes
    before = env.ok("dumpxml", NAME)
    dev.write_text(f"<interface type='user'><mac address='{mac}'/><model type='e1000'/></interface>")
    r = env.run("update-device", NAME, str(dev), "--live")
    assert r.returncode == 6 and "<model>" in r.stderr, (r.returncode, r.stderr)
    assert env.ok("dumpxml", NAME) == before
    env.ok("detach-interface", NAME, "user", "--mac", mac, "--live")
    guest_until(env, "ls /sys/class/net", lambda o: "eth0" not in o)


def _cdrom(env) -> dict:
    return next(b for b in qmp(env, "query-block") if b.get("qdev", "").startswith(("ide0-1-0", "/machine/peripheral/ide0-1-0")))


def test_change_media_insert_and_eject(env):
    iso = env.base / "media.iso"
    iso.write_bytes(b"CDROM" * 1000)
    assert "inserted" not in _cdrom(env)
    assert env.ok("change-media", NAME, "hdc", str(iso), "--insert", "--live") == "Successfully inserted media.\n\n"
    blk = _cdrom(env)
    assert blk["inserted"]["file"] == str(iso) and blk["inserted"]["ro"] is True
    live, inactive = both_xml(env)
    assert str(iso) in live and str(iso) not in inactive
    r = env.run("change-media", NAME, "hdc", str(iso), "--insert", "--live")
    assert r.returncode != 0 and "already has media" in r.stderr
    assert env.ok("change-media", NAME, "hdc", "--eject", "--live") == "Successfully ejected media.\n\n"
    assert "inserted" not in _cdrom(env)
    assert str(iso) not in env.ok("dumpxml", NAME)
    assert hp_nodes(env) == []
    # --config only: the next boot's definition
    env.ok("change-media", NAME, "hdc", str(iso), "--insert", "--config")
    live, inactive = both_xml(env)
    assert str(iso) in inactive and str(iso) not in live
    env.ok("change-media", NAME, "hdc", "--eject", "--config")


def test_config_only_and_both(env):
    img = qcow2(env, "cfg.qcow2")
    env.ok("attach-disk", NAME, img, "vdc", "--subdriver", "qcow2", "--config")
    live, inactive = both_xml(env)
    assert img in inactive and img not in live
    assert hp_nodes(env) == []
    env.ok("detach-disk", NAME, "vdc", "--config")
    env.ok("attach-disk", NAME, img, "vdc", "--subdriver", "qcow2", "--persistent")  # running: both
    live, inactive = both_xml(env)
    assert img in inactive and img in live
    env.ok("detach-disk", NAME, "vdc", "--persistent")
    live, inactive = both_xml(env)
    assert img not in inactive and img not in live
    assert hp_nodes(env) == []


def test_refusals_leave_everything_unchanged(env, tmp_path):
    img = qcow2(env, "refuse.qcow2")
    before = both_xml(env)
    cases = [
        (["attach-disk", NAME, img, "vda", "--live"], 4, "target vda already exists"),
        (["attach-disk", NAME, str(tmp_path / "missing.qcow2"), "vdd", "--subdriver", "qcow2", "--live"], 1,
         "missing.qcow2"),
        (["attach-disk", NAME, img, "vdd", "--targetbus", "bogus", "--live"], 5, "bogus"),
        (["attach-disk", NAME, img, "sdd", "--targetbus", "sata", "--live"], 6, "cannot be hotplugged"),
        (["detach-disk", NAME, "vdz", "--live"], 2, "No disk found whose source path or target is vdz"),
        (["detach-device-alias", NAME, "nosuch0", "--live"], 1, "no device found with alias nosuch0"),
        (["attach-interface", NAME, "network", "nosuchnet", "--live"], 3,
         "no network with matching name 'nosuchnet'"),
    ]
    net = tmp_path / "net.xml"
    net.write_text("<network><name>x</name></network>")
    cases.append((["attach-device", NAME, str(net), "--live"], 5, "unknown device type 'network'"))
    comma = tmp_path / "a,b.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(comma), "1M"], check=True)
    for args, code, text in cases:
        r = env.run(*args)
        assert r.returncode == code and text in r.stderr, (args, r.returncode, r.stderr)
        assert both_xml(env) == before, args
        assert hp_nodes(env) == [], args
    # a comma in a path is escaped (JSON blockdev arguments), so it just works
    env.ok("attach-disk", NAME, str(comma), "vde", "--subdriver", "qcow2", "--live")
    assert str(comma) in env.ok("dumpxml", NAME)
    env.ok("detach-disk", NAME, "vde", "--live")


def test_kill_between_blockdev_add_and_device_add_is_repaired(env):
    img = qcow2(env, "killed.qcow2")
    before = both_xml(env)
    r = subprocess.run([VIRTCTL, "-c", env.uri, "attach-disk", NAME, img, "vdf", "--subdriver", "qcow2", "--live"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "VIRTCTL_KILL_AT": "hotplug:blockdev-added"})
    assert r.returncode == -9
    rec = json.loads(Path(env.state.record_file(env.dom_uuid)).read_text())  # (read raw: no repair yet)
    assert rec["hotplug"]["op"] == "attach"  # the half-done step is on record
    assert hp_nodes(env) == []  # the next command (this one) repaired it
    assert both_xml(env) == before
    assert not env.record(NAME).get("hotplug")
    assert hp_nodes(env) == []
    env.ok("attach-disk", NAME, img, "vdf", "--subdriver", "qcow2", "--live")  # and it can be done again
    env.ok("detach-disk", NAME, "vdf", "--live")
    assert hp_nodes(env) == []


def test_detach_the_guest_ignores_times_out_cleanly(env):
    img = qcow2(env, "ignored.qcow2")
    env.ok("attach-disk", NAME, img, "vdg", "--subdriver", "qcow2", "--live")
    guest_until(env, "ls /sys/block", lambda o: "vdg" in o or "vdb" in o)
    env.ok("suspend", NAME)  # a paused guest answers no hotplug request
    try:
        r = subprocess.run([VIRTCTL, "-c", env.uri, "detach-disk", NAME, "vdg", "--live"], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "VIRTCTL_UNPLUG_TIMEOUT": "1.5"})
        assert r.returncode == 9, r.stderr
        assert "did not release device 'virtio-disk6'" in r.stderr
        assert img in env.ok("dumpxml", NAME)  # still there, as in QEMU
    finally:
        env.ok("resume", NAME)
    # the guest lets go once it runs: a later command sees it gone and finishes the removal
    deadline = time.monotonic() + 60
    while img in env.ok("dumpxml", NAME):
        assert time.monotonic() < deadline, "the removal was never finished"
        time.sleep(0.3)
    assert hp_nodes(env) == []
    assert not env.record(NAME).get("unplugs")
