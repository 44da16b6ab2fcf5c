"""The one module that imports lxml: hardened parsing, formatting, XPath.

Everything else in virtctl works on the element objects this module returns
and calls the helpers here; no other module imports lxml, so the parser's
safety rules live in one place (see RELIABILITY.md, "XML"):

* any DOCTYPE is refused outright: no internal subset, so no entity
  expansion (billion laughs) and no external entities (XXE);
* no network access, no XInclude, no DTD loading;
* documents over ``MAX_BYTES`` (10 MiB, virsh's limit) are refused before
  parsing; a pipe, FIFO or terminal is read as virsh reads it (to its end),
  but never past the limit;
* a parsed document may hold at most ``MAX_ELEMENTS`` elements,
  ``MAX_CHILDREN`` children and ``MAX_ATTRIBUTES`` attributes per element,
  ``MAX_WIDE_CHILDREN`` children of wide elements in all, and be
  ``MAX_DEPTH`` levels deep (see :func:`check_limits`): libxml2's RelaxNG
  validation is quadratic in the number of siblings and lxml's attribute
  access in the number of attributes, so a hostile document of a few
  megabytes could otherwise take minutes;
* what virtctl writes is formatted by :func:`tostring`, which refuses to
  produce more than ``MAX_BYTES`` (indentation can make a deep document
  grow tenfold), so it always re-parses under the same limits.
"""
from __future__ import annotations

import os
import re
import stat

from lxml import etree

from virtctl.errors import NoFile, SystemError_, XMLError

MAX_BYTES = 10 * 1024 * 1024
# Limits on what a document may hold, far above anything libvirt writes: its
# 9.0 test corpus has at most 440 elements in a document, 248 children and 7
# attributes on an element, and 15 levels.  A 10,000-domain node file for the
# test driver has 10,000 children on <node> and about 65,000 elements.
# Formatting is Python, about 5 us an element: MAX_ELEMENTS keeps a define
# of the largest document to a second or two.  MAX_DEPTH stays under
# libxml2's own limit (256), so that our message, not libxml2's, is shown.
MAX_ELEMENTS = 200_000
MAX_CHILDREN = 20_000
MAX_ATTRIBUTES = 256
MAX_DEPTH = 250
# libxml2 validates the children of an element in time quadratic in their
# number (for <interleave> and any-element patterns: 20,000 children take
# about a second), so wide elements share one budget: all the children of
# elements with more than WIDE children count against MAX_WIDE_CHILDREN.
WIDE = 1_000
MAX_WIDE_CHILDREN = 40_000

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
        if "Excessive depth" in msg:  # libxml2's own limit, with advice that does not apply
            raise XMLError(f"{source}:{line}:{col}: document is nested more than {MAX_DEPTH} "
                           f"levels deep (the limit)") from None
        # lxml appends ", line N, column M"; we print our own prefix
        msg = re.sub(r",? line \d+, column \d+$", "", msg)
        raise XMLError(f"{source}:{line}:{col}: malformed XML: {msg}") from None
    except ValueError as exc:  # e.g. encoding declaration on a str
        raise XMLError(f"{source}: {exc}") from None
    if not isinstance(root.tag, str):
        raise XMLError(f"{source}: no root element")
    check_limits(root, source, data)
    return root


def check_limits(root: Element, source: str = "<input>", data: bytes | None = None) -> None:
    """Refuse a document holding more than the documented limits
    (``MAX_ELEMENTS``, ``MAX_ATTRIBUTES``, ``MAX_CHILDREN``,
    ``MAX_WIDE_CHILDREN``, ``MAX_DEPTH``).

    Each test is one XPath evaluated by libxml2 in a single pass over the
    tree, so checking costs milliseconds even for the largest document.
    With ``data``, the text the tree was parsed from, the tests that its
    counts of ``<`` and ``=`` show cannot fail are skipped: a definition
    read back from state (``list`` may read a thousand) then costs two byte
    counts, not five passes over its tree."""
    _check_attributes(root, source, data)
    # every element has a "<" (comments and CDATA only add more), and a depth
    # of d takes 2d - 1 of them: 500 cannot break any limit but the attributes'
    if data is not None and data.count(b"<") <= 2 * MAX_DEPTH:
        return
    n = int(root.xpath("count(//*)"))
    if n > MAX_ELEMENTS:
        raise XMLError(f"{source}: document has {n} elements, more than the limit of {MAX_ELEMENTS}")

    def first(expr: str):
        found = root.xpath(f"({expr})[1]")
        return found[0] if found else None

    def where(el: Element) -> str:
        return f"{source}:{line_of(el)}: {path_of(el)}"

    el = first(f"//*[count(*) > {MAX_CHILDREN}]")
    if el is not None:
        raise XMLError(f"{where(el)}: element has {len(el)} child elements, more than the limit "
                       f"of {MAX_CHILDREN} per element")
    wide = root.xpath(f"//*[count(*) > {WIDE}]")
    total = sum(len(w) for w in wide)
    if total > MAX_WIDE_CHILDREN:
        raise XMLError(f"{source}: document has {total} elements in elements of more than {WIDE} "
                       f"children each, more than the limit of {MAX_WIDE_CHILDREN}")
    el = first("/*" * (MAX_DEPTH + 1))
    if el is not None:
        # (no XPath: it would be MAX_DEPTH steps long)
        raise XMLError(f"{source}:{line_of(el)}: document is nested more than {MAX_DEPTH} levels "
                       f"deep (the limit)")


