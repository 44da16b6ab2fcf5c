"""The one module that imports lxml: hardened parsing, formatting, XPath.

Everything else in virtctl works on the element objects this module returns
and calls the helpers here; no other module imports lxml, so the parser's
safety rules live in one place (see RELIABILITY.md, "XML"):

* any DOCTYPE is refused outright: no internal subset, so no entity
  expansion (billion laughs) and no external entities (XXE);
* no network access, no XInclude, no DTD loading;
* documents over ``MAX_BYTES`` (10 MiB, virsh's limit) are refused before
  parsing, and only regular files are read (a FIFO would block forever);
* what virtctl writes is formatted by :func:`tostring` and always re-parses
  under the same limits.
"""
from __future__ import annotations

import os
import re
import stat

from lxml import etree

from virtctl.errors import NoFile, SystemError_, XMLError

MAX_BYTES = 10 * 1024 * 1024

_DOCTYPE_RE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)

Element = etree._Element  # re-exported for type hints only


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,  # keeps libxml2's depth and text-size limits
        remove_blank_text=True,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse(data: str | bytes, source: str = "<input>") -> Element:
    """Parse one XML document safely and return its root element.

    Raises XMLError naming ``source``, the line and column.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_BYTES:
        raise XMLError(
            f"{source}: document is {len(data)} bytes, larger than the limit of {MAX_BYTES} bytes"
        )
    if _DOCTYPE_RE.search(data) or _ENTITY_RE.search(data):
        raise XMLError(f"{source}: DOCTYPE and entity declarations are not allowed")
    if not data.strip():
        raise XMLError(f"{source}: document is empty")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (0, 0)
        msg = exc.msg or str(exc)
        # lxml appends ", line N, column M"; we print our own prefix
        msg = re.sub(r",? line \d+, column \d+$", "", msg)
        raise XMLError(f"{source}:{line}:{col}: malformed XML: {msg}") from None
    except ValueError as exc:  # e.g. encoding declaration on a str
        raise XMLError(f"{source}: {exc}") from None
    if not isinstance(root.tag, str):
        raise XMLError(f"{source}: no root element")
    return root


def read_file(path: str) -> bytes:
    """Read an XML file given by the user, refusing what cannot be a document."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NoFile(f"failed to open '{path}': No such file or directory", detail={"path": path}) from None
    except OSError as exc:
        raise SystemError_(f"failed to open '{path}': {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise XMLError(f"'{path}' is not a regular file")
    if st.st_size > MAX_BYTES:
        raise XMLError(f"{path}: file is {st.st_size} bytes, larger than the limit of {MAX_BYTES} bytes")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SystemError_(f"failed to read '{path}': {exc.strerror}") from None
    return data


def parse_file(path: str) -> Element:
    return parse(read_file(path), source=path)


# --- building and reading trees -------------------------------------------

def element(tag: str, attrib: dict | None = None, text: str | None = None) -> Element:
    el = etree.Element(tag, {k: str(v) for k, v in (attrib or {}).items()})
    if text is not None:
        el.text = str(text)
    return el


def sub(parent: Element, tag: str, attrib: dict | None = None, text: str | None = None,
        index: int | None = None) -> Element:
    el = element(tag, attrib, text)
    if index is None:
        parent.append(el)
    else:
        parent.insert(index, el)
    return el


def copy(el: Element) -> Element:
    """A deep copy of ``el`` as the root of its own tree."""
    import copy as _copy

    return _copy.deepcopy(el)


def xpath(el: Element, expr: str):
    """Evaluate an XPath expression; a bad expression is INVALID_ARG-free XMLError."""
    try:
        return el.xpath(expr)
    except etree.XPathError as exc:
        entry = exc.error_log.last_error if exc.error_log else None
        raise XMLError(f"invalid XPath expression '{expr}': {exc}",
                       detail={"expression": expr, "reason": str(exc),
                               "column": entry.column if entry is not None else None}) from None


def cleanup_namespaces(el: Element) -> None:
    """Drop namespace declarations no element or attribute uses any more."""
    etree.cleanup_namespaces(el)


def path_of(el: Element) -> str:
    """An XPath locating ``el`` from the root, e.g. /domain/devices/disk[2]/target."""
    return el.getroottree().getpath(el)


def line_of(el: Element) -> int:
    return el.sourceline or 0


def is_element(node) -> bool:
    return isinstance(node, etree._Element) and isinstance(node.tag, str)


# --- formatting as libvirt does --------------------------------------------

def _esc_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _esc_attr(s: str, quote: str = "'") -> str:
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    # XML normalises raw white space in attributes to spaces: keep it as references
    s = s.replace("\n", "&#10;").replace("\t", "&#9;").replace("\r", "&#13;")
    return s.replace("'", "&apos;") if quote == "'" else s


def _qname(el: Element, name: str) -> str:
    if not name.startswith("{"):
        return name
    uri, local = name[1:].split("}", 1)
    for prefix, u in el.nsmap.items():
        if u == uri:
            return f"{prefix}:{local}" if prefix else local
    return local


def _format(el: Element, indent: int, out: list[str], q: str = "'") -> None:
    pad = "  " * indent
    parent = el.getparent()
    inherited = parent.nsmap if parent is not None else {}
    decls = "".join(
        f" xmlns{':' + p if p else ''}={q}{_esc_attr(u, q)}{q}"
        for p, u in el.nsmap.items() if inherited.get(p) != u
    )
    tag = _qname(el, el.tag)
    attrs = decls + "".join(f" {_qname(el, k)}={q}{_esc_attr(v, q)}{q}" for k, v in el.attrib.items())
    children = [c for c in el if is_element(c)]
    text = el.text or ""
    if not children:
        if text.strip() or (text and tag in ("description", "title")):
            out.append(f"{pad}<{tag}{attrs}>{_esc_text(text)}</{tag}>")
        elif tag == "devices":  # libvirt never self-closes <devices>
            out.append(f"{pad}<{tag}{attrs}>")
            out.append(f"{pad}</{tag}>")
        else:
            out.append(f"{pad}<{tag}{attrs}/>")
        return
    out.append(f"{pad}<{tag}{attrs}>")
    for c in children:
        _format(c, indent + 1, out, q)
    out.append(f"{pad}</{tag}>")


def tostring(el: Element, indent: int = 0) -> str:
    """Format ``el`` like libvirt: two-space indent, single-quoted attributes,
    a final newline."""
    out: list[str] = []
    _format(el, indent, out)
    return "\n".join(out) + "\n"


def tostring_xpath_result(value) -> str:
    """Format one result of :func:`xpath` for ``dumpxml --xpath``."""
    # as libxml2 dumps nodes (double quotes), which is what virsh prints
    if is_element(value):
        out: list[str] = []
        _format(value, 0, out, '"')
        return "\n".join(out)
    if getattr(value, "is_attribute", False):
        return f' {value.attrname}="{_esc_attr(str(value), chr(34))}"'

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return str(value)


# --- RelaxNG (schema validation) --------------------------------------------
# Owned by the schema work (virtctl/xml/validate.py is its only caller): the
# lxml-specific pieces of RelaxNG validation live here so that no other module
# imports lxml.

_RNG_NS = "http://relaxng.org/ns/structure/1.0"


def _schema_parser() -> etree.XMLParser:
    # schemas are our own package data, but are read with the same care
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           remove_comments=True, remove_pis=True)


