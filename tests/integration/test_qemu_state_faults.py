"""Faults in the QEMU driver's state, through the installed ``virtctl``:
corrupt records and definitions, a rename that would let one name run
twice, a garbage id counter, an unwritable event log, bad URIs, QEMU's own
start-up errors, Ctrl-C during a start, temp files left by a kill, and the
console log of a crashed guest."""
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
UUID_A = "5a5b5c5d-0000-4000-8000-00000000000a"
UUID_B = "5a5b5c5d-0000-4000-8000-00000000000b"


@pytest.fixture
def env(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(tmp_path / "root", test_guest)
    yield e
    e.cleanup()


def _listing(env: Env) -> dict[str, dict]:
    r = env.run("--json", "list", "--all")
    assert r.returncode == 0, r.stderr
    return {d["uuid"]: d for d in json.loads(r.stdout)["domains"]}


# --- item 5: a rename must not let one name run twice ------------------------------------
def test_rename_of_a_domain_with_a_managed_save_is_refused(env):
    xml = env.xml_file("d1")
    env.ok("define", xml)
    env.ok("start", "d1", "--paused")
    env.ok("managedsave", "d1")
    r = env.run("domrename", "d1", "x")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "domain with a managed saved state can't be renamed" in r.stderr
    r = env.run("define", xml)  # d1 is still taken
    assert r.returncode == 1 and "already exists" in r.stderr
    env.ok("start", "d1")
    names = [d["name"] for d in _listing(env).values()]
    assert names == ["d1"] and len(env.qemu_pids()) == 1
    env.ok("destroy", "d1")
    env.ok("domrename", "d1", "x")  # no image: the rename is allowed
    assert env.domstate("x") == "shut off (destroyed)"


# --- item 7: corrupt state -----------------------------------------------------------------------
def test_corrupt_record_of_a_running_domain_keeps_it_addressable(env):
    env.ok("define", env.xml_file("c1", uuid=UUID_A))
    env.ok("start", "c1", "--paused")
    pid = env.record("c1")["pid"]
    Path(env.state.record_file(UUID_A)).write_text("{garbage")
    r = env.run("list", "--all")
    assert r.returncode == 0 and "c1" in r.stdout, r.stdout + r.stderr
    assert "corrupt" in r.stderr
    d = _listing(env)[UUID_A]
    assert d["state"] == "no-state" and d["name"] == "c1"
    assert env.run("domstate", UUID_A, "--reason").stdout.strip() == "no state (unknown)"
    r = env.run("define", env.xml_file("c1", uuid=UUID_B))
    assert r.returncode == 1 and "already exists" in r.stderr, r.stderr
    assert env.qemu_pids() == [pid]  # QEMU runs on
    env.ok("undefine", UUID_A)  # the definition goes; the running QEMU stays reachable
    assert _listing(env)[UUID_A]["persistent"] is False
    r = env.run("define", env.xml_file("c1", uuid=UUID_B))  # the live name is still reserved
    assert r.returncode == 1 and "already exists" in r.stderr, r.stderr
    env.ok("destroy", UUID_A)
    assert not env.qemu_pids()
    assert UUID_A not in _listing(env)
    env.ok("define", env.xml_file("c1", uuid=UUID_B))


def test_corrupt_record_of_a_transient_domain(env):
    env.ok("create", env.xml_file("t1", uuid=UUID_A), "--paused")
    Path(env.state.record_file(UUID_A)).write_text("\0\0\0")
    assert _listing(env)[UUID_A]["name"] == "t1"
    r = env.run("create", env.xml_file("t1", uuid=UUID_B), "--paused")
    assert r.returncode == 1 and "already exists" in r.stderr, r.stderr
    assert len(env.qemu_pids()) == 1
    env.ok("destroy", UUID_A)
    assert not env.qemu_pids() and UUID_A not in _listing(env)


def test_corrupt_record_of_a_dead_domain_is_cleaned_up(env):
    env.ok("define", env.xml_file("c2", uuid=UUID_A))
    env.ok("start", "c2", "--paused")
    rec = env.record("c2")
    os.kill(rec["monitor_pid"], signal.SIGKILL)
    os.kill(rec["pid"], signal.SIGKILL)
    time.sleep(0.5)
    Path(env.state.record_file(UUID_A)).write_text("[1, 2")
    env.ok("start", "c2", "--paused")  # the record of a dead QEMU is not worth keeping
    assert env.domstate("c2") == "paused (user)"


@pytest.mark.parametrize("legacy", [False, True])
def test_corrupt_definition_keeps_its_name(env, legacy):
    env.ok("define", env.xml_file("b1", uuid=UUID_A))
    if legacy:  # defined by a virtctl that kept no name file: the next define writes it
        Path(env.state.name_file(UUID_A)).unlink()
        env.ok("define", env.xml_file("other"))
        assert Path(env.state.name_file(UUID_A)).read_text() == "b1\n"
    Path(env.state.domain_xml(UUID_A)).write_bytes(b"\x00garbage\xff")
    r = env.run("define", env.xml_file("b1", uuid=UUID_B))
    assert r.returncode == 1 and "already exists" in r.stderr, r.stderr
    r = env.run("list", "--all")
    assert r.returncode == 0 and "b1" in r.stdout and "corrupt" in r.stderr
    assert _listing(env)[UUID_A]["state"] == "no-state"
    r = env.run("start", UUID_A)
    assert r.returncode == 1 and "corrupt" in r.stderr
    env.ok("undefine", UUID_A)
    env.ok("define", env.xml_file("b1", uuid=UUID_B))


# --- item 8: smaller ones ----------------------------------------------------------------------------
def test_garbage_id_counter_gives_no_duplicate_ids(env):
    env.ok("define", env.xml_file("n1"))
    env.ok("define", env.xml_file("n2"))
    env.ok("start", "n1", "--paused")
    Path(env.state.id_counter).write_text("garbage\n")
    env.ok("start", "n2", "--paused")
    ids = [d["id"] for d in _listing(env).values()]
    assert len(set(ids)) == 2 and None not in ids, ids


def test_unwritable_event_log_keeps_a_clean_shutdown_clean(env):
    env.ok("define", env.xml_file("e1"))
    env.ok("start", "e1")
    uuid = env.uuid("e1")
    env.wait_ready(uuid)
    events = Path(env.state.events_file(uuid))
    events.unlink()
    events.symlink_to("/nonexistent/events.jsonl")  # every open of it fails (O_NOFOLLOW)
    env.ok("shutdown", "e1", "--wait", "--timeout", "120")
    assert env.domstate("e1") == "shut off (shutdown)"


@pytest.mark.parametrize("query, words", [
    ("root=/", "'/'"),
    ("root=/x%00y", "NUL"),
    ("root={root}&colour=blue", "colour"),
    ("root={root}&bogus=1&other=2", "bogus"),
])
def test_bad_embed_uris_are_refused(tmp_path, query, words):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed")
    uri = "qemu:///embed?" + query.format(root=tmp_path / "r")
    r = subprocess.run([VIRTCTL, "-c", uri, "list", "--all"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 7, (uri, r.returncode, r.stderr)
    assert words in r.stderr and "internal error" not in r.stderr, r.stderr
    assert not (tmp_path / "r").exists()


def test_unknown_session_uri_parameter_is_refused(tmp_path):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_RUNTIME_DIR": str(tmp_path / "r")}
    r = subprocess.run([VIRTCTL, "-c", "qemu:///session?root=/tmp", "list"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 7 and "root" in r.stderr, r.stderr


def _disk_xml(env: Env, name: str, disk: Path) -> str:
    text = env.xml(name).replace(
        "</devices>", f"  <disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                      f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>\n  </devices>")
    p = env.root.parent / f"{name}-disk.xml"
    p.write_text(text)
    return str(p)


def test_qemu_start_error_is_quoted(env):
    disk = env.root.parent / "shared.raw"
    disk.write_bytes(b"\0" * (1 << 20))
    env.ok("define", _disk_xml(env, "w1", disk))
    env.ok("define", _disk_xml(env, "w2", disk))
    env.ok("start", "w1", "--paused")
    r = env.run("start", "w2", "--paused")
    assert r.returncode == 1
    assert 'Failed to get "write" lock' in r.stderr, r.stderr
    assert "closed its monitor connection" not in r.stderr
    assert env.domstate("w2") == "shut off (unknown)" and len(env.qemu_pids()) == 1


@pytest.mark.parametrize("point", ["start:spawned", "start:qemu-up", "start:monitor-ready"])
def test_ctrl_c_during_start(env, point):
    env.ok("define", env.xml_file("i1"))
    r = subprocess.run([VIRTCTL, "-c", env.uri, "start", "i1"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "VIRTCTL_KILL_AT": f"{point}@INT"})
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "interrupted" in r.stderr, r.stderr
    assert not env.qemu_pids()
    assert not os.path.exists(env.state.record_file(env.uuid("i1")))
    assert env.domstate("i1") == "shut off (unknown)"


def test_stale_temp_files_are_cleaned_under_the_lock(env):
    env.ok("define", env.xml_file("s1", uuid=UUID_A))
    cfg, run = Path(env.state.config_dir(UUID_A)), Path(env.state.run_dir(UUID_A))
    run.mkdir(parents=True, exist_ok=True)
    stale = [run / ".record.json.0123456789ab.tmp", cfg / ".domain.xml.0123456789ab.tmp",
             cfg / ".managed.save.0123456789ab.part", Path(env.state.run) / ".next-id.0123456789ab.tmp"]
    for p in stale:
        p.write_bytes(b"x" * 4096)
    trash = Path(env.state.config_domains) / f".trash-{UUID_B}-12345"
    trash.mkdir()
    (trash / "domain.xml").write_text("<domain/>")
    env.ok("start", "s1", "--paused")  # holds the domain lock: its own leftovers go
    env.ok("define", env.xml_file("s2"))  # holds the global lock: trash goes
    left = [str(p) for p in stale + [trash] if p.exists()]
    assert not left, left


def test_console_log_of_a_crashed_guest_is_kept(env):
    env.ok("define", env.xml_file("k1"))
    env.ok("start", "k1")
    uuid = env.uuid("k1")
    env.wait_ready(uuid)
    os.kill(env.record("k1")["pid"], signal.SIGKILL)
    env.wait_state("k1", "shut off (crashed)")
    kept = Path(env.state.logs_dir) / f"{uuid}.serial0.log"
    assert env.guest.ready_line in kept.read_text(errors="replace")
    env.ok("start", "k1")  # the next run's log starts afresh; the kept one is replaced at its end
    env.ok("destroy", "k1")
    assert kept.exists()


def test_ctrl_c_while_the_session_is_set_up_is_no_traceback(monkeypatch, capsys):
    """A Ctrl-C that lands while main() imports and builds its session (the
    first tens of milliseconds of every command) exits 130 with one line."""
    from virtctl.cli import main as cli_main
    from virtctl.cli import session

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(session.Session, "__init__", interrupted)
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["list"])
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_temp_file_of_a_killed_save_is_removed(env, tmp_path):
    """``save FILE`` killed mid-way: its ``.FILE.<hex>.part`` (RAM-sized, in the
    user's directory) is named in the record, so the next look removes it."""
    env.ok("define", env.xml_file("v1"))
    env.ok("start", "v1", "--paused")
    out = tmp_path / "saves"
    out.mkdir()
    r = subprocess.run([VIRTCTL, "-c", env.uri, "save", "v1", str(out / "v1.img")], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "VIRTCTL_KILL_AT": "save:migrated"})
    assert r.returncode == -9, r.stderr
    assert [p.name for p in out.iterdir() if p.name.endswith(".part")], list(out.iterdir())
    assert env.domstate("v1") == "paused (user)"  # the save is undone: the guest is as it was
    assert not list(out.iterdir())
    env.ok("resume", "v1")
