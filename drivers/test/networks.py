"""The test driver's networks: ``default`` and a node file's ``<network>``s,
kept in the connection object as libvirt's test driver keeps them (every
one-shot command starts from the node's networks, all active and
persistent, autostart off)."""
from __future__ import annotations

import uuid as uuidlib

from virtctl.api.network import NetworkRecord
from virtctl.drivers.base import NetworkDriver
from virtctl.errors import OperationFailed, OperationInvalid, unsupported_flags


def _parse(data, source: str):
    """The validated ``<network>`` element of ``data`` (str, bytes or element)."""
    from virtctl.xml import validate, xmlapi

    if isinstance(data, (str, bytes)):
        return validate.parse_and_validate(data, "network", source=source)
    validate.validate(data, "network", source=source)
    return xmlapi.copy(data)


# libvirt's order of a network's top-level elements when it formats one
_ORDER = {t: i for i, t in enumerate(
    "name uuid title description metadata forward bridge mtu mac domain dns ip route portgroup "
    "virtualport bandwidth vlan port".split())}


def _normalise(root) -> None:
    """What libvirt's network formatter does: a canonical UUID (a new one
    when none was given), <forward dev='X'> as mode='nat' with its
    <interface dev='X'/>, the bridge's stp='on' and delay='0' defaults, and
    the elements in libvirt's order."""
    from virtctl.api.connection import canonical_uuid
    from virtctl.xml import xmlapi

    el = root.find("uuid")
    if el is None:
        el = xmlapi.sub(root, "uuid", text=str(uuidlib.uuid4()))
    else:
        el.text = canonical_uuid(el.text or "")
    fwd = root.find("forward")
    if fwd is not None:
        fwd.set("mode", fwd.get("mode", "nat"))
        dev = fwd.get("dev")
        if dev and fwd.find("interface") is None and fwd.get("mode") in ("nat", "route", "open"):
            xmlapi.sub(fwd, "interface", {"dev": dev})
    br = root.find("bridge")
    if br is not None:
        br.set("stp", br.get("stp", "on"))
        br.set("delay", br.get("delay", "0"))
    kids = [c for c in root if xmlapi.is_element(c)]
    for c in kids:
        root.remove(c)
    for c in sorted(kids, key=lambda c: _ORDER.get(c.tag, len(_ORDER))):
        root.append(c)


class _Net:
    # root: the live definition (the only one while inactive); pending: the
    # persistent definition of an active network when it differs (libvirt's newDef)
    __slots__ = ("root", "pending", "active", "persistent", "autostart")

    def __init__(self, root, *, active: bool, persistent: bool):
        self.root, self.active, self.persistent, self.autostart = root, active, persistent, False
        self.pending = None

    @property
    def uuid(self) -> str:
        return self.root.findtext("uuid").strip().lower()

    @property
    def name(self) -> str:
        return self.root.findtext("name").strip()

    def record(self) -> NetworkRecord:
        br = self.root.find("bridge")
        return NetworkRecord(uuid=self.uuid, name=self.name, active=self.active,
                             persistent=self.persistent, autostart=self.autostart,
                             bridge=br.get("name") if br is not None else None)


def _format(root) -> str:
    """libvirt's layout: an ``<ip>`` or ``<portgroup>`` without children still spans two lines."""
    from virtctl.xml import xmlapi

    text = xmlapi.tostring(root)
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if (stripped.startswith("<ip ") or stripped.startswith("<portgroup ")) and stripped.endswith("/>"):
            pad = line[:len(line) - len(stripped)]
            out += [line[:-2] + ">", pad + f"</{stripped[1:].split(' ', 1)[0]}>"]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


