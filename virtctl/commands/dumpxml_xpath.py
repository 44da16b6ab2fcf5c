"""``dumpxml --xpath``: the results printed as virsh 9.0 prints them.

virsh parses the domain XML without blank text, evaluates the expression
with the root element as context node and dumps each node with libxml2's
``xmlNodeDump`` (double quotes, two-space indent, no indent inside an
element that holds text, non-ASCII written as character references in
attributes only).  ``--wrap`` copies the nodes under one ``<nodes>`` element
first: attributes become attributes of ``<nodes>`` (a later one replaces an
earlier one of the same name) and adjacent text runs together.

Two things virsh does not do, on purpose (README, "differs"): a string,
number or boolean result (``count(//disk)``) is printed, where virsh says
"Incorrect xpath"; with ``--wrap`` it is the text of ``<nodes>``.

The nodes are lxml objects handed out by ``xmlapi.xpath``; this module only
reads them (it never imports lxml).
"""
from __future__ import annotations

import math
import re

from virtctl.errors import XMLError

# XPath 1.0's own functions and node tests: any other name called is what
# libxml2 reports as "function NAME not found"
_CORE = frozenset("""last position count id local-name namespace-uri name string concat
starts-with contains substring-before substring-after substring string-length
normalize-space translate boolean not true false lang number sum floor ceiling round
node text comment processing-instruction""".split())
_CALL = re.compile(r"([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)\s*\(")


class Output:
    """What to print: ``text`` on stdout, ``warning`` on stderr (libxml2's
    words for a bad expression, which virsh lets through with success)."""

    def __init__(self, text: str, results: list[str], warning: str = ""):
        self.text, self.results, self.warning = text, results, warning


def render(root, expr: str, wrap: bool) -> Output:
    from virtctl.xml import xmlapi

    try:
        value = xmlapi.xpath(root, expr)
    except XMLError as exc:
        return Output("", [], _libxml2_error(expr, exc.detail))
    if not isinstance(value, list):
        text = _scalar(value)
        if wrap:
            body = _esc_text(text)
            return Output(f"<nodes>{body}</nodes>\n" if body else "<nodes/>\n", [text])
        return Output(text + "\n", [text])
    nodes = list(value)
    if _has_document_node(root, expr, len(nodes)):
        nodes.insert(0, root.getroottree())
    if wrap:
        text = _wrapped(nodes)
        return Output(text + "\n", [text])
    items = [_dump(n) for n in nodes]
    return Output("".join(i + "\n" for i in items), items)


def _libxml2_error(expr: str, detail: dict) -> str:
    """libxml2's report, as virsh leaves it on stderr: 'XPath error : REASON',
    then the expression and a caret under the column when it is inside it."""
    reason = detail.get("reason") or "Invalid expression"
    col = detail.get("column")
    lines = []
    if reason == "Unregistered function":
        names = [m.group(1) for m in _CALL.finditer(expr) if m.group(1) not in _CORE]
        if names:
            lines.append(f"xmlXPathCompOpEval: function {names[0].split(':')[-1]} not found")
    lines.append(f"XPath error : {reason}")
    if isinstance(col, int) and 0 <= col < min(100, len(expr)):
        lines += [expr, " " * col + "^"]
    return "".join(line + "\n" for line in lines)


def _has_document_node(root, expr: str, n: int) -> bool:
    """lxml leaves the document node ('/') out of results; libxml2 dumps it."""
    from virtctl.xml import xmlapi

    try:
        total = xmlapi.xpath(root, f"count({expr})")
        if total <= n:
            return False
        return xmlapi.xpath(root, f"count(({expr})|/)") == total
    except XMLError:
        return False


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


# --- libxml2's node dump ------------------------------------------------------

def _esc_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _esc_attr(s: str) -> str:
    s = (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
         .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))
    return "".join(c if ord(c) < 0x80 else f"&#x{ord(c):X};" for c in s)


def _split(name: str) -> tuple[str | None, str]:
    if name.startswith("{"):
        uri, local = name[1:].split("}", 1)
        return uri, local
    return None, name


def _prefixed(name: str, nsmap: dict) -> str:
    uri, local = _split(name)
    if uri is None:
        return local
    for prefix, u in nsmap.items():
        if u == uri:
            return f"{prefix}:{local}" if prefix else local
    return local


