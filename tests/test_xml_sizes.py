"""Hostile sizes: the documented limits on what a document may hold, and
big-but-allowed documents that must still define.

No timing assertions: every command runs in a subprocess with a 60 s
timeout (cli_runner.run_installed), so quadratic work shows as a timeout,
not as a slow pass.  tests/bench/bench_xml_sizes.py prints the times.
"""
from __future__ import annotations

import re

import pytest

from cli_runner import run_installed
from virtctl.errors import XMLError
from virtctl.xml import domain as D
from virtctl.xml import validate as V
from virtctl.xml import xmlapi


def _dev(i: int) -> str:
    s, i = "", i + 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return "vd" + s


def domain(name: str, disks: int = 0, *, reverse: bool = False, attrs: int = 0, metadata: str = "",
           dtype: str = "test") -> str:
    order = range(disks - 1, -1, -1) if reverse else range(disks)
    devs = "".join(f"<disk type='file' device='disk'><source file='/img/{name}-{i}.img'/>"
                   f"<target dev='{_dev(i)}' bus='virtio'/></disk>\n" for i in order)
    extra = "".join(f" a{i}='x'" for i in range(attrs))
    md = f"<metadata>{metadata}</metadata>" if metadata else ""
    return (f"<domain type='{dtype}'{extra}>\n<name>{name}</name>{md}<memory>65536</memory>\n"
            f"<os><type>hvm</type></os>\n<devices>\n{devs}</devices>\n</domain>\n")


def _refused(data: str, source: str = "s.xml") -> str:
    with pytest.raises(XMLError) as exc:
        xmlapi.parse(data, source)
    assert exc.value.code == "XML_ERROR"
    return exc.value.message


# --- the parser's limits (each at the limit, then one past it) ----------------------

def test_attributes_per_element():
    at = " ".join(f"m:a{i}='1'" for i in range(xmlapi.MAX_ATTRIBUTES))
    V.validate(xmlapi.parse(domain("a", metadata=f"<m:x xmlns:m='urn:m' {at}/>")))  # free-form: valid
    msg = _refused(domain("a", metadata=f"<m:x xmlns:m='urn:m' {at} m:one='more'/>"))
    assert msg == (f"s.xml:2: /domain/metadata/m:x: element has {xmlapi.MAX_ATTRIBUTES + 1} attributes, "
                   f"more than the limit of {xmlapi.MAX_ATTRIBUTES} per element")


def test_children_per_element():
    V.validate(xmlapi.parse(domain("c", metadata="<m:x xmlns:m='urn:m'/>" * xmlapi.MAX_CHILDREN)))
    msg = _refused(domain("c", metadata="<m:x xmlns:m='urn:m'/>" * (xmlapi.MAX_CHILDREN + 1)))
    assert msg == (f"s.xml:2: /domain/metadata: element has {xmlapi.MAX_CHILDREN + 1} child elements, "
                   f"more than the limit of {xmlapi.MAX_CHILDREN} per element")


def test_depth():
    def nested(levels: int) -> str:  # <domain><metadata> are levels 1 and 2
        n = levels - 2
        return domain("d", metadata="<m:x xmlns:m='urn:m'>" + "<m:x>" * (n - 1) + "</m:x>" * n)
    V.validate(xmlapi.parse(nested(xmlapi.MAX_DEPTH)))
    msg = _refused(nested(xmlapi.MAX_DEPTH + 1))
    assert msg == f"s.xml:2: document is nested more than {xmlapi.MAX_DEPTH} levels deep (the limit)"


def test_elements_per_document():
    # narrow elements (1,000 each): only the total is too large
    chunk = "<m:y>" + "<m:x/>" * 999 + "</m:y>"
    count = xmlapi.MAX_ELEMENTS // 1000 + 1
    msg = _refused(f"<r xmlns:m='urn:m'>{chunk * count}</r>")
    assert msg == f"s.xml: document has {count * 1000 + 1} elements, more than the limit of {xmlapi.MAX_ELEMENTS}"


