"""Snapshot commands against virsh on test:///default: every case of
tests/cli/wide/snapshot.txt (one command string per line) and the commands
that need a file."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from virsh_side import VIRSH, VIRTCTL, compare, needs_virsh, norm, run

pytestmark = needs_virsh

URI = "test:///default"
CASES = [line for line in (Path(__file__).parent / "wide" / "snapshot.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("cmd", CASES)
def test_snapshot_matches_virsh(cmd, tmp_path):
    compare(URI, cmd, tmp_path)


@pytest.mark.parametrize("cmd", [
    "snapshot-create-as test a; snapshot-create-as test b; snapshot-list test; snapshot-list test --parent; "
    "snapshot-list test --tree; snapshot-info test a; snapshot-revert test a; snapshot-current test a; "
    "snapshot-delete test b; snapshot-delete test a --children-only; snapshot-list test --name",
    "snapshot-list test",
])
def test_snapshot_quiet_matches_virsh(cmd, tmp_path):
    compare(URI, cmd, tmp_path, options=("-q",))


def test_snapshot_create_from_file(tmp_path):
    xml = tmp_path / "snap.xml"
    xml.write_text("<domainsnapshot><name>x1</name><description>d &lt; e</description></domainsnapshot>")
    compare(URI, f"snapshot-create test {xml}; snapshot-info test x1; snapshot-dumpxml test x1 "
                 f"--xpath //description; snapshot-create test {xml}", tmp_path)


def test_snapshot_create_invalid_file(tmp_path):
    """A deliberate difference: virtctl validates snapshot XML against libvirt's
    schema (libvirt's test driver ignores unknown elements); nothing is created."""
    xml = tmp_path / "bad.xml"
    xml.write_text("<domainsnapshot><bogus/></domainsnapshot>")
    ours = run([VIRTCTL, "-c", URI, f"snapshot-create test {xml}"], tmp_path)
    assert ours.returncode == 5, ours.stderr  # XML
    assert "unknown element <bogus>" in ours.stderr
    assert "created" not in ours.stdout
    ours = run([VIRTCTL, "-c", URI, f"snapshot-create test {xml}; snapshot-list test --name"], tmp_path)
    assert ours.stdout == "\n\n"  # nothing was created


def test_snapshot_edit(tmp_path):
    editor = tmp_path / "ed.sh"
    editor.write_text("#!/bin/sh\nsed -i s/hello/bye/ \"$1\"\n")
    editor.chmod(0o755)
    cmd = ("snapshot-create-as test a --description hello; snapshot-edit test a; "
           "snapshot-dumpxml test a --xpath //description; snapshot-edit test a; snapshot-info test a")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8", "EDITOR": str(editor),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    theirs, ours = (subprocess.run([prog, "-c", URI, cmd], capture_output=True, text=True, env=env, timeout=60)
                    for prog in (VIRSH, VIRTCTL))
    assert norm(ours.stdout) == norm(theirs.stdout), ours.stderr
    assert ours.returncode == theirs.returncode == 0
