"""The schema model behind :mod:`virtctl.xml.validate`: the RelaxNG files
read into small pattern trees (which attributes, children, values and data
types each element allows), compiled schemas and sub-pattern schemas
cached per kind.  Internal to the validation package."""
from __future__ import annotations

import re
import threading
from pathlib import Path

from virtctl.errors import InternalError
from virtctl.xml import xmlapi

SCHEMA_FILES: dict[str, str] = {
    "domain": "domain.rng",
    "network": "network.rng",
    "pool": "storagepool.rng",
    "volume": "storagevol.rng",
    "domainsnapshot": "domainsnapshot.rng",
    "node": "node.rng",
}
_ENUM_SHOWN = 6  # allowed values listed before eliding with "…"


# --- locating the schema files -------------------------------------------------

def _schema_dir() -> Path:
    try:
        from importlib.resources import files

        base = files("virtctl.xmlschemas")
        cand = Path(str(base / "domain.rng"))
        if cand.is_file():
            return cand.parent
    except (ModuleNotFoundError, TypeError, ValueError):
        pass
    # An editable install of a package directory without __init__.py is not
    # importable as virtctl.xmlschemas: fall back to the source tree layout.
    import virtctl

    cand = Path(virtctl.__file__).resolve().parent.parent / "xmlschemas"
    if (cand / "domain.rng").is_file():
        return cand
    raise InternalError("cannot find virtctl's XML schemas (package virtctl.xmlschemas)")


# --- the schema model ----------------------------------------------------------

_RNG = "{http://relaxng.org/ns/structure/1.0}"


class _Node:
    """A RelaxNG pattern node, copied out of the schema's element tree."""

    __slots__ = ("kind", "attrs", "children", "text", "define")

    def __init__(self, kind: str, attrs: dict, children: list, text: str):
        self.kind = kind
        self.attrs = attrs
        self.children = children
        self.text = text
        self.define: str | None = None  # for an element that is a define's whole body

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<{self.kind} {self.attrs}>"


def _convert(el, ns: str = "") -> _Node | None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if not tag.startswith(_RNG):
        return None  # annotations
    attrs = dict(el.attrib)
    ns = attrs.get("ns", ns)
    attrs["ns"] = ns
    kids = [n for n in (_convert(c, ns) for c in el) if n is not None]
    return _Node(tag[len(_RNG):], attrs, kids, (el.text or "").strip())


class _Grammar:
    """The defines and start of one schema file, includes resolved."""

    def __init__(self, path: Path):
        self.defines: dict[str, list[_Node]] = {}  # name -> alternative bodies (lists of nodes)
        self.start: list[_Node] = []
        self._load(path, self.defines, self.start, set())
        for name, bodies in self.defines.items():
            if len(bodies) == 1 and len(bodies[0]) == 1 and bodies[0][0].kind == "element":
                bodies[0][0].define = name

    def _load(self, path: Path, defines: dict, start: list, seen: set) -> None:
        if path in seen:
            return
        seen.add(path)
        root = _convert(xmlapi.parse_file(str(path)))
        for item in root.children:
            if item.kind == "include":
                sub_defs: dict[str, list] = {}
                sub_start: list = []
                self._load(path.parent / item.attrs["href"], sub_defs, sub_start, seen)
                for over in item.children:
                    if over.kind == "define":
                        sub_defs[over.attrs["name"]] = [over.children]
                    elif over.kind == "start":
                        sub_start[:] = over.children
                for k, v in sub_defs.items():
                    defines.setdefault(k, []).extend(v)
                start.extend(sub_start)
            elif item.kind == "define":
                defines.setdefault(item.attrs["name"], []).append(item.children)
            elif item.kind == "start":
                start.extend(item.children)


class _Schemas:
    """Compiled schemas and the pattern model of one kind, cached."""

    _cache: dict[str, "_Schemas"] = {}
    _lock = threading.Lock()

    def __init__(self, kind: str):
        self.kind = kind
        self.path = _schema_dir() / SCHEMA_FILES[kind]
        self._full = None
        self._subs: dict[str, object] = {}
        self._grammar: _Grammar | None = None
        self.lock = threading.RLock()

    @classmethod
    def get(cls, kind: str) -> "_Schemas":
        with cls._lock:
            s = cls._cache.get(kind)
            if s is None:
                s = cls._cache[kind] = _Schemas(kind)
            return s

    def full(self):
        if self._full is None:
            self._full = xmlapi.load_relaxng(str(self.path))
        return self._full

    def sub(self, define: str):
        """The schema validating one element against ``define``."""
        s = self._subs.get(define)
        if s is None:
            s = self._subs[define] = xmlapi.load_relaxng(str(self.path), start=define)
        return s

    @property
    def grammar(self) -> _Grammar:
        if self._grammar is None:
            self._grammar = _Grammar(self.path)
        return self._grammar


