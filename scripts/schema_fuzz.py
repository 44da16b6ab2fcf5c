#!/usr/bin/env python3
"""Differential audit of virtctl's RelaxNG schemas against libvirt's.

Generates random documents from one grammar (libvirt's, or ours with
``--reverse``), steering every ``<choice>``, ``<optional>`` and repetition
towards the branches taken least so far, keeps those the generating grammar
itself accepts, and validates them with the other grammar.  Each document
one grammar accepts and the other refuses is shrunk (attributes, elements
and text removed one at a time while the disagreement stays the same) and
grouped by virtctl's own first diagnostic, so that each group is one
candidate gap to look at.

Usage (from the source tree)::

    python scripts/schema_fuzz.py domain -n 3000
    python scripts/schema_fuzz.py network --reverse

Kinds: domain, network, pool, volume, domainsnapshot.  ``--libvirt DIR``
names libvirt's schema directory (default: the shared reference copy).
Two kinds of disagreement are left out on purpose (README, "Where virtctl
differs from virsh on purpose"): elements of the lxc, bhyve, xen and vmware
namespaces are dropped before comparing, and with ``--reverse`` a document
libvirt accepts once its elements are put in its grammar's order is counted
apart ("refused only for their order": libxml2's nested ``<interleave>``).

An audit aid: a group it prints is a candidate to be checked with
``virt-xml-validate`` and, if real, fixed in the schema text.
tests/test_validate_differential.py runs :func:`compare` on a few hundred
documents per kind.
"""
from __future__ import annotations

import argparse
import collections
import copy
import os
import random
import re
import sys
from pathlib import Path

from lxml import etree

try:  # Python 3.11+
    import re._parser as sre_parse  # type: ignore[import-not-found]
    from re import _constants as sre_c  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]
    import sre_constants as sre_c  # type: ignore[no-redef]

RNG = "http://relaxng.org/ns/structure/1.0"
HERE = Path(__file__).resolve().parent.parent
LIBVIRT_DEFAULT = HERE.parent / "shared" / "reference" / "libvirt-9.0" / "schemas"
FILES = {  # kind -> (libvirt's file, ours)
    "domain": ("domain.rng", "domain.rng"),
    "network": ("network.rng", "network.rng"),
    "pool": ("storagepool.rng", "storagepool.rng"),
    "volume": ("storagevol.rng", "storagevol.rng"),
    "domainsnapshot": ("domainsnapshot.rng", "domainsnapshot.rng"),
}
INF = float("inf")
TEXT_POOL = ["abc", "/a/b", "1", "x y", "4.1", "a,b", "a-b_c.d", "0x1f", "Name1"]


def _tag(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) and el.tag.startswith("{" + RNG) else ""


_FID = [0]


def _parse(path):
    """A schema file's tree, each element numbered (lxml's proxies have no stable id())."""
    root = etree.parse(str(path)).getroot()
    for el in root.iter(etree.Element):
        _FID[0] += 1
        el.set("_fid", str(_FID[0]))
    return root


def fid(el) -> str:
    return el.get("_fid")


def _kids(el):
    return [c for c in el if _tag(c)]


# --- loading a grammar --------------------------------------------------------------

class Scope:
    """One <grammar>: its defines (name -> pattern element list) and start."""

    def __init__(self, parent=None):
        self.parent = parent
        self.defines: dict[str, list] = {}
        self.combine: dict[str, str] = {}
        self.start: list = []

    def lookup(self, name, parent=False):
        s = self.parent if parent else self
        return s, s.defines[name]


