"""Block commands against virsh on test:///default: libvirt's test driver
refuses every block job (our test driver too, with the same outcome) and
answers domblkinfo with fixed figures: every case of
tests/cli/wide/blockjob.txt (refusals, usage errors, every domblkinfo
layout; test_virsh_wide.py counts them for coverage), and the cases that
need a file or look at stderr and JSON."""
from __future__ import annotations

from pathlib import Path

import pytest

from virsh_side import both, compare, needs_virsh

pytestmark = needs_virsh

URI = "test:///default"
CASES = [line for line in (Path(__file__).parent / "wide" / "blockjob.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("cmd", CASES)
def test_block_commands_match_virsh(cmd, tmp_path):
    compare(URI, cmd, tmp_path)



@pytest.mark.parametrize("extra", ["--print-xml", "--print-xml --format qcow2", "--print-xml --blockdev --raw"])
def test_blockcopy_print_xml(extra, tmp_path):
    compare(URI, f"blockcopy test vda {tmp_path}/x.qcow2 {extra}", tmp_path)


def test_blockcopy_print_xml_of_a_file(tmp_path):
    (tmp_path / "d.xml").write_text('<disk type="file"><source file="/tmp/y.qcow2"/><driver type="qcow2"/></disk>\n')
    compare(URI, f"blockcopy test vda --xml {tmp_path}/d.xml --print-xml", tmp_path)


@pytest.mark.parametrize("cmd", ["blockcommit test vda --active", "blockpull test vda",
                                 "blockjob test vda --abort", "blockresize test vda 1G"])
def test_refusals_are_not_supported_naming_the_command(cmd, tmp_path):
    theirs, ours = both(URI, cmd, tmp_path)
    assert "this function is not supported by the connection driver" in theirs.stderr
    assert f"this function is not supported by the connection driver: {cmd.split()[0]}" in ours.stderr
    assert ours.returncode == 6


def test_domblkinfo_json(tmp_path):
    import json
    import subprocess

    from virsh_side import VIRTCTL

    out = subprocess.run([VIRTCTL, "-c", URI, "--json", "domblkinfo", "test", "vda"], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out) == {"domain": "test", "device": "vda", "capacity": 1099506450432,
                               "allocation": 1099511627776, "physical": 1099511627776}
    out = subprocess.run([VIRTCTL, "-c", URI, "--json", "domblkinfo", "test", "--all"], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out)["disks"][0]["device"] == "vda"