def test_children_of_wide_elements_share_one_budget():
    # libxml2's validation is quadratic in siblings: two elements of 20,000
    # children are allowed (the budget), a third wide element is not
    wide = "<m:y>" + "<m:x/>" * (xmlapi.MAX_WIDE_CHILDREN // 2) + "</m:y>"
    V.validate(xmlapi.parse(domain("w", metadata=f"<m:r xmlns:m='urn:m'>{wide * 2}</m:r>")))
    third = "<m:y>" + "<m:x/>" * (xmlapi.WIDE + 1) + "</m:y>"
    msg = _refused(domain("w", metadata=f"<m:r xmlns:m='urn:m'>{wide * 2}{third}</m:r>"))
    assert msg == (f"s.xml: document has {xmlapi.MAX_WIDE_CHILDREN + xmlapi.WIDE + 1} elements in elements "
                   f"of more than {xmlapi.WIDE} children each, more than the limit of "
                   f"{xmlapi.MAX_WIDE_CHILDREN}")


def test_what_would_format_past_the_size_limit_is_refused(tmp_path):
    """Indentation makes a deep document grow: 320 KB in, 16 MB out.  Such a
    definition could be written but never read back: refused, nothing kept."""
    chain = "<m:c>" * 200 + "<m:x/>" * 1000 + "</m:c>" * 200
    path = tmp_path / "deep.xml"
    path.write_text(domain("deep", metadata=f"<m:r xmlns:m='urn:m'>{chain * 40}</m:r>"))
    assert path.stat().st_size < 400_000
    for uri in ("test:///default", f"qemu:///embed?root={tmp_path}/root"):
        r = run_installed("-c", uri, "define", str(path))
        assert r.status == 5, r.err
        assert (f"the formatted document would be larger than the limit of {xmlapi.MAX_BYTES} bytes "
                f"(it could not be read back)") in r.err
        assert "deep" not in run_installed("-c", uri, "list", "--all", "--name").out


def test_limits_are_far_above_libvirts_corpus():
    # (the figures of the comment beside the limits, checked)
    assert xmlapi.MAX_ATTRIBUTES >= 30 * 7 and xmlapi.MAX_CHILDREN >= 80 * 248
    assert xmlapi.MAX_DEPTH >= 15 * 15 and xmlapi.MAX_ELEMENTS >= 400 * 440
    assert D.MAX_DEVICES >= 16 * 248
    assert xmlapi.MAX_DEPTH < 256  # libxml2's own limit: ours must be the one reported


# --- through the installed virtctl ---------------------------------------------------

def test_validate_of_100000_attributes_is_refused(tmp_path):
    path = tmp_path / "attrs.xml"
    path.write_text(domain("attrs", attrs=100_000))
    r = run_installed("validate", str(path))
    assert r.status == 5
    assert (f"{path}:1: /domain: element has 100001 attributes, more than the limit of "
            f"{xmlapi.MAX_ATTRIBUTES} per element") in r.err


def test_culprit_finder_on_many_bad_attributes_below_the_limit(tmp_path):
    # every attribute unknown: 50 problems reported, the count of the rest
    path = tmp_path / "attrs.xml"
    path.write_text(domain("attrs", attrs=xmlapi.MAX_ATTRIBUTES - 1))
    r = run_installed("validate", str(path))
    assert r.status == 5
    assert len(re.findall(r"unknown attribute 'a\d+'", r.out + r.err)) == 50


@pytest.mark.parametrize("uri", ["test:///default", "qemu:///embed"])
def test_define_at_the_device_limit(tmp_path, uri):
    """Four domains at the limit, disks in reverse order (libvirt's insertion
    sorts them: the worst case of the old quadratic code, which took about
    20 s per domain) in one command string: well under the 60 s timeout
    when linear, past it when quadratic."""
    dtype = "test" if uri.startswith("test") else "qemu"
    if dtype == "qemu":
        uri = f"qemu:///embed?root={tmp_path}/root"
    n = D.MAX_DEVICES
    cmds = []
    for k in range(4):
        path = tmp_path / f"many{k}.xml"
        path.write_text(domain(f"many{k}", n, reverse=True, dtype=dtype))
        cmds.append(f"define {path}")
    r = run_installed("-c", uri, "; ".join(cmds) + "; domblklist many3")
    assert r.status == 0, r.err
    targets = [ln.split()[0] for ln in r.out.splitlines() if ln.strip().startswith("vd")]
    assert targets == [_dev(i) for i in range(n)]


@pytest.mark.parametrize("uri", ["test:///default", "qemu:///embed"])
@pytest.mark.parametrize("n", [D.MAX_DEVICES + 1, 10_000])
def test_define_past_the_device_limit_is_refused(tmp_path, uri, n):
    if uri == "qemu:///embed":
        uri = f"qemu:///embed?root={tmp_path}/root"
    path = tmp_path / "toomany.xml"
    path.write_text(domain("toomany", n))
    r = run_installed("-c", uri, "define", str(path))
    assert r.status == 5
    assert f"{path}: /domain/devices: {n} devices, more than the limit of {D.MAX_DEVICES} per domain" in r.err
    r = run_installed("-c", uri, "list", "--all", "--name")
    assert "toomany" not in r.out


def test_validate_counts_devices_too(tmp_path):
    path = tmp_path / "toomany.xml"
    path.write_text(domain("toomany", D.MAX_DEVICES + 1))
    r = run_installed("validate", str(path))
    assert r.status == 5 and f"more than the limit of {D.MAX_DEVICES} per domain" in r.err


def test_what_normalisation_pushes_past_a_limit_is_never_formatted():
    # at the limit of elements as given; normalize adds <uuid>, <clock>, ...
    n = xmlapi.MAX_ELEMENTS - 8  # domain, name, memory, os, type, devices, metadata, m:r
    groups, rest = divmod(n, 1000)  # narrow groups of 1,000 elements, then the rest
    md = "<m:y>" + "<m:x/>" * 999 + "</m:y>"
    d = D.DomainDef.parse(domain("full", metadata=f"<m:r xmlns:m='urn:m'>{md * groups}<m:y>"
                                 + "<m:x/>" * (rest - 1) + "</m:y></m:r>"))
    assert int(d.root.xpath("count(//*)")) == xmlapi.MAX_ELEMENTS
    with pytest.raises(XMLError) as exc:
        d.normalize()
    assert exc.value.message.startswith("the formatted definition: document has ")
    with pytest.raises(XMLError) as exc:
        d.to_xml()
    assert exc.value.message.startswith("the formatted definition: document has ")


@pytest.mark.parametrize("uri", ["test:///default", "qemu:///embed"])
def test_define_refuses_what_normalisation_pushes_past_a_limit(tmp_path, uri):
    dtype = "test" if uri.startswith("test") else "qemu"
    if dtype == "qemu":
        uri = f"qemu:///embed?root={tmp_path}/root"
    groups, rest = divmod(xmlapi.MAX_ELEMENTS - 8, 1000)
    md = "<m:y>" + "<m:x/>" * 999 + "</m:y>"
    path = tmp_path / "full.xml"
    path.write_text(domain("full", dtype=dtype, metadata=f"<m:r xmlns:m='urn:m'>{md * groups}<m:y>"
                           + "<m:x/>" * (rest - 1) + "</m:y></m:r>"))
    r = run_installed("-c", uri, "define", str(path))
    assert r.status == 5 and "the formatted definition: document has" in r.err, r.err
    assert "full" not in run_installed("-c", uri, "list", "--all", "--name").out