class Loader:
    def __init__(self):
        self.scopes: list[Scope] = []
        self.scope_of: dict[str, Scope] = {}  # fid(pattern element) -> scope, for nested grammars
        self._keep = []

    def load_file(self, path: Path, parent=None) -> Scope:
        root = _parse(path)
        self._keep.append(root)
        return self.load_grammar(root, path.parent, parent)

    def load_grammar(self, gram, base: Path, parent) -> Scope:
        scope = Scope(parent)
        self.scopes.append(scope)
        self._collect(gram, base, scope, overrides=None)
        for bodies in scope.defines.values():
            for b in bodies:
                self._nested(b, base, scope)
        for b in scope.start:
            self._nested(b, base, scope)
        return scope

    def _collect(self, gram, base: Path, scope: Scope, overrides):
        for item in _kids(gram):
            t = _tag(item)
            if t == "div":
                self._collect(item, base, scope, overrides)
            elif t == "start":
                if overrides is not None and "__start__" in overrides:
                    continue
                scope.start = _kids(item)
            elif t == "define":
                name = item.get("name")
                if overrides is not None and name in overrides:
                    continue
                self._add(scope, name, item)
            elif t == "include":
                href = base / item.get("href")
                own = [c for c in _kids(item) if _tag(c) in ("define", "start")]
                names = {c.get("name") if _tag(c) == "define" else "__start__" for c in own}
                sub = _parse(href)
                self._keep.append(sub)
                self._collect(sub, href.parent, scope, names | (overrides or set()))
                for c in own:
                    if _tag(c) == "start":
                        scope.start = _kids(c)
                    else:
                        scope.defines.pop(c.get("name"), None)
                        self._add(scope, c.get("name"), c)

    @staticmethod
    def _add(scope, name, item):
        body = _kids(item)
        if name in scope.defines and item.get("combine"):
            scope.combine[name] = item.get("combine")
            scope.defines[name].append(body)
        elif name in scope.defines and scope.combine.get(name):
            scope.defines[name].append(body)
        else:
            scope.defines[name] = [body]
            if item.get("combine"):
                scope.combine[name] = item.get("combine")

    def _nested(self, body, base, scope):
        for el in body:
            for g in el.iter("{%s}grammar" % RNG):
                if fid(g) not in self.scope_of:
                    self.scope_of[fid(g)] = self.load_grammar(g, base, scope)


# --- sampling values ------------------------------------------------------------------

_PRINTABLE = [chr(c) for c in range(0x20, 0x7F)] + ["é", "\t"]


def _charset(items):
    out = set()
    neg = False
    for op, av in items:
        if op is sre_c.NEGATE:
            neg = True
        elif op is sre_c.LITERAL:
            out.add(chr(av))
        elif op is sre_c.RANGE:
            lo, hi = av
            out.update(chr(c) for c in range(lo, min(hi, lo + 200) + 1))
        elif op is sre_c.CATEGORY:
            out.update(c for c in _PRINTABLE if re.fullmatch(_CAT[av], c))
    if neg:
        return [c for c in _PRINTABLE if c not in out]
    return sorted(out)


_CAT = {sre_c.CATEGORY_DIGIT: r"\d", sre_c.CATEGORY_NOT_DIGIT: r"\D", sre_c.CATEGORY_SPACE: r"\s",
        sre_c.CATEGORY_NOT_SPACE: r"\S", sre_c.CATEGORY_WORD: r"\w", sre_c.CATEGORY_NOT_WORD: r"\W"}


def _sample_re(tree, rng) -> str:
    out = []
    for op, av in tree:
        if op is sre_c.LITERAL:
            out.append(chr(av))
        elif op is sre_c.NOT_LITERAL:
            out.append(rng.choice([c for c in _PRINTABLE if ord(c) != av and c != "\n"]))
        elif op is sre_c.ANY:
            out.append(rng.choice(_PRINTABLE[:95]))
        elif op is sre_c.IN:
            chars = _charset(av)
            if chars:
                out.append(rng.choice(chars))
        elif op is sre_c.BRANCH:
            out.append(_sample_re(rng.choice(av[1]), rng))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            lo, hi, sub = av
            hi = lo + 3 if hi is sre_c.MAXREPEAT else hi
            n = rng.randint(lo, min(hi, lo + 3)) if rng.random() < 0.8 else rng.choice([lo, hi])
            out.extend(_sample_re(sub, rng) for _ in range(n))
        elif op is sre_c.SUBPATTERN:
            out.append(_sample_re(av[-1], rng))
        elif op is sre_c.CATEGORY:
            out.append(rng.choice(_charset([(op, av)]) or ["a"]))
    return "".join(out)


def sample_pattern(pat: str, rng) -> str:
    return _sample_re(sre_parse.parse(pat), rng)


_RANGES = {
    "int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1), "integer": (-(10**20), 10**20),
    "short": (-(2**15), 2**15 - 1), "unsignedInt": (0, 2**32 - 1),
    "unsignedLong": (0, 2**64 - 1), "unsignedShort": (0, 2**16 - 1), "unsignedByte": (0, 255),
    "positiveInteger": (1, 10**20), "nonNegativeInteger": (0, 10**20),
}


