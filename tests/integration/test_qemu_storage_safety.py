"""Storage volumes of the QEMU driver under stress, for real files: vol-wipe's
algorithms, vol-upload's --offset/--length/--sparse, a kill -9 and a full file
system during vol-upload (the old volume intact, nothing half-written), and two
processes changing one pool (the pool and volume locks)."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time

import pytest

from integration.test_qemu_driver import VIRTCTL, Env

pytestmark = pytest.mark.qemu

MiB = 1 << 20


@pytest.fixture
def env(tmp_path):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(tmp_path / "root", None)
    yield e
    e.cleanup()


def _img(env, name: str = "") -> str:
    return os.path.join(str(env.root / "images"), name)


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _temps(env) -> list[str]:
    return [n for n in os.listdir(_img(env)) if n.startswith(".virtctl-tmp-")]


def _raw_with_data(env, name: str, size: int, at: list[int], fill: bytes = b"\xab") -> str:
    env.ok("vol-create-as", "default", name, str(size), "--allocation", "0")
    path = _img(env, name)
    with open(path, "r+b") as f:
        for off in at:
            f.seek(off)
            f.write(fill * 65536)
    return path


def test_wipe_zero_overwrites_the_data_in_place_and_keeps_holes(env):
    path = _raw_with_data(env, "a.raw", 8 * MiB, [0, 5 * MiB])
    blocks = os.stat(path).st_blocks
    with open(path, "rb") as old:  # the same inode: the bytes themselves are overwritten
        env.ok("vol-wipe", "--pool", "default", "a.raw")
        old.seek(5 * MiB)
        assert old.read(65536) == bytes(65536)
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) == 8 * MiB and data.count(0) == len(data)
    assert os.stat(path).st_blocks <= blocks + 8  # the holes were not filled


def test_wipe_random_and_unsupported_algorithms(env):
    path = _raw_with_data(env, "r.raw", 2 * MiB, [MiB], fill=b"\0")
    with open(path, "r+b") as f:
        f.write(b"secret" * 1000)
    env.ok("vol-wipe", "--pool", "default", "r.raw", "--algorithm", "random")
    with open(path, "rb") as f:
        head = f.read(6000)
    assert b"secret" not in head and head.count(0) < 200  # random bytes, not zeros
    before = _sha(path)
    for alg in ("dod", "gutmann", "trim"):
        r = env.run("vol-wipe", "--pool", "default", "r.raw", "--algorithm", alg)
        assert r.returncode == 6 and f"vol-wipe --algorithm {alg}" in r.stderr, r.stderr
    r = env.run("vol-wipe", "--pool", "default", "r.raw", "--algorithm", "bogus")
    assert r.returncode == 2 and "Unsupported algorithm 'bogus'" in r.stderr
    assert _sha(path) == before


def test_wipe_qcow2_leaves_an_empty_qcow2_of_the_same_size_and_backing(env):
    if shutil.which("qemu-io") is None:
        pytest.skip("needs qemu-io to write into a qcow2 image")
    env.ok("vol-create-as", "default", "base.raw", "4M")
    env.ok("vol-create-as", "default", "top.qcow2", "4M", "--format", "qcow2",
           "--backing-vol", "base.raw", "--backing-vol-format", "raw")
    top = _img(env, "top.qcow2")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xcd 0 1M", top], check=True,
                   capture_output=True)
    with open(top, "rb") as old:
        env.ok("vol-wipe", "--pool", "default", "top.qcow2")
        assert b"\xcd" * 4096 not in old.read()  # the old clusters themselves were overwritten
    info = subprocess.run(["qemu-img", "info", "--output=json", top], capture_output=True, text=True,
                          check=True).stdout
    import json

    info = json.loads(info)
    assert info["format"] == "qcow2" and info["virtual-size"] == 4 * MiB
    assert info["backing-filename"].endswith("base.raw")
    r = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "read -P 0 0 1M", top], capture_output=True, text=True)
    assert r.returncode == 0 and "Pattern verification failed" not in r.stdout, r.stdout
    assert _temps(env) == []


def test_upload_offset_length_and_libvirt_semantics(env, tmp_path):
    a = bytes(range(256)) * (4 * MiB // 256)
    env.ok("vol-create-as", "default", "v.raw", "4M")
    src = tmp_path / "a.bin"
    src.write_bytes(a)
    env.ok("vol-upload", "--pool", "default", "v.raw", str(src))
    b = os.urandom(MiB)
    bsrc = tmp_path / "b.bin"
    bsrc.write_bytes(b)
    env.ok("vol-upload", "--pool", "default", "v.raw", str(bsrc), "--offset", "1M", "--length", "512K")
    got = open(_img(env, "v.raw"), "rb").read()
    want = a[:MiB] + b[:512 * 1024] + a[MiB + 512 * 1024:]
    assert got == want  # only those bytes changed; the size kept
    env.ok("vol-upload", "--pool", "default", "v.raw", str(bsrc))  # shorter than the volume: tail kept
    assert open(_img(env, "v.raw"), "rb").read() == b + want[MiB:]
    env.ok("vol-upload", "--pool", "default", "v.raw", str(bsrc), "--offset", "4M")  # past the end: grows
    assert os.path.getsize(_img(env, "v.raw")) == 5 * MiB
    out = tmp_path / "part.bin"
    env.ok("vol-download", "--pool", "default", "v.raw", str(out), "--offset", "1M", "--length", "512K")
    assert out.read_bytes() == (b + want[MiB:])[MiB:MiB + 512 * 1024]
    # --sparse on upload: zeros of a whole-file upload become holes
    sp = tmp_path / "sparse.bin"
    with open(sp, "wb") as f:
        f.write(b"x" * 4096)
        f.truncate(8 * MiB)
    env.ok("vol-upload", "--pool", "default", "v.raw", str(sp), "--sparse")
    st = os.stat(_img(env, "v.raw"))
    assert st.st_size == 8 * MiB and st.st_blocks * 512 < MiB
    for extra, want_bytes in ([], sp.read_bytes()), (["--offset", "2048", "--length", "2M"],
                                                      sp.read_bytes()[2048:2048 + 2 * MiB]):
        out = tmp_path / "sparse-out.bin"
        out.unlink(missing_ok=True)
        env.ok("vol-download", "--pool", "default", "v.raw", str(out), "--sparse", *extra)
        assert out.read_bytes() == want_bytes and out.stat().st_blocks * 512 < MiB
    assert _temps(env) == []


def test_upload_refuses_a_bad_offset_and_leaves_the_volume(env, tmp_path):
    env.ok("vol-create-as", "default", "v.raw", "1M")
    before = _sha(_img(env, "v.raw"))
    src = tmp_path / "s.bin"
    src.write_bytes(b"z" * 100)
    for bad in ("-1", "1Z", "abc"):
        r = env.run("vol-upload", "--pool", "default", "v.raw", str(src), "--offset", bad)
        assert r.returncode != 0 and r.stderr.strip(), (bad, r.stderr)
    r = env.run("vol-upload", "--pool", "default", "v.raw", str(tmp_path / "missing"))
    assert r.returncode != 0 and "missing" in r.stderr
    assert _sha(_img(env, "v.raw")) == before and _temps(env) == []


def _fifo_upload(env, tmp_path, name: str):
    fifo = str(tmp_path / "in.fifo")
    os.mkfifo(fifo)
    p = subprocess.Popen([VIRTCTL, "-c", env.uri, "vol-upload", "--pool", "default", name, fifo],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    w = open(fifo, "wb")  # blocks until virtctl opens it
    w.write(os.urandom(2 * MiB))
    w.flush()
    deadline = time.monotonic() + 60
    while not _temps(env):  # the upload's copy exists: it holds the volume's lock and is writing
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read() if p.poll() is not None else ""
        time.sleep(0.01)
    return p, w


def test_kill9_during_upload_leaves_the_old_volume_intact(env, tmp_path):
    path = _raw_with_data(env, "v.raw", 4 * MiB, [0, 3 * MiB])
    before = _sha(path)
    p, w = _fifo_upload(env, tmp_path, "v.raw")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    try:
        w.close()
    except BrokenPipeError:
        pass
    assert _sha(path) == before
    env.ok("vol-list", "default")  # the dead writer's copy is cleaned up
    assert _temps(env) == []
    # killed after the copy is complete but before the rename: still the old volume
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(4 * MiB))
    e = dict(os.environ, VIRTCTL_KILL_AT="upload:written")
    r = subprocess.run([VIRTCTL, "-c", env.uri, "vol-upload", "--pool", "default", "v.raw", str(src)],
                       capture_output=True, env=e, timeout=60)
    assert r.returncode == -signal.SIGKILL
    assert _sha(path) == before
    env.ok("pool-refresh", "default")
    assert _temps(env) == []
    env.ok("vol-upload", "--pool", "default", "v.raw", str(src))
    assert _sha(path) == _sha(str(src))


def test_full_file_system_during_upload_loses_nothing(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None or VIRTCTL is None:
        pytest.skip("needs root and unshare(1) to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * MiB))
    part = tmp_path / "part.bin"
    part.write_bytes(os.urandom(64 * 1024))
    uri = f"qemu:///embed?root={mnt}/r"
    v = f"{mnt}/r/images/v.raw"
    script = (f"mount -t tmpfs -o size=4m tmpfs {mnt} || exit 99\n"
              f"{VIRTCTL} -c '{uri}' vol-create-as default v.raw 2M || exit 98\n"
              f"head -c 2621440 /dev/urandom > {v}; sha256sum < {v}\n"
              f"{VIRTCTL} -c '{uri}' vol-upload --pool default v.raw {src}; echo \"rc=$?\"\n"
              f"{VIRTCTL} -c '{uri}' vol-upload --pool default v.raw {part} --offset 1M; echo \"rc=$?\"\n"
              f"sha256sum < {v}; ls -a {mnt}/r/images\n")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    if r.returncode == 99:
        pytest.skip("cannot mount a tmpfs here")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert "no space left on the device" in r.stderr, r.stderr
    assert lines.count("rc=1") == 2, r.stdout  # the whole upload (3 MiB) and the copy (2.5 MiB) both fail
    sums = [x for x in lines if len(x) == 64]
    assert len(sums) == 2 and sums[0] == sums[1]  # the volume is untouched
    assert not any(n.startswith(".virtctl-tmp-") for n in lines)


def test_two_processes_on_one_volume_serialise(env, tmp_path):
    """vol-delete and pool-refresh started while a vol-upload writes wait for
    it: the delete then removes the new volume (without the lock the delete
    would run first and the upload's rename bring the volume back)."""
    path = _raw_with_data(env, "v.raw", MiB, [0])
    env.ok("vol-create-as", "default", "other.raw", "1M")
    p, w = _fifo_upload(env, tmp_path, "v.raw")
    d = subprocess.Popen([VIRTCTL, "-c", env.uri, "vol-delete", "--pool", "default", "v.raw"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    f = subprocess.Popen([VIRTCTL, "-c", env.uri, "pool-refresh", "default"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    env.ok("vol-delete", "--pool", "default", "other.raw")  # another volume of the pool is not held up
    time.sleep(0.5)
    assert d.poll() is None and f.poll() is None  # both wait for the upload
    assert os.path.exists(path)
    w.close()  # the upload completes
    assert p.wait(60) == 0, p.stderr.read()
    assert d.wait(60) == 0, d.stderr.read()
    assert f.wait(60) == 0, f.stderr.read()
    assert not os.path.exists(path) and _temps(env) == []


def test_two_creations_of_one_name_one_wins(env):
    procs = [subprocess.Popen([VIRTCTL, "-c", env.uri, "vol-create-as", "default", "same.qcow2", "64M",
                               "--format", "qcow2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    codes = sorted(p.wait(60) for p in procs)
    assert codes == [0, 1, 1, 1], [p.stderr.read() for p in procs]
    assert sorted(os.listdir(_img(env))) == ["same.qcow2"]


def test_progress_bar_on_a_terminal_only(env, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env.ok("vol-create-as", "default", "v.raw", "1M")
    src = tmp_path / "s.bin"
    src.write_bytes(os.urandom(64 * MiB))
    r = env.run("vol-upload", "--pool", "default", "v.raw", str(src))
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr == ""  # not a terminal: no bar
    child = pexpect.spawn(VIRTCTL, ["-c", env.uri, "vol-upload", "--pool", "default", "v.raw", str(src)],
                          timeout=60, dimensions=(24, 100))
    child.expect(r"vol-upload v\.raw")  # rich's bar, drawn on the terminal
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = pexpect.spawn(VIRTCTL, ["-c", env.uri, "--json", "vol-download", "--pool", "default", "v.raw",
                                    str(tmp_path / "out.bin")], timeout=60, dimensions=(24, 100))
    child.expect(pexpect.EOF)
    child.close()
    text = child.before.decode()
    assert child.exitstatus == 0 and "vol-download v.raw" not in text and '"downloaded"' in text
    assert _sha(str(tmp_path / "out.bin")) == _sha(str(src))


@pytest.mark.parametrize("args", [["fs", "--source-dev", "/dev/sdz1", "--target", "/mnt/x"],
                                  ["netfs", "--source-host", "nfs.example", "--source-path", "/e", "--target", "/mnt/y"],
                                  ["logical", "--source-name", "vg0", "--target", "/dev/vg0"],
                                  ["iscsi", "--source-host", "t.example", "--source-dev", "iqn.x", "--target", "/dev/disk"]])
def test_other_pool_types_are_not_supported_naming_the_type(env, args):
    r = env.run("pool-define-as", "p", *args)
    assert r.returncode == 6 and f"storage pool type '{args[0]}'" in r.stderr, r.stderr
    assert not os.path.exists(env.root / "storage") or os.listdir(env.root / "storage") == []
    assert "p" not in env.ok("pool-list", "--all", "--name").split()


def test_unknown_formats_and_a_pool_path_that_is_a_file(env, tmp_path):
    for fmt, code in (("vmdk", 6), ("bogus", 5)):  # known but not done; not a format at all
        r = env.run("vol-create-as", "default", "x.img", "1M", "--format", fmt)
        assert r.returncode == code and f"'{fmt}'" in r.stderr, (fmt, r.returncode, r.stderr)
    assert os.listdir(_img(env)) == []
    f = tmp_path / "a-file"
    f.write_bytes(b"keep")
    env.ok("pool-define-as", "pf", "dir", "--target", str(f))
    r = env.run("pool-build", "pf")
    assert r.returncode == 1 and "is not a directory" in r.stderr, r.stderr
    r = env.run("pool-start", "pf")
    assert r.returncode == 1 and "does not exist" in r.stderr, r.stderr
    assert f.read_bytes() == b"keep"
    assert "inactive" in env.ok("pool-list", "--all")


def test_a_symlink_out_of_the_pool_is_no_volume_and_never_written(env, tmp_path):
    outside = tmp_path / "outside.img"
    outside.write_bytes(b"o" * 4096)
    os.makedirs(_img(env), exist_ok=True)
    link = _img(env, "link.raw")
    os.symlink(outside, link)
    src = tmp_path / "s.bin"
    src.write_bytes(b"n" * 4096)
    for cmd, code in ((["vol-info", "--pool", "default", "link.raw"], 3),
                      (["vol-upload", link, str(src)], 3),
                      (["vol-wipe", "--pool", "default", "link.raw"], 3),
                      (["vol-resize", link, "1M"], 3),
                      (["vol-delete", "--pool", "default", "link.raw"], 3),
                      (["vol-create-as", "default", "link.raw", "1M"], 1)):
        r = env.run(*cmd)
        assert r.returncode == code, (cmd, r.returncode, r.stderr)
    assert outside.read_bytes() == b"o" * 4096 and os.path.islink(link)
    assert "link.raw" not in env.ok("vol-list", "default")
