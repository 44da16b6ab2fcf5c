"""External disk-only snapshots on the QEMU driver, for real: reverting to
one (new overlays on the snapshot's images, as libvirt 9.7+), deleting one
(its overlay merged by a block commit), and the operator's round trip with
``blockcommit --active --pivot`` (the overlay's nodes gone from QEMU after).

Shut-off domains are driven on qcow2 images written with ``qemu-io``; one
running test guest serves the module (the tests run in file order).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import VIRTCTL, Env
from integration.test_qemu_snapshot import Console, _define, _img, _names, _qemu_io_read

pytestmark = pytest.mark.qemu
NAME = "extg"


def _write(path, byte: int, off: int = 0, fmt="qcow2") -> None:
    r = subprocess.run(["qemu-io", "-f", fmt, "-c", f"write -P {byte:#x} {off} 4k", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _holds(path, byte: int, off: int = 0) -> bool:
    r = subprocess.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", f"read -P {byte:#x} {off} 4k", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return "Pattern verification failed" not in r.stdout


def _backing(path) -> str | None:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out).get("backing-filename")


def _source(env, dom, *extra) -> str:
    xml = env.ok("dumpxml", dom, *extra)
    start = xml.index("<source file='") + len("<source file='")
    return xml[start:xml.index("'", start)]


def _meta_file(env, dom, snap) -> Path:
    return Path(env.state.config_dir(env.uuid(dom))) / "snapshots" / f"{snap}.xml"


def _pending(env, dom) -> Path:
    return Path(env.state.config_dir(env.uuid(dom))) / "snapshots" / "pending.json"


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("snapx")
    e = Env(base / "root", test_guest)
    e.base = base
    yield e
    e.cleanup()


@pytest.fixture
def off(env):
    d = env.base / f"off-{time.monotonic_ns()}"
    d.mkdir()
    yield d


# --- revert, shut-off domain ---------------------------------------------------------------------
def test_offline_revert_makes_new_overlays_and_keeps_every_snapshots_state(env, off):
    base, ov1, ov2 = off / "base.qcow2", off / "ov1.qcow2", off / "ov2.qcow2"
    _img(base)
    _write(base, 0x41)
    _define(env, "xo", [(base, "vda", "qcow2")])
    try:
        env.ok("snapshot-create-as", "xo", "e1", "--disk-only", "--diskspec", f"vda,file={ov1}")
        _write(ov1, 0x42)
        env.ok("snapshot-create-as", "xo", "e2", "--disk-only", "--diskspec", f"vda,file={ov2}")
        _write(ov2, 0x43)
        assert _source(env, "xo") == str(ov2)
        # back to e1: a new overlay on base (e1's state); ov2 (after e2, nobody's state) goes;
        # ov1 (e2's state) stays
        out = json.loads(env.ok("--json", "snapshot-revert", "xo", "e1"))
        assert (out["action"], out["snapshot"]) == ("snapshot-reverted", "e1")
        n1 = _source(env, "xo")
        assert n1 not in (str(base), str(ov1), str(ov2)) and os.path.dirname(n1) == str(off)
        assert _backing(n1) == str(base) and _holds(n1, 0x41)
        assert not ov2.exists() and ov1.exists() and _holds(ov1, 0x42) and _holds(base, 0x41)
        assert env.ok("snapshot-current", "xo", "--name").strip() == "e1"
        assert env.domstate("xo").startswith("shut off")
        assert f"<source file='{n1}'/>" in _meta_file(env, "xo", "e1").read_text()  # <revertDisks>
        dump = env.ok("snapshot-dumpxml", "xo", "e1")
        assert "revertDisks" not in dump and n1 not in dump  # dumpxml stays redefinable
        assert _names(env, "xo") == ["e1", "e2"]
        # the guest writes after the revert go to the new overlay only
        _write(n1, 0x44)
        assert _holds(base, 0x41)
        # to e2: a new overlay on ov1 (e2's state); n1 (e1's revert overlay) goes, and its record
        env.ok("snapshot-revert", "xo", "e2")
        n2 = _source(env, "xo")
        assert _backing(n2) == str(ov1) and _holds(n2, 0x42)
        assert not os.path.exists(n1) and n1 not in _meta_file(env, "xo", "e1").read_text()
        assert env.ok("snapshot-current", "xo", "--name").strip() == "e2"
        # the persistent definition is e2's, with the new overlay
        assert f"<source file='{n2}'/>" in env.ok("dumpxml", "xo", "--inactive")
    finally:
        env.run("undefine", "xo", "--snapshots-metadata")


def test_kill9_during_revert_is_undone_or_finished_by_the_next_command(env, off):
    base, ov1 = off / "base.qcow2", off / "ov1.qcow2"
    _img(base)
    _write(base, 0x41)
    _define(env, "xk", [(base, "vda", "qcow2")])
    try:
        env.ok("snapshot-create-as", "xk", "e1", "--disk-only", "--diskspec", f"vda,file={ov1}")
        _write(ov1, 0x42)
        for point in ("snapshot:revert-ext-overlay", "snapshot:revert-ext-defined"):
            files = set(os.listdir(off))
            env.env = dict(os.environ, VIRTCTL_KILL_AT=point)
            try:
                r = env.run("snapshot-revert", "xk", "e1")
            finally:
                env.env = None
            assert r.returncode == -9, r.stderr
            assert _pending(env, "xk").exists()
            made = set(os.listdir(off)) - files
            assert len(made) == 1, made  # the new overlay, made before the kill
            new = str(off / made.pop())
            assert _names(env, "xk") == ["e1"]  # the next command repairs first
            assert not _pending(env, "xk").exists()
            if point == "snapshot:revert-ext-overlay":
                # killed before the definition was switched: undone, the domain still on ov1
                assert not os.path.exists(new) and _source(env, "xk") == str(ov1) and _holds(ov1, 0x42)
                assert "revertDisks" not in _meta_file(env, "xk", "e1").read_text()
            else:
                # killed after: finished (metadata, the abandoned ov1 removed, e1 current)
                assert _source(env, "xk") == new and _holds(new, 0x41) and not ov1.exists()
                assert f"<source file='{new}'/>" in _meta_file(env, "xk", "e1").read_text()
                assert env.ok("snapshot-current", "xk", "--name").strip() == "e1"
        # e1's state gone from under it: refused naming the disk, nothing changed
        os.rename(base, off / "moved.qcow2")
        before = (sorted(os.listdir(off)), env.ok("dumpxml", "xk"))
        r = env.run("snapshot-revert", "xk", "e1")
        assert r.returncode == 1 and "disk vda" in r.stderr and str(base) in r.stderr, r.stderr
        assert (sorted(os.listdir(off)), env.ok("dumpxml", "xk")) == before
        assert not _pending(env, "xk").exists()
    finally:
        env.run("undefine", "xk", "--snapshots-metadata")


# --- delete, shut-off domain ---------------------------------------------------------------------
K = 4096


def test_offline_delete_merges_overlays_and_repoints_children(env, off):
    base, ov1, ov2 = off / "base.qcow2", off / "ov1.qcow2", off / "ov2.qcow2"
    _img(base)
    _write(base, 0x41, 0)
    _define(env, "xd", [(base, "vda", "qcow2")])
    try:
        env.ok("snapshot-create-as", "xd", "e1", "--disk-only", "--diskspec", f"vda,file={ov1}")
        _write(ov1, 0x42, K)
        env.ok("snapshot-create-as", "xd", "e2", "--disk-only", "--diskspec", f"vda,file={ov2}")
        _write(ov2, 0x43, 2 * K)
        # e1: not current, one child, its overlay in the middle of the chain: ov1 is
        # committed into base, ov2 rebased onto base, e2's definition names base
        out = json.loads(env.ok("--json", "snapshot-delete", "xd", "e1"))
        assert (out["action"], out["snapshot"]) == ("snapshot-deleted", "e1")
        assert not ov1.exists() and _holds(base, 0x42, K) and _holds(base, 0x41, 0)
        assert _backing(ov2) == str(base) and _holds(ov2, 0x43, 2 * K) and _holds(ov2, 0x42, K)
        assert _source(env, "xd") == str(ov2)
        info = json.loads(env.ok("--json", "snapshot-info", "xd", "e2"))
        assert info["parent"] is None and info["current"] is True
        assert f"<source file='{base}'/>" in env.ok("snapshot-dumpxml", "xd", "e2")
        # e2: current, its overlay the active layer: committed, the definition names base;
        # virtctl killed after the commit, before the switch: the next command finishes
        env.env = dict(os.environ, VIRTCTL_KILL_AT="snapshot:delete-ext-committed")
        try:
            r = env.run("snapshot-delete", "xd", "e2")
        finally:
            env.env = None
        assert r.returncode == -9, r.stderr
        assert _pending(env, "xd").exists() and ov2.exists() and _source(env, "xd") == str(ov2)
        assert _names(env, "xd") == []
        assert not _pending(env, "xd").exists() and not ov2.exists() and _holds(base, 0x43, 2 * K)
        assert _source(env, "xd") == str(base)
        assert "<backingStore" not in env.ok("dumpxml", "xd", "--inactive")
    finally:
        env.run("undefine", "xd", "--snapshots-metadata")


def test_offline_delete_after_reverts_and_its_refusals(env, off):
    base, ov1, ov2, ov3 = (off / f"{n}.qcow2" for n in ("base", "ov1", "ov2", "ov3"))
    _img(base)
    _write(base, 0x41, 0)
    _define(env, "xe", [(base, "vda", "qcow2")])
    try:
        env.ok("snapshot-create-as", "xe", "e1", "--disk-only", "--diskspec", f"vda,file={ov1}")
        _write(ov1, 0x42, K)
        env.ok("snapshot-create-as", "xe", "e2", "--disk-only", "--diskspec", f"vda,file={ov2}")
        env.ok("snapshot-revert", "xe", "e1")  # n1 on base; ov2 (after e2) removed
        n1 = _source(env, "xe")
        _write(n1, 0x44, 2 * K)
        env.ok("snapshot-create-as", "xe", "e3", "--disk-only", "--diskspec", f"vda,file={ov3}")
        _write(ov3, 0x45, 3 * K)
        # e1 has two children now: its overlay cannot go into both chains
        before = (sorted(os.listdir(off)), env.ok("dumpxml", "xe"), _names(env, "xe"))
        r = env.run("snapshot-delete", "xe", "e1")
        assert r.returncode == 6 and "disk vda" in r.stderr and "2 children" in r.stderr, r.stderr
        r = env.run("snapshot-delete", "xe", "e1", "--children")
        assert r.returncode == 6 and "--children" in r.stderr, r.stderr
        assert (sorted(os.listdir(off)), env.ok("dumpxml", "xe"), _names(env, "xe")) == before
        # e2: a leaf off the current chain: its state (ov1, which virtctl made) goes with it
        env.ok("snapshot-delete", "xe", "e2")
        assert not ov1.exists() and base.exists() and _names(env, "xe") == ["e1", "e3"]
        # e1, one child now: its revert overlay n1 (in the chain) is merged into base
        env.ok("snapshot-delete", "xe", "e1")
        assert not os.path.exists(n1) and _backing(ov3) == str(base)
        assert _holds(base, 0x44, 2 * K) and _holds(ov3, 0x45, 3 * K) and _holds(ov3, 0x41, 0)
        assert f"<source file='{base}'/>" in env.ok("snapshot-dumpxml", "xe", "e3")
        assert _names(env, "xe") == ["e3"] and _source(env, "xe") == str(ov3)
    finally:
        env.run("undefine", "xe", "--snapshots-metadata")


# --- the running guest ----------------------------------------------------------------------------
def _log(env, uuid: str) -> str:
    try:
        return env.serial_log(uuid).read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _wait_reboot(env, uuid: str, before: str, timeout: float = 90) -> None:
    """The serial log of a new run (appended to ``before``, the log of the old
    one, or started afresh) shows the guest ready again."""
    deadline = time.monotonic() + timeout
    while True:
        text = _log(env, uuid)
        fresh = text[len(before):] if text.startswith(before) else text
        if env.guest.ready_line in fresh:
            return
        assert time.monotonic() < deadline, f"the guest did not come up again: {fresh[-800:]!r}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def guest(env):
    env.disk = env.base / "disk.qcow2"
    _img(env.disk, "64M")
    _define(env, NAME, [(env.disk, "vda", "qcow2")])
    env.ok("start", NAME)
    env.wait_ready(env.uuid(NAME))
    env.console = Console(env, env.uuid(NAME))
    return env


def test_revert_of_the_running_guest_needs_force_to_respawn_it(guest):
    env, c = guest, guest.console
    ov = env.base / "r1.qcow2"
    c.write_marker("AAAAAAAA")
    env.ok("snapshot-create-as", NAME, "r1", "--disk-only", "--diskspec", f"vda,file={ov}")
    c.write_marker("BBBBBBBB")
    assert _qemu_io_read(env.disk) == b"AAAAAAAA"
    before = (env.ok("dumpxml", NAME), sorted(os.listdir(env.base)))
    for flag in ("--running", "--paused"):
        r = env.run("snapshot-revert", NAME, "r1", flag)
        assert r.returncode == 4 and "must respawn guest" in r.stderr, r.stderr
    assert (env.ok("dumpxml", NAME), sorted(os.listdir(env.base))) == before
    assert c.marker() == "BBBBBBBB" and env.domstate(NAME).startswith("running")
    uuid = env.uuid(NAME)
    old_log = _log(env, uuid)
    env.ok("snapshot-revert", NAME, "r1", "--paused", "--force")
    assert env.domstate(NAME) == "paused (from snapshot)"
    new = _source(env, NAME, "--inactive")
    assert new not in (str(env.disk), str(ov)) and _backing(new) == str(env.disk)
    live = env.ok("dumpxml", NAME)
    assert f"<source file='{new}'/>" in live and f"<source file='{env.disk}'/>" in live  # backingStore
    assert not ov.exists()  # the overlay written after r1 was nobody's state
    env.ok("resume", NAME)
    _wait_reboot(env, uuid, old_log)  # started afresh: a disk-only snapshot has no memory
    env.console = c = Console(env, uuid)
    assert c.marker() == "AAAAAAAA"
    c.write_marker("CCCCCCCC")
    assert _qemu_io_read(env.disk) == b"AAAAAAAA"  # r1's state is untouched


def _node_files(env) -> list[str]:
    out = json.loads(env.ok("qemu-monitor-command", NAME, '{"execute":"query-named-block-nodes"}'))["return"]
    return [n.get("file") for n in out]


def test_delete_of_the_current_snapshot_of_the_running_guest_commits_and_pivots(guest):
    """r1 is current and the guest writes to its revert overlay: deleting r1 merges
    that overlay into the disk (active block-commit, pivot), as libvirt 9.7 does."""
    env, c = guest, guest.console
    top = _source(env, NAME)
    assert _backing(top) == str(env.disk)
    c.write_marker("DDDDDDDD")
    assert _qemu_io_read(env.disk) == b"AAAAAAAA"
    env.ok("snapshot-delete", NAME, "r1")
    assert _qemu_io_read(env.disk) == b"DDDDDDDD"
    for xml in (env.ok("dumpxml", NAME), env.ok("dumpxml", NAME, "--inactive")):
        assert f"<source file='{env.disk}'/>" in xml and top not in xml
    assert not os.path.exists(top) and top not in _node_files(env)
    assert _names(env, NAME) == []
    c.write_marker("EEEEEEEE")  # the guest goes on, on the disk itself
    assert c.marker() == "EEEEEEEE" and _qemu_io_read(env.disk) == b"EEEEEEEE"


def test_kill9_during_the_pivot_of_a_running_delete_is_finished_by_the_next_command(guest):
    env, c = guest, guest.console
    ov = env.base / "k1.qcow2"
    env.ok("snapshot-create-as", NAME, "k1", "--disk-only", "--diskspec", f"vda,file={ov}")
    c.write_marker("KKKKKKKK")
    env.env = dict(os.environ, VIRTCTL_KILL_AT="blockjob:pivot-marked")
    try:
        r = env.run("snapshot-delete", NAME, "k1")
    finally:
        env.env = None
    assert r.returncode == -9, r.stderr
    assert _pending(env, NAME).exists() and ov.exists() and _source(env, NAME) == str(ov)
    # QEMU's commit job waits, ready, for the pivot: the next command asks for it and finishes
    assert _names(env, NAME) == []
    assert not _pending(env, NAME).exists() and not ov.exists() and str(ov) not in _node_files(env)
    assert _qemu_io_read(env.disk) == b"KKKKKKKK"
    for xml in (env.ok("dumpxml", NAME), env.ok("dumpxml", NAME, "--inactive")):
        assert f"<source file='{env.disk}'/>" in xml and str(ov) not in xml
    assert c.marker() == "KKKKKKKK"


def test_external_snapshot_then_blockcommit_active_pivot_removes_the_overlay_nodes(guest):
    """The combined round trip: an external disk-only snapshot of the running guest,
    the guest writes into the overlay, ``blockcommit --active --pivot`` back: the data
    is in the base, both definitions name the base, and QEMU holds no node of the
    overlay any more (``blockdev-del`` after the pivot)."""
    env, c = guest, guest.console
    ov = env.base / "s2.qcow2"
    env.ok("snapshot-create-as", NAME, "s2", "--disk-only", "--diskspec", f"vda,file={ov}")
    assert str(ov) in _node_files(env)
    c.write_marker("FFFFFFFF")
    assert _qemu_io_read(env.disk) == b"KKKKKKKK"
    out = env.ok("blockcommit", NAME, "vda", "--active", "--pivot", "--wait")
    assert out == "\nSuccessfully pivoted\n", repr(out)
    assert _qemu_io_read(env.disk) == b"FFFFFFFF"
    r = subprocess.run(["qemu-img", "check", "-U", str(env.disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for xml in (env.ok("dumpxml", NAME), env.ok("dumpxml", NAME, "--inactive")):
        assert f"<source file='{env.disk}'/>" in xml and str(ov) not in xml
    files = _node_files(env)
    assert str(ov) not in files and str(env.disk) in files, files
    assert c.marker() == "FFFFFFFF"
    # s2's overlay is out of the chain now: deleting s2 drops its metadata and keeps
    # the disk (an image virtctl did not make is never removed)
    env.ok("snapshot-delete", NAME, "s2")
    assert _names(env, NAME) == [] and env.disk.exists() and _qemu_io_read(env.disk) == b"FFFFFFFF"


# --- blockcommit / blockpull --keep-relative ------------------------------------------------------
def _backing_name(path) -> str | None:
    """The backing file name as the image header records it (relative or not)."""
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out).get("backing-filename")


def test_keep_relative_commit_and_pull(env, off):
    """base <- m1 (absolute) <- m2 (relative) <- m3 (relative) <- top (absolute): the
    backing file names the jobs write are relative where the chain they replace was,
    and refused (nothing changed) where it was not."""
    names = ["base", "m1", "m2", "m3", "top"]
    paths = {n: off / f"{n}.qcow2" for n in names}
    _img(paths["base"])
    for i, n in enumerate(names[1:], 1):
        below = names[i - 1]
        ref = str(paths[below]) if n in ("m1", "top") else f"{below}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", ref, "-F", "qcow2", f"{n}.qcow2"],
                       cwd=off, check=True)
    for i, n in enumerate(names):
        _write(paths[n], 0x41 + i, i * K)
    _define(env, "xrel", [(paths["top"], "vda", "qcow2")])
    try:
        env.ok("start", "xrel", "--paused")
        # m3 into m2: top gets "m2.qcow2" (m3 named m2 relatively)
        env.ok("blockcommit", "xrel", "vda", "--top", str(paths["m3"]), "--base", str(paths["m2"]),
               "--keep-relative", "--wait")
        assert _backing_name(paths["top"]) == "m2.qcow2"
        # down to base would keep m1's absolute name: refused, nothing changed
        r = env.run("blockpull", "xrel", "vda", "--base", str(paths["base"]), "--keep-relative", "--wait")
        assert r.returncode == 4 and "can't keep relative backing relationship" in r.stderr, r.stderr
        assert str(paths["m1"]) in r.stderr and _backing_name(paths["top"]) == "m2.qcow2"
        r = env.run("blockpull", "xrel", "vda", "--keep-relative")
        assert r.returncode == 2 and "non-null base" in r.stderr, r.stderr
        # m2 pulled into top: top names m1 relatively
        env.ok("blockpull", "xrel", "vda", "--base", str(paths["m1"]), "--keep-relative", "--wait")
        assert _backing_name(paths["top"]) == "m1.qcow2"
        env.ok("destroy", "xrel")
        for i, n in enumerate(names):
            assert _holds(paths["top"], 0x41 + i, i * K), n
        assert f"<source file='{paths['top']}'/>" in env.ok("dumpxml", "xrel", "--inactive")
    finally:
        env.run("destroy", "xrel")
        env.run("undefine", "xrel")
