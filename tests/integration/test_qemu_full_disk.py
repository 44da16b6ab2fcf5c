"""A full file system under the state root: power-off, pause and resume
still work and are recorded; ``list`` never fails because one domain's
cleanup cannot write.  The root is a small tmpfs (needs root to mount),
filled with a file after the domains have started."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import VIRTCTL, Env

pytestmark = pytest.mark.qemu


@pytest.fixture
def env(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(root)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    e = Env(root, test_guest)
    try:
        yield e
    finally:
        try:
            e.cleanup()
        finally:
            subprocess.run(["umount", "-l", str(root)], check=False)


def fill(root: Path) -> Path:
    """Fill the file system to the last byte; returns the filler file."""
    filler = root / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):
            block = b"\xa5" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    st = os.statvfs(root)
    assert st.f_bavail == 0, st
    return filler


def test_full_disk_control(env):
    for name in ("f1", "f2", "f3"):
        env.ok("define", env.xml_file(name))
    env.ok("start", "f1")
    env.ok("start", "f2", "--paused")
    env.ok("start", "f3", "--paused")
    env.wait_ready(env.uuid("f1"))
    f3 = env.record("f3")
    filler = fill(env.root)

    env.ok("suspend", "f1")
    assert env.domstate("f1") == "paused (user)"
    env.ok("resume", "f1")
    assert env.domstate("f1") == "running (unpaused)"

    env.ok("destroy", "f2")
    assert env.domstate("f2") == "shut off (destroyed)"
    assert len(env.qemu_pids()) == 2

    # a QEMU that dies meanwhile: list cleans it up (or at least reports it)
    os.kill(f3["monitor_pid"], signal.SIGKILL)
    os.kill(f3["pid"], signal.SIGKILL)
    time.sleep(0.5)
    r = env.run("list", "--all")
    assert r.returncode == 0, r.stderr
    assert "f1" in r.stdout and "f2" in r.stdout and "f3" in r.stdout
    assert env.domstate("f3") == "shut off (crashed)"

    env.ok("shutdown", "f1", "--wait", "--timeout", "120")
    assert env.domstate("f1") == "shut off (shutdown)"
    assert not env.qemu_pids()
    assert os.statvfs(env.root).f_bavail <= 64  # still (nearly) full: nothing was freed for us

    filler.unlink()
    env.ok("start", "f1", "--paused")  # and everything works again
    assert env.domstate("f1") == "paused (user)"


def test_list_survives_a_cleanup_that_cannot_write(env):
    env.ok("define", env.xml_file("g1"))
    env.ok("define", env.xml_file("g2"))
    env.ok("start", "g1", "--paused")
    env.ok("start", "g2", "--paused")
    rec = env.record("g1")
    run_dir = Path(env.state.run_dir(rec["uuid"]))
    for p in run_dir.iterdir():  # no reserve left for this one
        if p.name.startswith(".spare"):
            p.unlink()
    fill(env.root)
    os.kill(rec["monitor_pid"], signal.SIGKILL)
    os.kill(rec["pid"], signal.SIGKILL)
    time.sleep(0.5)
    r = env.run("list", "--all")
    assert r.returncode == 0, r.stderr
    assert "g1" in r.stdout and "g2" in r.stdout
    assert "Traceback" not in r.stderr
    r = env.run("domstate", "g1", "--reason")
    assert r.returncode == 0 and r.stdout.startswith("shut off"), r.stdout + r.stderr
    env.ok("destroy", "g2")
    assert env.domstate("g2") == "shut off (destroyed)"
