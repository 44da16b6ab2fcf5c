"""Every Python package of the source tree is installed (pyproject lists
packages by hand because drivers/ and xmlschemas/ live at the top level): a
package missing from the list works in an editable install and fails in CI."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    found = set()
    for top, name in (("virtctl", "virtctl"), ("drivers", "virtctl.drivers"),
                      ("xmlschemas", "virtctl.xmlschemas")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), "add these to pyproject.toml's packages"
