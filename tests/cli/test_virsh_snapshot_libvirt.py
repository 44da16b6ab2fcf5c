"""Snapshot and block commands through the libvirt driver: every case of
tests/cli/wide/snapshot.txt and blockjob.txt, and the cases of
test_virsh_snapshot.py and test_virsh_blockjob.py that need a file, an
option or an editor, run as ``virtctl -c libvirt:test:///default`` (libvirt's
own test driver, through the binding) against ``virsh -c test:///default``:
the same stdout (snapshot times normalised) and the same success.

LIBVIRT_DIFFERS lists the cases that differ on purpose, each with the words
of the README's "differs from virsh on purpose" section that explain it.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from virsh_side import VIRSH, VIRTCTL, needs_virsh, verdict

libvirt = pytest.importorskip("libvirt", reason="the libvirt binding is not installed (pip install '.[libvirt]')")

URI = "test:///default"
WIDE = Path(__file__).parent / "wide"


def _lines(name: str) -> list[str]:
    return [line for line in (WIDE / name).read_text().splitlines() if line.strip() and not line.startswith("#")]


# (command string, virsh/virtctl options, needs an $EDITOR); {dir} is the case's directory
CASES: list[tuple[str, tuple[str, ...], bool]] = [(c, (), False) for c in _lines("snapshot.txt") + _lines("blockjob.txt")]
CASES += [
    ("snapshot-create-as test a; snapshot-create-as test b; snapshot-list test; snapshot-list test --parent; "
     "snapshot-list test --tree; snapshot-info test a; snapshot-revert test a; snapshot-current test a; "
     "snapshot-delete test b; snapshot-delete test a --children-only; snapshot-list test --name", ("-q",), False),
    ("snapshot-list test", ("-q",), False),
    ("snapshot-create test {dir}/snap.xml; snapshot-info test x1; snapshot-dumpxml test x1 --xpath //description; "
     "snapshot-create test {dir}/snap.xml", (), False),
    # libvirt's test driver ignores unknown elements (virtctl's own test driver validates)
    ("snapshot-create test {dir}/bogus.xml; snapshot-list test --name", (), False),
    ("snapshot-create-as test a --description hello; snapshot-edit test a; "
     "snapshot-dumpxml test a --xpath //description; snapshot-edit test a; snapshot-info test a", (), True),
    ("snapshot-create-as test a; snapshot-create-as test b; snapshot-dumpxml test b --security-info; "
     "snapshot-create test {dir}/redef.xml --redefine --current; snapshot-current test --name; "
     "snapshot-info test r", (), False),
    ("blockcopy test vda {dir}/x.qcow2 --print-xml", (), False),
    ("blockcopy test vda {dir}/x.qcow2 --print-xml --format qcow2", (), False),
    ("blockcopy test vda {dir}/x.qcow2 --print-xml --blockdev --raw", (), False),
    ("blockcopy test vda --xml {dir}/d.xml --print-xml", (), False),
    ("snapshot-create-as test a; snapshot-create-as test b; snapshot-list test --tree", (), False),
]

LIBVIRT_DIFFERS: dict[str, str] = {}


def _run(prog: str, uri: str, cmd: str, options: tuple[str, ...], home: Path, editor: bool):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C.UTF-8", "XDG_CONFIG_HOME": str(home / "cfg")}
    if editor:
        env["EDITOR"] = str(home / "ed.sh")
    return subprocess.run([prog, *options, "-c", uri, cmd], capture_output=True, text=True, env=env, timeout=60)


def _one(case, base: Path) -> str | None:
    """None when the case behaves as it must, else what is wrong."""
    raw, options, editor = case
    cmd = raw.format(dir=base)
    theirs = _run(VIRSH, URI, cmd, options, base, editor)
    ours = _run(VIRTCTL, "libvirt:" + URI, cmd, options, base, editor)
    return verdict(repr(raw), theirs, ours, differs=raw in LIBVIRT_DIFFERS)


@needs_virsh[0]
@needs_virsh[1]
def test_every_snapshot_and_block_case_through_libvirt_as_virsh(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "snap.xml").write_text(
        "<domainsnapshot><name>x1</name><description>d &lt; e</description></domainsnapshot>")
    (tmp_path / "bogus.xml").write_text("<domainsnapshot><name>y</name><bogus/></domainsnapshot>")
    (tmp_path / "redef.xml").write_text(
        "<domainsnapshot><name>r</name><description>redefined</description><state>shutoff</state>"
        "<creationTime>1700000000</creationTime><memory snapshot='no'/>"
        "<domain type='test'><name>test</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>"
        "<memory>8388608</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain></domainsnapshot>")
    (tmp_path / "d.xml").write_text('<disk type="file"><source file="/tmp/y.qcow2"/><driver type="qcow2"/></disk>\n')
    editor = tmp_path / "ed.sh"
    editor.write_text("#!/bin/sh\nsed -i s/hello/bye/ \"$1\"\n")
    editor.chmod(0o755)
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(lambda c: _one(c, tmp_path), CASES) if p]
    assert len(CASES) >= 100
    assert not problems, f"{len(problems)} of {len(CASES)} cases:\n" + "\n".join(problems)


def test_differs_are_in_the_readme():
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    section = readme[readme.index("differs from virsh on purpose"):]
    for words in set(LIBVIRT_DIFFERS.values()):
        assert words in section, words
