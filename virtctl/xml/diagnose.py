"""Finding the culprits of an invalid document for :mod:`virtctl.xml.validate`:
locating elements (line, column, XPath), translating libxml2's messages,
and descending into the children that really fail.  Internal."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from virtctl.xml import xmlapi
from virtctl.errors import XMLError
from virtctl.xml.schema_model import _Model, _names, _Node, _Schemas

MAX_PROBLEMS = 50  # a document with more problems than this is cut short


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document, located precisely.

    ``line`` is 1-based (0 if unknown); ``column`` is 1-based and is known
    only when the document's text was given (0 otherwise).
    """

    source: str
    line: int
    column: int
    xpath: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:"
        if self.column:
            where += f"{self.column}:"
        return f"{where} {self.xpath}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)



# --- finding the culprits -----------------------------------------------------------

class _Locator:
    """Lines, columns and XPaths of elements and attributes.

    Linear in the document: the elements of each line and the places of
    each ``<name`` on it are indexed once, on the first problem found on
    that line (a document may be one 10 MiB line)."""

    def __init__(self, root, text):
        self.root = root
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.lines = text.split("\n") if text else None
        self._by_line: dict[int, list] | None = None
        self._ordinal: dict = {}  # element -> its rank among same-named elements on its line
        self._starts: dict[tuple[int, str], list[int]] = {}  # (line, name) -> columns of "<name"
        self._indexed_lines: set[int] = set()

    def _index_line(self, line: int) -> None:
        if self._by_line is None:
            self._by_line = {}
            for e in self.root.iter():
                if xmlapi.is_element(e):
                    self._by_line.setdefault(xmlapi.line_of(e), []).append(e)
        counts: dict[str, int] = {}
        for e in self._by_line.get(line, []):
            qn = xmlapi.qname_of(e)
            self._ordinal[e] = counts.get(qn, 0)
            counts[qn] = self._ordinal[e] + 1
        self._indexed_lines.add(line)

    def _element_pos(self, el) -> tuple[int, int]:
        line = xmlapi.line_of(el)
        if not self.lines or not (0 < line <= len(self.lines)):
            return line, 0
        if line not in self._indexed_lines:
            self._index_line(line)
        qn = xmlapi.qname_of(el)
        starts = self._starts.get((line, qn))
        if starts is None:
            pat = re.compile(r"<" + re.escape(qn) + r"(?=[\s/>]|$)")
            starts = self._starts[(line, qn)] = [m.start() for m in pat.finditer(self.lines[line - 1])]
        idx = self._ordinal.get(el, 0)
        if idx >= len(starts):
            return line, 0
        return line, starts[idx] + 1

    def position(self, el, attr: str | None = None) -> tuple[int, int]:
        line, col = self._element_pos(el)
        if attr is None or not col:
            return line, col
        qn = xmlapi.qname_of(el, attr)
        pat = re.compile(r"(?<=[\s])" + re.escape(qn) + r"\s*=")
        start = col
        for ln in range(line, min(line + 50, len(self.lines) + 1)):
            text = self.lines[ln - 1]
            begin = start if ln == line else 0
            m = pat.search(text, begin)
            if m:
                return ln, m.start() + 1
            if text.find(">", begin) >= 0:  # (find: slicing would copy a long line)
                break
        return line, col

    def problem(self, source: str, el, attr: str | None, message: str) -> Problem:
        line, col = self.position(el, attr)
        return Problem(source, line, col, xmlapi.path_of(el), message)


