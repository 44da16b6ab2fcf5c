"""domif-getlink / domif-setlink against virsh on test:///default (cases in
tests/cli/wide/iflink.txt): the interface named by target dev or MAC (any
case), --config, --print-xml, and the errors (unknown interface, bad state, libvirt's test driver has no
virDomainUpdateDeviceFlags so a real change is NOT_SUPPORTED there too)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from virsh_side import VIRTCTL, compare, needs_virsh

pytestmark = needs_virsh

URI = "test:///default"
CASES = [line for line in (Path(__file__).parent / "wide" / "iflink.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("cmd", CASES)
def test_iflink_matches_virsh(cmd, tmp_path):
    compare(URI, cmd, tmp_path)


def test_iflink_json(tmp_path):
    def ok(*args):
        r = subprocess.run([VIRTCTL, "-c", URI, "--json", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert ok("domif-getlink", "test", "testnet0") == {"interface": "testnet0", "state": "up"}
    doc = ok("domif-setlink", "test", "testnet0", "down", "--print-xml")
    assert doc["interface"] == "testnet0" and doc["state"] == "down"
    assert doc["xml"].endswith('<link state="down"/></interface>')


def test_completion_offers_the_domains_interfaces(tmp_path):
    from virsh_side import run

    r = run([VIRTCTL, "__complete", "--", "-c", URI, "domif-getlink", "test", ""], tmp_path)
    assert r.stdout.splitlines()[1:] == ["aa:bb:cc:dd:ee:ff\ttestnet0", "testnet0\taa:bb:cc:dd:ee:ff"]
    r = run([VIRTCTL, "__complete", "--", "-c", URI, "domif-setlink", "test", "t"], tmp_path)
    assert r.stdout.splitlines()[1:] == ["testnet0\taa:bb:cc:dd:ee:ff"]
    r = run([VIRTCTL, "__complete", "--", "-c", URI, "domif-setlink", "test", "testnet0", ""], tmp_path)
    assert r.stdout.splitlines()[1:] == ["up", "down"]
