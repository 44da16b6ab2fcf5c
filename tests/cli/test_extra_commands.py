"""save/restore, managed save, console, display, screenshot, send-key,
qemu-monitor-command, dommemstat, domblkstat on the test driver: text, JSON
and error codes."""
from __future__ import annotations

import json

import pytest

from cli_runner import run

T = ("-c", "test:///default")


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_save_restore_text_and_state(tmp_path):
    image = tmp_path / "t.save"
    r = run(*T, f"save test {image}; domstate test --reason; restore {image}; domstate test --reason")
    assert r.status == 0, r.err
    assert _lines(r.out) == [f"Domain 'test' saved to {image}", "shut off (saved)",
                             f"Domain restored from {image}", "running (restored)"]
    assert image.read_bytes()[:8] == b"VCTLSAVE"
    assert [p.name for p in tmp_path.iterdir()] == ["t.save"]


def test_save_keeps_the_paused_state(tmp_path):
    """The image records whether the guest ran; restore brings it back so.
    (The test driver, as libvirt's, takes no --running/--paused: see
    test_virsh_semantics.py.)"""
    image = tmp_path / "t.save"
    r = run(*T, f"suspend test; save test {image}; restore {image}; domstate test")
    assert r.status == 0, r.err
    assert _lines(r.out)[-1] == "paused"


def test_save_restore_json(tmp_path):
    image = tmp_path / "t.save"
    out = run("--json", *T, f"save test {image}").json()
    assert out == {"domain": "test", "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f", "action": "saved",
                   "file": str(image), "result": "ok"}


@pytest.mark.parametrize("argv,code,status,needle", [
    (("save", "test", "/nonexistent-dir/x.save"), "SYSTEM_ERROR", 1, "cannot create"),
    (("save", "nosuch", "/tmp/x.save"), "NO_DOMAIN", 3, "failed to get domain"),
    (("save", "test", "/tmp/x.save", "--running", "--paused"), "USAGE", 2, "mutually exclusive"),
    (("restore", "/nonexistent/x.save"), "NO_FILE", 3, "No such file"),
    (("managedsave-remove", "nosuch"), "NO_DOMAIN", 3, "failed to get domain"),
    (("qemu-monitor-command", "test", '{"execute":"query-status"}'), "NOT_SUPPORTED", 6, "not supported"),
    (("send-key", "test", "KEY_NOPE"), "INVALID_ARG", 2, "invalid keycode"),
    (("send-key", "test", "--codeset", "bogus", "1"), "INVALID_ARG", 2, "unknown codeset"),
    (("send-key", "test"), "USAGE", 2, "requires <keycode>"),
    (("send-key", "test", *[str(i) for i in range(2, 20)]), "INVALID_ARG", 2, "too many keycodes"),
    (("domblkstat", "test", "vdz"), "INVALID_ARG", 2, "not assigned to domain"),
    (("domdisplay", "test"), "OPERATION_FAILED", 1, "No graphical display found"),
    (("screenshot", "test", "/tmp/x.ppm", "--screen", "1"), "INVALID_ARG", 2, "no screen with ID 1"),
    (("console", "test", "--escape", "^^^"), "INVALID_ARG", 2, "invalid escape"),
])
def test_errors(argv, code, status, needle):
    r = run(*T, *argv)
    assert r.status == status, r.err
    assert needle in r.err and r.err.startswith("error: ") and "Traceback" not in r.err
    j = run("--json", *T, *argv)
    assert json.loads(j.err)["error"]["code"] == code


def test_restore_refuses_garbage(tmp_path):
    bad = tmp_path / "bad.save"
    bad.write_bytes(b"x" * 64)
    r = run(*T, "restore", str(bad))
    assert r.status == 2 and "not a virtctl save image: wrong magic" in r.err


def test_restore_refuses_hostile_xml(tmp_path):
    from virtctl import savefile

    image = tmp_path / "h.save"
    xml = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><domain type="test"><name>&x;</name></domain>'
    image.write_bytes(savefile.Header("test", xml, True).to_bytes())
    r = run(*T, "restore", str(image))
    assert r.status == 5 and "Traceback" not in r.err


def test_inactive_domain_errors(tmp_path):
    for cmd in (f"save test {tmp_path}/x", "managedsave test", "dommemstat test", "domblkstat test",
                "send-key test KEY_A", "domdisplay test", f"screenshot test {tmp_path}/s.ppm", "console test"):
        r = run(*T, f"destroy test; {cmd}")
        assert r.status == 4, (cmd, r.err)
        assert "not running" in r.err
    assert list(tmp_path.iterdir()) == []


