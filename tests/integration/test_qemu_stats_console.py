"""Statistics, raw monitor commands, domxml-to-native and console errors
against real QEMU (TCG) and the test guest, through the installed entry point.

One domain for the module (booting is the slow part), with a balloon whose
statistics period is set in the definition, and a disk.  The test guest has
no virtio-balloon driver: QEMU then has no guest figures (it reports them as
2^64-1), which is what the memory tests check is never shown.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from integration.test_qemu_driver import BOOT, VIRTCTL, Env

pytestmark = pytest.mark.qemu
NAME = "st"
QOM_PERIOD = ("qom-get", '"path":"/machine/peripheral/balloon0"', '"property":"guest-stats-polling-interval"')


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("stats")
    e = Env(base / "root", test_guest)
    disk = base / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    text = e.xml(NAME, balloon=True).replace(
        "<memballoon model='virtio'/>",
        "<memballoon model='virtio'><stats period='2'/></memballoon>\n"
        f"    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
        "<target dev='vda' bus='virtio'/></disk>")
    xml = base / "st.xml"
    xml.write_text(text)
    e.xml_path = xml
    e.disk = disk
    e.ok("define", str(xml))
    yield e
    e.cleanup()


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_domxml_to_native_is_what_start_runs(env):
    by_domain = shlex.split(env.ok("domxml-to-native", "qemu-argv", "--domain", NAME))
    by_xml = json.loads(env.ok("--json", "domxml-to-native", "qemu-argv", "--xml", str(env.xml_path)))["argv"]
    env.ok("start", NAME)
    env.wait_ready(env.uuid(NAME))
    started = _cmdline(env.record(NAME)["pid"])
    assert by_domain == started
    assert by_xml == started
    # the period of <memballoon><stats period='2'/> is on the command line, and QEMU has it
    assert any('"guest-stats-polling-interval":2' in a for a in started)


def test_qemu_monitor_command_wraps_a_bare_command_name(env):
    reply = json.loads(env.ok("qemu-monitor-command", NAME, "query-status"))
    assert reply["return"]["status"] == "running"
    assert json.loads(env.ok("qemu-monitor-command", NAME, "query-status", "--return-value"))["running"] is True
    pretty = env.ok("qemu-monitor-command", NAME, "--pretty", "query-status")
    assert pretty.startswith("{\n  \"return\": {\n")
    # arguments as "key":value members, wrapped into {"execute": ..., "arguments": {...}}
    assert env.ok("qemu-monitor-command", NAME, *QOM_PERIOD, "--return-value").strip() == "2"
    err = json.loads(env.ok("qemu-monitor-command", NAME, "no-such-command"))
    assert err["error"]["class"] == "CommandNotFound"
    r = env.run("qemu-monitor-command", NAME, "query-status", "--return-value", "--hmp")
    assert r.returncode == 2 and "mutually exclusive" in r.stderr
    r = env.run("qemu-monitor-command", NAME, "no-such-command", "--return-value")
    assert r.returncode == 1 and "'return' member missing" in r.stderr


def test_qemu_monitor_command_pass_fds(env, tmp_path):
    f = tmp_path / "passed"
    f.write_text("x")
    fd = os.open(f, os.O_RDONLY)
    try:
        r = subprocess.run([VIRTCTL, "-c", env.uri, "qemu-monitor-command", NAME, "--pass-fds", str(fd),
                            "add-fd", "--return-value"], capture_output=True, text=True, timeout=60,
                           pass_fds=(fd,))
    finally:
        os.close(fd)
    assert r.returncode == 0, r.stderr
    assert {"fdset-id", "fd"} <= set(json.loads(r.stdout))  # QEMU got a descriptor
    r = env.run("qemu-monitor-command", NAME, "add-fd")
    assert "No file descriptor supplied" in r.stdout
    r = env.run("qemu-monitor-command", NAME, "--pass-fds", "3x", "add-fd")
    assert r.returncode == 2 and "Unable to parse FD number '3x'" in r.stderr


def test_dommemstat_never_shows_unavailable_figures(env):
    out = env.ok("dommemstat", NAME)
    stats = dict(line.split() for line in out.splitlines() if line.strip())
    assert "18446744073709551615" not in out and "18014398509481983" not in out
    assert int(stats["actual"]) == 256 * 1024 and int(stats["rss"]) > 0
    assert all(0 <= int(v) < 2**63 for v in stats.values())
    tags = list(stats)
    order = ["actual", "swap_in", "swap_out", "major_fault", "minor_fault", "unused", "available", "usable",
             "last_update", "disk_caches", "hugetlb_pgalloc", "hugetlb_pgfail", "rss"]
    assert tags == [t for t in order if t in stats]
    j = json.loads(env.ok("--json", "dommemstat", NAME))
    assert j == {k: int(v) for k, v in stats.items()} | {"rss": j["rss"]}


def test_dommemstat_period_live_and_config(env):
    assert env.ok("dommemstat", NAME, "--period", "5").strip() == ""
    assert env.ok("qemu-monitor-command", NAME, *QOM_PERIOD, "--return-value").strip() == "5"
    assert "<stats period='5'/>" in env.ok("dumpxml", NAME)
    assert "<stats period='2'/>" in env.ok("dumpxml", NAME, "--inactive")  # --current = live here
    env.ok("dommemstat", NAME, "--period", "9", "--config")
    assert "<stats period='9'/>" in env.ok("dumpxml", NAME, "--inactive")
    assert env.ok("qemu-monitor-command", NAME, *QOM_PERIOD, "--return-value").strip() == "5"
    env.ok("dommemstat", NAME, "--period", "0", "--live", "--config")
    assert env.ok("qemu-monitor-command", NAME, *QOM_PERIOD, "--return-value").strip() == "0"
    assert "<stats" not in env.ok("dumpxml", NAME) and "<stats" not in env.ok("dumpxml", NAME, "--inactive")
    r = env.run("dommemstat", NAME, "--period", "-2")
    assert r.returncode == 2 and "Invalid collection period value '-2'" in r.stderr
    r = env.run("dommemstat", NAME, "--period", "3", "--current", "--live")
    assert r.returncode == 2


def test_domblkstat_fields_and_names(env):
    order = ["rd_req", "rd_bytes", "wr_req", "wr_bytes", "flush_operations", "rd_total_times",
             "wr_total_times", "flush_total_times"]
    rows = [line.split() for line in env.ok("domblkstat", NAME, "vda").splitlines() if line.strip()]
    assert [r[0] for r in rows] == ["vda"] * len(order) and [r[1] for r in rows] == order
    assert all(int(r[2]) >= 0 for r in rows)
    rows = [line.split() for line in env.ok("domblkstat", NAME, str(env.disk)).splitlines() if line.strip()]
    assert [r[0] for r in rows] == [str(env.disk)] * len(order)  # named as given
    summary = [line for line in env.ok("domblkstat", NAME).splitlines() if line.strip()]
    assert [line.split()[0] for line in summary] == order and summary[0].startswith(" rd_req ")
    human = env.ok("domblkstat", NAME, "vda", "--human").splitlines()
    assert human[0] == "Device: vda"
    assert [h[:32] for h in human[1:] if h.strip()] == [
        " number of read operations:     ", " number of bytes read:          ",
        " number of write operations:    ", " number of bytes written:       ",
        " number of flush operations:    ", " total duration of reads (ns):  ",
        " total duration of writes (ns): ", " total duration of flushes (ns):"]
    r = env.run("domblkstat", NAME, "vdz")
    assert r.returncode == 2 and r.stderr.startswith("error: invalid argument: invalid path: vdz")


def test_console_unknown_device_is_invalid_arg(env):
    r = env.run("--json", "console", NAME, "--devname", "nosuch")
    assert r.returncode == 2
    assert json.loads(r.stderr)["error"] == {
        "code": "INVALID_ARG", "message": "invalid argument: cannot find character device nosuch", "exit_status": 2}


def test_console_taken_over_by_force_says_so_and_fails(env):
    pexpect = pytest.importorskip("pexpect")
    first = pexpect.spawn(VIRTCTL, ["-c", env.uri, "console", NAME], encoding="utf-8", timeout=60)
    second = None
    try:
        first.expect_exact("Escape character is ^] (Ctrl + ])")
        second = pexpect.spawn(VIRTCTL, ["-c", env.uri, "console", NAME, "--force"], encoding="utf-8",
                               timeout=60)
        second.expect_exact("Escape character is ^] (Ctrl + ])")
        first.expect_exact("was taken over by another session (console --force)")
        first.expect(pexpect.EOF)
        first.close()
        assert first.exitstatus == 1
        # the new session holds the console: a third one is refused, then it leaves normally
        r = env.run("console", NAME)
        assert r.returncode != 0 and "Active console session" in r.stderr
        second.send("\x1d")
        second.expect(pexpect.EOF)
        second.close()
        assert second.exitstatus == 0
    finally:
        first.close(force=True)
        if second is not None:
            second.close(force=True)
    assert env.domstate(NAME) == "running (booted)"
