"""top on the test driver (batch frames, JSON Lines, the interactive screen
through a pseudo-terminal) and net-event / pool-event against virsh on
test:///default."""
from __future__ import annotations

import json
import os

import pytest

from virsh_side import VIRTCTL, both, compare, needs_virsh, run

URI = "test:///default"

EVENT_CASES = [
    "net-event --list", "pool-event --list", "net-event --list --event lifecycle",
    "net-event --event lifecycle --loop --timeout 1 --timestamp",
    "net-event --network default --event lifecycle --timeout 1",
    "pool-event --event lifecycle --loop --timeout 1",
    "pool-event --pool default-pool --event refresh --timeout 1 --timestamp",
    "net-event", "pool-event --timeout 1", "pool-event --event bogus", "net-event --event refresh --timeout 1",
    "net-event --event lifecycle --timeout 0", "pool-event --event lifecycle --timeout abc",
    "pool-event --all --timeout 1", "net-event --network", "net-event --list; net-event --event lifecycle --timeout 1",
]


@needs_virsh[0]
@needs_virsh[1]
@pytest.mark.parametrize("cmd", EVENT_CASES)
def test_events_match_virsh(cmd, tmp_path):
    compare(URI, cmd, tmp_path)


@needs_virsh[0]
@needs_virsh[1]
@pytest.mark.parametrize("cmd, message", [
    ("net-event --network nosuch --event lifecycle --timeout 1",
     "Network not found: no network with matching name 'nosuch'"),
    ("pool-event --pool nosuch --event lifecycle --timeout 1",
     "Storage pool not found: no storage pool with matching name 'nosuch'")])
def test_unknown_network_or_pool_is_an_error_at_once(cmd, message, tmp_path):
    """virsh reports the lookup failure, then waits for every network's (or
    pool's) events anyway and prints its count; virtctl stops at the error."""
    theirs, ours = both(URI, cmd, tmp_path)
    assert theirs.returncode != 0 and "events received: 0" in theirs.stdout and message in theirs.stderr
    assert ours.returncode != 0 and ours.stdout.strip() == "" and message in ours.stderr


def test_object_event_json(tmp_path):
    r = run([VIRTCTL, "-c", URI, "--json", "pool-event --list; net-event --event lifecycle --timeout 1"], tmp_path)
    assert r.returncode == 1, r.stderr
    dec = json.JSONDecoder()
    first, end = dec.raw_decode(r.stdout)
    assert first == ["lifecycle", "refresh"]
    assert [json.loads(ln) for ln in r.stdout[end:].splitlines() if ln.strip()] == [
        {"events_received": 0, "timed_out": True}]


def test_object_event_lines():
    from virtctl.commands.domain_event import object_event_json, object_event_text

    ev = {"time": 1.5, "kind": "network", "name": "n1", "uuid": "u", "event": "lifecycle", "lifecycle": "Started"}
    assert object_event_text(ev) == "event 'lifecycle' for network n1: Started"
    assert object_event_json(ev) == {"time": 1.5, "type": "lifecycle", "network": "n1", "uuid": "u",
                                     "event": "Started"}
    ev = {"kind": "pool", "name": "p", "event": "refresh"}
    assert object_event_text(ev) == "event 'refresh' for storage pool p"


def test_top_batch_frames(tmp_path):
    r = run([VIRTCTL, "-c", URI, "top --batch --iterations 2 --delay 0.2 --sort name"], tmp_path)
    assert r.returncode == 0, r.stderr
    frames = r.stdout.split("\n\n")
    heads = [f for f in frames if f.startswith("virtctl top - ")]
    assert len(heads) == 2
    assert "domains: 1 total, 1 running, 0 paused, 0 shut off  (sort: name, every 0.2s)" in heads[0]
    tables = [f for f in frames if f.startswith("ID")]
    assert len(tables) == 2
    row = tables[0].splitlines()[1].split()
    assert row[:4] == ["1", "test", "running", "2"] and row[5] == "2048"  # test:///default's 'test'
    assert float(row[4]) > 0  # the test driver's CPU time is the clock: it grows


def test_top_json_lines_and_bad_options(tmp_path):
    r = run([VIRTCTL, "-c", URI, "--json", "top --iterations 2 --delay 0.2"], tmp_path)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert len(docs) == 2 and docs[0]["sort"] == "cpu" and docs[0]["interval"] > 0
    (d,) = docs[1]["domains"]
    assert (d["name"], d["state"], d["id"], d["memory_kib"], d["vcpus"]) == ("test", "running", 1, 2097152, 2)
    assert d["disk_read_bps"] is None  # the test driver fills no block group
    for cmd, msg in (("top --delay 0", "<delay>"), ("top --sort foo", "Unknown sort 'foo'"),
                     ("top --iterations 0", "<iterations>")):
        r = run([VIRTCTL, "-c", URI, cmd], tmp_path)
        assert r.returncode != 0 and msg in r.stderr, (cmd, r.stderr)


def test_top_interactive_screen(tmp_path):
    """The full-screen view on a pseudo-terminal: a sort key, shut down and
    start the selected domain, q quits."""
    pexpect = pytest.importorskip("pexpect")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "TERM": "xterm",
           "LC_ALL": "C.UTF-8"}
    child = pexpect.spawn(VIRTCTL, ["-c", URI, "top --delay 0.3; list --all"], env=env, dimensions=(30, 140),
                          timeout=30, encoding="utf-8")
    gap = r"(?:\x1b\[[0-9;?]*[A-Za-z]|\s)*"  # what the screen writes between two words

    def words(*ws):
        return gap.join(ws)

    try:
        child.expect(words("sort:", "cpu,"))
        child.expect("running")
        child.send("N")
        child.expect(words("sort:", "name,"))
        child.send("h")
        child.expect(words("Domain", "'test'", "is", "being", "shutdown"))
        child.expect(words("shut", "off"))
        child.send("s")
        child.expect(words("Domain", "'test'", "started"))
        child.send("M")
        child.expect(words("sort:", "mem,"))
        child.send("q")
        child.expect(r"test\s+running")  # the command after top: the domain runs again
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