class TestNetworkDriver(NetworkDriver):
    driver_name = "test"

    def __init__(self):
        self._net_map: dict[str, _Net] = {}  # uuid -> network, in definition order
        self._pending = None  # (elements or a callable giving them, source, trusted)

    def load(self, elements, source: str, *, trusted: bool = False) -> None:
        """``trusted``: the built-in default, not validated (a schema compile
        would cost every one-shot command on test:///default).  ``elements``
        may be a callable: test:///default parses its networks only when a
        command needs them (a one-shot ``list`` never does)."""
        self._pending = (elements, source, trusted)
        if not callable(elements):  # a node file's errors belong to connecting
            self._nets  # noqa: B018

    @property
    def _nets(self) -> dict[str, _Net]:
        if self._pending is not None:
            from virtctl.xml import xmlapi

            elements, source, trusted = self._pending
            self._pending = None
            for el in (elements() if callable(elements) else elements):
                root = xmlapi.copy(el) if trusted else _parse(el, source)
                _normalise(root)
                n = _Net(root, active=True, persistent=True)
                self._net_map[n.uuid] = n
        return self._net_map

    def _get(self, uuid: str) -> _Net:
        from virtctl.errors import NoNetwork

        n = self._nets.get(uuid)
        if n is None:
            raise NoNetwork(f"Network not found: no network with matching uuid '{uuid}'",
                            detail={"uuid": uuid})
        return n

    def list(self) -> list[NetworkRecord]:
        return sorted((n.record() for n in self._nets.values()), key=lambda r: r.name)

    def get(self, uuid: str) -> NetworkRecord:
        return self._get(uuid).record()

    def get_xml(self, uuid: str, *, inactive: bool = False) -> str:
        n = self._get(uuid)
        if inactive:  # as libvirt's test driver: it takes no flags
            raise unsupported_flags("test", "net-dumpxml --inactive", 1, "testNetworkGetXMLDesc")
        return _format(n.root)

    def _add(self, xml: str, source: str, *, persistent: bool) -> _Net:
        root = _parse(xml, source)
        _normalise(root)
        name = root.findtext("name").strip()
        new_uuid = root.findtext("uuid").strip().lower()
        for n in self._nets.values():
            if n.name == name and n.uuid != new_uuid:
                raise OperationFailed(f"operation failed: network '{name}' already exists with uuid {n.uuid}",
                                      detail={"network": name, "uuid": n.uuid})
            if n.uuid == new_uuid and n.name != name:
                raise OperationFailed(f"operation failed: network '{n.name}' is already defined with uuid {n.uuid}",
                                      detail={"network": n.name, "uuid": n.uuid})
        old = self._nets.get(new_uuid)
        if old is not None:
            if not persistent and old.active:
                raise OperationInvalid(f"Requested operation is not valid: network '{name}' is already active",
                                       detail={"network": name})
            if persistent and old.active:
                old.pending = root  # the live definition stays until it stops
            else:
                old.root = root
            old.persistent = old.persistent or persistent
            if not persistent:
                old.active = True
            return old
        n = _Net(root, active=not persistent, persistent=persistent)
        self._nets[n.uuid] = n
        return n

    def define(self, xml: str, *, source: str = "<input>") -> NetworkRecord:
        return self._add(xml, source, persistent=True).record()

    def create_xml(self, xml: str, *, source: str = "<input>") -> NetworkRecord:
        return self._add(xml, source, persistent=False).record()

    def undefine(self, uuid: str) -> None:
        n = self._get(uuid)
        if n.active:
            raise OperationInvalid(f"Requested operation is not valid: Network '{n.name}' is still running",
                                   detail={"network": n.name})
        del self._nets[uuid]

    def start(self, uuid: str) -> None:
        n = self._get(uuid)
        if n.active:
            raise OperationInvalid(f"Requested operation is not valid: Network '{n.name}' is already running",
                                   detail={"network": n.name})
        n.active = True

    def destroy(self, uuid: str, *, force: bool = False) -> None:
        # libvirt 9.0's test driver does not check the state: destroying an
        # inactive network succeeds, as virsh shows
        n = self._get(uuid)
        # nor does it ever apply a definition changed while the network ran
        # (net-define, net-update --config): virsh shows the old one after a
        # restart, and so does virtctl here
        n.active = False
        if not n.persistent:
            del self._nets[uuid]

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        self._get(uuid).autostart = enabled

    def update(self, uuid: str, command: str, section: str, xml: str, *, parent_index: int | None = None,
               live: bool = False, config: bool = False) -> None:
        from virtctl.xml import validate, xmlapi
        from virtctl.xml.network_update import apply

        n = self._get(uuid)
        if not live and not config:  # --current
            live, config = n.active, not n.active
        if live and not n.active:
            raise OperationInvalid("Requested operation is not valid: network is not running")
        if config and not n.persistent:
            raise OperationInvalid("Requested operation is not valid: cannot change persistent config of a "
                                   "transient network")
        targets = []  # (attribute, new element): all checked before any is kept
        if live:
            targets.append("root")
        if config:
            targets.append("pending" if n.active else "root")
        new = {}
        for attr in dict.fromkeys(targets):
            base = getattr(n, attr)
            if base is None:  # the first config change of an active network
                base = n.root
            el = xmlapi.copy(base)
            apply(el, command, section, xml, parent_index, n.name)
            validate.validate(el, "network", source="<net-update>")
            new[attr] = el
        for attr, el in new.items():
            setattr(n, attr, el)
