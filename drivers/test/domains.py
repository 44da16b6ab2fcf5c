"""Domain operations of the test driver, in memory, with libvirt's semantics.

Each domain keeps a persistent definition and, while active, a live one (a
copy made at start), so ``--live``/``--config`` behave as on a real
hypervisor.  Where libvirt's test driver is merely odd (``start --paused``
unsupported, ``undefine`` of a transient domain "succeeding"), this driver
behaves like a real hypervisor instead; the README lists the differences.
"""
from __future__ import annotations

import time

from virtctl.api.domain import SHUTDOWN_MODES
from virtctl.api.types import DomainRecord, DomainState, VcpuCount, reason_number
from virtctl.drivers.base import DomainDriver
from virtctl.drivers.test.agent import TestAgentMixin
from virtctl.drivers.test.blockjob import TestBlockMixin
from virtctl.drivers.test.extra import TestExtraMixin
from virtctl.drivers.test.hotplug import TestHotplugMixin
from virtctl.drivers.test.monitor import TestMonitorMixin
from virtctl.drivers.test.meta import TestMetaMixin
from virtctl.errors import InvalidArg, NoDomain, OperationFailed, OperationInvalid, unsupported_flags
from virtctl.lazy import lazy

xmlapi = lazy("virtctl.xml.xmlapi")  # lxml: only for what reads or writes XML
_domain = lazy("virtctl.xml.domain")

TEST_ARCH = "i686"  # libvirt's test driver fills this arch, and so do we
TEST_MAX_VCPUS = 32  # what libvirt's test driver says it supports


class TestDomain:
    __slots__ = ("config", "live", "id", "state", "reason", "persistent", "autostart", "managed_save")

    def __init__(self, config: DomainDef, live: DomainDef | None = None, id: int | None = None,  # noqa: A002
                 state: DomainState = DomainState.SHUTOFF, reason: int = 0, persistent: bool = True,
                 autostart: bool = False, managed_save: bool = False):
        self.config, self.live, self.id = config, live, id
        self.state, self.reason = state, reason
        self.persistent, self.autostart, self.managed_save = persistent, autostart, managed_save

    @property
    def current(self) -> DomainDef:
        return self.live if self.live is not None else self.config


def _reason(state: DomainState, text: str) -> int:
    return reason_number(state, text)


def _modes(mode) -> str:
    """A shutdown/reboot mode as drivers get it (a comma list), also taking a sequence."""
    if mode is None:
        return ""
    return mode if isinstance(mode, str) else ",".join(mode)


def refuse_flags(command: str, function: str, *flags: tuple[bool, int, str]) -> None:
    """Refuse, in libvirt's words, the options libvirt's test driver refuses:
    ``flags`` are (given, libvirt's flag value, option) for what libvirt's
    ``function`` does not take."""
    given = [(value, option) for on, value, option in flags if on]
    if given:
        feature = " ".join([command, *(option for _, option in given)])
        raise unsupported_flags("test", feature, sum(value for value, _ in given), function)


