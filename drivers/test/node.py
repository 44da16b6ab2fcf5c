"""Loading a test-driver node file (libvirt's format, see drvtest.rst).

``<node>`` holds ``<cpu>`` and ``<memory>`` (the host), and any number of
``<domain>``, ``<network>``, ``<pool>`` (with ``<volume>``s), ``<interface>``
and ``<device>`` objects, each inline or as ``file='path'`` relative to the
node file's directory.  Inline domains may carry runtime hints in the test
namespace: ``<test:runstate>N</test:runstate>``, ``<test:transient/>``,
``<test:hasmanagedsave/>``.
"""
from __future__ import annotations

import os

from virtctl.api.types import DomainState, NodeInfo
from virtctl.errors import XMLError
from virtctl.lazy import lazy

xmlapi = lazy("virtctl.xml.xmlapi")  # lxml: not for a one-shot command on test:///default
_domain = lazy("virtctl.xml.domain")

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"

DEFAULT_NODE_INFO = NodeInfo(model="i686", memory_kib=3145728, cpus=16, mhz=1400,
                             nodes=2, sockets=2, cores=2, threads=2)


class NodeDomain:
    def __init__(self, definition, runstate: DomainState = DomainState.RUNNING,
                 transient: bool = False, managed_save: bool = False):
        self.definition = definition
        self.runstate, self.transient, self.managed_save = runstate, transient, managed_save


_OBJECT_KINDS = ("networks", "pools", "interfaces", "devices")


class NodeConfig:
    """The host, the domains, and the other objects (elements, for the
    network and storage issues; ``load_objects`` makes them on first use)."""

    def __init__(self, info: NodeInfo, domains=None, *, load_objects=None):
        self.info = info
        self.domains: list[NodeDomain] = domains if domains is not None else []
        self._objects = None if load_objects else {k: [] for k in _OBJECT_KINDS}
        self._load_objects = load_objects

    def objects(self, kind: str) -> list:
        if self._objects is None:
            self._objects = self._load_objects()
        return self._objects[kind]

    @property
    def lazy_objects(self) -> bool:
        """True while the objects are still to be parsed (test:///default)."""
        return self._objects is None

    networks = property(lambda self: self.objects("networks"))
    pools = property(lambda self: self.objects("pools"))
    interfaces = property(lambda self: self.objects("interfaces"))
    devices = property(lambda self: self.objects("devices"))


class LazyDomainDef:
    """A trusted definition (test:///default's) parsed on first need: until
    then the summary answers what a DomainRecord takes (name, uuid, title,
    os_type, vcpus, memory), so ``list``/``dominfo``/``domstate`` import no
    lxml.  Any other attribute, and any assignment, parses it and goes to
    the DomainDef from then on (tests/test_import_discipline.py checks the
    summary against the parsed definition)."""

    _SUMMARY = ("name", "uuid", "title", "os_type", "vcpus", "max_vcpus", "max_memory_kib", "memory_kib")

    def __init__(self, xml: str, source: str, summary: dict):
        object.__setattr__(self, "_lazy", (xml, source, summary))
        object.__setattr__(self, "_real", None)

    def materialize(self):
        real = self._real
        if real is None:
            xml, source, _summary = self._lazy
            real = _domain.DomainDef(xmlapi.parse(xml, source=source))
            real.check(source)
            object.__setattr__(self, "_real", real)
        return real

    def __getattr__(self, attr):
        if self._real is None and attr in self._SUMMARY:
            return self._lazy[2][attr]
        return getattr(self.materialize(), attr)

    def __setattr__(self, attr, value):
        setattr(self.materialize(), attr, value)


def load_default() -> NodeConfig:
    """test:///default without parsing anything (default_node.py)."""
    from virtctl.drivers.test import default_node as dn

    domains = [NodeDomain(LazyDomainDef(xml, "test:///default", summary), runstate=DomainState(summary["runstate"]))
               for xml, summary in dn.DEFAULT_DOMAINS]
    return NodeConfig(DEFAULT_NODE_INFO, domains,
                      load_objects=lambda: {k: getattr(load(dn.DEFAULT_NODE_XML, source="test:///default",
                                                            trusted=True), k) for k in _OBJECT_KINDS})