def sample_data(el, rng) -> str:
    typ = el.get("type") or "token"
    params = {p.get("name"): (p.text or "") for p in _kids(el) if _tag(p) == "param"}
    if typ in _RANGES:
        lo, hi = _RANGES[typ]
        lo = int(params.get("minInclusive", lo))
        hi = int(params.get("maxInclusive", hi))
        r = rng.random()
        if r < 0.3:
            return str(rng.choice([lo, hi]))
        if r < 0.6:
            return str(rng.randint(max(lo, 0), min(hi, max(lo, 0) + 20)) if hi >= 0 else lo)
        return str(rng.randint(lo, hi))
    if typ == "dateTime":
        return "2011-05-31T16:11:22"
    if typ == "double":
        return rng.choice(["1.5", "0", "-2.25", "3"])
    if typ == "anyURI":
        return "http://example.org/x"
    if typ == "NCName":
        return rng.choice(["abc", "a-b", "x1"])
    if typ == "boolean":
        return rng.choice(["true", "false", "1", "0"])
    if "pattern" in params:
        return sample_pattern(params["pattern"], rng)
    s = rng.choice(TEXT_POOL)
    if "maxLength" in params:
        s = s[: int(params["maxLength"])]
    return s


# --- generating documents ------------------------------------------------------------

