"""Differential test against libvirt's own validator, ``virt-xml-validate``.

Deterministic mutations (fixed seed) of valid corpus files: an enumerated
attribute set to a bogus value, an unknown attribute, an unknown element,
a deleted attribute, text in a number.  Wherever libvirt rejects a mutant,
virtctl must reject it too.  Skipped where virt-xml-validate (Debian's
libvirt-clients, which needs xmllint) cannot run.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from virtctl.xml import validate as V
from virtctl.xml import xmlapi

SHARED = Path(os.environ.get("VIRTCTL_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
CORPUS = SHARED / "corpus" / "libvirt-9.0"
TOOL = shutil.which("virt-xml-validate")
SEED = 20240901
# corpus folder -> (virt-xml-validate kind, virtctl kind, files to take)
FOLDERS = {
    "domain": ("domain", "domain", 30),
    "network": ("network", "network", 4),
    "storagepool": ("storagepool", "pool", 3),
    "storagevol": ("storagevol", "volume", 3),
}
ENUM_ATTRS = {"type", "bus", "model", "mode", "device", "cache", "policy", "placement",
              "offset", "state", "enabled", "managed", "format", "name", "action", "unit"}


def _tool_works(tmp: Path) -> bool:
    if TOOL is None or not CORPUS.is_dir():
        return False
    sample = next((CORPUS / "network" / "valid").glob("*.xml"))
    r = subprocess.run([TOOL, str(sample), "network"], capture_output=True, timeout=60)
    return r.returncode == 0


def _libvirt_accepts(path: Path, kind: str) -> bool:
    r = subprocess.run([TOOL, str(path), kind], capture_output=True, timeout=60)
    return r.returncode == 0


def _candidates(root):
    """Elements of libvirt's own vocabulary (not metadata, not foreign namespaces)."""
    out = []
    for el in root.iter():
        if not xmlapi.is_element(el):
            continue
        chain = [el] + list(el.iterancestors())
        if any(xmlapi.namespace_of(e.tag) or xmlapi.local_name(e.tag) in ("metadata", "cookie")
               for e in chain):
            continue
        out.append(el)
    return out


def _mutants(text: str, rng: random.Random):
    """Yield (description, mutated text) for one document."""
    def fresh():
        return xmlapi.parse(text)

    # 1. an enumerated attribute set to a bogus value
    root = fresh()
    els = [e for e in _candidates(root) if any(a in ENUM_ATTRS for a in e.attrib)]
    if els:
        el = rng.choice(els)
        attr = rng.choice(sorted(a for a in el.attrib if a in ENUM_ATTRS))
        el.set(attr, "bogus-value")
        yield f"{xmlapi.path_of(el)}/@{attr}='bogus-value'", xmlapi.tostring(root)
    # 2. an unknown attribute
    root = fresh()
    el = rng.choice(_candidates(root))
    el.set("frobnicate", "1")
    yield f"{xmlapi.path_of(el)}/@frobnicate", xmlapi.tostring(root)
    # 3. an unknown element
    root = fresh()
    el = rng.choice(_candidates(root))
    xmlapi.sub(el, "frobnicate")
    yield f"{xmlapi.path_of(el)}/frobnicate", xmlapi.tostring(root)
    # 4. a deleted attribute
    root = fresh()
    els = [e for e in _candidates(root) if e.attrib]
    if els:
        el = rng.choice(els)
        attr = rng.choice(sorted(el.attrib))
        del el.attrib[attr]
        yield f"{xmlapi.path_of(el)} without @{attr}", xmlapi.tostring(root)
    # 5. text into a number (element text, or attribute)
    root = fresh()
    nums = [e for e in _candidates(root) if re.fullmatch(r"\s*\d+\s*", e.text or "") and len(e) == 0]
    if nums:
        el = rng.choice(nums)
        el.text = "twelve"
        yield f"{xmlapi.path_of(el)} = 'twelve'", xmlapi.tostring(root)
    root = fresh()
    pairs = [(e, a) for e in _candidates(root) for a, v in e.attrib.items() if re.fullmatch(r"\d+", v)]
    if pairs:
        el, attr = rng.choice(pairs)
        el.set(attr, "twelve")
        yield f"{xmlapi.path_of(el)}/@{attr}='twelve'", xmlapi.tostring(root)


