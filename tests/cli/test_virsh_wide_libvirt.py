"""The wide virsh comparison through the libvirt driver: every case of
tests/cli/wide/default.txt and node.txt run as ``virtctl -c libvirt:test:///...``
(libvirt's own test driver, through the binding) against ``virsh -c test:///...``.

Differences on purpose are fewer than on virtctl's own test driver (there
libvirt itself answers); those left are virtctl's own commands and words:
help's layout, ``version``, ``validate``, and ``uri``, which keeps the
``libvirt:`` prefix so that ``connect $(virtctl uri)`` reaches the same driver.
"""
from __future__ import annotations

import shutil

import pytest

from virsh_side import both, needs_virsh, verdict

libvirt = pytest.importorskip("libvirt", reason="the libvirt binding is not installed (pip install '.[libvirt]')")


def _wide():
    # the wide comparison's cases and tables (test modules are not importable
    # by name under --import-mode=importlib)
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_wide_cases", Path(__file__).with_name("test_virsh_wide.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_w = _wide()
CASES, DIFFERS, VM1_XML, WIDE = _w.CASES, _w.DIFFERS, _w.VM1_XML, _w.WIDE
_HELP, _VALIDATE, _VERSION = _w._HELP, _w._VALIDATE, _w._VERSION

_URI = "`uri` prints the `libvirt:` form it was given"
LIBVIRT_DIFFERS = {c: w for c, w in DIFFERS.items() if w in (_HELP, _VERSION, _VALIDATE)}
LIBVIRT_DIFFERS.update({"uri": _URI, "connect; uri": _URI})


def _one(name: str, raw: str, files) -> str | None:
    """None when the case behaves as it must, else what is wrong."""
    uri = "test:///default" if name.startswith("default") else f"test://{files}/node.xml"
    cmd = raw.format(dir=files)
    theirs, ours = both(uri, cmd, files, ours_uri="libvirt:" + uri)
    return verdict(f"{name}: {raw!r}", theirs, ours, differs=raw in LIBVIRT_DIFFERS)


@needs_virsh[0]
@needs_virsh[1]
def test_every_wide_case_through_libvirt_as_virsh(tmp_path):
    # one test running the ~600 cases eight at a time: each case is two short
    # processes, and one by one they would add minutes to the suite
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "vm1.xml").write_text(VM1_XML)
    (tmp_path / "bad.xml").write_text("<domain type='test'><name>bad</name>")
    shutil.copy(WIDE / "node.xml", tmp_path / "node.xml")
    with ThreadPoolExecutor(8) as pool:
        problems = [p for p in pool.map(lambda nc: _one(nc[0], nc[1], tmp_path), CASES) if p]
    assert len(CASES) >= 400
    assert not problems, f"{len(problems)} of {len(CASES)} cases:\n" + "\n".join(problems)


def test_differs_are_in_the_readme():
    from pathlib import Path

    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    section = readme[readme.index("differs from virsh on purpose"):]
    for words in set(LIBVIRT_DIFFERS.values()):
        assert words in section, words
