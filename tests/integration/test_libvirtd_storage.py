"""Storage pools and volumes through the libvirt driver against a real
libvirtd (tests/integration/libvirtd_fixture.py), with the installed
``virtctl -c qemu+unix:///system?socket=...``: a dir pool in a temporary
directory, qcow2 and raw volumes that qemu-img must see (and not see once
deleted), resize, clone, wipe, refresh, and uploads and downloads (plain and
sparse) through libvirt's streams, compared byte for byte.  Where virsh is
installed, the listings are compared with its own on the same daemon."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from integration.libvirtd_fixture import LibvirtdEnv
from integration.test_qemu_driver import VIRTCTL

pytestmark = pytest.mark.qemu
VIRSH = shutil.which("virsh")
QEMU_IMG = shutil.which("qemu-img")
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def env(libvirtd, tmp_path_factory):  # noqa: F811
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    if QEMU_IMG is None:
        pytest.skip("qemu-img is not installed")
    e = LibvirtdEnv(libvirtd, tmp_path_factory.mktemp("lvs"))
    yield e
    libvirtd.clean()


def _img(path: Path) -> dict:
    r = subprocess.run([QEMU_IMG, "info", "--output=json", "-U", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_dir_pool_and_volume(env):
    d = env.base / "pool"
    d.mkdir()
    env.ok("pool-define-as", "lvd-pool", "dir", "--target", str(d))
    assert "<path>" + str(d) + "</path>" in env.ok("pool-dumpxml", "--inactive", "lvd-pool")
    env.ok("pool-start", "lvd-pool")
    env.ok("vol-create-as", "lvd-pool", "v1.qcow2", "8M", "--format", "qcow2")
    assert re.search(r"^ v1\.qcow2\s+" + re.escape(str(d / "v1.qcow2")) + "$", env.ok("vol-list", "lvd-pool"), re.M)
    info = _img(d / "v1.qcow2")
    assert (info["format"], info["virtual-size"]) == ("qcow2", 8 * MiB)
    assert "Capacity:       8388608 bytes" in env.ok("vol-info", "--bytes", "v1.qcow2", "--pool", "lvd-pool")
    vol = json.loads(env.ok("--json", "vol-info", str(d / "v1.qcow2")))
    assert (vol["format"], vol["pool"], vol["key"], vol["capacity"]) == ("qcow2", "lvd-pool", str(d / "v1.qcow2"),
                                                                         8 * MiB)
    # resize: grown, shrinking refused without --shrink (nothing changed), by a delta
    env.ok("vol-resize", "v1.qcow2", "16M", "--pool", "lvd-pool")
    assert _img(d / "v1.qcow2")["virtual-size"] == 16 * MiB
    env.fails("vol-resize", "v1.qcow2", "4M", "--pool", "lvd-pool")
    assert _img(d / "v1.qcow2")["virtual-size"] == 16 * MiB
    env.ok("vol-resize", "v1.qcow2", "4M", "--delta", "--pool", "lvd-pool")
    assert _img(d / "v1.qcow2")["virtual-size"] == 20 * MiB
    # clone: a qcow2 of its own
    env.ok("vol-clone", "v1.qcow2", "v2.qcow2", "--pool", "lvd-pool")
    info = _img(d / "v2.qcow2")
    assert (info["format"], info["virtual-size"]) == ("qcow2", 20 * MiB)
    # refresh: a file put there meanwhile appears
    shutil.copy(d / "v2.qcow2", d / "v3.qcow2")
    assert "v3.qcow2" not in env.ok("vol-list", "lvd-pool")
    env.ok("pool-refresh", "lvd-pool")
    assert "v3.qcow2" in env.ok("vol-list", "lvd-pool")
    env.same_as_virsh("vol-list lvd-pool --details", must_succeed=False)
    env.same_as_virsh("pool-list --all --details", must_succeed=False)
    env.same_as_virsh(f"vol-info {d / 'v2.qcow2'}; vol-dumpxml v2.qcow2 --pool lvd-pool; vol-key v2.qcow2 --pool lvd-pool",
                      must_succeed=False)
    assert "<pool type='dir' supported='yes'>" in env.ok("pool-capabilities")
    # delete: the files go
    for name in ("v1.qcow2", "v2.qcow2", "v3.qcow2"):
        env.ok("vol-delete", name, "--pool", "lvd-pool")
        assert not (d / name).exists()
    env.fails("vol-info", "v1.qcow2", "--pool", "lvd-pool")
    assert json.loads(env.ok("--json", "vol-list", "lvd-pool"))["volumes"] == []
    env.ok("pool-destroy", "lvd-pool")
    env.fails("vol-list", "lvd-pool")
    env.ok("pool-undefine", "lvd-pool")
    env.fails("pool-info", "lvd-pool")
    assert d.is_dir()  # undefine leaves the directory


def test_upload_download_wipe(env):
    d = env.base / "up"
    env.ok("pool-create-as", "lvd-up", "dir", "--target", str(d), "--build")
    assert d.is_dir()
    env.ok("vol-create-as", "lvd-up", "r1", "1M", "--format", "raw")
    data = os.urandom(64 * 1024)
    src = env.base / "data.bin"
    src.write_bytes(data)
    # at an offset: the bytes around are kept (zeros), the volume's size unchanged
    env.ok("vol-upload", "r1", str(src), "--pool", "lvd-up", "--offset", "4096")
    whole = (d / "r1").read_bytes()
    assert len(whole) == MiB and whole[4096:4096 + len(data)] == data
    assert whole[:4096] == bytes(4096) and whole[4096 + len(data):] == bytes(MiB - 4096 - len(data))
    out = env.base / "down.bin"
    env.ok("vol-download", "r1", str(out), "--pool", "lvd-up")
    assert out.read_bytes() == whole
    env.ok("vol-download", "r1", str(out), "--pool", "lvd-up", "--offset", "4096", "--length", str(len(data)))
    assert out.read_bytes() == data
    env.ok("vol-upload", "r1", str(src), "--pool", "lvd-up", "--length", "1000")
    assert (d / "r1").read_bytes()[:1000] == data[:1000]
    # sparse both ways: data at 512 KiB in a 1 MiB file of holes
    sp = env.base / "sparse.bin"
    with open(sp, "wb") as f:
        f.truncate(MiB)
        f.seek(512 * 1024)
        f.write(data)
    env.ok("vol-create-as", "lvd-up", "r2", "1M", "--format", "raw", "--allocation", "0")
    env.ok("vol-upload", "r2", str(sp), "--pool", "lvd-up", "--sparse")
    assert (d / "r2").read_bytes() == sp.read_bytes()
    back = env.base / "sparse-back.bin"
    env.ok("vol-download", "r2", str(back), "--pool", "lvd-up", "--sparse")
    assert back.read_bytes() == sp.read_bytes()
    if os.stat(sp).st_blocks * 512 < MiB // 2:  # the file system keeps holes: so must both transfers
        assert os.stat(d / "r2").st_blocks * 512 < MiB // 2, os.stat(d / "r2")
        assert os.stat(back).st_blocks * 512 < MiB // 2, os.stat(back)
    # wipe: zeros everywhere, the size kept
    env.ok("vol-wipe", "r1", "--pool", "lvd-up")
    assert (d / "r1").read_bytes() == bytes(MiB)
    env.fails("vol-wipe", "r1", "--pool", "lvd-up", "--algorithm", "bogus")
    env.fails("vol-upload", "nosuch", str(src), "--pool", "lvd-up")
    env.ok("vol-delete", "r1", "--pool", "lvd-up")
    env.ok("vol-delete", "r2", "--pool", "lvd-up")
    env.ok("pool-destroy", "lvd-up")
    env.fails("pool-info", "lvd-up")  # transient: gone once stopped


def test_pool_build_delete_autostart(env):
    b = env.base / "built"
    env.ok("pool-define-as", "lvd-b", "dir", "--target", str(b))
    env.fails("pool-start", "lvd-b")  # no directory yet
    env.ok("pool-build", "lvd-b")
    assert b.is_dir()
    env.ok("pool-delete", "lvd-b")
    assert not b.exists()
    env.ok("pool-start", "lvd-b", "--build")
    assert b.is_dir()
    env.fails("pool-delete", "lvd-b")  # active
    env.fails("pool-undefine", "lvd-b")
    env.ok("pool-autostart", "lvd-b")
    assert re.search(r"^Autostart:\s+yes$", env.ok("pool-info", "lvd-b"), re.M)
    assert json.loads(env.ok("--json", "pool-info", "lvd-b"))["autostart"] is True
    env.same_as_virsh("pool-list --all --autostart --details; pool-info lvd-b", must_succeed=False)
    env.ok("pool-autostart", "lvd-b", "--disable")
    assert re.search(r"^Autostart:\s+no$", env.ok("pool-info", "lvd-b"), re.M)
    env.ok("pool-destroy", "lvd-b")
    env.ok("pool-undefine", "lvd-b")
    assert "lvd-b" not in env.ok("pool-list", "--all", "--name")
