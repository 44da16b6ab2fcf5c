"""validate FILE, edit DOMAIN, dumpxml --xpath: the XML commands."""
from __future__ import annotations

import json
import os
import stat

import pytest

from cli_runner import run, run_installed

T = ("-c", "test:///default")
BAD = ("<domain type='kvm'>\n  <name>x</name>\n  <memory>1</memory>\n  <os><type>hvm</type></os>\n"
       "  <devices>\n    <disk type='file' device='disk'><target dev='vda' bus='virtioo'/></disk>\n"
       "    <bogus/>\n  </devices>\n</domain>\n")


def test_validate_good_and_bad(tmp_path):
    good = tmp_path / "good.xml"
    good.write_text("<network><name>n1</name></network>")
    r = run("validate", str(good))
    assert (r.status, r.out) == (0, f"{good} validates\n\n")
    bad = tmp_path / "bad.xml"
    bad.write_text(BAD)
    r = run("validate", str(bad))
    assert r.status == 5
    assert f"{bad}:6:" in r.err and "/domain/devices/disk/target: attribute 'bus' has invalid value 'virtioo'" in r.err
    assert f"{bad}:7:" in r.err and "unknown element <bogus> in <devices>" in r.err
    j = run("--json", "validate", str(bad))
    doc = json.loads(j.out)
    assert doc["valid"] is False and [p["line"] for p in doc["problems"]] == [6, 7]
    assert json.loads(j.err)["error"]["code"] == "XML_ERROR"


def test_validate_refuses_names_the_schema_allows(tmp_path):
    p = tmp_path / "slash.xml"
    p.write_text("<domain type='kvm'><name>a/b</name><memory>1</memory><os><type>hvm</type></os></domain>")
    r = run("validate", str(p))
    assert r.status == 5 and "cannot contain '/'" in r.err


def test_validate_kind_and_errors(tmp_path):
    p = tmp_path / "n.xml"
    p.write_text("<network><name>n1</name></network>")
    assert run("validate", str(p), "domain").status == 5
    assert run("validate", str(p), "bogus").status == 2
    assert run("validate", str(tmp_path / "missing.xml")).status == 3
    (tmp_path / "root.xml").write_text("<frob/>")
    r = run("validate", str(tmp_path / "root.xml"))
    assert r.status == 5 and "unknown root element" in r.err


def _editor(tmp_path, script: str) -> str:
    path = tmp_path / "editor.sh"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_edit_changes_definition(tmp_path):
    env = {**os.environ, "EDITOR": _editor(tmp_path, "sed -i 's/8388608/4194304/' \"$1\"")}
    r = run_installed(*T, "edit test; dominfo test; dumpxml --inactive test --xpath string(//memory)",
                      env=env)
    assert "Domain 'test' XML configuration edited." in r.out
    assert r.out.rstrip().endswith("4194304")


def test_edit_without_change(tmp_path):
    env = {**os.environ, "EDITOR": "true"}
    r = run_installed(*T, "edit", "test", env=env)
    assert r.status == 0 and "not changed" in r.out


def test_failed_edit_never_reports_success(tmp_path):
    env = {**os.environ, "EDITOR": _editor(tmp_path, "sed -i \"s/bus='virtio'/bus='bogus'/\" \"$1\"")}
    r = run_installed(*T, "edit test; domblklist test --details", env=env, stdin="")
    assert "edited" not in r.out and "bus' has invalid value 'bogus'" in r.err
    assert "virtio" not in r.out or "vda" in r.out  # the old definition is intact
    r = run_installed(*T, "edit", "test", env=env, stdin="")
    assert r.status == 5 and "edited" not in r.out
    env["EDITOR"] = "false"
    r = run_installed(*T, "edit", "test", env=env, stdin="")
    assert r.status == 1 and "editor exited" in r.err
    env["EDITOR"] = "/nonexistent/editor"
    r = run_installed(*T, "edit", "test", env=env, stdin="")
    assert r.status == 1 and "cannot run editor" in r.err
    assert not list(tmp_path.glob("virtctl-*.xml"))


@pytest.mark.parametrize("expr,expected", [
    ("string(//name)", "test\n"),
    ("count(//disk)", "1\n"),
    ("//target/@dev", ' dev="vda"\n dev="testnet0"\n'),
])
def test_dumpxml_xpath(expr, expected):
    r = run(*T, "dumpxml", "test", "--xpath", expr)
    assert r.out == expected + "\n"