# --- values and data types --------------------------------------------------------

_INT_RANGES = {
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "integer": (None, None),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 255),
    "positiveInteger": (1, None),
    "nonNegativeInteger": (0, None),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
}

# what a value of a named define looks like, for messages
_DESCRIBE = {
    "UUID": "a UUID such as 4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
    "uint": "an unsigned integer (decimal, or hexadecimal)",
    "unsignedInt": "an unsigned integer",
    "unsignedLong": "an unsigned integer",
    "unsignedShort": "an integer from 0 to 65535",
    "uint8": "a number from 0 to 255 (or 0x0 to 0xff)",
    "uint16": "a number from 0 to 65535 (or 0x0 to 0xffff)",
    "uint24": "a number from 0 to 16777215 (or 0x0 to 0xffffff)",
    "unit": "a unit such as KiB, MiB, GiB, KB or bytes",
    "uniMacAddr": "a unicast MAC address such as 52:54:00:12:34:56",
    "objectNameNoSlash": "a non-empty name on one line, without '/'",
    "volName": "a file name (no '/', not . or ..)",
    "vmwarePath": "a VMware datastore path such as [datastore] dir/disk.vmdk",
    "positiveInt": "a positive integer",
    "int": "an integer",
    "hexuint": "a hexadecimal number of at most 8 digits",
    "percent": "a percentage between 0 and 100",
    "port": "a port number (-1 to 65535)",
    "tcpPort": "a port number (1 to 65535)",
    "macAddr": "a MAC address such as 52:54:00:12:34:56",
    "ipv4Addr": "an IPv4 address",
    "ipv6Addr": "an IPv6 address",
    "ipAddr": "an IP address",
    "dnsOrIp": "a host name or an IP address",
    "ipPrefix": "a network prefix length (0 to 128)",
    "pciDomain": "a PCI domain (0x0000 to 0xffff)",
    "pciBus": "a PCI bus number (0x00 to 0xff)",
    "pciSlot": "a PCI slot number (0x00 to 0x1f)",
    "pciFunc": "a PCI function number (0x0 to 0x7)",
    "usbPort": "a USB port path such as 1.2.3 (at most 4 levels)",
    "usbId": "a USB id (hexadecimal, up to 4 digits)",
    "usbAddr": "a USB bus or device number (up to 3 hexadecimal digits)",
    "ccwCssid": "a channel subsystem id (0x00 to 0xfe)",
    "ccwSsid": "a subchannel set id (0x0 to 0x3)",
    "ccwDevno": "a device number (0x0000 to 0xffff)",
    "absFilePath": "an absolute path",
    "absDirPath": "an absolute path",
    "filePath": "a non-empty path",
    "cpuset": "a CPU or node list such as 0-3,^2,6",
    "objectName": "a non-empty name on one line",
    "genericName": "a name of letters, digits and _+-.:",
    "aliasName": "a name of letters, digits and _-.",
    "deviceName": "a device name",
    "dnsName": "a host name",
    "wwn": "a WWN of 16 hexadecimal digits",
    "timeDelta": "a number of seconds, optionally signed",
    "weight": "a weight between 100 and 1000",
    "timestamp": "a time such as 2011-05-31T16:11:22",
    "ownerId": "a user or group id, or -1",
}


def _norm(v: str) -> str:
    return " ".join(v.split())


def _xsd_pattern(p: str) -> re.Pattern:
    return _PATTERN_CACHE.get(p) or _PATTERN_CACHE.setdefault(p, re.compile(p))


_PATTERN_CACHE: dict[str, re.Pattern] = {}


def _data_ok(node: _Node, value: str) -> bool:
    """Does ``value`` match a RelaxNG ``<data>`` pattern?  Unknown types pass."""
    typ = node.attrs.get("type", "")
    params = {p.attrs.get("name"): p.text for p in node.children if p.kind == "param"}
    if typ in _INT_RANGES:
        v = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", v):
            return False
        n = int(v)
        lo, hi = _INT_RANGES[typ]
        if "minInclusive" in params:
            lo = int(params["minInclusive"])
        if "maxInclusive" in params:
            hi = int(params["maxInclusive"])
        return (lo is None or n >= lo) and (hi is None or n <= hi)
    if typ in ("string", "token", "normalizedString", ""):
        pat = params.get("pattern")
        if pat is None:
            return True
        try:
            return _xsd_pattern(pat).fullmatch(value) is not None
        except re.error:
            return True
    return True


