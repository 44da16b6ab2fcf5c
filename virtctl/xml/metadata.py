"""A domain's title, description and custom metadata (desc, metadata), as
libvirt's virDomainGetMetadata/virDomainSetMetadata do them, on a
DomainDef; both drivers call these.

``<metadata>`` holds one element per namespace URI: setting one replaces
the element of that URI (under the prefix ``key``, given to every element
of the new content that has no namespace of its own); reading one gives
it back without that namespace.
"""
from __future__ import annotations

import re

from virtctl.errors import InvalidArg, OperationFailed
from virtctl.xml import xmlapi

TYPES = ("description", "title", "element")
_NCNAME = re.compile(r"^[A-Za-z_][\w.-]*$")


def not_found() -> OperationFailed:
    return OperationFailed("metadata not found: Requested metadata element is not present",
                           detail={"reason": "no metadata"})


def _check_type(kind: str) -> None:
    if kind not in TYPES:
        raise InvalidArg(f"unknown metadata type '{kind}'", detail={"type": kind})


def get(definition, kind: str, uri: str | None = None) -> str:
    """The title, the description, or the element of namespace ``uri``
    (formatted, without its namespace); NOT_FOUND-like OPERATION_FAILED when absent."""
    _check_type(kind)
    root = definition.root
    if kind != "element":
        el = root.find(kind)
        if el is None or not (el.text or ""):
            raise not_found()
        return el.text
    if not uri:
        raise InvalidArg("invalid argument: a namespace URI is required for metadata elements")
    el = _element(root, uri)
    if el is None:
        raise not_found()
    from lxml import etree

    pre = "{" + uri + "}"
    nsmap = {p: u for p, u in el.nsmap.items() if u != uri}

    def build(src, parent):
        tag = src.tag[len(pre):] if src.tag.startswith(pre) else src.tag
        out = etree.Element(tag, attrib=dict(src.attrib), nsmap=nsmap) if parent is None \
            else etree.SubElement(parent, tag, attrib=dict(src.attrib))
        out.text = src.text
        for c in src:
            if isinstance(c.tag, str):
                build(c, out).tail = c.tail
        return out

    text = xmlapi.tostring_xpath_result(build(el, None))
    return text.rstrip("\n")


def _element(root, uri: str):
    md = root.find("metadata")
    if md is None:
        return None
    for child in md:
        if isinstance(child.tag, str) and xmlapi.namespace_of(child.tag) == uri:
            return child
    return None


def set_(definition, kind: str, value: str | None, *, key: str | None = None, uri: str | None = None) -> None:
    """Set (``value`` None or empty: remove) the title, description or the element of ``uri``."""
    _check_type(kind)
    if kind == "title" and value and "\n" in value:
        raise InvalidArg("metadata title can't contain newlines")
    if kind != "element":
        definition._set_text(kind, value or None)
        return
    if not uri:
        raise InvalidArg("invalid argument: a namespace URI is required for metadata elements")
    root = definition.root
    old = _element(root, uri)
    if value:
        if not key:
            raise InvalidArg("namespace key is required when modifying metadata")
        if not _NCNAME.match(key):
            raise InvalidArg("internal error: failed to validate prefix for a new XML namespace",
                             detail={"key": key})
        frag = xmlapi.parse(value, source="(metadata_xml)")
        new = _in_namespace(frag, uri, key)
    if old is not None:
        old.getparent().remove(old)
    md = root.find("metadata")
    if value:
        if md is None:
            md = xmlapi.sub(root, "metadata")
            definition._order_top()
        md.append(new)
    elif md is not None and len(md) == 0:
        root.remove(md)


def _in_namespace(frag, uri: str, key: str):
    """``frag`` with every element that has no namespace moved into ``uri``, prefix ``key``."""
    from lxml import etree

    nsmap = {p: u for p, u in frag.nsmap.items() if p is not None and p != key}
    nsmap[key] = uri

    def q(tag: str) -> str:
        return tag if tag.startswith("{") else "{" + uri + "}" + tag

    def build(src, parent):
        el = etree.Element(q(src.tag), attrib=dict(src.attrib), nsmap=nsmap) if parent is None \
            else etree.SubElement(parent, q(src.tag), attrib=dict(src.attrib))
        el.text = src.text
        for c in src:
            if isinstance(c.tag, str):
                build(c, el).tail = c.tail
        return el

    return build(frag, None)
