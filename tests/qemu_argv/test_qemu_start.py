"""Real QEMU 7.2 accepts what build_argv builds (started with -S, then quit over QMP)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from qemu_argv.helpers import DATA, QEMU, QEMU_IMG, materialize, parse, running, runtime_dir
from virtctl.drivers.qemu.argv import build_argv

pytestmark = [pytest.mark.qemu, pytest.mark.skipif(not QEMU or not QEMU_IMG, reason="qemu-system-x86_64 absent")]

HOSTILE_DIR = "a,b=c readonly=on 'q\"ü磁"


def test_minimal_direct_kernel_domain_with_hostile_names(tmp_path):
    work = tmp_path / HOSTILE_DIR
    work.mkdir()
    img = work / "disk,readonly=on.qcow2"
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", str(img), "16M"], check=True)
    d = parse("""<domain type='qemu'>
  <name>min,process=pwned ü</name>
  <memory unit='MiB'>128</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0,115200 panic=-1</cmdline></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/X'/><target dev='vda' bus='virtio'/></disk>
    <serial type='pty'/>
  </devices>
</domain>""")
    materialize(d, work)  # kernel and initrd
    d.root.find("devices/disk/source").set("file", str(img))
    with runtime_dir() as rp:
        argv = build_argv(d, rp, emulator=QEMU)
        with running(argv, rp) as q:
            assert q.command("query-status")["status"] == "prelaunch"
            assert q.command("query-name") == {"name": "min,process=pwned ü"}
            files = {n["node-name"]: n for n in q.command("query-named-block-nodes")}
            assert files["libvirt-1-storage"]["file"] == str(img)
            assert files["libvirt-1-format"]["drv"] == "qcow2" and not files["libvirt-1-format"]["ro"]
            assert Path(rp.chardev_dir, "serial0.sock").is_socket()


@pytest.mark.parametrize("fixture", sorted(p.name for p in DATA.glob("*.xml")))
def test_kitchen_sink_domains_start(fixture, tmp_path):
    d = parse((DATA / fixture).read_text())
    materialize(d, tmp_path)
    for el in d.root.iter():
        for k, v in list(el.attrib.items()):
            if v in ("/DISK0", "/DISK1", "/DISK2"):
                drv = el.getparent().find("driver")
                fmt = (drv.get("type") if drv is not None else None) or "raw"
                img = tmp_path / f"{v[1:]},x.{fmt}"
                subprocess.run([QEMU_IMG, "create", "-q", "-f", fmt, str(img), "16M"], check=True)
                el.set(k, str(img))
            elif v == "SERIALFILE":
                el.set(k, str(tmp_path / "serial,0.log"))
            elif v == "CHANNELSOCK":
                el.set(k, str(tmp_path / "ch,an.sock"))
    with runtime_dir() as rp:
        with running(build_argv(d, rp, emulator=QEMU), rp) as q:
            assert q.command("query-status")["status"] == "prelaunch"
            assert q.command("query-name")["name"] == d.name