class _Values:
    """What values an attribute (or an element's text) may take."""

    __slots__ = ("enum", "data", "free")

    def __init__(self):
        self.enum: list[str] = []
        self.data: list[tuple[_Node, str | None]] = []  # (data node, describing define name)
        self.free = False  # <text/> or an unconstrained pattern

    def ok(self, value: str) -> bool:
        if self.free:
            return True
        if _norm(value) in self.enum or value in self.enum:
            return True
        return any(_data_ok(d, value) for d, _ in self.data)

    @property
    def constrained(self) -> bool:
        return not self.free and bool(self.enum or self.data)

    def expected(self) -> str:
        parts = []
        descs = []
        for d, name in self.data:
            desc = _DESCRIBE.get(name or "") or _describe_data(d)
            if desc not in descs:
                descs.append(desc)
        if self.enum:
            uniq = list(dict.fromkeys(self.enum))
            shown = ", ".join(uniq[:_ENUM_SHOWN]) + (", …" if len(uniq) > _ENUM_SHOWN else "")
            if descs:
                parts.append(shown)
            else:
                return f"expected one of: {shown}"
        parts.extend(descs)
        return "expected " + " or ".join(parts)


def _describe_data(node: _Node) -> str:
    typ = node.attrs.get("type", "")
    params = {p.attrs.get("name"): p.text for p in node.children if p.kind == "param"}
    if typ in _INT_RANGES:
        lo, hi = _INT_RANGES[typ]
        lo = int(params.get("minInclusive", lo)) if (lo is not None or "minInclusive" in params) else None
        hi = int(params.get("maxInclusive", hi)) if (hi is not None or "maxInclusive" in params) else None
        if lo is not None and hi is not None:
            return f"an integer from {lo} to {hi}"
        if lo is not None:
            return f"an integer of at least {lo}"
        return "an integer"
    if "pattern" in params:
        return f"a value matching {params['pattern']}"
    return f"a value of type {typ or 'string'}"


# --- collecting what a pattern allows -------------------------------------------

def _names(node: _Node) -> list[str] | None:
    """The qualified names an element/attribute pattern accepts; None = any."""
    if "name" in node.attrs:
        name = node.attrs["name"]
        ns = node.attrs.get("ns", "") if node.kind == "element" else ""
        if ":" in name:
            name = name.split(":", 1)[1]
        return [f"{{{ns}}}{name}" if ns else name]
    out: list[str] = []
    for c in node.children:
        if c.kind == "name":
            ns = c.attrs.get("ns", "") if node.kind == "element" else ""
            out.append(f"{{{ns}}}{c.text}" if ns else c.text)
        elif c.kind == "choice":
            sub = _names(_Node(node.kind, node.attrs, c.children, ""))
            if sub is None:
                return None
            out.extend(sub)
        elif c.kind in ("anyName", "nsName"):
            return None
    return out


def _content(node: _Node) -> list[_Node]:
    """The content patterns of an element/attribute node (its name class removed)."""
    if "name" in node.attrs:
        return node.children
    return node.children[1:]


class _Allowed:
    """The union of what some element patterns allow, for one instance element."""

    def __init__(self):
        self.attrs: dict[str, _Values] = {}
        self.any_attr = False
        self.children: dict[str, list[_Node]] = {}
        self.any_child = False
        self.text = _Values()
        self.text_seen = False


