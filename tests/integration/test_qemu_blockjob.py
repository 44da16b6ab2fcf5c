"""Block jobs on real QEMU with the test guest: blockcommit, blockpull,
blockcopy, blockjob, blockresize, domblkinfo and vol-resize of a disk in
use.  The guest's vda is a qcow2 overlay on a qcow2 base; data written in
the guest (``run CMD`` on its console) must land where the job says."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from integration.test_qemu_driver import VIRTCTL, Env
from virtctl.drivers.qemu.qemu_img import info as qemu_img_info

pytestmark = pytest.mark.qemu

MIB = 1 << 20
DONE = "VIRTCTL-GUEST-DONE"
OUT = "VIRTCTL-GUEST-OUT"


@pytest.fixture
def benv(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(tmp_path / "root", test_guest)
    yield e
    e.cleanup()


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def chain_of(path: str) -> list[str]:
    out = json.loads(subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output=json", path],
                                    check=True, capture_output=True, text=True).stdout)
    return [i["filename"] for i in out]


def disk_xml(top: str, target: str = "vda") -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{top}'/><target dev='{target}' bus='virtio'/></disk>")


def start_guest(env: Env, tmp_path, name: str = "bj", size: str = "64M", extra: str = "",
                base_data: bool = False) -> tuple[str, str, str]:
    """A running guest whose vda is top.qcow2 over base.qcow2 (``base_data``: 64 KiB
    of 'B' at 8 MiB in the base); (uuid, base, top)."""
    base, top = str(tmp_path / f"{name}-base.qcow2"), str(tmp_path / f"{name}-top.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", base, size)
    if base_data:
        subprocess.run(["qemu-io", "-c", "write -P 0x42 8M 64k", base], check=True, capture_output=True)
    qemu_img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    xml = env.xml(name).replace("<devices>", "<devices>\n    " + disk_xml(top) + extra)
    f = tmp_path / f"{name}.xml"
    f.write_text(xml)
    env.ok("define", str(f))
    env.ok("start", name)
    uuid = env.uuid(name)
    env.wait_ready(uuid)
    return uuid, base, top


def guest_run(env: Env, uuid: str, cmd: str, timeout: float = 120) -> tuple[int, list[str]]:
    """``run CMD`` on the guest's console: (status, output lines)."""
    log = env.serial_log(uuid)
    before = log.read_bytes().decode(errors="replace").count(DONE)
    env.send_serial(uuid, f"run {cmd}")
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_bytes().decode(errors="replace")
        if text.count(DONE) > before:
            break
        assert time.monotonic() < deadline, f"no {DONE} for {cmd!r}: {text[-1500:]!r}"
        time.sleep(0.1)
    # the output of this run: after the previous DONE line
    start = 0
    for _ in range(before):
        start = text.index(DONE, start) + len(DONE)
    chunk = text[start:]
    rc = int(re.search(DONE + r" (\d+)", chunk).group(1))
    lines = [m.group(1).rstrip("\r") for m in re.finditer(OUT + r" ?(.*)", chunk.split(DONE)[0])]
    return rc, lines


def write_marker(env, uuid, marker: str, mib: int = 1) -> None:
    # the marker at sector 2048 (1 MiB in), then random data after it
    rc, out = guest_run(env, uuid, f"echo {marker} | dd of=/dev/vda bs=512 seek=2048 conv=fsync 2>&1; "
                                   f"dd if=/dev/urandom of=/dev/vda bs=1M seek=2 count={mib} conv=fsync 2>&1")
    assert rc == 0, out


def read_marker(env, uuid) -> str:
    rc, out = guest_run(env, uuid, "echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 skip=2048 count=1 "
                                   "iflag=direct 2>/dev/null | head -c 64 | tr -d '\\000'")
    assert rc == 0, out
    return "\n".join(out).strip()


