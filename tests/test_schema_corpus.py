"""virtctl's schemas against libvirt 9.0's own test corpus.

Targets: every file in an ``invalid/`` folder is rejected; at least 90% of
``domain/valid`` and all of the other ``valid/`` folders are accepted; every
accepted file is still accepted after a round trip through our formatter
(``xmlapi.tostring(xmlapi.parse(data))``).  Run with ``pytest -s`` to see the
acceptance figures and the most common reasons for rejection.
"""
from __future__ import annotations

import collections
import os
import re
from pathlib import Path

import pytest

from virtctl.errors import XMLError
from virtctl.xml import validate as V
from virtctl.xml import xmlapi

SHARED = Path(os.environ.get("VIRTCTL_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
CORPUS = SHARED / "corpus" / "libvirt-9.0"

# corpus folder -> kind of document
FOLDERS = {
    "domain": "domain",
    "network": "network",
    "storagepool": "pool",
    "storagevol": "volume",
    "snapshot": "domainsnapshot",
}
# minimum share of valid/ files accepted
TARGET = {"domain": 0.90, "network": 1.0, "storagepool": 1.0, "storagevol": 1.0, "snapshot": 1.0}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


def _reason(problem: V.Problem) -> str:
    """A problem's message with the specific values blanked, to count kinds."""
    msg = re.sub(r"'[^']*'", "'…'", problem.message)
    tail = re.sub(r"\[\d+\]", "", problem.xpath.rsplit("/", 1)[-1])
    return f"{tail}: {msg}"


def _check(path, kind):
    data = path.read_bytes()
    root = xmlapi.parse(data, source=path.name)
    return V.problems(root, kind, source=path.name, text=data), root


@pytest.fixture(scope="module")
def results():
    """Validate the whole corpus once: {folder: {"valid": [...], "invalid": [...]}}."""
    out = {}
    for folder, kind in FOLDERS.items():
        out[folder] = {}
        for sub in ("valid", "invalid"):
            rows = []
            for path in sorted((CORPUS / folder / sub).glob("*.xml")):
                found, root = _check(path, kind)
                rows.append((path, found, root))
            out[folder][sub] = rows
    return out


def test_print_figures(results):
    reasons = collections.Counter()
    print()
    print(f"{'kind':<12} {'valid accepted':>18} {'invalid rejected':>18}")
    for folder, subs in results.items():
        valid = subs["valid"]
        acc = sum(1 for _, f, _ in valid if not f)
        inv = subs["invalid"]
        rej = sum(1 for _, f, _ in inv if f)
        share = f"{acc}/{len(valid)} ({100 * acc / len(valid):.1f}%)" if valid else "-"
        print(f"{folder:<12} {share:>18} {f'{rej}/{len(inv)}' if inv else '-':>18}")
        for _, found, _ in valid:
            if found:
                reasons[_reason(found[0])] += 1
    print("most common reasons for rejecting a valid/ file:")
    for reason, n in reasons.most_common(10) or [("(none)", 0)]:
        print(f"  {n:4d}  {reason}")
    inv_reasons = collections.Counter(
        _reason(f[0]) for subs in results.values() for _, f, _ in subs["invalid"] if f)
    print("reasons given for the invalid/ files:")
    for reason, n in inv_reasons.most_common(10):
        print(f"  {n:4d}  {reason}")


@pytest.mark.parametrize("folder", list(FOLDERS))
def test_valid_files_accepted(results, folder):
    valid = results[folder]["valid"]
    assert valid, f"no files in {folder}/valid"
    rejected = [f"{p.name}: {found[0]}" for p, found, _ in valid if found]
    share = 1 - len(rejected) / len(valid)
    assert share >= TARGET[folder], (
        f"{folder}: only {share:.1%} accepted (target {TARGET[folder]:.0%}); rejected:\n"
        + "\n".join(rejected[:40]))


@pytest.mark.parametrize("folder", [f for f in FOLDERS if (CORPUS / f / "invalid").is_dir()])
def test_invalid_files_rejected(results, folder):
    accepted = [p.name for p, found, _ in results[folder]["invalid"] if not found]
    assert not accepted, f"{folder}: invalid files accepted: {accepted}"
    for p, found, _ in results[folder]["invalid"]:
        with pytest.raises(XMLError) as exc:
            V.validate(xmlapi.parse(p.read_bytes(), source=p.name), FOLDERS[folder], source=p.name)
        assert exc.value.code == "XML_ERROR"
        assert exc.value.message.startswith(f"{p.name}:")
        assert exc.value.detail["problems"][0]["message"]


@pytest.mark.parametrize("folder", list(FOLDERS))
def test_round_trip_still_accepted(results, folder):
    """What our formatter writes from an accepted file is accepted too."""
    bad = []
    for path, found, root in results[folder]["valid"]:
        if found:
            continue
        text = xmlapi.tostring(root)
        again = xmlapi.parse(text, source=path.name)
        if V.problems(again, FOLDERS[folder], source=path.name):
            bad.append(path.name)
    assert not bad, f"{folder}: accepted, but not after a round trip: {bad}"


def test_every_kind_detected(results):
    for folder, kind in FOLDERS.items():
        for _, _, root in results[folder]["valid"][:3]:
            assert V.detect_kind(root) == kind
