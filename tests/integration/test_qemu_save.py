"""save/restore, managed save, console, display, screenshot, send-key, monitor
commands and statistics against real QEMU (TCG) and the test guest.

One domain per module (booting is the slow part); the tests run in file
order and each leaves the domain running for the next.  Everything under
``qemu:///embed?root=<tmp>``; every QEMU is killed at teardown.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import BOOT, VIRTCTL, Env

pytestmark = pytest.mark.qemu
NAME = "sg"


def _xml(env: Env, disk: Path) -> str:
    text = env.xml(NAME, balloon=True)
    extra = (f"    <disk type='file' device='disk'><driver name='qemu' type='raw'/>"
             f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>\n"
             "    <graphics type='vnc'/>\n    <video><model type='vga'/></video>\n  </devices>")
    return text.replace("</devices>", extra.lstrip(), 1)


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("save")
    e = Env(base / "root", test_guest)
    disk = base / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    xml = base / "sg.xml"
    xml.write_text(_xml(e, disk))
    e.ok("define", str(xml))
    e.ok("start", NAME)
    e.wait_ready(e.uuid(NAME))
    yield e
    e.cleanup()


def _log_text(env: Env) -> str:
    try:
        return env.serial_log(env.uuid(NAME)).read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _wait_log(env: Env, needle: str, timeout: float = BOOT) -> None:
    deadline = time.monotonic() + timeout
    while needle not in _log_text(env):
        assert time.monotonic() < deadline, f"{needle!r} not on the console: {_log_text(env)[-800:]!r}"
        time.sleep(0.1)


def test_display_screenshot_keys_monitor_stats(env, tmp_path):
    out = env.ok("domdisplay", NAME).strip()
    assert out.startswith("vnc+unix:///") and out.endswith("vnc.sock"), out
    shot = tmp_path / "shot.ppm"
    out = env.ok("screenshot", NAME, str(shot))
    assert out.strip() == f"Screenshot saved to {shot}, with type of image/x-portable-pixmap"
    assert shot.read_bytes()[:2] == b"P6"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]
    env.ok("send-key", NAME, "KEY_A", "0x1c", "--holdtime", "50")
    r = env.run("send-key", NAME, "KEY_NOPE")
    assert r.returncode == 2 and "invalid keycode" in r.stderr
    reply = json.loads(env.ok("qemu-monitor-command", NAME, '{"execute":"query-status"}'))
    assert reply["return"]["status"] == "running"
    pretty = env.ok("qemu-monitor-command", NAME, "--pretty", '{"execute":"query-status"}')
    assert "\n  " in pretty
    assert env.ok("qemu-monitor-command", NAME, "--hmp", "info", "status").strip() == "VM status: running"
    err = json.loads(env.ok("qemu-monitor-command", NAME, '{"execute":"no-such-command"}'))
    assert err["error"]["class"] == "CommandNotFound"
    mem = dict(line.split() for line in env.ok("dommemstat", NAME).splitlines() if line.strip())
    assert int(mem["actual"]) == 256 * 1024 and int(mem["rss"]) > 0
    assert json.loads(subprocess.run([VIRTCTL, "--json", "-c", env.uri, "dommemstat", NAME], capture_output=True,
                                     text=True, timeout=60).stdout)["actual"] == 256 * 1024
    lines = env.ok("domblkstat", NAME, "vda").splitlines()
    assert lines[0].startswith("vda rd_req ") and int(lines[0].split()[2]) >= 0
    assert "number of read operations:" in env.ok("domblkstat", NAME, "vda", "--human")
    r = env.run("domblkstat", NAME, "vdz")
    assert r.returncode == 2 and "invalid path: vdz" in r.stderr


def test_save_to_unwritable_place_keeps_running(env, tmp_path):
    for target in ("/proc/virtctl-test.save", str(tmp_path / "missing-dir" / "x.save")):
        r = env.run("save", NAME, target)
        assert r.returncode != 0 and r.stderr.startswith(f"error: Failed to save domain '{NAME}' to {target}\n"
                                                         "error: cannot create"), r.stderr
        assert "Traceback" not in r.stderr
        assert env.domstate(NAME) == "running (booted)"
    assert os.listdir(tmp_path) == []


def test_save_failing_midway_resumes_and_removes_the_file(env, tmp_path):
    """QEMU's writes fail (a 2 MiB file size limit on it: "full disk")."""
    import resource

    pid = env.record(NAME)["pid"]
    old = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (2 << 20, old[1]))  # soft only: it can be raised back
    try:
        r = env.run("save", NAME, str(tmp_path / "f.save"), timeout=300)
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, old)
    assert r.returncode == 1 and "saving domain to" in r.stderr and "File too large" in r.stderr, r.stderr
    assert env.domstate(NAME) == "running (save canceled)"
    assert os.listdir(tmp_path) == []
    assert "running" in env.ok("qemu-monitor-command", NAME, '{"execute":"query-status"}')


