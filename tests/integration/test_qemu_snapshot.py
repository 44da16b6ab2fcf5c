"""Snapshots on the QEMU driver, for real: the test guest on a qcow2 virtio
disk (internal snapshots with memory, reverted; an external disk-only
snapshot), shut-off domains on qcow2 images written with ``qemu-io`` (the
tree, deletes, re-parenting, bad input), and ``kill -9`` of virtctl in the
middle of ``snapshot-create-as`` (the next command makes the metadata match
the images).

One running domain for the module (booting is the slow part); the tests
run in file order.  Everything under ``qemu:///embed?root=<tmp>``.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from integration.test_qemu_driver import VIRTCTL, Env

pytestmark = pytest.mark.qemu
NAME = "snapg"


def _disk_xml(path, dev="vda", fmt="qcow2") -> str:
    return (f"    <disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
            f"<source file='{path}'/><target dev='{dev}' bus='virtio'/></disk>\n")


def _define(env: Env, name: str, disks: list[tuple[str, str, str]]) -> None:
    xml = env.xml(name).replace("</devices>", "".join(_disk_xml(*d) for d in disks).lstrip() + "  </devices>", 1)
    f = env.root.parent / f"{name}.xml"
    f.write_text(xml)
    env.ok("define", str(f))


def _img(path, size="16M"):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)


def _tags(path) -> list[str]:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return [s["name"] for s in json.loads(out).get("snapshots", [])]


def _qemu_io(path, cmd) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-io", "-f", "qcow2", "-c", cmd, str(path)], capture_output=True, text=True)


def _names(env, dom, *extra) -> list[str]:
    return [s["name"] for s in json.loads(env.ok("--json", "snapshot-list", dom, *extra))]


class Console:
    def __init__(self, env: Env, uuid: str):
        self.env, self.uuid = env, uuid

    def _text(self) -> str:
        try:
            return self.env.serial_log(self.uuid).read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def run(self, cmd: str, timeout: float = 60) -> list[str]:
        start = len(self._text())
        self.env.send_serial(self.uuid, f"run {cmd}")
        deadline = time.monotonic() + timeout
        while True:
            text = self._text()[start:]
            if "VIRTCTL-GUEST-DONE" in text:
                return [ln.split("VIRTCTL-GUEST-OUT", 1)[1].strip() for ln in text.splitlines()
                        if "VIRTCTL-GUEST-OUT" in ln]
            assert time.monotonic() < deadline, f"no answer to {cmd!r}: {text[-800:]!r}"
            time.sleep(0.1)

    def write_marker(self, marker: str) -> None:
        self.run(f"echo {marker} | dd of=/dev/vda bs=8 count=1 conv=notrunc 2>/dev/null; sync")

    def marker(self) -> str:
        out = self.run("dd if=/dev/vda bs=8 count=1 2>/dev/null; echo")
        return out[0] if out else ""


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("snap")
    e = Env(base / "root", test_guest)
    e.base = base
    e.disk = base / "disk.qcow2"
    _img(e.disk, "64M")
    _define(e, NAME, [(e.disk, "vda", "qcow2")])
    e.ok("start", NAME)
    e.wait_ready(e.uuid(NAME))
    e.console = Console(e, e.uuid(NAME))
    yield e
    e.cleanup()


def test_internal_snapshot_with_memory_reverts_disk_and_shell_state(env):
    c = env.console
    c.write_marker("AAAAAAAA")
    c.run("X=before")
    env.ok("snapshot-create-as", NAME, "m1", "--description", "with memory")
    info = json.loads(env.ok("--json", "snapshot-info", NAME, "m1"))
    assert (info["state"], info["location"], info["current"]) == ("running", "internal", True)
    assert "m1" in _tags(env.disk)
    xml = env.ok("snapshot-dumpxml", NAME, "m1")
    assert "<memory snapshot='internal'/>" in xml and "<disk name='vda' snapshot='internal'/>" in xml
    assert "<domain type='qemu'>" in xml
    c.write_marker("BBBBBBBB")
    c.run("X=after")
    assert c.marker() == "BBBBBBBB"
    env.ok("snapshot-revert", NAME, "m1")
    assert env.domstate(NAME) == "running (from snapshot)"
    assert c.marker() == "AAAAAAAA"
    assert c.run("echo X=$X") == ["X=before"]


def test_revert_paused_then_running(env):
    env.ok("snapshot-revert", NAME, "m1", "--paused")
    assert env.domstate(NAME) == "paused (from snapshot)"
    env.ok("snapshot-revert", NAME, "m1", "--running")
    assert env.domstate(NAME) == "running (from snapshot)"
    assert env.console.run("echo X=$X") == ["X=before"]


def test_kill9_during_internal_create_is_finished_by_the_next_command(env):
    env.env = dict(os.environ, VIRTCTL_KILL_AT="snapshot:job")
    try:
        r = env.run("snapshot-create-as", NAME, "k1")
    finally:
        env.env = None
    assert r.returncode == -9, r.stderr
    assert os.path.exists(os.path.join(env.state.config_dir(env.uuid(NAME)), "snapshots", "pending.json"))
    # QEMU's job outlived virtctl: the next command waits for it, dismisses it, records it
    assert "k1" in _names(env, NAME)
    assert "k1" in _tags(env.disk)
    assert json.loads(env.ok("--json", "snapshot-info", NAME, "k1"))["parent"] == "m1"
    assert not os.path.exists(os.path.join(env.state.config_dir(env.uuid(NAME)), "snapshots", "pending.json"))
    assert env.domstate(NAME).startswith("running")
    assert env.console.run("echo alive") == ["alive"]
    env.ok("snapshot-delete", NAME, "k1")
    assert "k1" not in _tags(env.disk) and _names(env, NAME) == ["m1"]


def test_kill9_before_the_overlay_is_used_undoes_the_external_snapshot(env):
    ov = env.base / "ov-killed.qcow2"
    env.env = dict(os.environ, VIRTCTL_KILL_AT="snapshot:overlays")
    try:
        r = env.run("snapshot-create-as", NAME, "kx", "--disk-only", "--diskspec", f"vda,file={ov}")
    finally:
        env.env = None
    assert r.returncode == -9, r.stderr
    assert ov.exists()  # made, not used yet
    assert "kx" not in _names(env, NAME)
    assert not ov.exists()
    assert f"<source file='{env.disk}'/>" in env.ok("dumpxml", NAME)
    assert env.console.marker() == "AAAAAAAA"


def test_bad_input_changes_nothing(env):
    before = (_names(env, NAME), _tags(env.disk), env.ok("dumpxml", NAME))
    r = env.run("snapshot-create-as", NAME, "m1")
    assert r.returncode == 1 and "domain moment m1 already exists" in r.stderr, r.stderr
    r = env.run("snapshot-create-as", NAME, "a/b")
    assert r.returncode == 2 and "invalid snapshot name 'a/b'" in r.stderr, r.stderr
    r = env.run("snapshot-create-as", NAME, "x1", "--disk-only", "--diskspec", f"vdq,file={env.base}/q.qcow2")
    assert r.returncode == 2 and "no disk named 'vdq'" in r.stderr, r.stderr
    r = env.run("snapshot-create-as", NAME, "x2", "--memspec", f"file={env.base}/mem")
    assert r.returncode == 6 and "external memory snapshots" in r.stderr, r.stderr
    r = env.run("snapshot-revert", NAME, "nosuch")
    assert r.returncode == 3 and "no domain snapshot with matching name 'nosuch'" in r.stderr
    assert (_names(env, NAME), _tags(env.disk), env.ok("dumpxml", NAME)) == before
    assert not (env.base / "q.qcow2").exists()


def test_external_disk_only_snapshot_of_the_running_guest(env):
    ov = env.base / "ov1.qcow2"
    env.ok("snapshot-create-as", NAME, "e1", "--disk-only", "--atomic", "--diskspec", f"vda,file={ov}")
    assert ov.exists()
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(ov)], check=True,
                                     capture_output=True, text=True).stdout)
    assert (info["backing-filename"], info["backing-filename-format"]) == (str(env.disk), "qcow2")
    live = env.ok("dumpxml", NAME)
    assert f"<source file='{ov}'/>" in live
    assert f"<backingStore type='file'>\n        <format type='qcow2'/>\n        <source file='{env.disk}'/>" in live
    assert f"<source file='{ov}'/>" in env.ok("dumpxml", NAME, "--inactive")
    blocks = json.loads(env.ok("qemu-monitor-command", NAME, '{"execute":"query-block"}'))["return"]
    assert [b["inserted"]["image"]["filename"] for b in blocks if b.get("inserted")] == [str(ov)]
    rec = json.loads(env.ok("--json", "snapshot-info", NAME, "e1"))
    assert (rec["state"], rec["location"], rec["disk_only"], rec["parent"]) == \
        ("disk-snapshot", "external", True, "m1")
    c = env.console
    c.write_marker("CCCCCCCC")
    assert c.marker() == "CCCCCCCC"
    # the base image still holds the old marker: the guest writes to the overlay
    assert _qemu_io_read(env.disk) == b"AAAAAAAA"
    # m1's disks are not the running ones any more: reverting needs --force
    r = env.run("snapshot-revert", NAME, "m1")
    assert r.returncode == 4 and "revert requires force" in r.stderr, r.stderr
    assert c.marker() == "CCCCCCCC"
    r = env.run("snapshot-delete", NAME, "e1")
    assert r.returncode == 6 and "--metadata" in r.stderr
    r = env.run("undefine", NAME)
    assert r.returncode == 4 and "with 2 snapshots" in r.stderr, r.stderr
    # m1 lives in the base image, which QEMU now only reads: refused, nothing changed
    r = env.run("snapshot-delete", NAME, "m1")
    assert r.returncode == 4 and "only reads now" in r.stderr and "disk vda" in r.stderr, r.stderr
    assert "m1" in _tags(env.disk) and _names(env, NAME) == ["e1", "m1"]


def test_external_snapshot_then_active_commit_pivot_back_to_the_base(env):
    """The operator's round trip: the external snapshot taken above (e1, the guest
    writing into ov1), then ``blockcommit --active --pivot`` merges ov1 back: the
    base image holds the guest's writes, both definitions name the base again, and
    the guest goes on writing to it."""
    ov = env.base / "ov1.qcow2"
    c = env.console
    assert c.marker() == "CCCCCCCC" and _qemu_io_read(env.disk) == b"AAAAAAAA"
    out = env.ok("blockcommit", NAME, "vda", "--active", "--pivot", "--wait")
    assert out == "\nSuccessfully pivoted\n", repr(out)
    assert _qemu_io_read(env.disk) == b"CCCCCCCC"  # the overlay's data is in the base now
    for xml in (env.ok("dumpxml", NAME), env.ok("dumpxml", NAME, "--inactive")):
        assert f"<source file='{env.disk}'/>" in xml and str(ov) not in xml
    blocks = json.loads(env.ok("qemu-monitor-command", NAME, '{"execute":"query-block"}'))["return"]
    assert [b["inserted"]["image"]["filename"] for b in blocks if b.get("inserted")] == [str(env.disk)]
    c.write_marker("DDDDDDDD")  # the guest writes to the base itself again
    assert c.marker() == "DDDDDDDD" and _qemu_io_read(env.disk) == b"DDDDDDDD"
    assert env.ok("blockjob", NAME, "vda", "--info").strip() == "No current block job for vda"
    # the snapshot's metadata stays (as libvirt keeps it): e1 still names its overlay
    assert _names(env, NAME) == ["e1", "m1"]


def _qemu_io_read(path) -> bytes:
    out = subprocess.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -v 0 8", str(path)],
                         capture_output=True, text=True, check=True).stdout
    hexes = out.splitlines()[0].split(":", 1)[1].split()[:8]
    return bytes(int(h, 16) for h in hexes)


# --- shut-off domains ---------------------------------------------------------------------------
@pytest.fixture
def off(env):
    d = env.base / f"off-{time.monotonic_ns()}"
    d.mkdir()
    yield d


def test_offline_internal_snapshot_tree_revert_delete_and_reparent(env, off):
    img = off / "o.qcow2"
    _img(img)
    _define(env, "offg", [(img, "vda", "qcow2")])
    try:
        assert _qemu_io(img, "write -P 0x41 0 4k").returncode == 0
        env.ok("snapshot-create-as", "offg", "s1")
        assert _qemu_io(img, "write -P 0x42 0 4k").returncode == 0
        env.ok("snapshot-create-as", "offg", "s2")
        env.ok("snapshot-create-as", "offg", "s3")
        tree = env.ok("snapshot-list", "offg", "--tree")
        assert tree.index("s1") < tree.index("s2") < tree.index("s3") and tree.count("+-") == 2
        assert json.loads(env.ok("--json", "snapshot-info", "offg", "s3"))["parent"] == "s2"
        assert sorted(_tags(img)) == ["s1", "s2", "s3"]
        env.ok("snapshot-revert", "offg", "s1")
        assert _qemu_io(img, "read -P 0x41 0 4k").returncode == 0
        assert "Pattern verification failed" not in _qemu_io(img, "read -P 0x41 0 4k").stdout
        assert env.domstate("offg").startswith("shut off")
        assert env.ok("snapshot-current", "offg", "--name").strip() == "s1"
        # deleting s2 gives s3 to s1
        env.ok("snapshot-delete", "offg", "s2")
        assert json.loads(env.ok("--json", "snapshot-info", "offg", "s3"))["parent"] == "s1"
        assert sorted(_tags(img)) == ["s1", "s3"]
        env.ok("snapshot-create-as", "offg", "s4")  # a child of s1, the current one
        env.ok("snapshot-delete", "offg", "s1", "--children-only")
        assert _names(env, "offg") == ["s1"] and _tags(img) == ["s1"]
        env.ok("snapshot-create-as", "offg", "s5")
        env.ok("snapshot-delete", "offg", "s5", "--metadata")
        assert _names(env, "offg") == ["s1"] and sorted(_tags(img)) == ["s1", "s5"]
        env.ok("snapshot-delete", "offg", "s1", "--children")
        assert _names(env, "offg") == [] and _tags(img) == ["s5"]
        # revert to another domain's snapshot: not found, nothing changed
        r = env.run("snapshot-revert", "offg", "m1")
        assert r.returncode == 3 and "'m1'" in r.stderr
        env.ok("snapshot-create-as", "offg", "t1")
        r = env.run("undefine", "offg")
        assert r.returncode == 4 and "cannot delete inactive domain with 1 snapshots" in r.stderr
        env.ok("undefine", "offg", "--snapshots-metadata")
    finally:
        env.run("undefine", "offg", "--snapshots-metadata")


def test_offline_refusals_name_the_disk(env, off):
    img, raw = off / "a.qcow2", off / "b.raw"
    _img(img)
    raw.write_bytes(b"\0" * 65536)
    _define(env, "offr", [(img, "vda", "qcow2"), (raw, "vdb", "raw")])
    try:
        r = env.run("snapshot-create-as", "offr", "s1")
        assert r.returncode == 6 and "disk 'vdb'" in r.stderr and str(raw) in r.stderr, r.stderr
        assert _tags(img) == [] and _names(env, "offr") == []
        env.ok("snapshot-create-as", "offr", "s1", "--diskspec", "vdb,snapshot=no")
        assert _tags(img) == ["s1"]
        # an external disk-only snapshot of the shut-off domain: both disks get overlays
        env.ok("snapshot-create-as", "offr", "e1", "--disk-only", "--diskspec", f"vda,file={off}/a.ov",
               "--diskspec", f"vdb,file={off}/b.ov")
        xml = env.ok("dumpxml", "offr")
        assert f"<source file='{off}/a.ov'/>" in xml and f"<source file='{off}/b.ov'/>" in xml
        assert (off / "b.ov").exists()
        out = subprocess.run(["qemu-img", "info", "--output=json", str(off / "b.ov")], capture_output=True,
                             text=True, check=True).stdout
        assert json.loads(out)["backing-filename-format"] == "raw"
    finally:
        env.run("undefine", "offr", "--snapshots-metadata")


def test_kill9_between_two_disks_removes_the_half_snapshot(env, off):
    a, b = off / "a.qcow2", off / "b.qcow2"
    _img(a)
    _img(b)
    _define(env, "offk", [(a, "vda", "qcow2"), (b, "vdb", "qcow2")])
    try:
        env.env = dict(os.environ, VIRTCTL_KILL_AT="snapshot:disk")
        try:
            r = env.run("snapshot-create-as", "offk", "h1")
        finally:
            env.env = None
        assert r.returncode == -9
        assert _tags(a) == ["h1"] and _tags(b) == []  # half made
        assert _names(env, "offk") == []  # the next command undoes it
        assert _tags(a) == [] and _tags(b) == []
        assert _qemu_io(a, "write -P 0x41 0 4k").returncode == 0
        assert _qemu_io(b, "write -P 0x41 0 4k").returncode == 0
        env.ok("snapshot-create-as", "offk", "h1")
        assert _tags(a) == ["h1"] and _tags(b) == ["h1"]
        # killed between reverting the two disks: the next command reverts the second too
        assert _qemu_io(a, "write -P 0x42 0 4k").returncode == 0
        assert _qemu_io(b, "write -P 0x42 0 4k").returncode == 0
        env.env = dict(os.environ, VIRTCTL_KILL_AT="snapshot:revert-disk")
        try:
            r = env.run("snapshot-revert", "offk", "h1")
        finally:
            env.env = None
        assert r.returncode == -9
        assert "verification failed" not in _qemu_io(a, "read -P 0x41 0 4k").stdout
        assert "verification failed" in _qemu_io(b, "read -P 0x41 0 4k").stdout  # not yet
        assert env.ok("snapshot-current", "offk", "--name").strip() == "h1"
        assert "verification failed" not in _qemu_io(b, "read -P 0x41 0 4k").stdout
        # metadata dropped and redefined from its own dumpxml: the same snapshot again
        xml = env.ok("snapshot-dumpxml", "offk", "h1")
        f = off / "h1.xml"
        f.write_text(xml)
        env.ok("snapshot-delete", "offk", "h1", "--metadata")
        assert _names(env, "offk") == [] and _tags(a) == ["h1"]
        env.ok("snapshot-create", "offk", str(f), "--redefine", "--current")
        assert env.ok("snapshot-dumpxml", "offk", "h1") == xml
        assert env.ok("snapshot-current", "offk", "--name").strip() == "h1"
        # an image that lost its tag is reported at revert, naming the disk; nothing changes
        subprocess.run(["qemu-img", "snapshot", "-d", "h1", str(b)], check=True)
        r = env.run("snapshot-revert", "offk", "h1")
        assert r.returncode == 1 and "disk vdb" in r.stderr and str(b) in r.stderr, r.stderr
        assert _tags(a) == ["h1"]
    finally:
        env.run("undefine", "offk", "--snapshots-metadata")


def test_revert_of_a_shut_off_domain_to_a_memory_snapshot_starts_it_where_it_was(env):
    """Last of the running-guest tests: the domain is destroyed, then reverted to
    m1 (its definition: the base image, not the overlay): QEMU starts paused, loads
    m1 and runs the guest from there."""
    env.ok("destroy", NAME)
    r = env.run("snapshot-revert", NAME, "m1", "--paused")
    assert r.returncode == 0, r.stderr
    assert env.domstate(NAME) == "paused (from snapshot)"
    assert f"<source file='{env.disk}'/>" in env.ok("dumpxml", NAME, "--inactive")
    env.ok("resume", NAME)
    assert env.console.marker() == "AAAAAAAA"
    assert env.console.run("echo X=$X") == ["X=before"]
    # --halt: the snapshot is taken, then the domain is shut off
    out = json.loads(env.ok("--json", "snapshot-create-as", NAME, "h1", "--halt"))
    assert (out["action"], out["snapshot"], out["result"]) == ("snapshot-created", "h1", "ok")
    assert env.domstate(NAME) == "shut off (from snapshot)"
    assert json.loads(env.ok("--json", "snapshot-info", NAME, "h1"))["state"] == "running"