def test_managedsave_cycle():
    r = run(*T, "managedsave test; dominfo test; list --all --with-managed-save --name; "
                "list --all --managed-save; undefine test")
    assert r.status == 4 and "managed save image exists" in r.err
    assert "Domain 'test' state saved" in r.out and "Managed save:   yes" in r.out
    assert " test   saved" in r.out
    r = run(*T, "managedsave test; start test; domstate test --reason; dominfo test")
    assert r.status == 0 and "running (restored)" in r.out and "Managed save:   no" in r.out
    r = run(*T, "managedsave test; start test --force-boot; domstate test --reason")
    assert "running (booted)" in r.out
    r = run(*T, "managedsave test; managedsave-remove test; managedsave-remove test; start test; domstate --reason test")
    assert "Removed managedsave image for domain 'test'" in r.out
    assert "Domain 'test' has no manage save image; removal skipped" in r.out
    assert "running (booted)" in r.out
    r = run(*T, "managedsave test; undefine test --managed-save; list --all --name")
    assert r.status == 0 and "test" not in _lines(r.out)[-1:]
    j = run("--json", *T, "managedsave test; managedsave-remove test")
    docs = [json.loads(x) for x in j.out.replace("}\n{", "}\x00{").split("\x00")]
    assert docs[0]["action"] == "managed-saved" and docs[1]["removed"] is True


def test_console_pipe_mode_echo():
    r = run(*T, "console", "test", "--idle", "0.2", stdin="hello console\n")
    assert r.status == 0, r.err
    assert r.out.splitlines()[:2] == ["Connected to domain 'test'", "Escape character is ^] (Ctrl + ])"]
    assert "hello console" in r.out
    r = run(*T, "console", "test", "--idle", "0.2", "--escape", "^A", stdin="before\x01after\n")
    assert "Escape character is ^A (Ctrl + A)" in r.out
    assert "before" in r.out and "after" not in r.out


def test_screenshot_and_send_key(tmp_path):
    shot = tmp_path / "s.ppm"
    r = run(*T, "screenshot", "test", str(shot))
    assert r.status == 0 and r.out.strip() == f"Screenshot saved to {shot}, with type of image/x-portable-pixmap"
    assert shot.read_bytes()[:2] == b"P6"
    j = run("--json", *T, "screenshot", "test", str(shot)).json()
    assert j == {"domain": "test", "file": str(shot), "mime": "image/x-portable-pixmap"}
    r = run(*T, "send-key", "test", "KEY_LEFTCTRL", "KEY_LEFTALT", "KEY_DELETE")
    assert r.status == 0 and r.out.strip() == ""
    j = run("--json", *T, "send-key", "test", "--codeset", "usb", "0x28", "--holdtime", "10").json()
    assert j["keycodes"] == [40] and j["codeset"] == "usb" and j["result"] == "ok"


def test_dommemstat_and_domblkstat():
    r = run(*T, "dommemstat", "test")
    tags = [ln.split()[0] for ln in _lines(r.out)]
    assert tags[0] == "actual" and tags[-1] == "rss"
    assert run("--json", *T, "dommemstat", "test").json()["actual"] == 2097152
    lines = _lines(run(*T, "domblkstat", "test", "vda").out)
    assert lines[0] == "vda rd_req 0" and lines[1] == "vda rd_bytes 0"
    assert _lines(run(*T, "domblkstat", "test", "/guest/diskimage1").out)[0] == "vda rd_req 0"
    human = run(*T, "domblkstat", "test", "vda", "--human").out
    assert human.startswith("Device: vda\n number of read operations:")
    j = run("--json", *T, "domblkstat", "test").json()
    assert j["device"] is None and j["disks"][0]["device"] == "vda" and j["rd_req"] == 0


def test_keycodes_translation():
    from virtctl import keycodes as kc

    assert kc.parse("linux", "KEY_A") == 30 and kc.to_qnum("linux", 30) == 0x1E
    assert kc.to_qnum("linux", kc.parse("linux", "KEY_UP")) == 0xC8
    assert kc.to_qnum("usb", 4) == 0x1E and kc.to_qnum("win32", 0x0D) == 0x1C
    assert kc.parse("linux", "0x1c") == 28
    with pytest.raises(kc.KeycodeError):
        kc.parse("linux", "KEY_BOGUS")
