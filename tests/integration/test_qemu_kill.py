"""``kill -9`` of virtctl in the middle of ``create``, ``managedsave`` and
``start`` from a managed save, with the invariants checked after each kill:

* no QEMU without a listed, active domain (and one QEMU per active domain);
* names unique;
* no managed save image restored twice: a domain never runs while its
  image exists, and an image the guest has run from (a ``RESUME`` event in
  the run's event log) is never there afterwards.

Two kinds of kill points: a random delay after the command starts, and the
named kill points of ``VIRTCTL_KILL_AT`` (drivers/qemu/faults.py), one try
per point.  ``VIRTCTL_TEST_KILL_TRIES`` sets the number of random tries (22),
``VIRTCTL_TEST_KILL_POINTS=0`` leaves the named points out, ``VIRTCTL_TEST_SEED``
makes the delays repeatable.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import VIRTCTL, Env

pytestmark = pytest.mark.qemu
TRIES = int(os.environ.get("VIRTCTL_TEST_KILL_TRIES", "22"))
POINTS = os.environ.get("VIRTCTL_TEST_KILL_POINTS", "1") != "0"  # 0: random delays only
CREATE_POINTS = ("start:record", "start:spawned", "start:qemu-up", "start:monitor-ready",
                 "start:resumed", "start:committed")
SAVE_POINTS = ("save:temp", "save:stopped", "save:migrated", "save:marked", "save:committed", "save:quit")
RESTORE_POINTS = ("start:record", "start:spawned", "restore:loaded", "restore:invalidated",
                  "start:resumed", "start:committed")


@pytest.fixture
def env(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(tmp_path / "root", test_guest)
    yield e
    e.cleanup()


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            st = f.read().decode(errors="replace")
    except OSError:
        return False
    return not st[st.rfind(")") + 2:].startswith(("Z", "X"))


def qemus(env: Env) -> dict[str, list[int]]:
    """uuid -> pids of the live QEMUs run under this embed root."""
    out: dict[str, list[int]] = {}
    for pid in env.qemu_pids():
        argv = _cmdline(pid)
        if "-uuid" in argv and _alive(pid):
            out.setdefault(argv[argv.index("-uuid") + 1], []).append(pid)
    return out


def listing(env: Env) -> list[dict]:
    r = env.run("--json", "list", "--all")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["domains"]


def check_invariants(env: Env, what: str) -> list[dict]:
    doms = listing(env)
    names = [d["name"] for d in doms]
    assert len(names) == len(set(names)), f"{what}: names not unique: {names}"
    active = {d["uuid"] for d in doms if d["id"] is not None}
    running = qemus(env)
    for uuid, pids in running.items():
        assert uuid in active, f"{what}: QEMU {pids} runs for {uuid}, which is not a listed active domain: {doms}"
        assert len(pids) == 1, f"{what}: {len(pids)} QEMUs for {uuid}"
    for d in doms:
        if d["id"] is not None:
            assert d["uuid"] in running, f"{what}: {d['name']} listed active with no QEMU"
            assert not d["managed_save"], f"{what}: {d['name']} runs while its managed save image exists"
    return doms


def kill_at_random(env: Env, args: list[str], delay: float) -> int:
    p = subprocess.Popen([VIRTCTL, "-c", env.uri, *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(delay)
    p.kill()
    return p.wait()


def kill_at_point(env: Env, args: list[str], point: str) -> subprocess.CompletedProcess:
    r = subprocess.run([VIRTCTL, "-c", env.uri, *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "VIRTCTL_KILL_AT": point})
    assert r.returncode == -9, f"kill point {point} not reached: {r.returncode} {r.stderr}"
    return r


def timed(env: Env, *args: str) -> float:
    t = time.monotonic()
    env.ok(*args)
    return time.monotonic() - t


def plan(duration: float) -> list[tuple[str, object]]:
    rnd = random.Random(int(os.environ.get("VIRTCTL_TEST_SEED", "0")) or None)
    return [("delay", rnd.uniform(0.0, duration * 1.3)) for _ in range(TRIES)]


def _uuid(i: int) -> str:
    return f"4a4b4c4d-0000-4000-8000-{i:012d}"


# --- create ------------------------------------------------------------------------------
def test_kill9_during_create(env):
    duration = timed(env, "create", env.xml_file("c0", uuid=_uuid(999)))
    env.ok("destroy", "c0")
    tries = [("point", p) for p in CREATE_POINTS if POINTS] + plan(duration)
    for i, (kind, arg) in enumerate(tries):
        uuid = _uuid(i)
        args = ["create", env.xml_file("c1", uuid=uuid)]
        what = f"try {i} ({kind} {arg})"
        if kind == "point":
            kill_at_point(env, args, arg)
            if arg != "start:committed":
                # a stray QEMU may be left: destroy by UUID must find and kill it
                r = env.run("destroy", uuid)
                assert "Traceback" not in r.stderr and r.returncode in (0, 3), (what, r.stderr)
                assert uuid not in qemus(env), f"{what}: destroy {uuid} left its QEMU running"
        else:
            kill_at_random(env, args, arg)
        doms = check_invariants(env, what)
        if any(d["uuid"] == uuid for d in doms):
            env.ok("destroy", uuid)
        assert not qemus(env), f"{what}: QEMU left after destroy"
        # the name is free again: a create of the same name succeeds
    env.ok("create", env.xml_file("c1", uuid=_uuid(998)))
    check_invariants(env, "final")


# --- managed save ----------------------------------------------------------------------------
def _ensure_running(env: Env, name: str) -> None:
    d = {x["name"]: x for x in listing(env)}[name]
    if d["id"] is None:
        env.ok("start", name)


def test_kill9_during_managedsave(env):
    env.ok("define", env.xml_file("ms"))
    env.ok("start", "ms")
    duration = timed(env, "managedsave", "ms")
    image = Path(env.state.config_dir(env.uuid("ms"))) / "managed.save"
    tries = [("point", p) for p in SAVE_POINTS if POINTS] + plan(duration)
    for i, (kind, arg) in enumerate(tries):
        _ensure_running(env, "ms")
        assert not image.exists()
        what = f"try {i} ({kind} {arg})"
        if kind == "point":
            kill_at_point(env, ["managedsave", "ms"], arg)
        else:
            kill_at_random(env, ["managedsave", "ms"], arg)
        doms = check_invariants(env, what)
        d = {x["name"]: x for x in doms}["ms"]
        assert d["managed_save"] == image.exists(), what
        if kind == "point" and arg in ("save:committed", "save:quit"):
            # the image is complete: the run is over, whatever was left to do
            assert d["id"] is None and d["managed_save"], (what, d)
        # an operation on the domain works and sees the same state
        r = env.run("domstate", "ms", "--reason")
        assert r.returncode == 0, (what, r.stderr)
        if d["id"] is not None and d["state"] == "paused":
            env.ok("resume", "ms")  # killed while the guest was stopped for the save
    # leftovers of killed saves are cleaned by the next command that holds the lock
    _ensure_running(env, "ms")
    env.ok("managedsave", "ms")
    assert sorted(os.listdir(image.parent)) == ["domain.xml", "managed.save", "name"], os.listdir(image.parent)


# --- start from a managed save -----------------------------------------------------------------
def _ran_from_image(env: Env, uuid: str) -> bool:
    """The killed start let the guest run (the monitor logged a RESUME)."""
    time.sleep(0.3)  # let the monitor write what QEMU told it
    try:
        data = Path(env.state.events_file(uuid)).read_text()
    except FileNotFoundError:
        return False
    return any(json.loads(line).get("event") == "RESUME" for line in data.splitlines() if line.strip())


def test_kill9_during_start_from_managed_save(env):
    env.ok("define", env.xml_file("rs"))
    uuid = env.uuid("rs")
    image = Path(env.state.config_dir(uuid)) / "managed.save"
    env.ok("start", "rs")
    env.ok("managedsave", "rs")
    duration = timed(env, "start", "rs")
    tries = [("point", p) for p in RESTORE_POINTS if POINTS] + plan(duration)
    for i, (kind, arg) in enumerate(tries):
        what = f"try {i} ({kind} {arg})"
        d = {x["name"]: x for x in listing(env)}["rs"]
        if not d["managed_save"]:
            if d["id"] is None:
                env.ok("start", "rs")
            env.ok("managedsave", "rs")
        before = image.stat()
        if kind == "point":
            kill_at_point(env, ["start", "rs"], arg)
        else:
            kill_at_random(env, ["start", "rs"], arg)
        ran = _ran_from_image(env, uuid)
        doms = check_invariants(env, what)
        d = {x["name"]: x for x in doms}["rs"]
        if ran or d["id"] is not None:
            assert not image.exists(), f"{what}: the guest ran from the image, and the image is still there"
        if image.exists():
            now = image.stat()
            assert (now.st_ino, now.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), what
            assert d["id"] is None and d["managed_save"], what
        if kind == "point" and arg in ("start:resumed", "start:committed", "restore:invalidated"):
            assert not image.exists(), what
    check_invariants(env, "final")
