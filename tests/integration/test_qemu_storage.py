"""Storage pools and volumes of the QEMU driver, for real: files made with
qemu-img in the default pool of an embed root, and a guest started with a
``<disk type='volume'>``."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from integration.test_qemu_driver import VIRTCTL, Env

pytestmark = pytest.mark.qemu


@pytest.fixture
def senv(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(tmp_path / "root", test_guest)
    yield e
    e.cleanup()


def _images(env) -> str:
    return str(env.root / "images")


def test_volume_disk_starts_and_qemu_sees_the_volume(senv):
    env = senv
    env.ok("vol-create-as", "default", "data.qcow2", "64M", "--format", "qcow2")
    vols = json.loads(env.ok("--json", "vol-list", "default"))["volumes"]
    path = os.path.join(_images(env), "data.qcow2")
    assert [(v["name"], v["format"], v["capacity"], v["path"]) for v in vols] == \
        [("data.qcow2", "qcow2", 64 << 20, path)]
    xml = env.xml("gv").replace("<devices>", "<devices>\n    <disk type='volume' device='disk'>"
                                "<driver name='qemu' type='qcow2'/><source pool='default' volume='data.qcow2'/>"
                                "<target dev='vdb' bus='virtio'/></disk>")
    f = env.root.parent / "gv.xml"
    f.write_text(xml)
    env.ok("define", str(f))
    env.ok("start", "gv")
    out = env.ok("qemu-monitor-command", "gv", '{"execute":"query-block"}')
    blocks = json.loads(out)["return"]
    images = [b["inserted"]["image"] for b in blocks if b.get("inserted")]
    assert any(i["filename"] == path and i["virtual-size"] == 64 << 20 for i in images), images
    for cmd in (["vol-delete", "--pool", "default", "data.qcow2"], ["vol-delete", path],
                ["vol-resize", "--pool", "default", "data.qcow2", "32M", "--shrink"],
                ["vol-wipe", "--pool", "default", "data.qcow2"], ["vol-upload", path, "/dev/null"]):
        r = env.run(*cmd)
        assert r.returncode == 4 and "in use by running domain 'gv'" in r.stderr, r.stderr
    assert os.path.getsize(path) > 0 and json.loads(env.ok("--json", "vol-info", path))["capacity"] == 64 << 20
    env.ok("destroy", "gv")
    env.ok("vol-resize", "--pool", "default", "data.qcow2", "128M")
    # the definition keeps naming the volume, not the file
    assert "type='volume'" in env.ok("dumpxml", "gv", "--inactive")


def test_missing_volume_is_a_clear_error(senv):
    env = senv
    xml = env.xml("gm").replace("<devices>", "<devices>\n    <disk type='volume' device='disk'>"
                                "<source pool='default' volume='nope.qcow2'/><target dev='vdb' bus='virtio'/></disk>")
    f = env.root.parent / "gm.xml"
    f.write_text(xml)
    env.ok("define", str(f))
    r = env.run("start", "gm")
    assert r.returncode == 3 and "no storage vol 'nope.qcow2' in pool 'default'" in r.stderr, r.stderr
    assert not env.qemu_pids()


def test_upload_download_round_trip_and_backing_clone_resize(senv, tmp_path):
    env = senv
    data = os.urandom(3 << 20) + b"\0" * (1 << 20)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    env.ok("vol-create-as", "default", "r.raw", str(len(data)), "--allocation", "0")
    env.ok("vol-upload", "--pool", "default", "r.raw", str(src))
    dst = tmp_path / "out.bin"
    env.ok("vol-download", "--pool", "default", "r.raw", str(dst))
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    sparse = tmp_path / "sparse.bin"
    env.ok("vol-download", "--pool", "default", "r.raw", str(sparse), "--sparse")
    assert sparse.read_bytes() == data
    assert sparse.stat().st_blocks * 512 < len(data)  # the zero MiB at the end stayed a hole
    env.ok("vol-wipe", "--pool", "default", "r.raw")
    env.ok("vol-download", "--pool", "default", "r.raw", str(dst))
    assert dst.read_bytes() == bytes(len(data))
    assert "<value>qcow2</value>" in env.ok("pool-capabilities")
    env.ok("vol-create-as", "default", "base.qcow2", "32M", "--format", "qcow2")
    env.ok("vol-create-as", "default", "top.qcow2", "32M", "--format", "qcow2",
           "--backing-vol", "base.qcow2", "--backing-vol-format", "qcow2")
    x = env.ok("vol-dumpxml", "--pool", "default", "top.qcow2")
    assert f"<path>{_images(env)}/base.qcow2</path>" in x and "<format type='qcow2'/>" in x
    env.ok("vol-clone", "--pool", "default", "top.qcow2", "copy.qcow2")
    env.ok("vol-resize", "--pool", "default", "copy.qcow2", "64M")
    info = json.loads(env.ok("--json", "vol-info", "--pool", "default", "copy.qcow2"))
    assert info["capacity"] == 64 << 20 and info["format"] == "qcow2"
    r = env.run("vol-resize", "--pool", "default", "copy.qcow2", "16M")
    assert r.returncode == 2 and "shrink" in r.stderr
    env.ok("vol-delete", "--pool", "default", "copy.qcow2")
    assert sorted(os.listdir(_images(env))) == ["base.qcow2", "r.raw", "top.qcow2"]


@pytest.mark.parametrize("name", ["../evil", "a/b", "-rf", "..", ".virtctl-tmp-x"])
def test_hostile_volume_names_change_nothing(senv, name):
    env = senv
    r = env.run("vol-create-as", "default", name, "1M")
    assert r.returncode in (2, 5), r.stderr
    assert os.listdir(_images(env)) == []
    assert not os.path.exists(env.root / "evil")


@pytest.mark.parametrize("size,code", [("-1", 2), ("1Z", 2), ("0", 2)])
def test_bad_capacities(senv, size, code):
    r = senv.run("vol-create-as", "default", "v", size)
    assert r.returncode == code, r.stderr
    assert not os.path.exists(_images(senv)) or os.listdir(_images(senv)) == []


def test_pool_types_and_dir_pool_life(senv, tmp_path):
    env = senv
    r = env.run("pool-define-as", "lv", "logical", "--source-name", "vg0", "--target", "/dev/vg0")
    assert r.returncode == 6 and "storage pool type 'logical'" in r.stderr
    d = tmp_path / "p2"
    env.ok("pool-define-as", "p2", "dir", "--target", str(d))
    r = env.run("pool-start", "p2")
    assert r.returncode == 1 and "pool-build" in r.stderr
    env.ok("pool-build", "p2")
    env.ok("pool-start", "p2")
    env.ok("vol-create-as", "p2", "a", "1M")
    (d / "outofband.raw").write_bytes(b"x" * 4096)
    env.ok("pool-refresh", "p2")
    assert env.ok("vol-list", "p2").count(str(d)) == 2
    r = env.run("pool-delete", "p2")
    assert r.returncode == 4
    env.ok("pool-destroy", "p2")
    r = env.run("vol-list", "p2")
    assert r.returncode == 4 and "not active" in r.stderr
    r = env.run("pool-delete", "p2")  # not empty
    assert r.returncode == 1 and sorted(os.listdir(d)) == ["a", "outofband.raw"]
    env.ok("pool-undefine", "p2")
    assert json.loads(env.ok("--json", "pool-list", "--all"))["pools"][0]["name"] == "default"


def test_undefine_remove_all_storage_removes_exactly_the_domains_volumes(senv, tmp_path):
    env = senv
    for n in ("mine.qcow2", "also-mine.raw", "other.qcow2"):
        env.ok("vol-create-as", "default", n, "8M", "--format", "qcow2" if n.endswith("qcow2") else "raw")
    outside = tmp_path / "outside.raw"
    outside.write_bytes(b"\0" * 4096)
    path = os.path.join(_images(env), "also-mine.raw")
    xml = env.xml("gu").replace("<devices>", "<devices>\n"
                                "    <disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
                                "<source pool='default' volume='mine.qcow2'/><target dev='vdb' bus='virtio'/></disk>\n"
                                f"    <disk type='file' device='disk'><source file='{path}'/>"
                                "<target dev='vdc' bus='virtio'/></disk>\n"
                                f"    <disk type='file' device='disk'><source file='{outside}'/>"
                                "<target dev='vdd' bus='virtio'/></disk>")
    f = env.root.parent / "gu.xml"
    f.write_text(xml)
    env.ok("define", str(f))
    r = env.run("undefine", "gu", "--remove-all-storage")
    assert r.returncode == 0, r.stderr
    assert "Volume 'vdb'(mine.qcow2) removed." in r.stdout and f"Volume 'vdc'({path}) removed." in r.stdout
    assert "is not managed" in r.stderr and str(outside) in r.stderr
    assert sorted(os.listdir(_images(env))) == ["other.qcow2"]
    assert outside.exists()


def test_full_file_system_is_a_clear_error_and_leaves_nothing(tmp_path):
    """vol-create-as on a 4 MiB tmpfs (in a mount namespace of its own)."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("unshare") is None or VIRTCTL is None:
        pytest.skip("needs root and unshare(1) to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    uri = f"qemu:///embed?root={mnt}/r"
    script = (f"mount -t tmpfs -o size=4m tmpfs {mnt} || exit 99\n"
              f"{VIRTCTL} -c '{uri}' vol-create-as default big.raw 16M; echo \"rc=$?\"\n"
              f"{VIRTCTL} -c '{uri}' vol-create-as default small.raw 1M; echo \"rc=$?\"\n"
              f"ls -a {mnt}/r/images\n")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    if r.returncode == 99:
        pytest.skip("cannot mount a tmpfs here")
    assert "no space left on the device" in r.stderr, r.stderr
    lines = r.stdout.split()
    assert "rc=1" in lines and "rc=0" in lines
    assert "big.raw" not in lines and not any(n.startswith(".virtctl-tmp-") for n in lines)
    assert "small.raw" in lines


def test_kill9_during_clone_leaves_no_volume_under_the_final_name(senv):
    import signal
    import subprocess
    import time

    env = senv
    env.ok("vol-create-as", "default", "src.raw", "512M", "--allocation", "0")
    img = _images(env)
    with open(os.path.join(img, "src.raw"), "r+b") as f:  # data to copy: not all holes
        for off in range(0, 512 << 20, 4 << 20):
            f.seek(off)
            f.write(os.urandom(4096))
    p = subprocess.Popen([VIRTCTL, "-c", env.uri, "vol-clone", "--pool", "default", "src.raw", "dst.raw"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        if any(n.startswith(".virtctl-tmp-") for n in os.listdir(img)):
            os.killpg(p.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    p.wait()
    names = os.listdir(img)
    if p.returncode == 0:
        pytest.skip("the clone finished before it could be killed")
    assert "dst.raw" not in names
    env.ok("vol-list", "default")  # the dead writer's temporary file is cleaned up
    assert sorted(os.listdir(img)) == ["src.raw"]
