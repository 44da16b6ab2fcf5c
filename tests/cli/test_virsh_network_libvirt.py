"""Networks and the domain side of networking through the libvirt driver:
every case of tests/cli/wide/network.txt, network_update_more.txt and
iflink.txt, and the domifaddr/domifstat cases of test_virsh_domain_net.py,
run as ``virtctl -c libvirt:test:///default`` (libvirt's own test driver,
through the binding) against ``virsh -c test:///default``: identical stdout
and the same success."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from virsh_side import both, needs_virsh, norm, verdict

libvirt = pytest.importorskip("libvirt", reason="the libvirt binding is not installed (pip install '.[libvirt]')")

WIDE = Path(__file__).parent / "wide"
FILES = ("network.txt", "network_update_more.txt", "iflink.txt")

# test_virsh_domain_net.py's cases ({f}: its t2.xml)
DOM = ("<domain type='test'><name>t2</name><memory>8192</memory><os><type>hvm</type></os><devices>"
       "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/>"
       "<target dev='vn0'/></interface>"
       "<interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/></interface>"
       "<interface type='network'><mac address='52:54:00:00:00:03'/><source network='default'/></interface>"
       "</devices></domain>")
DOMAIN_NET = [
    "domifaddr test", "domifaddr test --full", "domifaddr test --source lease", "domifaddr test --source arp",
    "domifaddr test --source agent", "domifaddr test --interface testnet0", "domifaddr test --interface nosuch",
    "domifaddr test --source bogus", "destroy test; domifaddr test", "domifaddr nosuch",
    "domifstat test vnet9", "destroy test; domifstat test testnet0", "domifstat nosuch testnet0",
    "define {f}; start t2; domifaddr t2; domifaddr t2 --interface vn0; destroy t2; start t2; domifaddr t2 --full",
    # figures from the clock: compared with the numbers normalised (_CLOCK)
    "domifstat test testnet0", "domifstat test aa:bb:cc:dd:ee:ff",
    "define {f}; start t2; domifstat t2 vn0; domifstat t2 52:54:00:00:00:02",
]
_CLOCK = re.compile(r"^(\S+ [rt]x_\w+) \d+$", re.M)

# case -> reason (each one stated in the README's "differs from virsh on purpose")
LIBVIRT_DIFFERS: dict[str, str] = {}


def _cases() -> list[tuple[str, str]]:
    out = []
    for name in FILES:
        for line in (WIDE / name).read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append((name, line.replace("\\n", "\n")))
    return out + [("domain_net", c) for c in DOMAIN_NET]


CASES = _cases()


def _one(name: str, raw: str, files: Path) -> str | None:
    """None when the case behaves as it must, else what is wrong."""
    cmd = raw.format(dir=files, f=files / "t2.xml")
    theirs, ours = both("test:///default", cmd, files, ours_uri="libvirt:test:///default")
    return verdict(f"{name}: {raw!r}", theirs, ours, differs=raw in LIBVIRT_DIFFERS,
                   key=lambda out: _CLOCK.sub(r"\1 N", norm(out)))


@needs_virsh[0]
@needs_virsh[1]
def test_every_network_case_through_libvirt_as_virsh(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "t2.xml").write_text(DOM)
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(lambda nc: _one(nc[0], nc[1], tmp_path), CASES) if p]
    assert len(CASES) >= 90
    assert not problems, f"{len(problems)} of {len(CASES)} cases:\n" + "\n".join(problems)


def test_domifstat_through_libvirt_is_not_vacuous(tmp_path):
    # the clock normalisation above must still see all eight figures
    theirs, ours = both("test:///default", "domifstat test testnet0", tmp_path, ours_uri="libvirt:test:///default")
    assert ours.returncode == 0, ours.stderr
    assert len(_CLOCK.findall(ours.stdout)) == len(_CLOCK.findall(theirs.stdout)) == 8


def test_differs_are_in_the_readme():
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    section = readme[readme.index("differs from virsh on purpose"):]
    for words in set(LIBVIRT_DIFFERS.values()):
        assert words in section, words
