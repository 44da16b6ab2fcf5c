"""event --loop and the per-connection event journal against real QEMU (TCG)
and the test guest; desc, metadata and inject-nmi on a running guest.

One follower process (``virtctl --json event --loop --all``) watches while
other processes start the guest, pause and resume it, shut it down (ACPI:
the guest powers off on the power button) and define/undefine another
domain; the lines must arrive in that order.  An event written right after
the follower is ready is not missed; --timeout ends it; an idle follower
uses (almost) no CPU.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import VIRTCTL, Env

pytestmark = pytest.mark.qemu
NAME = "ev"


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("events")
    e = Env(base / "root", test_guest)
    e.ok("define", e.xml_file(NAME))
    yield e
    e.cleanup()


def _follower(env, *args: str) -> subprocess.Popen:
    p = subprocess.Popen([VIRTCTL, "-c", env.uri, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_following(p)
    return p


def _wait_following(p: subprocess.Popen, timeout: float = 30) -> None:
    """Until the follower holds its inotify descriptor and the journal open
    and sleeps: from then on every event must reach it."""
    deadline = time.monotonic() + timeout
    while True:
        assert p.poll() is None, p.stderr.read()
        try:
            links = [os.readlink(f"/proc/{p.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{p.pid}/fd")]
            st = Path(f"/proc/{p.pid}/stat").read_text()
        except OSError:
            links, st = [], ""
        state = st[st.rfind(")") + 2:][:1]
        if any("inotify" in ln for ln in links) and any(ln.endswith("journal.jsonl") for ln in links) \
                and state == "S":
            return
        assert time.monotonic() < deadline, f"follower not ready: {links} {state}"
        time.sleep(0.02)


def _cpu_seconds(pid: int) -> float:
    st = Path(f"/proc/{pid}/stat").read_text()
    fields = st[st.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _read_until(p: subprocess.Popen, pred, timeout: float) -> list[dict]:
    """JSON lines from the follower until ``pred(line)`` holds (raw reads:
    a buffered readline would hide lines from select)."""
    import select

    out: list[dict] = []
    buf = p.__dict__.setdefault("_buf", bytearray())
    fd = p.stdout.fileno()
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in buf:
            i = buf.index(b"\n")
            line = bytes(buf[:i])
            del buf[:i + 1]
            doc = json.loads(line)
            out.append(doc)
            if pred(doc):
                return out
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; got {out}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"follower ended: {p.stderr.read()}; got {out}"
            buf += chunk


def _lifecycle(docs: list[dict]) -> list[tuple]:
    return [(d["domain"], d["event"], d["detail"]) for d in docs if d.get("type") == "lifecycle"]


def test_event_loop_sees_everything_in_order(env):
    from virtctl.drivers.qemu import events

    p = _follower(env, "--json", "event", "--loop", "--all", "--timeout", "300")
    try:
        # written the moment the follower sleeps: not missed
        events.lifecycle(env.state, "probe", "00000000-0000-0000-0000-000000000001", "Defined", "Added")
        got = _read_until(p, lambda d: d.get("domain") == "probe", 30)
        env.ok("start", NAME)
        uuid = env.uuid(NAME)
        env.wait_ready(uuid)
        env.ok("suspend", NAME)
        env.ok("resume", NAME)
        env.ok("shutdown", NAME)  # ACPI: the guest powers off
        env.wait_state(NAME, "shut off (shutdown)", timeout=120)
        other = env.xml_file("ev2")
        env.ok("define", other)
        env.ok("undefine", "ev2")
        got += _read_until(p, lambda d: d.get("domain") == "ev2" and d.get("event") == "Undefined", 60)
    finally:
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=30)
    rest = (bytes(p.__dict__.get("_buf", b"")) + rest).decode()
    assert _lifecycle(got) == [
        ("probe", "Defined", "Added"),
        (NAME, "Started", "Booted"),
        (NAME, "Suspended", "Paused"),
        (NAME, "Resumed", "Unpaused"),
        (NAME, "Shutdown", "Finished after guest request"),
        (NAME, "Stopped", "Shutdown"),
        ("ev2", "Defined", "Added"),
        ("ev2", "Undefined", "Removed"),
    ]
    assert all(d["uuid"] == uuid for d in got if d.get("domain") == NAME)
    assert all(isinstance(d["time"], float) for d in got)
    # Ctrl-C ends the loop; the last line counts what was printed
    assert json.loads(rest.strip().splitlines()[-1]) == {"events_received": len(got), "timed_out": False}, err
    assert p.returncode == 0, err


def test_text_lines_filters_and_timeout(env):
    uuid = env.uuid(NAME)
    p = _follower(env, "event", "--domain", NAME, "--event", "lifecycle", "--loop", "--timeout", "3",
                  "--timestamp")
    from virtctl.drivers.qemu import events

    events.emit(env.state, "domain", "other", "00000000-0000-0000-0000-000000000002", "lifecycle", "Booted",
                lifecycle="Started")  # another domain: filtered out
    events.emit(env.state, "domain", NAME, uuid, "reboot")  # another type: filtered out
    events.lifecycle(env.state, NAME, uuid, "Defined", "Updated")
    out, err = p.communicate(timeout=30)
    lines = out.decode().split("\n")
    assert len(lines) == 5, out
    stamp, text = lines[0].split(": ", 1)
    assert time.strptime(stamp.split(".")[0], "%Y-%m-%d %H:%M:%S") and stamp.endswith("+0000")
    assert text == f"event 'lifecycle' for domain '{NAME}': Defined Updated"
    assert lines[1:] == ["event loop timed out", "events received: 1", "", ""]
    assert p.returncode == 0, err


def test_without_loop_one_event_ends_it(env):
    uuid = env.uuid(NAME)
    p = _follower(env, "event", "--all")
    from virtctl.drivers.qemu import events

    events.emit(env.state, "domain", NAME, uuid, "reboot")
    out, err = p.communicate(timeout=30)
    assert out.decode() == f"event 'reboot' for domain '{NAME}'\nevents received: 1\n\n", err
    assert p.returncode == 0


def test_idle_follower_uses_no_cpu_and_timeout_ends_it(env):
    p = _follower(env, "event", "--all", "--loop", "--timeout", "4")
    before = _cpu_seconds(p.pid)
    time.sleep(2)
    used = _cpu_seconds(p.pid) - before
    out, err = p.communicate(timeout=30)
    assert used < 0.2, f"an idle follower used {used:.2f}s of CPU in 2s"
    assert out.decode() == "event loop timed out\nevents received: 0\n\n", err
    assert p.returncode == 1  # as virsh: no event is a failure


def test_journal_rotation_loses_nothing(env, monkeypatch):
    from virtctl.drivers.qemu import events

    monkeypatch.setattr(events, "MAX_BYTES", 4096)
    f = events.Follower(env.state)
    try:
        seen = []
        for i in range(100):  # ~15 KiB: three or four rotations while it follows
            events.emit(env.state, "domain", f"r{i}", None, "reboot")
            if i % 10 == 9:  # a follower that lags less than one generation loses nothing
                while len(seen) < i + 1:
                    got = f.wait(5)
                    assert got, f"only {len(seen)} events"
                    seen += [e["name"] for e in got]
    finally:
        f.close()
    assert seen == [f"r{i}" for i in range(100)]
    assert os.path.getsize(events.journal_path(env.state)) <= 4096


def test_desc_metadata_inject_nmi_on_running_guest(env):
    env.ok("start", NAME)
    uuid = env.uuid(NAME)
    try:
        env.wait_ready(uuid)
        assert env.ok("desc", NAME).strip() == f"No description for domain: {NAME}"
        assert env.ok("desc", NAME, "--live", "--new-desc", "the live one").strip() == \
            "Domain description updated successfully"
        assert env.ok("desc", NAME, "--config", "--title", "--new-desc", "T").strip() == \
            "Domain title updated successfully"
        assert env.ok("desc", NAME).strip() == "the live one"
        assert env.ok("desc", NAME, "--config").strip() == f"No description for domain: {NAME}"
        assert env.ok("desc", NAME, "--title", "--config").strip() == "T"
        assert "<description>the live one</description>" in env.ok("dumpxml", NAME)
        assert "<title>T</title>" in env.ok("dumpxml", NAME, "--inactive")
        env.ok("metadata", NAME, "http://example.org/app", "--key", "app", "--live", "--set",
               "<app><tier>web</tier></app>")
        assert env.ok("metadata", NAME, "http://example.org/app").strip() == "<app>\n  <tier>web</tier>\n</app>"
        r = env.run("metadata", NAME, "http://example.org/app", "--config")
        assert r.returncode == 1 and "Requested metadata element is not present" in r.stderr
        r = env.run("metadata", NAME, "http://example.org/app", "--key", "app", "--set", "<broken")
        assert r.returncode == 5 and "metadata_xml" in r.stderr
        env.ok("metadata", NAME, "http://example.org/app", "--remove")
        assert "example.org" not in env.ok("dumpxml", NAME)
        journal = [json.loads(ln) for ln in Path(
            env.state.run, "events", "journal.jsonl").read_text().splitlines()]
        changes = [(e.get("type"), e.get("uri")) for e in journal if e["event"] == "metadata-change"]
        assert changes[-4:] == [("description", None), ("title", None), ("element", "http://example.org/app"),
                                ("element", "http://example.org/app")]
        env.ok("inject-nmi", NAME)  # QMP inject-nmi accepted by the running guest
        r = env.run("dompmsuspend", NAME, "mem")
        assert r.returncode == 6 and "guest agent" in r.stderr
        r = env.run("dompmwakeup", NAME)
        assert r.returncode == 4 and "pmsuspended" in r.stderr
        r = env.run("send-process-signal", NAME, "1", "term")
        assert r.returncode == 6 and "not supported" in r.stderr
        r = env.run("ttyconsole", NAME)
        assert r.returncode == 1 and "unix socket" in r.stderr
        r = env.run("vncdisplay", NAME)
        assert r.returncode == 1 and "Is this domain using VNC?" in r.stderr
    finally:
        env.run("destroy", NAME)
    stops = [e for e in (json.loads(ln) for ln in Path(env.state.run, "events", "journal.jsonl")
                         .read_text().splitlines()) if e.get("lifecycle") == "Stopped"]
    assert stops[-1]["detail"] == "Destroyed" and stops[-1]["name"] == NAME
