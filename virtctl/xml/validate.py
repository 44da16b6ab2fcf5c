"""Schema validation of virtctl's XML documents, with errors that point.

The RelaxNG schemas in ``virtctl/xmlschemas`` (``xmlschemas/`` in the source
tree) describe each kind of document; libxml2 (through
:mod:`virtctl.xml.xmlapi`, the only module that imports lxml) decides whether
a document is valid.  When it is not, libxml2's own messages often blame a
container ("Extra element devices in interleave"), so this module works past
them:

1. it reads the schema files itself into a small model (which attributes,
   children, values and data types each element pattern allows, following
   ``<ref>``s and narrowing ``<choice>``s by discriminating attributes such
   as ``type='file'``);
2. it walks the document from the root, reporting unknown elements and
   attributes, invalid values (listing the allowed ones for an enumeration)
   and missing required attributes and elements;
3. for a child element whose pattern is a define of its own (a ``<define>``
   whose body is exactly one ``<element>``), it asks libxml2 to validate the
   child alone against that define (a wrapper grammar with
   ``<start><ref name="..."/></start>``) so that only the real culprits are
   descended into;
4. if nothing more precise is found, libxml2's message is translated and
   reported at the innermost element it names.

Public API: :data:`KINDS`, :func:`detect_kind`, :class:`Problem`,
:func:`problems`, :func:`validate`, :func:`parse_and_validate`.

Nothing is loaded at import time: schemas are read and compiled on first use
and cached for the life of the process.
"""
from __future__ import annotations

from pathlib import Path

from virtctl.errors import XMLError
from virtctl.xml import xmlapi
from virtctl.xml.diagnose import MAX_PROBLEMS, Problem, _Diagnoser, _Locator
from virtctl.xml.schema_model import SCHEMA_FILES, _schema_dir, _Schemas

# root element name -> kind name
KINDS: dict[str, str] = {
    "domain": "domain",
    "network": "network",
    "pool": "pool",
    "volume": "volume",
    "domainsnapshot": "domainsnapshot",
    "node": "node",
}


# --- public functions ---------------------------------------------------------

def detect_kind(root) -> str:
    """The kind of document ``root`` is, from its root element's name."""
    tag = root.tag if isinstance(root.tag, str) else ""
    kind = KINDS.get(tag)
    if kind is None:
        known = ", ".join(f"<{k}>" for k in KINDS)
        raise XMLError(
            f"unknown root element <{xmlapi.qname_of(root) if tag else '?'}> "
            f"(expected one of: {known})",
            detail={"root": tag, "expected": list(KINDS)},
        )
    return kind


def problems(root, kind: str | None = None, source: str = "<input>",
             text: str | bytes | None = None) -> list[Problem]:
    """Everything wrong with the document ``root`` as a ``kind`` document
    (detected from the root element if not given); ``[]`` if it is valid.

    ``text``, the document as parsed, is optional and only used to give each
    problem its column.
    """
    if kind is None:
        kind = detect_kind(root)
    if kind not in SCHEMA_FILES:
        raise XMLError(f"unknown kind of document '{kind}' (expected one of: {', '.join(SCHEMA_FILES)})")
    expected_root = next(r for r, k in KINDS.items() if k == kind)
    loc = _Locator(root, text)
    if root.tag != expected_root:
        return [loc.problem(source, root, None,
                            f"wrong root element <{xmlapi.qname_of(root)}> "
                            f"(expected <{expected_root}> for a {kind} document)")]
    schemas = _Schemas.get(kind)
    # a compiled schema keeps its last error log: one validation at a time per kind
    with schemas.lock:
        raw = xmlapi.relaxng_errors(schemas.full(), root)  # one pass: [] when valid
        if not raw:
            return []
        found = _Diagnoser(schemas, loc, source).run(root, raw)
    return found[:MAX_PROBLEMS]


def validate(root, kind: str | None = None, source: str = "<input>",
             text: str | bytes | None = None) -> None:
    """Raise :class:`XMLError` if ``root`` is not a valid ``kind`` document.

    The message is the first problem (plus "and N more problems"); the error's
    ``detail["problems"]`` lists them all as dicts.
    """
    found = problems(root, kind, source, text)
    if not found:
        return
    msg = str(found[0])
    if len(found) > 1:
        n = len(found) - 1
        msg += f" (and {n} more problem{'s' if n > 1 else ''})"
    raise XMLError(msg, detail={"problems": [p.to_dict() for p in found]})


def parse_and_validate(data: str | bytes, kind: str | None = None, source: str = "<input>"):
    """Parse ``data`` with :func:`xmlapi.parse` (hardened) and validate it,
    with exact columns in the problems.  Returns the root element."""
    root = xmlapi.parse(data, source)
    validate(root, kind, source, text=data)
    return root


def schema_path(kind: str) -> Path:
    """The schema file of ``kind`` (for tools and tests)."""
    return _schema_dir() / SCHEMA_FILES[kind]