def test_virtctl_rejects_what_libvirt_rejects(tmp_path):
    if not _tool_works(tmp_path):
        pytest.skip("virt-xml-validate (with xmllint) is not available")
    rng = random.Random(SEED)
    cases = []
    for folder, (lv_kind, kind, count) in FOLDERS.items():
        files = sorted((CORPUS / folder / "valid").glob("*.xml"))
        for path in rng.sample(files, min(count, len(files))):
            text = path.read_text()
            if V.problems(xmlapi.parse(text), kind):
                continue  # a file virtctl does not accept as it is: no baseline
            for i, (what, mutant) in enumerate(_mutants(text, rng)):
                out = tmp_path / f"{folder}-{path.stem}-{i}.xml"
                out.write_text(mutant)
                cases.append((out, lv_kind, kind, f"{path.name}: {what}"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(lambda c: _libvirt_accepts(c[0], c[1]), cases))

    missed, stricter = [], []
    rejected_by_libvirt = 0
    for (out, _lv, kind, what), lv_ok in zip(cases, verdicts):
        ours = V.problems(xmlapi.parse(out.read_bytes()), kind, source=out.name)
        if not lv_ok:
            rejected_by_libvirt += 1
            if not ours:
                missed.append(what)
        elif ours:
            stricter.append(f"{what}: {ours[0].message}")
    print(f"\n{len(cases)} mutants; libvirt rejects {rejected_by_libvirt}; "
          f"virtctl misses {len(missed)}; virtctl stricter than libvirt on {len(stricter)}")
    for s in stricter[:15]:
        print("  stricter:", s)
    assert rejected_by_libvirt >= len(cases) // 2, "too few mutants rejected by libvirt to mean much"
    assert not missed, "libvirt rejects, virtctl accepts:\n" + "\n".join(missed)


# --- random documents from both grammars ---------------------------------------

def _fuzz_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "schema_fuzz.py"
    spec = importlib.util.spec_from_file_location("schema_fuzz", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


LIBVIRT_SCHEMAS = SHARED / "reference" / "libvirt-9.0" / "schemas"
# documents per kind and direction: enough to take every branch of the small
# grammars several times; scripts/schema_fuzz.py runs thousands for an audit
FUZZ_COUNTS = {"domain": 150, "network": 150, "pool": 150, "volume": 120, "domainsnapshot": 60}


@pytest.mark.skipif(not (LIBVIRT_SCHEMAS / "domain.rng").is_file(),
                    reason=f"libvirt's schemas not found at {LIBVIRT_SCHEMAS}")
@pytest.mark.parametrize("reverse", [False, True], ids=["from-libvirt", "from-virtctl"])
@pytest.mark.parametrize("kind", list(FUZZ_COUNTS))
def test_random_documents_agree(kind, reverse):
    """Documents generated from libvirt's grammar (every choice and option
    taken in turn, values drawn from its patterns) are accepted by virtctl,
    and documents generated from virtctl's are accepted by libvirt, but for
    the hypervisor namespaces virtctl refuses on purpose and for element
    orders that only libxml2's <interleave> handling refuses (README)."""
    fuzz = _fuzz_module()
    res = fuzz.compare(kind, FUZZ_COUNTS[kind], seed=SEED, reverse=reverse, libvirt=LIBVIRT_SCHEMAS)
    assert res.accepted >= FUZZ_COUNTS[kind] // 3, "too few valid documents to mean much"
    shown = "\n".join(f"{len(docs)}x {key}\n{xmlapi.tostring(docs[0][1])}"
                      for key, docs in list(res.groups.items())[:5])
    assert not res.groups, f"{res.refused} documents refused by {'libvirt' if reverse else 'virtctl'}:\n{shown}"