def image_marker(path: str, at: str = "1M") -> bytes:
    """The marker (1 MiB in) as the qcow2 image alone holds it: its backing file not opened."""
    out = subprocess.run(["qemu-io", "-r", "-U", "--image-opts", f"driver=qcow2,file.filename={path},backing=",
                          "-c", f"read -v {at} 32"], check=True, capture_output=True, text=True).stdout
    data = b"".join(bytes.fromhex("".join(line.split(":", 1)[1].split()[:16]))
                    for line in out.splitlines() if re.match(r"^[0-9a-f]{8}:", line))
    return data.rstrip(b"\0")


def node_files(env) -> set[str]:
    """The images QEMU has block nodes open on (no job is kept concluded here:
    query-named-block-nodes is safe)."""
    out = json.loads(env.ok("qemu-monitor-command", "bj", '{"execute":"query-named-block-nodes"}'))["return"]
    return {n["file"] for n in out}


def source_of(env, name: str, inactive: bool = False) -> str:
    xml = env.ok("dumpxml", name, *(["--inactive"] if inactive else []))
    return re.search(r"<disk[^>]*>.*?<source file='([^']+)'", xml, re.S).group(1)


def test_active_commit_pivot_merges_into_base_and_definitions_name_it(benv, tmp_path):
    env = benv
    uuid, base, top = start_guest(env, tmp_path)
    write_marker(env, uuid, "COMMIT-MARK")
    assert image_marker(base) == b"" and image_marker(top).startswith(b"COMMIT-MARK")  # only in the overlay
    r = env.run("blockcommit", "bj", "vda", "--wait")
    assert r.returncode == 2 and "requires active flag" in r.stderr, r.stderr
    # killed once the pivot is recorded, before QEMU is told: the job waits, in sync
    env.env = {**os.environ, "VIRTCTL_KILL_AT": "blockjob:pivot-marked"}
    r = env.run("blockcommit", "bj", "vda", "--active", "--pivot", "--wait", "--verbose")
    env.env = None
    assert r.returncode == -9 and "Block Commit: [100.00 %]" in r.stderr, r
    job = json.loads(env.ok("--json", "blockjob", "bj", "vda"))["job"]
    assert job["type"] == "active-commit" and job["ready"] and source_of(env, "bj") == top
    assert env.ok("blockjob", "bj", "vda", "--pivot") == "\n"  # the next command finishes it
    assert image_marker(base).startswith(b"COMMIT-MARK")
    assert source_of(env, "bj") == base and source_of(env, "bj", inactive=True) == base
    assert "<backingStore/>" in env.ok("dumpxml", "bj")
    assert read_marker(env, uuid) == "COMMIT-MARK"  # the guest goes on, on the base
    assert top not in node_files(env) and base in node_files(env)  # the merged overlay's nodes: deleted
    assert env.ok("blockjob", "bj", "vda", "--info") == "No current block job for vda\n"
    info = json.loads(env.ok("--json", "domblkinfo", "bj", "vda"))
    assert info["capacity"] == 64 * MIB and info["physical"] == os.path.getsize(base)
    # the next start runs the base
    env.ok("destroy", "bj")
    assert source_of(env, "bj") == base


def test_commit_delete_removes_only_the_committed_layers_once_closed(benv, tmp_path):
    env = benv
    uuid, base, top = start_guest(env, tmp_path)
    write_marker(env, uuid, "DELETE-MARK")
    # a middle layer: base <- mid <- top; a non-active commit of mid into base, --delete
    mid = str(tmp_path / "bj-mid.qcow2")
    r = env.run("blockcommit", "bj", "vda", "--top", top, "--wait", "--delete")
    assert r.returncode != 0 and "requires active flag" in r.stderr, r.stderr  # top is the active layer
    assert os.path.exists(top) and os.path.exists(base)  # a refused commit deletes nothing
    env.ok("snapshot-create-as", "bj", "s1", "--disk-only", "--no-metadata", "--diskspec", f"vda,file={mid}")
    # now: base <- top <- mid (mid is the new active layer); commit top into base
    assert chain_of(mid) == [mid, top, base]
    out = env.ok("blockcommit", "bj", "vda", "--top", top, "--base", base, "--wait", "--delete")
    assert "Commit complete" in out, out
    assert not os.path.exists(top), "the committed layer's file is removed"
    assert os.path.exists(mid) and os.path.exists(base) and chain_of(mid) == [mid, base]
    assert top not in node_files(env)
    assert read_marker(env, uuid) == "DELETE-MARK"  # its data lives on in the base
    # the active commit with --pivot --delete: the overlay the guest ran on goes
    env.ok("blockcommit", "bj", "vda", "--active", "--pivot", "--wait", "--delete")
    assert not os.path.exists(mid) and source_of(env, "bj") == base
    assert read_marker(env, uuid) == "DELETE-MARK"
    assert image_marker(base).startswith(b"DELETE-MARK")
    env.ok("destroy", "bj")


