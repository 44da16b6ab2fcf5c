"""virtctl+ssh:// to this worktree's virtctl on qemu:///embed, through an
sshd of the run's own on 127.0.0.1 (tests/sshd_fixture.py), against real
QEMU and the test guest: define, start with the console attached (the
guest's ready line and a command run through it), destroy, and the same
answers as the local embed URI at every step."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import BOOT, Env

pytestmark = pytest.mark.qemu
VIRTCTL = str(Path(sys.executable).parent / "virtctl")
NAME = "rg"


@pytest.fixture
def env(tmp_path, test_guest, sshd):
    e = Env(tmp_path / "root", test_guest)
    e.remote = f"virtctl+ssh://127.0.0.1/embed?root={e.root}&command={VIRTCTL}"
    e.ssh_env = dict(os.environ, VIRTCTL_SSH_COMMAND=sshd.ssh_command, NO_COLOR="1")
    yield e
    e.cleanup()


def _both(e, *args):
    local = subprocess.run([VIRTCTL, "-c", e.uri, *args], capture_output=True, text=True, timeout=120)
    remote = subprocess.run([VIRTCTL, "-c", e.remote, *args], capture_output=True, text=True, timeout=120,
                            env=e.ssh_env)
    def norm(t):
        return re.sub(r"CPU time:.*", "CPU time: X", t)
    assert (remote.returncode, norm(remote.stdout), remote.stderr) == \
        (local.returncode, norm(local.stdout), local.stderr), args
    return remote.stdout


def _remote(e, *args, **kw):
    r = subprocess.run([VIRTCTL, "-c", e.remote, *args], capture_output=True, text=True, timeout=120,
                       env=e.ssh_env, **kw)
    assert r.returncode == 0, f"{args}: {r.stderr}"
    return r.stdout


def test_embed_through_ssh_is_the_local_embed(env):
    e = env
    assert "defined" in _remote(e, "define", e.xml_file(NAME))
    assert NAME in _both(e, "list", "--all")
    _both(e, "dominfo", NAME)
    _both(e, "dumpxml", NAME)
    # start with the console attached: the boot's ready line comes through ssh
    p = subprocess.Popen([VIRTCTL, "-c", e.remote, "start", NAME, "--console"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e.ssh_env)
    got = bytearray()

    def reader():
        while True:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                return
            got.extend(chunk)
    t = threading.Thread(target=reader, daemon=True)
    t.start()

    def wait_for(text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in got:
            assert p.poll() is None or t.is_alive(), (bytes(got)[-1500:], p.stderr.read())
            assert time.monotonic() < deadline, f"no {text!r}: {bytes(got)[-1500:]!r}"
            time.sleep(0.05)
    try:
        wait_for(e.guest.ready_line, BOOT)
        p.stdin.write(b"run echo remote-console-ok\n")
        p.stdin.flush()
        wait_for("VIRTCTL-GUEST-OUT remote-console-ok", 60)
        p.stdin.close()
        assert p.wait(timeout=60) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert b"Connected to domain" in got
    assert "running" in _both(e, "domstate", "--reason", NAME)
    _both(e, "list")
    _both(e, "--json", "domstats", "--state", NAME)
    assert "destroyed" in _remote(e, "destroy", NAME)
    assert not e.qemu_pids()
    assert "shut off" in _both(e, "list", "--all")
    assert "undefined" in _remote(e, "undefine", NAME)
    _both(e, "list", "--all")