class Generator:
    def __init__(self, top: Scope, loader: Loader, rng, max_depth=14):
        self.top = top
        self.loader = loader
        self.rng = rng
        self.max_depth = max_depth
        self.count = collections.Counter()
        self.cost: dict = {}
        self._costs()

    # the smallest number of elements a pattern needs (inf: cannot be made)
    def _costs(self):
        self.dcost = {(id(s), n): INF for s in self.loader.scopes for n in s.defines}
        for _ in range(60):
            changed = False
            for s in self.loader.scopes:
                for n, bodies in s.defines.items():
                    c = self._body_cost(s, n, bodies)
                    if c < self.dcost[(id(s), n)]:
                        self.dcost[(id(s), n)] = c
                        changed = True
            if not changed:
                break

    def _body_cost(self, s, n, bodies):
        costs = [self._seq_cost(b, s) for b in bodies]
        if s.combine.get(n) == "choice":
            return min(costs)
        return sum(costs)

    def _seq_cost(self, seq, s):
        return sum(self._pcost(p, s) for p in seq)

    def _pcost(self, p, s):
        t = _tag(p)
        if t == "element":
            return 1 + self._seq_cost(self._content(p), s)
        if t in ("optional", "zeroOrMore"):
            return 0
        if t == "choice":
            return min((self._pcost(k, s) for k in _kids(p)), default=INF)
        if t in ("ref", "parentRef"):
            sc = s.parent if t == "parentRef" else s
            while p.get("name") not in sc.defines:
                sc = sc.parent
            return self.dcost[(id(sc), p.get("name"))]
        if t == "grammar":
            g = self.loader.scope_of[fid(p)]
            return self._seq_cost(g.start, g)
        if t == "notAllowed":
            return INF
        if t in ("attribute", "value", "data", "text", "empty", "name", "anyName", "nsName", "param",
                 "except", "list"):
            return 0
        return self._seq_cost(_kids(p), s)  # group, interleave, oneOrMore, mixed

    @staticmethod
    def _content(el):
        kids = _kids(el)
        if el.get("name") is None and kids:
            return kids[1:]  # the first child is the name class
        return kids

    def _pick(self, key, n, costs, depth):
        live = [i for i in range(n) if costs[i] < INF]
        if not live:
            raise Dead()
        if depth > self.max_depth:
            return min(live, key=lambda i: costs[i])
        least = min(self.count[(key, i)] for i in live)
        cands = [i for i in live if self.count[(key, i)] == least]
        i = self.rng.choice(cands) if self.rng.random() < 0.85 else self.rng.choice(live)
        self.count[(key, i)] += 1
        return i

    def document(self):
        items = self.seq(self.top.start, self.top, 0)
        els = [x for x in items if isinstance(x, etree._Element)]
        if len(els) != 1:
            raise Dead()
        return els[0]

    def seq(self, seq, s, depth):
        out = []
        for p in seq:
            out.extend(self.pat(p, s, depth))
        return out

    def pat(self, p, s, depth):
        t = _tag(p)
        rng = self.rng
        if t == "element":
            return [self.element(p, s, depth)]
        if t == "attribute":
            return [self.attribute(p, s, depth)]
        if t in ("group", "mixed"):
            return self.seq(_kids(p), s, depth)
        if t == "interleave":
            parts = [self.pat(k, s, depth) for k in _kids(p)]
            return self._merge(parts)
        if t == "choice":
            kids = _kids(p)
            i = self._pick(fid(p), len(kids), [self._pcost(k, s) for k in kids], depth)
            return self.pat(kids[i], s, depth)
        if t == "optional":
            inner = _kids(p)
            c = self._seq_cost(inner, s)
            if c == INF or self._pick(fid(p), 2, [0, c], depth) == 0:
                return []
            return self.seq(inner, s, depth)
        if t in ("zeroOrMore", "oneOrMore"):
            inner = _kids(p)
            c = self._seq_cost(inner, s)
            lo = 1 if t == "oneOrMore" else 0
            if c == INF:
                if lo:
                    raise Dead()
                return []
            if depth > self.max_depth:
                n = lo
            else:
                n = self._pick(fid(p), 3, [0, c, 2 * c], depth)
                n = max(n, lo)
            out = []
            for _ in range(n):
                out.extend(self.seq(inner, s, depth))
            return out
        if t in ("ref", "parentRef"):
            sc = s.parent if t == "parentRef" else s
            name = p.get("name")
            while name not in sc.defines:
                sc = sc.parent
            bodies = sc.defines[name]
            if sc.combine.get(name) == "choice":
                i = self._pick((id(sc), name), len(bodies),
                               [self._seq_cost(b, sc) for b in bodies], depth)
                return self.seq(bodies[i], sc, depth)
            if sc.combine.get(name) == "interleave":
                return self._merge([self.seq(b, sc, depth) for b in bodies])
            return self.seq(bodies[0], sc, depth)
        if t == "grammar":
            g = self.loader.scope_of[fid(p)]
            return self.seq(g.start, g, depth)
        if t == "value":
            return [p.text or ""]
        if t == "data":
            return [self.data(p)]
        if t == "text":
            return [rng.choice(TEXT_POOL)]
        if t == "empty":
            return []
        if t == "notAllowed":
            raise Dead()
        if t == "list":
            vals = [x for x in self.seq(_kids(p), s, depth) if isinstance(x, str)]
            return [" ".join(vals)]
        raise ValueError(f"unhandled pattern <{t}>")

    def data(self, p):
        exc = [k for k in _kids(p) if _tag(k) == "except"]
        for _ in range(20):
            v = sample_data(p, self.rng)
            if not exc or v not in {x.text for x in exc[0].iter("{%s}value" % RNG)}:
                return v
        raise Dead()

    def _merge(self, parts):
        """A random interleaving that keeps each part's own order."""
        parts = [list(x) for x in parts if x]
        if self.rng.random() < 0.7:  # libxml2 is weak on finely mixed nested interleaves
            self.rng.shuffle(parts)
            return [x for part in parts for x in part]
        out = []
        while parts:
            i = self.rng.randrange(len(parts))
            out.append(parts[i].pop(0))
            if not parts[i]:
                parts.pop(i)
        return out

    def _name(self, p, s, depth, what):
        name = p.get("name")
        kids = _kids(p)
        if name is not None:
            ns = p.get("ns")
            if ns is None:
                for a in p.iterancestors():
                    if a.get("ns") is not None:
                        ns = a.get("ns")
                        break
            if what == "attribute" and p.get("ns") is None:
                ns = ""
            return (f"{{{ns}}}{name}" if ns else name), kids
        nc, rest = kids[0], kids[1:]
        return self._nameclass(nc, depth), rest

    def _nameclass(self, nc, depth):
        t = _tag(nc)
        if t == "name":
            ns = nc.get("ns") or ""
            return f"{{{ns}}}{nc.text.strip()}" if ns else nc.text.strip()
        if t == "choice":
            kids = _kids(nc)
            return self._nameclass(kids[self._pick(fid(nc), len(kids), [0] * len(kids), depth)], depth)
        if t in ("anyName", "nsName"):
            return "{http://example.org/fuzz}thing"
        raise ValueError(f"name class <{t}>")

    def element(self, p, s, depth):
        name, content = self._name(p, s, depth, "element")
        el = etree.Element(name)
        texts = []
        for x in self.seq(content, s, depth + 1):
            if isinstance(x, tuple):
                if x[0] in el.attrib:
                    raise Dead()  # the same attribute twice: not a document
                el.set(x[0], x[1])
            elif isinstance(x, etree._Element):
                el.append(x)
            else:
                texts.append(x)
        if texts:
            if len(el):
                el[-1].tail = (el[-1].tail or "") + "".join(texts)
            else:
                el.text = "".join(texts)
        return el

    def attribute(self, p, s, depth):
        name, content = self._name(p, s, depth, "attribute")
        vals = [x for x in self.seq(content, s, depth + 1) if isinstance(x, str)] if content else \
            [self.rng.choice(TEXT_POOL)]
        return (name, "".join(vals))