class _Model:
    def __init__(self, grammar: _Grammar):
        self.g = grammar
        self.narrowed_by: set[tuple[str, str]] = set()  # (attribute, value) that chose branches

    # the start: element patterns for the root
    def root_patterns(self) -> list[_Node]:
        acc = _Allowed()
        for n in self.g.start:
            self._walk(n, None, acc, set(), None)
        out: list[_Node] = []
        for v in acc.children.values():
            out.extend(v)
        return out

    def allowed(self, patterns: list[_Node], inst) -> _Allowed:
        acc = _Allowed()
        for p in patterns:
            for c in _content(p):
                self._walk(c, inst, acc, set(), None)
        return acc

    def _walk(self, n: _Node, inst, acc: _Allowed, seen: set, defname: str | None,
              target: _Values | None = None) -> None:
        """Collect into ``acc`` what pattern ``n`` allows; inside an attribute,
        values go to ``target``."""
        k = n.kind
        if k == "element":
            if target is not None:
                return
            names = _names(n)
            if names is None:
                acc.any_child = True
                return
            for name in names:
                acc.children.setdefault(name, []).append(n)
        elif k == "attribute":
            names = _names(n)
            if names is None:
                acc.any_attr = True
                return
            content = _content(n)
            for name in names:
                vals = acc.attrs.setdefault(name, _Values())
                if not content:
                    vals.free = True
                for c in content:
                    self._walk(c, inst, acc, set(), None, target=vals)
        elif k == "ref" or k == "parentRef":
            name = n.attrs.get("name", "")
            if name in seen:
                return
            for body in self.g.defines.get(name, []):
                for c in body:
                    self._walk(c, inst, acc, seen | {name}, name, target)
        elif k == "choice" and inst is not None and target is None:
            branches = self._narrow(n.children, inst)
            for c in branches:
                self._walk(c, inst, acc, seen, defname, target)
        elif k in ("group", "interleave", "optional", "zeroOrMore", "oneOrMore", "mixed", "choice", "list"):
            if k == "mixed" and target is None:
                acc.text.free = True
            for c in n.children:
                self._walk(c, inst, acc, seen, defname, target)
        elif k == "value":
            (target or acc.text).enum.append(_norm(n.text))
            if target is None:
                acc.text_seen = True
        elif k == "data":
            (target or acc.text).data.append((n, defname))
            if target is None:
                acc.text_seen = True
        elif k == "text":
            (target or acc.text).free = True
            if target is None:
                acc.text_seen = True
        # empty, notAllowed, externalRef: nothing

    # choosing the branches of a <choice> that match the instance
    def _discriminators(self, n: _Node, seen: set) -> dict[str, set[str]] | None:
        """Attributes with fixed values that a branch requires: {name: values}."""
        k = n.kind
        if k == "attribute":
            names = _names(n)
            content = _content(n)
            if names and len(names) == 1:
                vals = set()
                for c in content:
                    if c.kind == "value":
                        vals.add(_norm(c.text))
                    elif c.kind == "choice" and all(x.kind == "value" for x in c.children):
                        vals.update(_norm(x.text) for x in c.children)
                    else:
                        return {}
                if vals:
                    return {names[0]: vals}
            return {}
        if k in ("group", "interleave"):
            out: dict[str, set[str]] = {}
            for c in n.children:
                d = self._discriminators(c, seen)
                if d:
                    out.update(d)
            return out
        if k == "ref":
            name = n.attrs.get("name", "")
            bodies = self.g.defines.get(name, [])
            if name in seen or len(bodies) != 1:
                return {}
            return self._discriminators(_Node("group", {}, bodies[0], ""), seen | {name})
        return {}

    def _narrow(self, branches: list[_Node], inst) -> list[_Node]:
        scored = []
        for b in branches:
            d = self._discriminators(b, set()) or {}
            match = all(_norm(inst.get(a, "\0")) in vals for a, vals in d.items())
            scored.append((b, d, match))
        if any(d for _, d, _ in scored):
            matching = [(b, d) for b, d, m in scored if d and m]
            if matching:
                for _, d in matching:
                    for a in d:
                        self.narrowed_by.add((a, _norm(inst.get(a, ""))))
                return [b for b, _ in matching]
        return branches

    # what is required
    def required(self, patterns: list[_Node], inst) -> tuple[set[str], set[str]]:
        attrs: set[str] | None = None
        elems: set[str] | None = None
        for p in patterns:
            a, e = self._req_group(_content(p), inst, set())
            attrs = a if attrs is None else attrs & a
            elems = e if elems is None else elems & e
        return attrs or set(), elems or set()

    def _req_group(self, nodes: list[_Node], inst, seen: set) -> tuple[set[str], set[str]]:
        a: set[str] = set()
        e: set[str] = set()
        for n in nodes:
            na, ne = self._req(n, inst, seen)
            a |= na
            e |= ne
        return a, e

    def _req(self, n: _Node, inst, seen: set) -> tuple[set[str], set[str]]:
        k = n.kind
        if k == "element":
            names = _names(n)
            return set(), set(names) if names and len(names) == 1 else set()
        if k == "attribute":
            names = _names(n)
            return (set(names) if names and len(names) == 1 else set()), set()
        if k in ("group", "interleave", "oneOrMore", "mixed"):
            return self._req_group(n.children, inst, seen)
        if k == "ref":
            name = n.attrs.get("name", "")
            bodies = self.g.defines.get(name, [])
            if name in seen or not bodies:
                return set(), set()
            results = [self._req_group(b, inst, seen | {name}) for b in bodies]
            a = set.intersection(*(r[0] for r in results))
            e = set.intersection(*(r[1] for r in results))
            return a, e
        if k == "choice":
            branches = self._narrow(n.children, inst)
            results = [self._req(b, inst, seen) for b in branches]
            if not results:
                return set(), set()
            return (set.intersection(*(r[0] for r in results)),
                    set.intersection(*(r[1] for r in results)))
        return set(), set()

