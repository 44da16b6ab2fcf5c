"""domifaddr and domifstat against virsh on the test driver."""
from __future__ import annotations

import re

import pytest

from virsh_side import both, compare, needs_virsh

pytestmark = needs_virsh

DOM = ("<domain type='test'><name>t2</name><memory>8192</memory><os><type>hvm</type></os><devices>"
       "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/>"
       "<target dev='vn0'/></interface>"
       "<interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/></interface>"
       "<interface type='network'><mac address='52:54:00:00:00:03'/><source network='default'/></interface>"
       "</devices></domain>")


@pytest.mark.parametrize("cmd", [
    "domifaddr test", "domifaddr test --full", "domifaddr test --source lease", "domifaddr test --source arp",
    "domifaddr test --source agent", "domifaddr test --interface testnet0", "domifaddr test --interface nosuch",
    "domifaddr test --source bogus", "destroy test; domifaddr test", "domifaddr nosuch",
    "domifstat test vnet9", "destroy test; domifstat test testnet0", "domifstat nosuch testnet0",
    "define {f}; start t2; domifaddr t2; domifaddr t2 --interface vn0; destroy t2; start t2; domifaddr t2 --full",
])
def test_default(cmd, tmp_path):
    f = tmp_path / "t2.xml"
    f.write_text(DOM)
    compare("test:///default", cmd.format(f=f), tmp_path)


_CLOCK = re.compile(r"^(\S+ \w+) \d+$", re.M)


@pytest.mark.parametrize("cmd", ["domifstat test testnet0", "domifstat test aa:bb:cc:dd:ee:ff",
                                 "define {f}; start t2; domifstat t2 vn0; domifstat t2 52:54:00:00:00:02"])
def test_domifstat_same_fields_clock_figures(cmd, tmp_path):
    f = tmp_path / "t2.xml"
    f.write_text(DOM)
    theirs, ours = both("test:///default", cmd.format(f=f), tmp_path)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert _CLOCK.sub(r"\1 N", ours.stdout) == _CLOCK.sub(r"\1 N", theirs.stdout)
    ov = [int(m.group(0).split()[-1]) for m in _CLOCK.finditer(ours.stdout)]
    tv = [int(m.group(0).split()[-1]) for m in _CLOCK.finditer(theirs.stdout)]
    assert len(ov) == len(tv) >= 8
    # the same clock formulas: each figure within a minute of virsh's (microseconds / divisor)
    for a, b, div in zip(ov, tv, [10, 100, 10**6, 2 * 10**6, 20, 110, 3 * 10**6, 4 * 10**6] * 2):
        assert abs(a - b) <= 60 * 10**6 // div + 1, (a, b, div)
