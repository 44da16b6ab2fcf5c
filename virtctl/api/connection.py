"""Connection: the entry point of the public API.

A Connection owns one driver instance.  It hands out opaque handles keyed by
UUID and enforces what is the same for every driver: read-only connections,
argument checking, and lookup order.  Nothing here prints.
"""
from __future__ import annotations

from typing import Iterable

from virtctl.api.domain import Domain
from virtctl.api.types import DomainRecord, DomainState, NodeInfo, Version
from virtctl.errors import InvalidArg, NoDomain, OperationDenied
from virtctl.uri import URI

_HEX = frozenset("0123456789abcdefABCDEF")
_SPACE = " \t\n\v\f\r"  # C's isspace() in the C locale
_INT32_MAX = 2**31 - 1


def _parse_uuid(text: str) -> str | None:
    """libvirt's UUID reading (virUUIDParse): 32 hex digits in pairs, with
    '-' or ' ' allowed anywhere between pairs and white space around; the
    canonical lower-case dashed form, or None."""
    s = text.strip(_SPACE)
    digits, i = [], 0
    while len(digits) < 16:
        if i >= len(s):
            return None
        if s[i] in "- ":
            i += 1
            continue
        pair = s[i:i + 2]
        if len(pair) < 2 or not _HEX.issuperset(pair):
            return None
        digits.append(pair.lower())
        i += 2
    if i != len(s):
        return None
    h = "".join(digits)
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def canonical_uuid(text: str) -> str:
    """``text`` as a canonical lower-case dashed UUID, or INVALID_ARG."""
    u = _parse_uuid(text)
    if u is None:
        raise InvalidArg(f"malformed UUID '{text}'")
    return u


def looks_like_uuid(text: str) -> bool:
    """virsh's test before a lookup by UUID: 36 characters that libvirt
    reads as a UUID (so 32 bare hex digits are a name, not a UUID)."""
    return len(text) == 36 and _parse_uuid(text) is not None


def parse_id(text: str) -> int | None:
    """virsh's test before a lookup by id (virStrToLong_i, then >= 0): an
    optional sign and decimal digits after optional leading white space,
    nothing after them, within a C int; None otherwise."""
    s = text.lstrip(_SPACE)
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or not body.isascii() or not body.isdigit():
        return None
    n = int(s)
    return n if 0 <= n <= _INT32_MAX else None


def _matching(recs, *, active=None, persistent=None, autostart=None) -> list:
    """The records matching every given filter (``None``: either): the one
    filter of every object kind's listing (networks, pools)."""
    return [r for r in recs
            if (active is None or r.active == active) and (persistent is None or r.persistent == persistent)
            and (autostart is None or r.autostart == autostart)]


def _find(recs, key: str, *, by_uuid: bool, by_name: bool):
    """The record virsh's lookup finds: by UUID when ``key`` is one, then by
    name; None otherwise."""
    if by_uuid and looks_like_uuid(key):
        u = canonical_uuid(key)
        for rec in recs:
            if rec.uuid == u:
                return rec
    if by_name:
        for rec in recs:
            if rec.name == key:
                return rec
    return None


# virsh domstats's groups, in libvirt's bit order (VIR_DOMAIN_STATS_*: state = 0x1, ...)
STATS_GROUPS = ("state", "cpu-total", "balloon", "vcpu", "interface", "block", "perf", "iothread",
                "memory", "dirtyrate", "vm")
_LIST_KINDS = ({"active", "inactive"}, {"persistent", "transient"}, {"running", "paused", "shutoff", "other"})


def _kept(rec, lists: set) -> bool:
    """domstats's --list-* filters on one record."""
    from virtctl.api.types import DomainState

    have = {"active" if rec.active else "inactive", "persistent" if rec.persistent else "transient",
            {DomainState.RUNNING: "running", DomainState.PAUSED: "paused",
             DomainState.SHUTOFF: "shutoff"}.get(rec.state, "other")}
    return all(not (kind & lists) or (kind & lists & have) for kind in _LIST_KINDS)