def _check_attributes(root: Element, source: str, data: bytes | None) -> None:
    if data is not None and data.count(b"=") <= MAX_ATTRIBUTES:
        return  # every attribute has its "=" in the text (namespace declarations only add more)
    found = root.xpath(f"(//*[count(@*) > {MAX_ATTRIBUTES}])[1]")
    if found:
        el = found[0]
        raise XMLError(f"{source}:{line_of(el)}: {path_of(el)}: element has {int(el.xpath('count(@*)'))} "
                       f"attributes, more than the limit of {MAX_ATTRIBUTES} per element")


def read_file(path: str) -> bytes:
    """Read an XML file given by the user, refusing what cannot be a document.

    Like virsh, anything readable that is not a directory is read: a regular
    file, a pipe or FIFO (``define /dev/stdin``, ``define <(...)``), a
    terminal.  A regular file larger than ``MAX_BYTES`` is refused from its
    size; anything else is read until its end but never past ``MAX_BYTES``
    (``/dev/zero`` is refused after 10 MiB, not read for ever).  A FIFO that
    nobody writes to is waited on, as virsh and cat wait: the open itself
    never blocks, and Ctrl-C stops the wait.
    """
    try:
        # O_NONBLOCK: opening a FIFO without a writer would block in open(),
        # before we know what the path is (a directory? a regular file?)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NoFile(f"failed to open '{path}': No such file or directory", detail={"path": path}) from None
    except OSError as exc:
        raise SystemError_(f"failed to open '{path}': {exc.strerror}") from None
    try:
        st = os.fstat(fd)  # of what was opened, not of what the path names now
        if stat.S_ISDIR(st.st_mode):
            raise SystemError_(f"failed to read '{path}': Is a directory")
        if stat.S_ISREG(st.st_mode):
            if st.st_size > MAX_BYTES:
                raise XMLError(f"{path}: file is {st.st_size} bytes, larger than the limit of {MAX_BYTES} bytes")
            data = _read_upto(fd, MAX_BYTES + 1)
        else:
            data = _read_stream(fd)
    except OSError as exc:
        raise SystemError_(f"failed to read '{path}': {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise XMLError(f"{path}: file is larger than the limit of {MAX_BYTES} bytes")
    return data


def _read_upto(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = os.read(fd, min(1 << 20, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_stream(fd: int) -> bytes:
    """Read a pipe, FIFO or character device opened non-blocking, to its end
    or to one byte past ``MAX_BYTES``.

    poll() rather than a blocking read: on Linux a FIFO whose writer has not
    opened it yet reads as end-of-file, while poll() waits for the writer
    (and then for its data, or for it to close)."""
    import select

    chunks: list[bytes] = []
    got = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    while got <= MAX_BYTES:
        poller.poll()
        try:
            chunk = os.read(fd, min(1 << 20, MAX_BYTES + 1 - got))
        except BlockingIOError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


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


def attributes(el: Element) -> list[tuple[str, str]]:
    """``(name, value)`` of every attribute of ``el``, in document order.

    Linear in the number of attributes, where ``el.attrib.items()`` is
    quadratic (lxml looks each value up again by name)."""
    return [(a.attrname, str(a)) for a in el.xpath("@*")]


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
    return _qn(el.nsmap, name) if name.startswith("{") else name


def _qn(nsmap: dict, name: str) -> str:
    if not name.startswith("{"):
        return name
    uri, local = name[1:].split("}", 1)
    for prefix, u in nsmap.items():
        if u == uri:
            return f"{prefix}:{local}" if prefix else local
    return local


def _too_big() -> XMLError:
    return XMLError(f"the formatted document would be larger than the limit of {MAX_BYTES} bytes "
                    f"(it could not be read back); make it smaller or less deeply nested")


class _Out(list):
    """Formatted lines, refusing to grow past ``MAX_BYTES`` characters."""

    size = 0

    def append(self, line: str) -> None:
        self.size += len(line) + 1
        if self.size > MAX_BYTES:
            raise _too_big()  # early: a deep document would otherwise format for seconds
        super().append(line)


def _format(el: Element, indent: int, out: list[str], q: str = "'", inherited: dict | None = None) -> None:
    pad = "  " * indent
    if inherited is None:
        parent = el.getparent()
        inherited = parent.nsmap if parent is not None else {}
    nsmap = el.nsmap  # (lxml walks the ancestors for it: once per element, passed down)
    decls = "".join(
        f" xmlns{':' + p if p else ''}={q}{_esc_attr(u, q)}{q}"
        for p, u in nsmap.items() if inherited.get(p) != u
    ) if nsmap else ""
    tag = _qn(nsmap, el.tag)
    attrs = decls + "".join(f" {_qn(nsmap, k)}={q}{_esc_attr(v, q)}{q}" for k, v in el.attrib.items())
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
        _format(c, indent + 1, out, q, nsmap)
    out.append(f"{pad}</{tag}>")


def tostring(el: Element, indent: int = 0) -> str:
    """Format ``el`` like libvirt: two-space indent, single-quoted attributes,
    a final newline.  Raises XMLError if the text would be larger than
    ``MAX_BYTES`` (it could not be read back)."""
    out = _Out()
    _format(el, indent, out)
    text = "\n".join(out) + "\n"
    if not text.isascii() and len(text.encode("utf-8", "surrogateescape")) > MAX_BYTES:
        raise _too_big()
    return text


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