_LIBXML_PATTERNS = [
    (re.compile(r"Expecting an element (\S+), got nothing"), "missing required element <{0}>"),
    (re.compile(r"Expecting element (\S+), got (\S+)"), "unexpected element <{1}> (expected <{0}>)"),
    (re.compile(r"Did not expect element (\S+) there"), "unexpected element <{0}>"),
    (re.compile(r"Extra element (\S+) in interleave"), "element <{0}> is not allowed here, or appears too often"),
    (re.compile(r"Element (\S+) has extra content: (\S+)"), "unexpected element <{1}>"),
    (re.compile(r"Invalid attribute (\S+) for element (\S+)"), "unknown attribute '{0}'"),
    (re.compile(r"Element (\S+) failed to validate attributes"),
     "the attributes of <{0}> do not fit together (a required one missing, or one not allowed with the others)"),
    (re.compile(r"Error validating value ?(.*)"), "invalid value"),
    (re.compile(r"Element (\S+) failed to validate content"), "the content of <{0}> is not valid"),
    (re.compile(r"Datatype element (\S+) has child elements"), "element <{0}> takes text, not child elements"),
    (re.compile(r"Element (\S+): Did not expect text in element (\S+) content"), "unexpected text in <{1}>"),
]


def _translate(msg: str) -> str:
    msg = msg.strip()
    for pat, fmt in _LIBXML_PATTERNS:
        m = pat.search(msg)
        if m:
            return fmt.format(*m.groups())
    return msg