class Dead(Exception):
    """This branch cannot make a document."""


# --- comparing ------------------------------------------------------------------------

def _schema(path: Path):
    return etree.RelaxNG(etree.parse(str(path)))


def _problem_keys(root, kind):
    """virtctl's diagnostics of ``root``, positions dropped, one string each."""
    from virtctl.xml import validate as V

    found = V.problems(root, kind)
    return [re.sub(r"\[\d+\]", "", p.xpath) + ": " + p.message for p in found] or \
        ["virtctl: (libxml2 only)"]


def element_order(top: Scope, loader: Loader) -> dict:
    """(grandparent, parent, child) names -> rank, in the order a depth-first
    walk of the grammar meets each child element inside each parent element
    (the grandparent tells <disk><source> from <serial><source>)."""
    order: dict = {}
    seen = set()

    def walk(seq, s, parent):
        for p in seq:
            t = _tag(p)
            if t == "element":
                name = p.get("name") or "*"
                order.setdefault(parent + (name,), len(order))
                walk(_kids(p), s, (parent[-1], name))
            elif t in ("ref", "parentRef"):
                sc = s.parent if t == "parentRef" else s
                while p.get("name") not in sc.defines:
                    sc = sc.parent
                key = (id(sc), p.get("name"), parent)
                if key not in seen:
                    seen.add(key)
                    for b in sc.defines[p.get("name")]:
                        walk(b, sc, parent)
            elif t == "grammar":
                g = loader.scope_of[fid(p)]
                walk(g.start, g, parent)
            else:
                walk(_kids(p), s, parent)

    walk(top.start, top, (None, None))
    return order


def sorted_copy(root, order):
    """``root`` with every element's children in grammar order (libxml2
    refuses some orders that nested <interleave>s allow)."""
    root = copy.deepcopy(root)
    for el in list(root.iter(etree.Element)):
        kids = list(el)
        if len(kids) > 1:
            up = el.getparent()
            ctx = (etree.QName(up).localname if up is not None else None, etree.QName(el).localname)
            kids.sort(key=lambda k: order.get(ctx + (etree.QName(k).localname,), 10**6))
            for k in kids:
                el.append(k)
    return root


def _signature(root) -> str:
    """The shape of a (shrunk) document: element paths and attribute names."""
    out = []
    for el in root.iter(etree.Element):
        path = "/".join(etree.QName(e).localname for e in reversed([el] + list(el.iterancestors())))
        attrs = ",".join(sorted(etree.QName(a).localname for a in el.attrib))
        out.append(path + (f"[@{attrs}]" if attrs else "") + ("=text" if (el.text or "").strip() else ""))
    return " ".join(sorted(set(out)))


def shrink(root, keep):
    """Remove attributes, elements and text while ``keep(root)`` holds."""
    changed = True
    while changed:
        changed = False
        for el in list(root.iter()):
            if not isinstance(el.tag, str):
                continue
            for a in list(el.attrib):
                v = el.attrib.pop(a)
                if keep(root):
                    changed = True
                else:
                    el.set(a, v)
            for child in list(el):
                i = el.index(child)
                el.remove(child)
                if keep(root):
                    changed = True
                else:
                    el.insert(i, child)
    return root


DEFAULT_IGNORED_NS = [f"http://libvirt.org/schemas/domain/{h}/1.0" for h in ("lxc", "bhyve", "xen", "vmware")]


class Result:
    """What one comparison found."""

    def __init__(self):
        self.made = self.accepted = self.refused = self.order_only = 0
        self.groups: dict[str, list] = {}  # problem (values blanked) -> [(problem, document)]


