"""top with three running test guests, and net-event / pool-event following
the event journal, against real QEMU (TCG) on qemu:///embed.

top: ``top --batch --iterations 2`` (and --json) must list the three
guests running with CPU figures from QEMU; pool-event and net-event (the
network in a namespace of its own) must print define, start, destroy and
undefine in order while other processes make them.
"""
from __future__ import annotations

import json
import os
import secrets
import select
import signal
import subprocess
import time

import pytest

from integration.test_qemu_driver import BOOT, VIRTCTL, Env
from integration.test_qemu_events import _read_until, _wait_following

pytestmark = pytest.mark.qemu
NAMES = ("top1", "top2", "top3")


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("top")
    e = Env(base / "root", test_guest)
    for n in NAMES:
        e.ok("define", e.xml_file(n))
    e.ok(f"start {NAMES[0]}; start {NAMES[1]}; start {NAMES[2]}")
    for n in NAMES:
        e.wait_ready(e.uuid(n), timeout=BOOT)
    yield e
    e.cleanup()


def test_top_batch_three_guests(env):
    out = env.ok("top", "--batch", "--iterations", "2", "--sort", "name")
    frames = [f for f in out.split("\n\n") if f.startswith("ID")]
    assert len(frames) == 2, out
    assert "domains: 3 total, 3 running, 0 paused, 0 shut off" in out
    for frame in frames:
        rows = [ln.split() for ln in frame.splitlines()[1:]]
        assert [r[1] for r in rows] == list(NAMES)  # --sort name
        for r in rows:
            assert r[2] == "running" and r[3] == "1" and r[5] == "256", r
            assert float(r[4]) >= 0  # a CPU share measured from QEMU's threads


def test_top_json_three_guests(env):
    out = env.ok("--json", "top", "--iterations", "1", "--delay", "0.5")
    (doc,) = [json.loads(ln) for ln in out.splitlines()]
    doms = {d["name"]: d for d in doc["domains"]}
    assert set(doms) == set(NAMES)
    for d in doms.values():
        assert d["state"] == "running" and isinstance(d["cpu_percent"], float) and d["memory_kib"] > 0


def _follow(argv: list[str]) -> subprocess.Popen:
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_following(p)
    return p


def _stop(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGINT)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def test_pool_event_sees_lifecycle_in_order(env, tmp_path):
    p = _follow([VIRTCTL, "-c", env.uri, "--json", "pool-event", "--event", "lifecycle", "--loop",
                 "--timeout", "120"])
    try:
        env.ok("pool-define-as", "evp", "dir", "--target", str(tmp_path / "evp"))
        env.ok("pool-build", "evp")
        env.ok("pool-start", "evp")
        env.ok("pool-refresh", "evp")  # a refresh event: not asked for, not printed
        env.ok("pool-destroy", "evp")
        env.ok("pool-delete", "evp")
        env.ok("pool-undefine", "evp")
        got = _read_until(p, lambda d: d.get("event") == "Undefined", 60)
    finally:
        _stop(p)
    assert [(d["type"], d["pool"], d["event"]) for d in got] == [
        ("lifecycle", "evp", e) for e in ("Defined", "Created", "Started", "Stopped", "Deleted", "Undefined")]


def test_pool_event_refresh_text(env, tmp_path):
    env.ok("pool-define-as", "evr", "dir", "--target", str(tmp_path / "evr"))
    env.ok("pool-build", "evr")
    env.ok("pool-start", "evr")
    p = _follow([VIRTCTL, "-c", env.uri, "pool-event", "--pool", "evr", "--event", "refresh", "--timeout", "60"])
    try:
        env.ok("pool-refresh", "evr")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            _stop(p)
        env.run("pool-destroy", "evr")
        env.run("pool-undefine", "evr")
    assert p.returncode == 0, err
    assert out.decode() == "event 'refresh' for storage pool evr\nevents received: 1\n\n"  # virsh's blank line


def test_net_event_sees_lifecycle_in_order(env):
    ns = "vtop-" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    xml = env.root.parent / "evnet.xml"
    xml.write_text(f"<network><name>evnet</name><bridge name='vt{secrets.token_hex(3)}'/></network>\n")

    def ok(*args):
        r = subprocess.run(["ip", "netns", "exec", ns, VIRTCTL, "-c", env.uri, *args], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, f"{args}: {r.stderr}"

    try:
        p = _follow(["ip", "netns", "exec", ns, VIRTCTL, "-c", env.uri, "net-event", "--event", "lifecycle",
                     "--loop", "--timeout", "120", "--timestamp"])
        try:
            ok("net-define", str(xml))
            ok("net-start", "evnet")
            ok("net-destroy", "evnet")
            ok("net-undefine", "evnet")
            lines: list[str] = []
            buf = b""
            deadline = time.monotonic() + 60
            while len(lines) < 4 and time.monotonic() < deadline:
                if select.select([p.stdout.fileno()], [], [], 1)[0]:
                    chunk = os.read(p.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    buf += chunk
                    *done, buf = buf.split(b"\n")
                    lines += [ln.decode() for ln in done]
        finally:
            _stop(p)
    finally:
        subprocess.run(["ip", "netns", "exec", ns, VIRTCTL, "-c", env.uri, "net-destroy evnet; net-undefine evnet"],
                       capture_output=True)
        subprocess.run(["ip", "netns", "del", ns])
    assert [ln.split(": ", 1)[1] for ln in lines] == [
        f"event 'lifecycle' for network evnet: {e}" for e in ("Defined", "Started", "Stopped", "Undefined")], lines
    assert all(ln[:4].isdigit() and ln.split(": ")[0].endswith("+0000") for ln in lines)
