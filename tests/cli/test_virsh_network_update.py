"""net-update's portgroup and forward-interface sections against virsh on
test:///default: every line of tests/cli/wide/network_update_more.txt
(add, add-first, add-last, delete, modify, and libvirt's errors)."""
from __future__ import annotations

from pathlib import Path

import pytest

from virsh_side import compare, needs_virsh

pytestmark = needs_virsh

URI = "test:///default"
CASES = [line for line in (Path(__file__).parent / "wide" / "network_update_more.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("cmd", CASES)
def test_net_update_matches_virsh(cmd, tmp_path):
    compare(URI, cmd, tmp_path)