def compare(kind: str, n: int, *, seed: int = 1, reverse: bool = False,
            libvirt: Path = LIBVIRT_DEFAULT, depth: int = 14, shrink_max: int = 400,
            ignore_ns=None) -> Result:
    """Generate ``n`` documents of ``kind`` from libvirt's grammar (ours with
    ``reverse``) and collect those the other grammar refuses."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    lv_path = libvirt / FILES[kind][0]
    our_path = HERE / "xmlschemas" / FILES[kind][1]
    lv, ours = _schema(lv_path), _schema(our_path)
    gen_path, gen_schema, other = (our_path, ours, lv) if reverse else (lv_path, lv, ours)
    loader = Loader()
    gen = Generator(loader.load_file(gen_path), loader, random.Random(seed), depth)
    ignore = set(DEFAULT_IGNORED_NS if ignore_ns is None else ignore_ns)
    lv_loader = Loader()
    lv_order = element_order(lv_loader.load_file(lv_path), lv_loader)
    res = Result()
    for _ in range(n):
        try:
            doc = gen.document()
        except (Dead, RecursionError):
            continue
        res.made += 1
        for el in [e for e in doc.iter(etree.Element) if etree.QName(e).namespace in ignore]:
            if el.getparent() is not None:
                el.getparent().remove(el)
        if not gen_schema.validate(doc):
            continue
        res.accepted += 1
        if other.validate(doc):
            continue
        if reverse:
            again = sorted_copy(doc, lv_order)
            if other.validate(again) and gen_schema.validate(again):
                res.order_only += 1
                continue
        res.refused += 1
        if reverse:
            if res.refused > shrink_max:
                continue
            doc = shrink(copy.deepcopy(doc), lambda r: gen_schema.validate(r) and not other.validate(r)
                         and not other.validate(sorted_copy(r, lv_order)))
            other.validate(doc)
            errs = [e.message for e in other.error_log] or ["?"]
            keys = [_signature(doc) + "  [libvirt: " + re.sub(r"\d+", "N", errs[-1]) + "]"]
        else:
            keys = _problem_keys(doc, kind)
        for key in keys:
            res.groups.setdefault(re.sub(r"'[^']*'", "'…'", key), []).append((key, doc))
    if not reverse:  # shrink one example per group
        for gkey, docs in res.groups.items():
            key, doc = min(docs, key=lambda kd: len(etree.tostring(kd[1])))
            doc = shrink(copy.deepcopy(doc), lambda r, key=key: gen_schema.validate(r)
                         and not other.validate(r) and key in _problem_keys(r, kind))
            res.groups[gkey] = [(key, doc)] + [d for d in docs if d[1] is not doc]
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=sorted(FILES))
    ap.add_argument("-n", type=int, default=1500, help="documents to generate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reverse", action="store_true",
                    help="generate from virtctl's grammar, check with libvirt's")
    ap.add_argument("--libvirt", type=Path, default=LIBVIRT_DEFAULT)
    ap.add_argument("--depth", type=int, default=14)
    ap.add_argument("--shrink", type=int, default=400,
                    help="with --reverse: refused documents to shrink and group")
    ap.add_argument("--ignore-ns", action="append", default=None, metavar="URI",
                    help="drop elements of this namespace before comparing (virtctl refuses "
                         "some hypervisors' extensions on purpose); default: those of lxc, "
                         "bhyve, xen and vmware")
    ap.add_argument("--show", type=int, default=60, help="groups to print")
    args = ap.parse_args(argv)
    res = compare(args.kind, args.n, seed=args.seed, reverse=args.reverse, libvirt=args.libvirt,
                  depth=args.depth, shrink_max=args.shrink, ignore_ns=args.ignore_ns)
    who, other_name = ("virtctl", "libvirt") if args.reverse else ("libvirt", "virtctl")
    print(f"{args.kind}: {res.made} documents made, {res.accepted} valid for {who}, {res.refused} "
          f"refused by {other_name}; {len(res.groups)} groups of problems"
          + (f" ({res.order_only} more refused only for their order of elements)" if res.order_only else ""))
    for _gkey, docs in sorted(res.groups.items(), key=lambda kv: -len(kv[1]))[: args.show]:
        key, doc = docs[0]
        print(f"\n== {len(docs)}x {key}")
        print(etree.tostring(doc, pretty_print=True).decode().rstrip())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