def test_blockpull_blockcopy_pivot_blockresize_vol_resize_and_bad_input(benv, tmp_path):
    env = benv
    env.ok("vol-create-as", "default", "data.qcow2", "32M", "--format", "qcow2")
    extra = ("\n    <disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source pool='default' volume='data.qcow2'/><target dev='vdb' bus='virtio'/></disk>")
    uuid, base, top = start_guest(env, tmp_path, extra=extra, base_data=True)
    copy = str(tmp_path / "copy.qcow2")
    r = env.run("blockjob", "bj", "vda", "--pivot")
    assert r.returncode == 4 and "does not have an active block job" in r.stderr, r.stderr
    for args, code, words in ((["blockcopy", "bj", "vdz", copy], 2, "disk 'vdz' not found"),
                              (["blockresize", "bj", "vda", "12Q"], 2, "Scaled numeric value '12Q'"),
                              (["blockresize", "bj", "vda", "1M"], 2, "cannot shrink disk 'vda'"),
                              (["blockcopy", "bj", "vda", top], 2, "part of the disk's chain"),
                              (["blockcopy", "bj", "vda", base, "--reuse-external"], 2, "part of the disk's chain"),
                              (["blockpull", "bj", "vda", "--base", "/nonexistent"], 2, "could not find image"),
                              (["vol-resize", "--pool", "default", "data.qcow2", "16M"], 2, "shrink")):
        r = env.run(*args)
        assert r.returncode == code and words in r.stderr, (args, r.stderr)
    assert not os.path.exists(copy) and source_of(env, "bj") == top
    assert qemu_img_info(top, "qcow2")["virtual-size"] == 64 * MIB

    # blockpull: the base's data comes up into the overlay, which then stands alone
    assert image_marker(top, "8M") == b""
    out = env.ok("blockpull", "bj", "vda", "--wait", "--verbose")
    assert out == "\nPull complete\n", repr(out)
    rc, out = guest_run(env, uuid, "dd if=/dev/zero of=/dev/vda bs=512 count=0 conv=fsync")  # a flush
    assert rc == 0, out
    assert chain_of(top) == [top] and image_marker(top, "8M") == b"B" * 32
    assert "<backingStore/>" in env.ok("dumpxml", "bj")

    # blockcopy --pivot: the guest goes on, on the copy
    write_marker(env, uuid, "COPY-MARK")
    out = env.ok("blockcopy", "bj", "vda", copy, "--wait", "--pivot")
    assert out == "\nSuccessfully pivoted\n", repr(out)
    assert source_of(env, "bj") == copy and source_of(env, "bj", inactive=True) == copy
    assert chain_of(copy) == [copy]  # a full copy: no backing file
    assert image_marker(copy).startswith(b"COPY-MARK") and image_marker(copy, "8M") == b"B" * 32
    write_marker(env, uuid, "AFTER-COPY")
    assert image_marker(copy).startswith(b"AFTER-COPY") and image_marker(top).startswith(b"COPY-MARK")
    assert read_marker(env, uuid) == "AFTER-COPY"
    files = node_files(env)
    assert copy in files and top not in files  # the copied-from image's nodes: deleted after the pivot

    # blockresize: the guest sees it
    env.ok("blockresize", "bj", "vda", "96M")
    rc, lines = guest_run(env, uuid, "cat /sys/block/vda/size")
    assert rc == 0 and lines == [str(96 * MIB // 512)], lines
    assert json.loads(env.ok("--json", "domblkinfo", "bj", "vda"))["capacity"] == 96 * MIB

    # vol-resize of the volume vdb uses: QMP block_resize, seen by the guest
    env.ok("vol-resize", "--pool", "default", "data.qcow2", "48M")
    rc, lines = guest_run(env, uuid, "cat /sys/block/vdb/size")
    assert rc == 0 and lines == [str(48 * MIB // 512)], lines
    path = str(env.root / "images" / "data.qcow2")
    assert qemu_img_info(path, "qcow2")["virtual-size"] == 48 * MIB
    assert "type='volume'" in env.ok("dumpxml", "bj", "--inactive")
    out = env.ok("domblkinfo", "bj", "--all")
    assert re.search(r"^ vdb\s+50331648\s", out, re.M), out


def test_throttled_job_info_abort_and_kill9_during_wait(benv, tmp_path):
    env = benv
    uuid, base, top = start_guest(env, tmp_path)
    write_marker(env, uuid, "SLOW-MARK", mib=4)
    copy = str(tmp_path / "slow.qcow2")
    assert env.ok("blockcopy", "bj", "vda", copy, "--bandwidth", "1") == "Block Copy started\n"
    r = env.run("blockcopy", "bj", "vda", str(tmp_path / "other.qcow2"))
    assert r.returncode == 4 and "already in active block job" in r.stderr, r.stderr
    r = env.run("blockjob", "bj", "vda", "--pivot")
    assert r.returncode == 4 and "not ready for pivot" in r.stderr, r.stderr
    raw = env.ok("blockjob", "bj", "vda", "--raw")
    assert raw.startswith(" type=copy\n bandwidth=1\n cur="), raw
    job = json.loads(env.ok("--json", "blockjob", "bj", "vda"))["job"]
    assert job["type"] == "copy" and job["bandwidth"] == MIB and not job["ready"]
    r = env.run("blockjob", "bj", "vda", "--info")
    assert "Block Copy: [" in r.stderr and "Bandwidth limit: 1048576 bytes/s (1.000 MiB/s)" in r.stdout, r
    env.ok("blockjob", "bj", "vda", "--abort")
    assert env.ok("blockjob", "bj", "vda") == "No current block job for vda\n"
    assert source_of(env, "bj") == top and not os.path.exists(copy)  # an unfinished copy is removed
    r = env.run("blockcopy", "bj", "vda", copy, "--bandwidth", "1", "--timeout", "1")
    assert r.returncode == 1 and r.stdout == "\nCopy aborted\n", r
    assert env.ok("blockjob", "bj", "vda") == "No current block job for vda\n" and not os.path.exists(copy)

    # kill -9 of virtctl during blockcommit --wait: the job is QEMU's and goes on
    p = subprocess.Popen([VIRTCTL, "-c", env.uri, "blockcommit", "bj", "vda", "--active", "--wait",
                          "--bandwidth", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while (json.loads(env.ok("--json", "blockjob", "bj", "vda"))["job"] or {}).get("type") != "active-commit":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    env.ok("blockjob", "bj", "vda", "--bandwidth", "0")  # the next command sees it and speeds it up
    deadline = time.monotonic() + 120
    while not json.loads(env.ok("--json", "blockjob", "bj", "vda"))["job"]["ready"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    env.ok("blockjob", "bj", "vda", "--pivot")
    assert source_of(env, "bj") == base and source_of(env, "bj", inactive=True) == base
    blocks = json.loads(env.ok("qemu-monitor-command", "bj", '{"execute":"query-block"}'))["return"]
    assert [b["inserted"]["image"]["filename"] for b in blocks if b.get("inserted")] == [base]
    assert image_marker(base).startswith(b"SLOW-MARK")
