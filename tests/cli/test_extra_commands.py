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
    (("domblkstat", "test", "vdz"), "INVALID_ARG", 2, "invalid argument: invalid path: vdz"),
    (("domblkstat", "test"), "NOT_SUPPORTED", 6, "summary statistics are not supported yet"),
    (("dommemstat", "test", "--period", "-1"), "INVALID_ARG", 2, "Invalid collection period value '-1'"),
    (("dommemstat", "test", "--period", "1x"), "INVALID_ARG", 2,
     "Numeric value '1x' for <period> option is malformed or out of range"),
    (("dommemstat", "test", "--period", "2147483648"), "INVALID_ARG", 2, "malformed or out of range"),
    (("dommemstat", "test", "--period", "3", "--live", "--config"), "INVALID_ARG", 2,
     "'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive"),
    (("console", "test", "--devname", "nosuch"), "INVALID_ARG", 2,
     "invalid argument: cannot find character device nosuch"),
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
    for cmd in (f"save test {tmp_path}/x", "managedsave test", "dommemstat test", "domblkstat test vda",
                "dommemstat test --period 2 --live",
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
    shot = tmp_path / "s.png"  # libvirt's test driver sends a PNG
    r = run(*T, "screenshot", "test", str(shot))
    assert r.status == 0 and r.out == f"Screenshot saved to {shot}, with type of image/png\n"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    j = run("--json", *T, "screenshot", "test", str(shot)).json()
    assert j == {"domain": "test", "file": str(shot), "mime": "image/png"}
    r = run(*T, "send-key", "test", "KEY_LEFTCTRL", "KEY_LEFTALT", "KEY_DELETE")
    assert r.status == 0 and r.out.strip() == ""
    j = run("--json", *T, "send-key", "test", "--codeset", "usb", "0x28", "--holdtime", "10").json()
    assert j["keycodes"] == [40] and j["codeset"] == "usb" and j["result"] == "ok"


def test_dommemstat_is_libvirts_test_driver():
    """testDomainMemoryStats: figures from the current memory, in virsh's order."""
    r = run(*T, "dommemstat", "test")
    assert r.status == 0, r.err
    assert _lines(r.out) == ["actual 2097152", "swap_in 0", "swap_out 0", "major_fault 0", "minor_fault 0",
                             "unused 1048576", "available 2097152", "usable 1048576", "last_update 627319920",
                             "disk_caches 262144", "hugetlb_pgalloc 0", "hugetlb_pgfail 0", "rss 1048576"]
    assert run("--json", *T, "dommemstat", "test").json()["available"] == 2097152
    lines = _lines(run(*T, "setmem test 1000000 --live; dommemstat test").out)
    assert lines[0] == "actual 1000000" and "disk_caches 125000" in lines and lines[-1] == "rss 500000"


def test_dommemstat_without_balloon_prints_nothing(tmp_path):
    f = tmp_path / "nb.xml"
    f.write_text("<domain type='test'><name>nb</name><memory>131072</memory><os><type>hvm</type></os>"
                 "<devices><memballoon model='none'/></devices></domain>")
    r = run(*T, f"create {f}; dommemstat nb")
    assert r.status == 0 and _lines(r.out) == ["Domain 'nb' created from " + str(f)]
    r = run(*T, f"create {f}; dommemstat nb --period 2")
    assert r.status == 4 and "No memory balloon device configured" in r.err


def test_dommemstat_period_goes_to_the_chosen_definition():
    r = run(*T, "dommemstat test --period 7 --config; dommemstat test --period 3; "
                "dumpxml test --inactive --xpath //memballoon/stats; dumpxml test --xpath //memballoon/stats")
    assert r.status == 0, r.err
    assert _lines(r.out) == ['<stats period="7"/>', '<stats period="3"/>']
    r = run(*T, "dommemstat test --period 0 --live; dumpxml test --xpath count(//memballoon/stats)")
    assert _lines(r.out) == ["0"]
    j = run("--json", *T, "dommemstat", "test", "--period", "4").json()
    assert j["action"] == "memory-stats-period" and j["period"] == 4


def _stat(line: str) -> tuple[str, str, int]:
    dev, key, value = line.rsplit(" ", 2)
    return dev, key, int(value)


def test_domblkstat_is_libvirts_test_driver():
    """testDomainBlockStats: the five legacy fields, made from the clock, the
    device printed as given (target or source path)."""
    import time

    before = time.time_ns() // 1000
    lines = _lines(run(*T, "domblkstat", "test", "vda").out)
    after = time.time_ns() // 1000
    got = [_stat(ln) for ln in lines]
    assert [(d, k) for d, k, _ in got] == [("vda", k) for k in ("rd_req", "rd_bytes", "wr_req", "wr_bytes", "errs")]
    for (_, _, v), div in zip(got, (10, 20, 30, 40, 2_000_000)):
        assert before // div <= v <= after // div
    by_path = [_stat(ln)[:2] for ln in _lines(run(*T, "domblkstat", "test", "/guest/diskimage1").out)]
    assert by_path[0] == ("/guest/diskimage1", "rd_req")
    human = run(*T, "domblkstat", "test", "vda", "--human").out
    labels = [ln.rsplit(" ", 1)[0] for ln in _lines(human)[1:]]
    assert _lines(human)[0] == "Device: vda"
    assert labels == [" number of read operations:     ", " number of bytes read:          ",
                      " number of write operations:    ", " number of bytes written:       ",
                      " error count:                   "]
    j = run("--json", *T, "domblkstat", "test", "/guest/diskimage1").json()
    assert j["device"] == "/guest/diskimage1" and set(j) == {"domain", "device", "rd_req", "rd_bytes", "wr_req",
                                                             "wr_bytes", "errs", "disks"}


def test_qmp_wrap_follows_virsh():
    from virtctl.commands.domain_stats import qmp_wrap

    assert json.loads(qmp_wrap(["query-status"])) == {"execute": "query-status"}
    assert json.loads(qmp_wrap(['{"execute":', '"query-status"}'])) == {"execute": "query-status"}
    assert json.loads(qmp_wrap(["block-resize", '{"node-name":"n","size":1}'])) == \
        {"execute": "block-resize", "arguments": {"node-name": "n", "size": 1}}
    assert json.loads(qmp_wrap(["block-resize", '"node-name":"n"', '"size":1'])) == \
        {"execute": "block-resize", "arguments": {"node-name": "n", "size": 1}}
    assert qmp_wrap(["query-status", "junk"]) == "query-status junk"  # sent as given


def test_keycodes_translation():
    from virtctl import keycodes as kc

    assert kc.parse("linux", "KEY_A") == 30 and kc.to_qnum("linux", 30) == 0x1E
    assert kc.to_qnum("linux", kc.parse("linux", "KEY_UP")) == 0xC8
    assert kc.to_qnum("usb", 4) == 0x1E and kc.to_qnum("win32", 0x0D) == 0x1C
    assert kc.parse("linux", "0x1c") == 28
    with pytest.raises(kc.KeycodeError):
        kc.parse("linux", "KEY_BOGUS")
