"""Statistics and host commands (issue 14) against virsh on the test driver:
tests/cli/wide/stats.txt on test:///default, and cases on node files whose
CPU topology, disks and iothreads change libvirt's test driver's figures."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from virsh_side import compare, needs_virsh

pytestmark = needs_virsh

WIDE = Path(__file__).parent / "wide"
CASES = [line for line in (WIDE / "stats.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]

NODE = """<node>
  <cpu><nodes>2</nodes><sockets>1</sockets><cores>3</cores><threads>2</threads><mhz>2000</mhz><model>Xeon</model></cpu>
  <memory>8192000</memory>
  <domain type="test"><name>a</name><memory>1024</memory><vcpu>2</vcpu><os><type>hvm</type></os>
    <iothreads>2</iothreads>
    <devices><disk type='file'><source file='/x/a'/><target dev='vda'/></disk>
    <disk type='file'><source file='/x/b'/><target dev='vdb'/></disk>
    <disk type='file'><source file='/x/c'/><target dev='vdc'/></disk></devices></domain>
  <domain type="test"><name>b</name><memory>1024</memory><vcpu>3</vcpu><os><type>hvm</type></os></domain>
</node>
"""


@pytest.mark.parametrize("cmd", CASES)
def test_default(cmd, tmp_path):
    compare("test:///default", cmd, tmp_path)


@pytest.mark.parametrize("cmd", [
    "cpu-stats a; cpu-stats a --start 2 --count 3; cpu-stats a --count 5; vcpuinfo a; vcpuinfo a --pretty",
    "domblkerror a; domblkerror b; domstats a; domstats a --iothread; domstats b a --state",
    "domstats a --iothread --enforce; destroy a; domstats a; vcpuinfo a",
    "destroy b; domstats b --list-inactive; domstats a --list-inactive",
    "freecell --all; capabilities; nodecpustats; domtime b --pretty",
    "freecell",
    "freecell --cellno 0",
])
def test_node_file(cmd, tmp_path):
    (tmp_path / "n.xml").write_text(NODE)
    compare(f"test://{tmp_path / 'n.xml'}", cmd, tmp_path)


@pytest.mark.parametrize("cmd", [
    "domstats alpha; domstats --list-paused; domstats --list-other --list-transient; "
    "domstats --list-inactive --list-transient; domstats saved beta --list-persistent; domstats gamma epsilon; "
    "cpu-stats delta; vcpuinfo beta --pretty; domcontrol alpha",
    "cpu-stats beta",
    "domtime beta",
])
def test_wide_node(cmd, tmp_path):
    compare(f"test://{WIDE / 'node.xml'}", cmd, tmp_path)


def _json(cmd: str):
    from virsh_side import VIRTCTL

    out = subprocess.run([VIRTCTL, "-c", "test:///default", "--json", *cmd.split()], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def test_json_shapes():
    recs = _json("domstats")
    assert recs == [{"domain": "test", "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f",
                     "stats": {"state.state": 1, "state.reason": 0}}]
    cpu = _json("cpu-stats test")
    assert [c["cpu"] for c in cpu["cpus"]] == [0, 1] and cpu["total"]["user_time"] == 5540000000
    v = _json("vcpuinfo test")
    assert v["host_cpus"] == 8 and [x["vcpu"] for x in v["vcpus"]] == [0, 1]
    assert v["vcpus"][0]["affinity"] == list(range(8)) and v["vcpus"][0]["state"] == "running"
    assert _json("domblkerror test")["errors"] == [{"disk": "vda", "error": "unspecified error"}]
    assert _json("domcontrol test")["state"] == "ok"
    assert _json("domtime test")["seconds"] == 627319920
    assert _json("nodecpustats")["system"] == 34678723400000
    assert _json("freecell --all")["total_kib"] == 6144
    assert _json("maxvcpus")["max_vcpus"] == 32
    assert _json("capabilities")["xml"].startswith("<capabilities>")