class _Diagnoser:
    def __init__(self, schemas: _Schemas, loc: _Locator, source: str):
        self.schemas = schemas
        self.model = _Model(schemas.grammar)
        self.loc = loc
        self.source = source
        self.out: list[Problem] = []

    def add(self, el, attr: str | None, message: str) -> None:
        if len(self.out) < MAX_PROBLEMS:
            self.out.append(self.loc.problem(self.source, el, attr, message))

    def run(self, root, raw: list[tuple[int, int, str, str]]) -> list[Problem]:
        patterns = [p for p in self.model.root_patterns() if root.tag in (_names(p) or [root.tag])]
        if patterns:
            self.check(root, patterns)
        if not self.out:
            self.fallback(root, raw)
        return self.out

    def check(self, el, patterns: list[_Node]) -> bool:
        """Report what is wrong with ``el``; True if something was found."""
        before = len(self.out)
        self.model.narrowed_by = set()
        allowed = self.model.allowed(patterns, el)
        form = ", ".join(f"{a}='{v}'" for a, v in sorted(self.model.narrowed_by))
        everything = None
        # attributes
        for name, value in xmlapi.attributes(el):
            vals = allowed.attrs.get(name)
            if vals is None:
                if allowed.any_attr:
                    continue
                if form and everything is None:
                    everything = self.model.allowed(patterns, None)
                if form and name in everything.attrs:
                    self.add(el, name, f"attribute '{xmlapi.qname_of(el, name)}' is not allowed "
                                       f"with {form}")
                else:
                    self.add(el, name, f"unknown attribute '{xmlapi.qname_of(el, name)}'")
                continue
            if vals.constrained and not vals.ok(value):
                self.add(el, name, f"attribute '{xmlapi.qname_of(el, name)}' has invalid value "
                                   f"'{_short(value)}' ({vals.expected()})")
        req_attrs, req_elems = self.model.required(patterns, el)
        for name in sorted(req_attrs):
            if name not in el.attrib:
                self.add(el, None, f"missing required attribute '{xmlapi.local_name(name)}'")
        # text
        children = [c for c in el if xmlapi.is_element(c)]
        text = (el.text or "").strip()
        if not children and text:
            if not allowed.text_seen and not allowed.text.free and not allowed.any_child:
                self.add(el, None, f"unexpected text '{_short(text)}' (<{xmlapi.qname_of(el)}> takes no text)")
            elif allowed.text.constrained and not allowed.text.ok(el.text or ""):
                self.add(el, None, f"invalid value '{_short(text)}' ({allowed.text.expected()})")
        elif children and text and not allowed.text.free and not allowed.any_child:
            self.add(el, None, f"unexpected text '{_short(text)}' beside child elements")
        # children
        present = set()
        for child in children:
            present.add(child.tag)
            if len(self.out) >= MAX_PROBLEMS:
                break  # enough said: descending further costs time and adds nothing
            cands = allowed.children.get(child.tag)
            if cands is None:
                if not allowed.any_child:
                    self.add(child, None, f"unknown element <{xmlapi.qname_of(child)}>"
                                          f"{_in(el)}")
                continue
            if self._child_valid(child, cands):
                continue
            self.check(child, cands)
        for name in sorted(req_elems):
            if name not in present:
                self.add(el, None, f"missing required element <{xmlapi.local_name(name)}>")
        if len(self.out) == before:
            # nothing static: ask libxml2 about this element alone, if we can
            defines = list(dict.fromkeys(p.define for p in patterns if p.define))
            if el is not self.loc.root and defines:
                errs = self._furthest_errors(el, defines)
                if errs:
                    self._report_raw(el, errs)
        return len(self.out) > before

    def _furthest_errors(self, el, defines: list[str]):
        """libxml2's errors for ``el`` against the define it matches best.

        An element may have several forms (``<os>`` of a Xen, an HVM or a
        container guest): the form whose first error comes latest in the
        element is the one the document meant."""
        if len(defines) == 1:
            return xmlapi.relaxng_errors(self.schemas.sub(defines[0]), el)
        order = {node: i for i, node in enumerate(el.iter())}
        best, best_key = None, None
        for d in defines:
            errs = xmlapi.relaxng_errors(self.schemas.sub(d), el)
            if not errs:
                continue
            key = (order.get(self._node_at(el, errs[0][3]), 0), -len(errs))
            if best_key is None or key > best_key:
                best, best_key = errs, key
        return best

    def _child_valid(self, child, cands: list[_Node]) -> bool:
        defines = [p.define for p in cands if p.define]
        if not defines or len(defines) != len(cands):
            return False  # an inline pattern: check it statically
        return any(xmlapi.relaxng_valid(self.schemas.sub(d), child) for d in defines)

    def _report_raw(self, el, errs) -> None:
        """Report libxml2's first meaningful message at the element it names."""
        best = None
        for line, _col, msg, path in errs:
            node = self._node_at(el, path)
            t = _translate(msg)
            # prefer a message about a precise node over "failed to validate content"
            if best is None or ("failed to validate content" in best[1] and "failed to validate content" not in msg):
                best = (node if node is not None else el, t)
        if best:
            self.add(best[0], None, best[1])

    def _node_at(self, el, path: str):
        """libxml2's path (relative to ``el`` validated alone) -> element."""
        if not path or path == "/":
            return None
        parts = path.strip("/").split("/")[1:]
        node = el
        for part in parts:
            m = re.fullmatch(r"(?:[\w.-]+:)?([\w.-]+)(?:\[(\d+)\])?", part)
            if not m:
                return node
            name, idx = m.group(1), int(m.group(2) or 1)
            same = [c for c in node if xmlapi.is_element(c) and xmlapi.local_name(c.tag) == name]
            if len(same) < idx:
                return node
            node = same[idx - 1]
        return node

    def fallback(self, root, raw) -> None:
        """Nothing precise was found: translate libxml2's own messages."""
        chosen = None
        for line, _col, msg, path in raw:
            node = self._node_at_root(root, path)
            chosen = chosen or (node, msg)
            if "failed to validate content" not in msg and "in interleave" not in msg:
                chosen = (node, msg)
                break
        if chosen is None:
            self.add(root, None, "document does not match the schema")
            return
        self.add(chosen[0] if chosen[0] is not None else root, None, _translate(chosen[1]))

    def _node_at_root(self, root, path: str):
        if not path:
            return None
        try:
            found = xmlapi.xpath(root.getroottree().getroot(), path) if path.startswith("/") else []
        except XMLError:
            return None
        return found[0] if found and xmlapi.is_element(found[0]) else None


def _in(parent) -> str:
    return f" in <{xmlapi.qname_of(parent)}>"


def _short(v: str, n: int = 60) -> str:
    v = v.replace("\n", " ")
    return v if len(v) <= n else v[: n - 1] + "…"