class TestDomainDriver(TestMonitorMixin, TestExtraMixin, TestBlockMixin, TestHotplugMixin, TestMetaMixin,
                       TestAgentMixin, DomainDriver):
    driver_name = "test"

    def __init__(self):
        self._doms: dict[str, TestDomain] = {}  # by UUID, in definition order
        self._names: dict[str, str] = {}  # name -> UUID (keeps uniqueness checks O(1))
        self._next_id = 1
        self.snapshot_store = None  # the TestSnapshotDriver, set by the connection

    # --- helpers ------------------------------------------------------------
    def _get(self, uuid: str) -> TestDomain:
        d = self._doms.get(uuid)
        if d is None:
            raise NoDomain(f"Domain not found: no domain with matching uuid '{uuid}'", detail={"uuid": uuid})
        return d

    def _record(self, uuid: str, d: TestDomain) -> DomainRecord:
        cur = d.current
        return DomainRecord(
            uuid=uuid, name=cur.name, id=d.id, state=d.state, reason=d.reason,
            persistent=d.persistent, autostart=d.autostart, managed_save=d.managed_save,
            title=cur.title, os_type="linux", vcpus=cur.vcpus,
            max_memory_kib=cur.max_memory_kib, memory_kib=cur.memory_kib,
            # libvirt's test driver reports the wall clock as CPU time; so do we
            cpu_time_ns=time.time_ns(),
            has_current_snapshot=bool(self.snapshot_store and self.snapshot_store.count(uuid)),
            extra={"security": {"model": "testSecurity", "doi": "",
                                "label": "libvirt-test" if d.id is not None else None,
                                "enforcing": True}},
        )

    def _live(self, d: TestDomain) -> DomainDef | None:
        """The live definition, made from the persistent one on first need
        (while it is not made, the domain runs exactly its persistent
        definition).  Call before changing ``config`` of an active domain."""
        if d.id is not None and d.live is None:
            d.live = self._normalized(d.config).copy()
            d.live._normalized = True
        return d.live

    def _start_state(self, d: TestDomain, reason: str = "booted") -> None:
        d.live = None  # made lazily by _live()
        d.id = self._next_id
        self._next_id += 1
        d.state, d.reason = DomainState.RUNNING, _reason(DomainState.RUNNING, reason)

    def _shutoff_state(self, uuid: str, d: TestDomain, reason: str) -> None:
        if not d.persistent:
            self._remove(uuid)  # a transient domain is gone when it stops
            return
        d.live, d.id = None, None
        d.state, d.reason = DomainState.SHUTOFF, _reason(DomainState.SHUTOFF, reason)

    @staticmethod
    def _require_active(d: TestDomain) -> None:
        if d.id is None:
            raise OperationInvalid("Requested operation is not valid: domain is not running")

    @staticmethod
    def _normalized(definition: DomainDef) -> DomainDef:
        """Fill defaults once, on first need: loading 10,000 domains from a
        node file must not pay for formatting each of them."""
        if not getattr(definition, "_normalized", False):
            definition.normalize(arch=TEST_ARCH)
            definition.assign_drive_addresses()
            definition.name_interfaces("testnet")
            definition._normalized = True
        return definition

    def _prepare(self, xml: str, source: str) -> DomainDef:
        return self._normalized(_domain.DomainDef.parse(xml, source=source))

    def _check_unique(self, definition: DomainDef) -> TestDomain | None:
        """libvirt's rule: same UUID = same domain (name must match); a name
        already taken by another UUID is an error."""
        uuid, name = definition.uuid, definition.name
        existing = self._doms.get(uuid)
        if existing is not None:
            if existing.current.name != name:
                raise OperationFailed(
                    f"operation failed: domain '{existing.current.name}' is already defined with uuid {uuid}")
            return existing
        other_uuid = self._names.get(name)
        if other_uuid is not None:
            raise OperationFailed(f"operation failed: domain '{name}' already exists with uuid {other_uuid}")
        return None

    def _add(self, d: TestDomain) -> None:
        self._doms[d.config.uuid] = d
        self._names[d.config.name] = d.config.uuid

    def _remove(self, uuid: str) -> None:
        d = self._doms.pop(uuid)
        self._names.pop(d.current.name, None)
        if self.snapshot_store is not None:
            self.snapshot_store.forget(uuid)

    # --- bulk loading (node files) ------------------------------------------------
    def load(self, node_domains) -> None:
        for nd in node_domains:
            definition = nd.definition
            if definition.uuid is None:
                definition.uuid = _domain.new_uuid()
            self._check_unique(definition)
            d = TestDomain(config=definition, persistent=not nd.transient,
                           managed_save=nd.managed_save)
            self._add(d)
            if nd.runstate != DomainState.SHUTOFF:
                self._start_state(d)
            # as libvirt: the initial state carries reason 0 ("unknown")
            d.state, d.reason = nd.runstate, 0

    # --- reading -------------------------------------------------------------------
    def list(self) -> list[DomainRecord]:
        return [self._record(u, d) for u, d in self._doms.items()]

    def get(self, uuid: str) -> DomainRecord:
        return self._record(uuid, self._get(uuid))

    def get_xml(self, uuid: str, *, inactive: bool = False, security_info: bool = False,
                update_cpu: bool = False, migratable: bool = False) -> str:
        refuse_flags("dumpxml", "testDomainGetXMLDesc", (update_cpu, 0x4, "--update-cpu"))
        d = self._get(uuid)
        definition = self._normalized(d.config if inactive or d.id is None else self._live(d))
        if d.id is not None and not inactive:
            root = xmlapi.copy(definition.root)
            root.set("id", str(d.id))
            return xmlapi.tostring(root)
        return definition.to_xml()

    def guest_vcpu_count(self, uuid: str) -> VcpuCount:
        raise unsupported_flags("test", "vcpucount --guest", 0x8, "testDomainGetVcpusFlags")

    def vcpu_count(self, uuid: str) -> VcpuCount:
        d = self._get(uuid)
        live = self._live(d)
        cfg = d.config if d.persistent else None  # a transient domain has no config
        return VcpuCount(config_maximum=cfg.max_vcpus if cfg else None, config_current=cfg.vcpus if cfg else None,
                         live_maximum=live.max_vcpus if live else None,
                         live_current=live.vcpus if live else None)

    # --- definitions -----------------------------------------------------------------
    def define(self, xml: str, *, source: str = "<input>") -> DomainRecord:
        definition = self._prepare(xml, source)
        existing = self._check_unique(definition)
        if existing is None:
            d = TestDomain(config=definition)
            self._add(d)
        else:
            self._live(existing)  # the running domain keeps what it started with
            existing.config = definition
            existing.persistent = True
        return self.get(definition.uuid)

    def undefine(self, uuid: str, *, managed_save: bool = False, snapshots_metadata: bool = False,
                 nvram: bool = False) -> None:
        refuse_flags("undefine", "testDomainUndefineFlags", (nvram, 0x4, "--nvram"))
        d = self._get(uuid)
        if not d.persistent:
            raise OperationInvalid("Requested operation is not valid: cannot undefine transient domain")
        if d.managed_save and not managed_save:
            raise OperationInvalid(
                "Requested operation is not valid: Refusing to undefine while domain managed save image exists")
        if self.snapshot_store is not None:
            self.snapshot_store.check_undefine(uuid, d, snapshots_metadata)
        d.managed_save = False
        d.autostart = False
        if d.id is None:
            self._remove(uuid)
        else:
            d.persistent = False  # it goes away when it stops

    def rename(self, uuid: str, new_name: str) -> DomainRecord:
        d = self._get(uuid)
        if d.id is not None:
            raise OperationInvalid("Requested operation is not valid: cannot rename active domain")
        if not d.persistent:
            raise OperationInvalid("Requested operation is not valid: cannot rename a transient domain")
        if new_name == d.config.name:
            raise OperationInvalid("Requested operation is not valid: Can't rename domain to itself")
        if self._names.get(new_name, uuid) != uuid:
            raise OperationInvalid(
                f"Requested operation is not valid: domain with name '{new_name}' already exists")
        try:
            _domain.check_name(new_name)
        except Exception as exc:
            raise InvalidArg(str(exc)) from None
        del self._names[d.config.name]
        d.config.name = new_name
        self._names[new_name] = uuid
        return self.get(uuid)

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        d = self._get(uuid)
        if not d.persistent:
            raise OperationInvalid("Requested operation is not valid: cannot set autostart for transient domain")
        d.autostart = enabled

    # --- lifecycle ----------------------------------------------------------------------
    def create_xml(self, xml: str, *, source: str = "<input>", paused: bool = False,
                   autodestroy: bool = False) -> DomainRecord:
        # (paused is a deliberate extension: libvirt's test driver refuses it)
        refuse_flags("create", "testDomainCreateXML", (autodestroy, 0x2, "--autodestroy"))
        definition = self._prepare(xml, source)
        existing = self._check_unique(definition)
        if existing is not None:
            if existing.id is not None:
                raise OperationInvalid(
                    f"Requested operation is not valid: domain '{definition.name}' is already active")
            existing.config = definition  # libvirt: the new definition runs, the old one stays persistent
            d = existing
        else:
            d = TestDomain(config=definition, persistent=False)
            self._add(d)
        self._start_state(d)
        if paused:
            d.state, d.reason = DomainState.PAUSED, _reason(DomainState.PAUSED, "user")
        return self.get(definition.uuid)

    def start(self, uuid: str, *, paused: bool = False, autodestroy: bool = False,
              bypass_cache: bool = False, force_boot: bool = False) -> None:
        # (paused is a deliberate extension: libvirt's test driver refuses it)
        refuse_flags("start", "testDomainCreateWithFlags", (autodestroy, 0x2, "--autodestroy"),
                     (bypass_cache, 0x4, "--bypass-cache"))
        d = self._get(uuid)
        if d.id is not None:
            raise OperationInvalid("Requested operation is not valid: domain is already running")
        restored = d.managed_save and not force_boot
        d.managed_save = False
        self._start_state(d, "restored" if restored else "booted")
        if paused:
            d.state, d.reason = DomainState.PAUSED, _reason(DomainState.PAUSED, "user")

    def _lifecycle_action(self, uuid: str, d: TestDomain, tag: str) -> None:
        action = d.current.lifecycle[tag]
        if action in ("restart", "rename-restart"):
            d.state, d.reason = DomainState.RUNNING, _reason(DomainState.RUNNING, "booted")
        else:
            self._shutoff_state(uuid, d, "shutdown")

    def shutdown(self, uuid: str, *, mode: str | None = None, wait: bool = False,
                 timeout: float | None = None) -> None:
        # libvirt's test driver takes no mode at all; wait/timeout are ours (met at once)
        modes = _modes(mode).split(",")
        bits = sum(1 << i for i, m in enumerate(SHUTDOWN_MODES) if m in modes)  # acpi = 0x1, agent = 0x2, ...
        refuse_flags("shutdown", "testDomainShutdownFlags", (bits != 0, bits, f"--mode {_modes(mode)}"))
        d = self._get(uuid)
        if d.state not in (DomainState.RUNNING, DomainState.BLOCKED, DomainState.PAUSED,
                           DomainState.SHUTDOWN):
            raise OperationInvalid("Requested operation is not valid: domain is not running")
        # the mock guest obeys at once, so wait/timeout are met at once
        self._shutoff_state(uuid, d, "shutdown")

    def reboot(self, uuid: str, *, mode: str | None = None) -> None:
        d = self._get(uuid)
        self._require_active(d)
        self._lifecycle_action(uuid, d, "on_reboot")

    def reset(self, uuid: str) -> None:
        self._require_active(self._get(uuid))

    def destroy(self, uuid: str, *, graceful: bool = False) -> None:
        d = self._get(uuid)
        self._require_active(d)
        self._shutoff_state(uuid, d, "destroyed")

    def suspend(self, uuid: str) -> None:
        d = self._get(uuid)
        self._require_active(d)
        if d.state == DomainState.PAUSED:
            raise OperationInvalid("Requested operation is not valid: domain is already paused")
        d.state, d.reason = DomainState.PAUSED, _reason(DomainState.PAUSED, "user")

    def resume(self, uuid: str) -> None:
        d = self._get(uuid)
        self._require_active(d)
        if d.state != DomainState.PAUSED:
            raise OperationInvalid("Requested operation is not valid: domain is not paused")
        d.state, d.reason = DomainState.RUNNING, _reason(DomainState.RUNNING, "unpaused")

    # --- resources ------------------------------------------------------------------------
    def _defs(self, d: TestDomain, live: bool, config: bool) -> tuple[DomainDef | None, DomainDef | None]:
        """(live, persistent) definitions a --live/--config/--current change
        applies to (None where it does not), with libvirt's refusals."""
        if not live and not config:  # --current
            live, config = d.id is not None, d.id is None
        if live and d.id is None:
            raise OperationInvalid("Requested operation is not valid: domain is not running")
        if config and not d.persistent:
            raise OperationInvalid(
                "Requested operation is not valid: transient domains do not have any persistent config")
        self._live(d)
        return (d.live if live else None), (d.config if config else None)

    def _targets(self, d: TestDomain, live: bool, config: bool) -> list[DomainDef]:
        return [t for t in self._defs(d, live, config) if t is not None]

    @staticmethod
    def _one_of_live_config(live: bool, config: bool) -> None:
        # libvirt's test driver takes either for memory, never both (its QEMU driver takes both)
        if live and config:
            raise InvalidArg("Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive",
                             detail={"driver": "test", "flags": ["live", "config"]})

    def set_memory(self, uuid: str, kib: int, *, live: bool, config: bool) -> None:
        self._one_of_live_config(live, config)
        d = self._get(uuid)
        targets = self._targets(d, live, config)
        for t in targets:
            if kib > t.max_memory_kib:
                raise InvalidArg("invalid argument: cannot set memory higher than max memory")
        for t in targets:
            t.memory_kib = kib

    def set_max_memory(self, uuid: str, kib: int, *, live: bool, config: bool) -> None:
        self._one_of_live_config(live, config)
        d = self._get(uuid)
        if live or (not config and d.id is not None):
            raise OperationInvalid(
                "Requested operation is not valid: cannot resize the maximum memory on an active domain")
        for t in self._targets(d, False, True):
            current = t.memory_kib  # kept (pinned, when implied by <memory>) unless above the new maximum
            t.max_memory_kib = kib
            t.memory_kib = min(current, kib)

    def set_vcpus(self, uuid: str, count: int, *, live: bool, config: bool, maximum: bool = False,
                  guest: bool = False, hotpluggable: bool = False) -> None:
        refuse_flags("setvcpus", "testDomainSetVcpusFlags", (guest, 0x8, "--guest"),
                     (hotpluggable, 0x10, "--hotpluggable"))
        if count > TEST_MAX_VCPUS:
            raise InvalidArg("invalid argument: requested cpu amount exceeds maximum supported amount "
                             f"({count} > {TEST_MAX_VCPUS})")
        d = self._get(uuid)
        if maximum and not config and (live or d.id is not None):
            raise OperationInvalid(
                "Requested operation is not valid: cannot change the maximum vCPU count of a running domain")
        live_def, config_def = self._defs(d, live, config or maximum)
        # as libvirt's: the maximum is the persistent definition's; a live
        # definition changed with it gets the count as its current one
        if live_def is not None and count > live_def.max_vcpus:
            raise InvalidArg(f"invalid argument: requested cpu amount exceeds maximum ({count} > {live_def.max_vcpus})")
        if config_def is not None and not maximum and count > config_def.max_vcpus:
            raise InvalidArg(
                f"invalid argument: requested cpu amount exceeds maximum ({count} > {config_def.max_vcpus})")
        if live_def is not None:
            live_def.set_vcpus(count)
        if config_def is not None:
            config_def.set_vcpus(count, maximum=maximum)