def load_relaxng(path: str, start: str | None = None):
    """Compile the RelaxNG schema in file ``path``.

    With ``start``, compile a small wrapper grammar that includes ``path`` and
    replaces its ``<start>`` with ``<ref name="start"/>``: the resulting
    schema validates one element against that one define (a sub-pattern).
    Raises XMLError if the schema cannot be compiled (a bug in the schema).
    """
    try:
        if start is None:
            doc = etree.parse(path, _schema_parser())
        else:
            href = _esc_attr(os.path.abspath(path))
            wrapper = (
                f'<grammar xmlns="{_RNG_NS}"><include href="{href}">'
                f'<start><ref name="{_esc_attr(start)}"/></start></include></grammar>'
            )
            doc = etree.fromstring(wrapper.encode(), _schema_parser(), base_url=os.path.abspath(path))
        return etree.RelaxNG(doc)
    except (etree.RelaxNGParseError, etree.XMLSyntaxError, OSError) as exc:
        what = f"{path}" + (f" (start {start})" if start else "")
        raise XMLError(f"cannot compile schema {what}: {exc}") from None


def relaxng_errors(schema, el: Element) -> list[tuple[int, int, str, str]]:
    """Validate ``el`` (as if it were the root of its own document) against a
    schema from :func:`load_relaxng`.

    Returns libxml2's complaints as (line, column, message, path) tuples, in
    order; ``path`` is libxml2's XPath of the node, relative to ``el``
    (e.g. ``/disk/target``).  An empty list means valid.
    """
    if schema.validate(el):
        return []
    out = []
    for e in schema.error_log:
        out.append((e.line or 0, e.column or 0, e.message or "", e.path or ""))
    if not out:
        out.append((line_of(el), 0, "document does not validate", ""))
    return out


def relaxng_valid(schema, el: Element) -> bool:
    """True if ``el`` validates against ``schema`` (no error details kept)."""
    return bool(schema.validate(el))


def qname_of(el: Element, name: str | None = None) -> str:
    """The name of ``el`` (or of its attribute ``name``) as written, with the
    document's prefix: ``qemu:commandline`` rather than ``{uri}commandline``."""
    return _qname(el, el.tag if name is None else name)


def local_name(name: str) -> str:
    """``{uri}local`` -> ``local``."""
    return name.rsplit("}", 1)[-1]


def namespace_of(name: str) -> str:
    """``{uri}local`` -> ``uri``; ``''`` for a name without namespace."""
    return name[1:].split("}", 1)[0] if name.startswith("{") else ""
