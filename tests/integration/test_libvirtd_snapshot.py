"""Snapshots and block devices through a real libvirtd (the libvirt driver,
tests/integration/libvirtd_fixture.py's private daemon, the test guest under
TCG with a qcow2 disk made by qemu-img: libvirt's internal snapshots need
one), through the installed ``virtctl`` entry point.

One running guest for the module: an internal snapshot of it taken, listed,
reverted (the guest's shell variable set before the snapshot is back), the
disk's figures, a resize, and the snapshot deleted.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from integration.libvirtd_fixture import LibvirtdEnv
from integration.test_qemu_driver import VIRTCTL

pytestmark = pytest.mark.qemu
NAME = "lvsnap1"


DISK_MIB = 64


class Env(LibvirtdEnv):
    """The module's guest has a qcow2 disk (libvirt's internal snapshots need one)."""

    def __init__(self, daemon, guest, base: Path):
        super().__init__(daemon, base, guest=guest, name=NAME)
        self.disk = base / f"{NAME}.qcow2"

    def xml(self) -> str:
        return super().xml(devices=f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                                   f"<source file='{self.disk}'/><target dev='vda' bus='virtio'/></disk>")


@pytest.fixture(scope="module")
def env(libvirtd, test_guest, tmp_path_factory):  # noqa: F811
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(libvirtd, test_guest, tmp_path_factory.mktemp("lvsnap"))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(e.disk), f"{DISK_MIB}M"], check=True,
                   timeout=60)
    p = e.base / "guest.xml"
    p.write_text(e.xml())
    e.ok("define", str(p))
    e.ok("start", NAME, timeout=120)
    e.wait_serial(e.guest.ready_line)
    yield e
    e.run("destroy", NAME, timeout=60)
    e.run("undefine", NAME, "--snapshots-metadata", timeout=60)
    libvirtd.clean()


def test_snapshot_create_list_revert(env):
    env.run("console", NAME, "--idle", "3", input="run MARK=before\n", timeout=60)
    out = env.ok("snapshot-create-as", NAME, "s1", "--description", "first", timeout=180)
    assert out.strip() == "Domain snapshot s1 created"
    listing = env.ok("snapshot-list", NAME)
    assert re.search(r"^ s1\s+.+\s+running$", listing, re.M), listing
    info = env.ok("snapshot-info", NAME, "s1")
    assert re.search(r"^Current:\s+yes$", info, re.M) and re.search(r"^Location:\s+internal$", info, re.M), info
    assert "<description>first</description>" in env.ok("snapshot-dumpxml", NAME, "s1")
    assert env.ok("snapshot-current", NAME, "--name").strip() == "s1"
    env.run("console", NAME, "--idle", "3", input="run MARK=after\n", timeout=60)
    env.ok("snapshot-revert", NAME, "s1", timeout=180)
    assert env.ok("domstate", NAME).strip() == "running"
    r = env.run("console", NAME, "--idle", "3", input="run echo MARK-$MARK\n", timeout=60)
    assert "VIRTCTL-GUEST-OUT MARK-before" in r.stdout, r.stdout[-1000:]
    # a child, then s1 made current again (virsh's way: s1 redefined with the CURRENT flag)
    env.ok("snapshot-create-as", NAME, "s2", timeout=180)
    assert env.ok("snapshot-parent", NAME, "s2").strip() == "s1"
    assert env.ok("snapshot-current", NAME, "--name").strip() == "s2"
    assert env.ok("snapshot-current", NAME, "s1").strip() == "Snapshot s1 set as current"
    assert env.ok("snapshot-current", NAME, "--name").strip() == "s1"
    assert env.ok("snapshot-list", NAME, "--tree").split() == ["s1", "|", "+-", "s2"]
    env.ok("snapshot-delete", NAME, "s1", "--children", timeout=120)
    assert env.ok("snapshot-list", NAME, "--name").strip() == ""
    r = env.run("snapshot-info", NAME, "s1")
    assert r.returncode != 0 and "no domain snapshot with matching name 's1'" in r.stderr, r.stderr


def test_block_info_and_resize(env):
    out = env.ok("domblkinfo", NAME, "vda")
    assert re.search(rf"^Capacity:\s+{DISK_MIB << 20}$", out, re.M), out
    env.ok("blockresize", NAME, "vda", f"{DISK_MIB * 2}M", timeout=60)
    out = env.ok("domblkinfo", NAME, "vda")
    assert re.search(rf"^Capacity:\s+{DISK_MIB * 2 << 20}$", out, re.M), out
    r = env.run("blockresize", NAME, "vda", f"{DISK_MIB}M", timeout=60)  # a shrink: refused, nothing changed
    assert r.returncode != 0 and "cannot shrink disk 'vda'" in r.stderr, r.stderr
    assert re.search(rf"^Capacity:\s+{DISK_MIB * 2 << 20}$", env.ok("domblkinfo", NAME, "vda"), re.M)
    r = env.run("blockjob", NAME, "vda", "--info")
    assert r.returncode == 0 and "No current block job for vda" in r.stdout + r.stderr, (r.stdout, r.stderr)


def _source(env) -> str:
    rows = [ln.split() for ln in env.ok("domblklist", NAME).splitlines()]
    return next(r[1] for r in rows if r and r[0] == "vda")


def test_block_copy_pivot_then_disk_only_snapshot_and_active_commit(env):
    copy, overlay = env.base / "copy.qcow2", env.base / "overlay.qcow2"
    # to the mirroring phase, then the job looked at, slowed down and pivoted by blockjob
    r = env.run("blockcopy", NAME, "vda", str(copy), "--format", "qcow2", "--transient-job", "--wait",
                "--verbose", "--bandwidth", "100", timeout=180)
    assert r.returncode == 0 and "Now in mirroring phase" in r.stdout, (r.stdout, r.stderr)
    raw = env.ok("blockjob", NAME, "vda", "--raw").split()
    assert raw[0] == "type=copy" and raw[1] == "bandwidth=100", raw
    cur, end = (int(x.split("=")[1]) for x in raw[2:4])
    assert cur == end > 0, raw
    env.ok("blockjob", NAME, "vda", "--bandwidth", "5")
    assert env.ok("blockjob", NAME, "vda", "--raw").split()[1] == "bandwidth=5"
    info = env.run("blockjob", NAME, "vda", "--info")
    assert "Block Copy: [100.00 %]" in info.stderr + info.stdout, (info.stdout, info.stderr)
    env.ok("blockjob", NAME, "vda", "--pivot", timeout=120)
    assert _source(env) == str(copy)
    r = env.run("blockjob", NAME, "vda", "--info")
    assert r.returncode == 0 and "No current block job for vda" in r.stdout + r.stderr, (r.stdout, r.stderr)
    out = env.ok("snapshot-create-as", NAME, "ext", "--disk-only", "--diskspec", f"vda,file={overlay}",
                 timeout=120)
    assert out.strip() == "Domain snapshot ext created"
    assert _source(env) == str(overlay)
    info = env.ok("snapshot-info", NAME, "ext")
    assert re.search(r"^State:\s+disk-snapshot$", info, re.M) and re.search(r"^Location:\s+external$", info, re.M)
    assert env.ok("snapshot-list", NAME, "--disk-only", "--name").split() == ["ext"]
    r = env.run("blockcommit", NAME, "vda", "--active", "--wait", "--pivot", "--bandwidth", "50", timeout=180)
    assert r.returncode == 0 and "Successfully pivoted" in r.stdout, (r.stdout, r.stderr)
    assert _source(env) == str(copy)
    env.ok("snapshot-delete", NAME, "ext", "--metadata")
    r = env.run("blockjob", NAME, "vda", "--bandwidth", "10")
    assert r.returncode != 0, r.stdout  # no job to set the speed of