def _kind(node) -> str:
    if isinstance(node, tuple):
        return "namespace"
    if hasattr(node, "getroot") and not hasattr(node, "tag"):
        return "document"
    if getattr(node, "is_attribute", False):
        return "attribute"
    if getattr(node, "is_text", False) or getattr(node, "is_tail", False):
        return "text"
    tag = getattr(node, "tag", None)
    if isinstance(tag, str):
        return "element"
    name = type(node).__name__
    if "Comment" in name:
        return "comment"
    if "ProcessingInstruction" in name:
        return "pi"
    return "text"


def _dump(node) -> str:
    kind = _kind(node)
    if kind == "element":
        out: list[str] = []
        _element(node, 0, True, out, declare_inherited=False)
        return "".join(out)
    if kind == "attribute":
        return f' {_prefixed(node.attrname, node.getparent().nsmap)}="{_esc_attr(str(node))}"'
    if kind == "text":
        return _esc_text(str(node))
    if kind == "namespace":
        return "(null)"  # libxml2 dumps nothing for a namespace node, and virsh prints that
    if kind == "document":
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
        _element(node.getroot(), 0, True, out, declare_inherited=False)
        return "".join(out) + "\n"
    if kind == "comment":
        return f"<!--{node.text or ''}-->"
    return f"<?{node.target} {node.text or ''}?>" if node.text else f"<?{node.target}?>"


def _element(el, level: int, fmt: bool, out: list[str], *, declare_inherited: bool) -> None:
    """libxml2's element dump: children on their own indented lines unless
    the element holds text, in which case nothing below it is indented."""
    parent = el.getparent()
    above = parent.nsmap if parent is not None else {}
    ns = {p: u for p, u in el.nsmap.items() if above.get(p) != u}  # declared here
    if declare_inherited:  # a copy also declares the inherited namespaces it uses
        ns.update({p: u for p, u in el.nsmap.items() if p not in ns and _uses(el, u)})
    decls = "".join(f' xmlns{":" + p if p else ""}="{_esc_attr(u)}"' for p, u in ns.items())
    tag = _prefixed(el.tag, el.nsmap)
    attrs = "".join(f' {_prefixed(k, el.nsmap)}="{_esc_attr(v)}"' for k, v in el.attrib.items())
    children = [c for c in el if _kind(c) in ("element", "comment", "pi")]
    text = el.text or ""
    if not children and not text:
        out.append(f"<{tag}{decls}{attrs}/>")
        return
    fmt = fmt and not text and not any(c.tail for c in children)
    out.append(f"<{tag}{decls}{attrs}>")
    if text:
        out.append(_esc_text(text))
    for c in children:
        if fmt:  # (libxml2 indents elements only)
            out.append("\n" + ("  " * (level + 1) if _kind(c) == "element" else ""))
        if _kind(c) == "element":
            _element(c, level + 1, fmt, out, declare_inherited=False)
        else:
            out.append(_dump(c))
        if c.tail:
            out.append(_esc_text(c.tail))
    if fmt:
        out.append("\n" + "  " * level)
    out.append(f"</{tag}>")


def _uses(el, uri: str) -> bool:
    """Whether ``el`` itself names namespace ``uri`` (a copy declares only those)."""
    return _split(el.tag)[0] == uri or any(_split(k)[0] == uri for k in el.attrib)


def _wrapped(nodes: list) -> str:
    """``<nodes>`` holding copies of ``nodes``, as libxml2's xmlAddChild builds it."""
    attrs: dict[str, str] = {}  # a later attribute of the same name replaces the earlier
    children: list[tuple[str, object]] = []  # ("text", str) runs merged, ("node", el)
    for n in nodes:
        kind = _kind(n)
        if kind == "attribute":
            name = _split(n.attrname)[1]  # the copy loses its namespace
            attrs.pop(name, None)
            attrs[name] = str(n)
        elif kind == "text":
            if children and children[-1][0] == "text":
                children[-1] = ("text", children[-1][1] + str(n))
            else:
                children.append(("text", str(n)))
        elif kind in ("element", "comment", "pi", "document"):
            children.append(("node", n))
    head = "<nodes" + "".join(f' {k}="{_esc_attr(v)}"' for k, v in attrs.items())
    if not children:
        return head + "/>"
    fmt = not any(kind == "text" for kind, _ in children)
    out = [head + ">"]
    for kind, c in children:
        if fmt:  # (libxml2 indents elements only)
            out.append("\n  " if kind == "node" and _kind(c) == "element" else "\n")
        if kind == "text":
            out.append(_esc_text(c))
        elif _kind(c) == "element":
            _element(c, 1, fmt, out, declare_inherited=True)
        else:
            out.append(_dump(c))
    if fmt:
        out.append("\n")
    out.append("</nodes>")
    return "".join(out)