class Connection:
    """An open connection to a hypervisor.  Use as a context manager."""

    def __init__(self, uri: str, *, readonly: bool = False):
        from virtctl.drivers import driver_class, route

        parsed = URI.parse(uri)
        self._driver = driver_class(route(parsed))(parsed, readonly=readonly)
        self.readonly = readonly

    # --- context manager ------------------------------------------------------
    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    # --- internal helpers used by handles --------------------------------------
    @property
    def _dom_driver(self):
        return self._driver.domains

    def _check_writable(self, what: str) -> None:
        if self.readonly:
            raise OperationDenied(f"operation forbidden: read only access prevents {what}")

    # --- host -----------------------------------------------------------------
    @property
    def uri(self) -> str:
        return self._driver.canonical_uri()

    @property
    def driver_name(self) -> str:
        return self._driver.name

    def hostname(self) -> str:
        return self._driver.hostname()

    def version(self) -> Version:
        return self._driver.version()

    def node_info(self) -> NodeInfo:
        return self._driver.node_info()

    # --- statistics and capabilities (domstats, nodecpustats, ...) -------------------------
    def domain_stats(self, doms=None, *, groups=None, lists=(), enforce: bool = False,
                     backing: bool = False, nowait: bool = False) -> list:
        """[(Domain, [(key, value), ...])] for ``doms`` (None: every domain),
        kept by the ``lists`` kinds ("active", "inactive", "persistent",
        "transient", "running", "paused", "shutoff", "other": or-ed within
        a kind, and-ed across); ``groups`` None: every group the driver fills."""
        drv = self._dom_driver
        supported = tuple(getattr(drv, "stats_groups", ("state",)))
        if groups:
            bad = [g for g in groups if g not in supported]
            if enforce and bad:
                from virtctl.errors import NotSupported

                bits = sum(1 << STATS_GROUPS.index(g) for g in bad)
                raise NotSupported(f"argument unsupported: Stats types bits 0x{bits:x} are not supported "
                                   "by this daemon", detail={"groups": bad})
            wanted = [g for g in groups if g in supported]
        else:
            wanted = list(supported)
        lists = set(lists)
        if doms is None:
            doms = [Domain(self, r) for r in drv.list()]
        out = []
        for dom in doms:
            rec = drv.get(dom.uuid)
            if not _kept(rec, lists):
                continue
            out.append((Domain(self, rec), drv.domain_stats(dom.uuid, wanted, backing=backing, nowait=nowait)))
        return out

    def node_cpu_stats(self, cpu: int | None = None) -> dict:
        """Host CPU times in ns (user, system, idle, iowait), of CPU ``cpu`` or all."""
        return self._driver.node_cpu_stats(cpu)

    def node_memory_stats(self, cell: int | None = None) -> dict:
        """Host memory in KiB (total, free, buffers, cached), of NUMA cell ``cell`` or all."""
        return self._driver.node_memory_stats(cell)

    def capabilities(self) -> str:
        return self._driver.capabilities()

    def domain_capabilities(self, *, virttype=None, emulatorbin=None, arch=None, machine=None) -> str:
        return self._driver.domain_capabilities(virttype=virttype, emulatorbin=emulatorbin, arch=arch,
                                                machine=machine)

    def max_vcpus(self, type: str | None = None) -> int:  # noqa: A002
        return self._driver.max_vcpus(type)

    def sysinfo(self) -> str:
        return self._driver.sysinfo()

    def free_memory(self) -> int:
        """Free host memory in bytes."""
        return self._driver.free_memory()

    def cells_free_memory(self, start: int = 0, count: int | None = None) -> list[int]:
        """Free memory of NUMA cells ``start``.. in bytes (``count`` None: to the last)."""
        return self._driver.cells_free_memory(start, count)
    def event_follower(self):
        """Follows the events that happen from now on: ``wait(timeout)`` -> list
        of event dicts (drivers/qemu/events.py), ``close()``."""
        return self._driver.event_follower()

    # --- domains --------------------------------------------------------------
    def domains(self, *, active: bool | None = None, persistent: bool | None = None,
                autostart: bool | None = None, states: Iterable[DomainState] | None = None,
                managed_save: bool | None = None, has_snapshot: bool | None = None) -> list[Domain]:
        """All domains matching every given filter, from one consistent snapshot.

        ``None`` means "either".  ``states`` keeps domains whose state is in it.
        """
        wanted = set(states) if states is not None else None
        out = []
        for rec in self._dom_driver.list():
            if active is not None and rec.active != active:
                continue
            if persistent is not None and rec.persistent != persistent:
                continue
            if autostart is not None and rec.autostart != autostart:
                continue
            if managed_save is not None and rec.managed_save != managed_save:
                continue
            if has_snapshot is not None and rec.has_current_snapshot != has_snapshot:
                continue
            if wanted is not None and rec.state not in wanted:
                continue
            out.append(Domain(self, rec))
        return out

    def domain_by_uuid(self, uuid: str) -> Domain:
        return Domain(self, self._dom_driver.get(canonical_uuid(uuid)))

    def domain_by_name(self, name: str) -> Domain:
        for rec in self._dom_driver.list():
            if rec.name == name:
                return Domain(self, rec)
        raise NoDomain(f"Domain not found: no domain with matching name '{name}'", detail={"name": name})

    def domain_by_id(self, id: int) -> Domain:
        for rec in self._dom_driver.list():
            if rec.id is not None and rec.id == id:
                return Domain(self, rec)
        raise NoDomain(f"Domain not found: no domain with matching id {id}", detail={"id": id})

    def lookup_domain(self, key: str, *, by_id: bool = True, by_uuid: bool = True,
                      by_name: bool = True) -> Domain:
        """Find a domain as virsh does: by id if ``key`` reads as a
        non-negative integer, then by UUID if it is one (36 characters), then
        by name; each step only where allowed (virsh's ``domname`` looks up
        by id or UUID only, ``domid`` by name or UUID, ``domuuid`` by id or
        name).  A name that looks like an id or UUID is still found when no
        domain has that id or UUID."""
        recs = self._dom_driver.list()
        n = parse_id(key) if by_id else None
        if n is not None:
            for rec in recs:
                if rec.id is not None and rec.id == n:
                    return Domain(self, rec)
        if by_uuid and looks_like_uuid(key):
            u = canonical_uuid(key)
            for rec in recs:
                if rec.uuid == u:
                    return Domain(self, rec)
        if by_name:
            for rec in recs:
                if rec.name == key:
                    return Domain(self, rec)
        raise NoDomain(f"failed to get domain '{key}'", detail={"domain": key})

    def define_domain(self, xml: str, *, source: str = "<input>") -> Domain:
        """Define (or update) a persistent domain from XML."""
        self._check_writable("defining a domain")
        return Domain(self, self._dom_driver.define(xml, source=source))

    def create_domain(self, xml: str, *, source: str = "<input>", paused: bool = False,
                      autodestroy: bool = False) -> Domain:
        """Create and start a transient domain from XML."""
        self._check_writable("creating a domain")
        return Domain(self, self._dom_driver.create_xml(xml, source=source, paused=paused,
                                                        autodestroy=autodestroy))

    def restore_domain(self, path: str, *, running: bool = False, paused: bool = False,
                       bypass_cache: bool = False, progress=None) -> Domain:
        """Start the domain whose memory state ``Domain.save`` wrote to ``path``."""
        state = Domain._run_state(running, paused)
        self._check_writable("restoring a domain")
        uuid = self._dom_driver.restore(path, paused=state, bypass_cache=bypass_cache, progress=progress)
        return Domain(self, self._dom_driver.get(uuid))

    def native_argv(self, xml: str, *, source: str = "<input>") -> list[str]:
        """The command line ``start`` would run for the definition ``xml``
        (domxml-to-native; NOT_SUPPORTED by drivers that run no command)."""
        return self._dom_driver.native_argv(xml, source=source)

    # --- networks -------------------------------------------------------------
    def networks(self, *, active: bool | None = None, persistent: bool | None = None,
                 autostart: bool | None = None):
        """All networks matching every given filter (``None``: either), from
        one consistent snapshot, as :class:`~virtctl.api.network.Network` handles."""
        from virtctl.api.network import Network

        recs = _matching(self._driver.networks.list(), active=active, persistent=persistent,
                         autostart=autostart)
        return [Network(self, rec) for rec in recs]

    def lookup_network(self, key: str, *, by_uuid: bool = True, by_name: bool = True):
        """A network by UUID (when ``key`` is one) then by name, as virsh looks
        it up; NO_NETWORK otherwise."""
        from virtctl.api.network import Network
        from virtctl.errors import NoNetwork

        rec = _find(self._driver.networks.list(), key, by_uuid=by_uuid, by_name=by_name)
        if rec is not None:
            return Network(self, rec)
        if by_name:
            msg = f"Network not found: no network with matching name '{key}'"
        else:
            msg = f"Network not found: no network with matching uuid '{key}'"
        raise NoNetwork(msg, detail={"network": key})

    def define_network(self, xml: str, *, source: str = "<input>"):
        """Define (or update) a persistent network from XML."""
        from virtctl.api.network import Network

        self._check_writable("defining a network")
        return Network(self, self._driver.networks.define(xml, source=source))

    def create_network(self, xml: str, *, source: str = "<input>"):
        """Create and start a transient network from XML."""
        from virtctl.api.network import Network

        self._check_writable("creating a network")
        return Network(self, self._driver.networks.create_xml(xml, source=source))

    # --- storage pools and volumes (virtctl.api.storage) --------------------------
    def pools(self, *, active: bool | None = None, persistent: bool | None = None,
              autostart: bool | None = None, types: Iterable[str] | None = None):
        """All storage pools matching every given filter (``None``: either),
        sorted by name as virsh lists them."""
        from virtctl.api.storage import StoragePool

        wanted = set(types) if types is not None else None
        recs = _matching(self._driver.pools.list(), active=active, persistent=persistent, autostart=autostart)
        out = [StoragePool(self, rec) for rec in recs if wanted is None or rec.type in wanted]
        return sorted(out, key=lambda p: p.name)

    def lookup_pool(self, key: str, *, by_uuid: bool = True, by_name: bool = True):
        """A pool as virsh finds one: by UUID if ``key`` is one, then by name."""
        from virtctl.api.storage import StoragePool
        from virtctl.errors import NoStoragePool

        rec = _find(self._driver.pools.list(), key, by_uuid=by_uuid, by_name=by_name)
        if rec is not None:
            return StoragePool(self, rec)
        what = "name" if by_name else "uuid"
        raise NoStoragePool(f"Storage pool not found: no storage pool with matching {what} '{key}'",
                            detail={"pool": key}, context=f"failed to get pool '{key}'")

    def lookup_volume(self, key: str, *, pool=None):
        """A volume as virsh finds one: by name in ``pool`` (a StoragePool)
        when given, then by key, then by path."""
        from virtctl.api.storage import StorageVolume
        from virtctl.errors import NoStorageVol

        drv = self._driver.pools
        if pool is not None:
            rec = drv.find_volume(name=key, pool_uuid=pool.uuid)
            if rec is not None:
                return StorageVolume(self, rec)
        rec = drv.find_volume(key=key) or drv.find_volume(path=key)
        if rec is not None:
            return StorageVolume(self, rec)
        raise NoStorageVol(f"Storage volume not found: no storage vol with matching path '{key}'",
                           detail={"vol": key}, context=f"failed to get vol '{key}'")

    def pool_capabilities(self) -> str:
        return self._driver.pools.capabilities()

    def define_pool(self, xml: str, *, source: str = "<input>"):
        from virtctl.api.storage import StoragePool

        self._check_writable("defining a storage pool")
        return StoragePool(self, self._driver.pools.define(xml, source=source))

    def create_pool(self, xml: str, *, source: str = "<input>", build: bool = False):
        """Create and start a transient pool."""
        from virtctl.api.storage import StoragePool

        self._check_writable("creating a storage pool")
        return StoragePool(self, self._driver.pools.create_xml(xml, source=source, build=build))

    def _refresh(self, uuid: str) -> DomainRecord:
        return self._dom_driver.get(uuid)


def open(uri: str, *, readonly: bool = False) -> Connection:  # noqa: A001 - mirrors virConnectOpen
    """Open a connection to the hypervisor named by ``uri``."""
    return Connection(uri, readonly=readonly)
