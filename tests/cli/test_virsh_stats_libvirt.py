"""Statistics, host, metadata and the small domain commands through the
libvirt driver: every case of tests/cli/wide/stats.txt and meta.txt, and the
case lists of test_virsh_stats.py and test_virsh_meta_event.py (node files
included), run as ``virtctl -c libvirt:test:///...`` (libvirt's own test
driver, through the binding) against ``virsh -c test:///...``: the same
stdout and the same success.

Here libvirt itself answers, so nothing differs on purpose (LIBVIRT_DIFFERS
is empty); the exit codes are virtctl's own (its codes table), only success
or failure is compared.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from virsh_side import both, needs_virsh, verdict

libvirt = pytest.importorskip("libvirt", reason="the libvirt binding is not installed (pip install '.[libvirt]')")

HERE = Path(__file__).parent
WIDE = HERE / "wide"


def _module(name: str):
    # test modules are not importable by name under --import-mode=importlib
    spec = importlib.util.spec_from_file_location(f"_lv_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _params(func) -> list[str]:
    """The command strings of a ``@pytest.mark.parametrize("cmd", [...])`` test."""
    for mark in getattr(func, "pytestmark", []):
        if mark.name == "parametrize" and mark.args[0] == "cmd":
            return list(mark.args[1])
    raise AssertionError(f"{func.__name__} has no cmd parameters")


_stats = _module("test_virsh_stats")
_meta = _module("test_virsh_meta_event")

# (where, command): "default" is test:///default, "node" the node file of
# test_virsh_stats.py (NODE), "wide" tests/cli/wide/node.xml
CASES: list[tuple[str, str]] = (
    [("default", c) for c in _lines(WIDE / "stats.txt")]
    + [("default", c) for c in _lines(WIDE / "meta.txt") + _meta.EXTRA]
    + [("node", c) for c in _params(_stats.test_node_file)]
    + [("wide", c) for c in _params(_stats.test_wide_node)]
    # host commands on a node file (no NUMA cells) and the rest of the host cases
    + [("wide", c) for c in ("freecell; freecell --all; freecell 0", "freecell --cellno 0", "capabilities",
                             "nodecpustats; nodecpustats --cpu 3; nodememstats", "sysinfo; maxvcpus",
                             "domcapabilities --virttype test", "maxvcpus --type qemu")]
)

# (where, command) -> the words of README's "differs on purpose" item; libvirt
# itself answers here, so none
LIBVIRT_DIFFERS: dict[tuple[str, str], str] = {}


def _one(case: tuple[str, str], home: Path) -> str | None:
    """None when the case behaves as it must, else what is wrong."""
    where, cmd = case
    uri = {"default": "test:///default", "node": f"test://{home / 'n.xml'}",
           "wide": f"test://{WIDE / 'node.xml'}"}[where]
    theirs, ours = both(uri, cmd, home, ours_uri="libvirt:" + uri)
    return verdict(f"{where}: {cmd!r}", theirs, ours, differs=case in LIBVIRT_DIFFERS)


@needs_virsh[0]
@needs_virsh[1]
def test_every_stats_and_meta_case_through_libvirt_as_virsh(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "n.xml").write_text(_stats.NODE)
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(lambda c: _one(c, tmp_path), CASES) if p]
    assert len(CASES) >= 120
    assert not problems, f"{len(problems)} of {len(CASES)} cases:\n" + "\n".join(problems)