def _int(root, path: str, default: int, source: str) -> int:
    el = root.find(path)
    if el is None:
        return default
    try:
        v = int((el.text or "").strip())
    except ValueError:
        raise XMLError(f"{source}: /node/{path}: invalid value '{el.text}' (expected an integer)") from None
    if v < 0:
        raise XMLError(f"{source}: /node/{path}: invalid value '{el.text}' (must not be negative)")
    return v


def _node_info(root, source: str) -> NodeInfo:
    d = DEFAULT_NODE_INFO
    nodes = _int(root, "cpu/nodes", d.nodes, source)
    sockets = _int(root, "cpu/sockets", d.sockets, source)
    cores = _int(root, "cpu/cores", d.cores, source)
    threads = _int(root, "cpu/threads", d.threads, source)
    cpus = nodes * sockets * cores * threads
    cpus = min(cpus, _int(root, "cpu/active", cpus, source))
    model = root.findtext("cpu/model")
    return NodeInfo(model=(model.strip()[:31] if model else d.model),
                    memory_kib=_int(root, "memory", d.memory_kib, source), cpus=cpus,
                    mhz=_int(root, "cpu/mhz", d.mhz, source), nodes=nodes, sockets=sockets,
                    cores=cores, threads=threads)


def _resolve(el, base_dir: str, source: str):
    """The object element itself, or the root of the file it names."""
    ref = el.get("file")
    if ref is None:
        return el, source
    path = ref if os.path.isabs(ref) else os.path.join(base_dir, ref)
    root = xmlapi.parse_file(path)
    if root.tag != el.tag:
        raise XMLError(f"{path}: expected a <{el.tag}> document, found <{root.tag}>")
    return root, path


def _node_domain(el, source: str, validate_domain: bool) -> NodeDomain:
    hints = {}
    for child in list(el):
        if isinstance(child.tag, str) and child.tag.startswith("{" + TEST_NS + "}"):
            hints[child.tag.split("}", 1)[1]] = child
            el.remove(child)
    xmlapi.cleanup_namespaces(el)
    if validate_domain:
        definition = _domain.DomainDef.parse(xmlapi.tostring(el), source=source)
    else:  # validated with its node: take the element itself, no re-parse
        definition = _domain.DomainDef(el)
        definition.check(source)
    nd = NodeDomain(definition=definition)
    if "runstate" in hints:
        text = (hints["runstate"].text or "").strip()
        try:
            nd.runstate = DomainState(int(text))
        except ValueError:
            raise XMLError(f"{source}: domain '{nd.definition.name}': invalid runstate '{text}'") from None
    nd.transient = "transient" in hints
    nd.managed_save = "hasmanagedsave" in hints
    if nd.transient and nd.runstate == DomainState.SHUTOFF:
        raise XMLError(f"{source}: domain '{nd.definition.name}': a transient domain cannot be shut off")
    return nd


def load(data: str | bytes, source: str, *, trusted: bool = False) -> NodeConfig:
    """Load a node document.  ``trusted`` skips schema validation: only for
    virtctl's own built-in default (compiling the schemas would cost every
    one-shot command on test:///default ~70 ms; a test validates it)."""
    root = xmlapi.parse(data, source=source)
    if root.tag != "node":
        raise XMLError(f"{source}: expected a <node> document, found <{root.tag}>")
    if not trusted:
        from virtctl.xml import validate

        validate.validate(root, "node", source=source, text=data)
    base_dir = os.path.dirname(os.path.abspath(source)) if source.startswith("/") else os.getcwd()
    conf = NodeConfig(info=_node_info(root, source))
    for el in list(root):
        if not xmlapi.is_element(el):
            continue
        if el.tag == "domain":
            obj, src = _resolve(el, base_dir, source)
            if obj is el:
                root.remove(el)  # the definition owns its element from now on
            # inline domains were validated with the node; files are validated on their own
            conf.domains.append(_node_domain(obj, src, validate_domain=obj is not el))
        elif el.tag in ("network", "pool", "interface", "device"):
            obj, _src = _resolve(el, base_dir, source)
            conf.objects({"network": "networks", "pool": "pools", "interface": "interfaces",
                          "device": "devices"}[el.tag]).append(obj)
    return conf