def test_save_then_restore(env, tmp_path):
    image = tmp_path / "sg.save"
    out = env.ok("save", NAME, str(image), timeout=300)
    assert f"Domain '{NAME}' saved to {image}" in out
    assert env.domstate(NAME) == "shut off (saved)"
    assert not env.qemu_pids()
    assert image.read_bytes()[:8] == b"VCTLSAVE"
    assert [p.name for p in tmp_path.iterdir()] == ["sg.save"]  # no temp file left
    out = env.ok("restore", str(image), timeout=300)
    assert out.strip() == f"Domain restored from {image}"
    assert env.domstate(NAME) == "running (restored)"
    assert len(env.qemu_pids()) == 1
    # the guest goes on where it was: it answers on its console
    env.send_serial(env.uuid(NAME), "reboot")
    _wait_log(env, "VIRTCTL-GUEST-CMD reboot")
    _wait_log(env, env.guest.ready_line)
    r = env.run("restore", str(image))
    assert r.returncode == 4 and "already active" in r.stderr


def test_restore_refuses_a_file_that_is_not_an_image(env, tmp_path):
    bad = tmp_path / "bad.save"
    bad.write_bytes(b"garbage" * 100)
    r = env.run("restore", str(bad))
    assert r.returncode == 2 and "not a virtctl save image" in r.stderr
    r = env.run("restore", str(tmp_path / "missing.save"))
    assert r.returncode == 3


def test_managedsave_then_start_resumes(env):
    assert "state saved" in env.ok("managedsave", NAME, timeout=300)
    assert env.domstate(NAME) == "shut off (saved)"
    assert "Managed save:   yes" in env.ok("dominfo", NAME)
    assert env.ok("list", "--all", "--with-managed-save", "--name").split() == [NAME]
    assert f"{NAME}" in env.ok("list", "--all", "--managed-save") and "saved" in env.ok("list", "--all", "--managed-save")
    r = env.run("undefine", NAME)
    assert r.returncode == 4 and "managed save image exists" in r.stderr
    env.ok("start", NAME, timeout=300)
    assert env.domstate(NAME) == "running (restored)"
    assert "Managed save:   no" in env.ok("dominfo", NAME)
    env.send_serial(env.uuid(NAME), "reboot")
    _wait_log(env, "VIRTCTL-GUEST-CMD reboot")
    # managedsave + start --force-boot discards the image
    env.ok("managedsave", NAME, timeout=300)
    env.ok("start", NAME, "--force-boot")
    assert env.domstate(NAME) == "running (booted)"
    assert "Managed save:   no" in env.ok("dominfo", NAME)
    env.wait_ready(env.uuid(NAME))


def test_console_poweroff_and_start_console(env):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(VIRTCTL, ["-c", env.uri, "console", NAME], encoding="utf-8", timeout=60)
    try:
        child.expect_exact(f"Connected to domain '{NAME}'")
        child.expect_exact("Escape character is ^] (Ctrl + ])")
        # a second session is refused while this one is attached
        r = env.run("console", NAME)
        assert r.returncode != 0 and "Active console session" in r.stderr
        child.send("poweroff\r")
        child.expect_exact("VIRTCTL-GUEST-CMD poweroff")
        child.expect(pexpect.EOF, timeout=120)
    finally:
        child.close(force=True)
    env.wait_state(NAME, "shut off (shutdown)", timeout=120)
    child = pexpect.spawn(VIRTCTL, ["-c", env.uri, "start", NAME, "--console"], encoding="utf-8",
                          timeout=BOOT)
    try:
        child.expect_exact(f"Domain '{NAME}' started")
        child.expect_exact(env.guest.ready_line)
        child.send("\x1d")  # Ctrl+]
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    assert env.domstate(NAME) == "running (booted)"
    # pipe mode: stdin is sent, then the output is copied until the console is quiet
    r = subprocess.run([VIRTCTL, "-c", env.uri, "console", NAME, "--idle", "3"], input="reboot\n",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "VIRTCTL-GUEST-CMD reboot" in r.stdout, r
