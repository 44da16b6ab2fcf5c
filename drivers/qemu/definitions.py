"""Persistent definitions of the QEMU driver (a mixin of QemuDomainDriver):
define, undefine, rename, autostart, and name/UUID uniqueness.

All of them hold the global lock (name/UUID uniqueness), then the domain's
lock (locks.py); holding the global lock also makes ``.trash-*`` left by a
killed undefine stale, so they are removed then.  ``domain.xml`` is written
with its name again in ``name`` beside it: a definition that rots keeps
its name reserved (and shows under it in ``list --all``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: lxml stays out of list/dominfo
    from virtctl.xml.domain import DomainDef

import os
import re

from virtctl.api.types import DomainRecord
from virtctl.drivers.qemu import events
from virtctl.drivers.qemu import runtime as rt
from virtctl.drivers.qemu.locks import FileLock, try_lock
from virtctl.drivers.qemu.state import CorruptState, atomic_write, clean_stale, ensure_dir, fsync_dir, read_bytes, unlink_quiet
from virtctl.errors import InvalidArg, NotSupported, OperationFailed, OperationInvalid, VirtError, XMLError
from virtctl.lazy import lazy

shutil = lazy("shutil")
_domain = lazy("virtctl.xml.domain")  # lxml: only for what parses or writes XML

ARCH = "x86_64"

_NAME_RE = re.compile(rb"<name>([^<]*)</name>")


def _stored_name(path: str) -> str | None:
    """The domain name in a definition we wrote (``<name>`` is its first child)."""
    try:
        data = read_bytes(path)
    except CorruptState:
        return None
    m = _NAME_RE.search(data or b"")
    import html

    return html.unescape(m.group(1).decode("utf-8", "replace")) if m else None


class QemuDefinitionsMixin:
    def _name_file(self, uuid: str) -> str | None:
        try:
            data = read_bytes(self.state.name_file(uuid), 4096)
        except CorruptState:
            return None
        return data.decode("utf-8", "replace").rstrip("\n") if data else None

    def _global_lock(self) -> FileLock:
        lock = FileLock(self.state.global_lock, what="global lock (another define/undefine is running)")
        lock.acquire(timeout=rt.LOCK_TIMEOUT)
        clean_stale(self.state.config_domains, trash=True)  # .trash-* of a killed undefine
        return lock

    def _prepare(self, xml: str, source: str) -> DomainDef:
        definition = _domain.DomainDef.parse(xml, source=source)
        if definition.type not in ("qemu", "kvm"):
            raise NotSupported(f"unsupported configuration: domain type '{definition.type}' is not "
                               "supported by the qemu driver (use 'qemu' or 'kvm')",
                               detail={"driver": "qemu", "feature": f"domain type {definition.type}"})
        definition.normalize(arch=ARCH)
        from virtctl.drivers.qemu.hotplug.pci import add_spare_root_ports

        add_spare_root_ports(definition)  # q35: somewhere to hotplug into
        return definition

    def _names(self) -> dict[str, str]:
        """uuid -> name of every domain (and ``uuid/live`` -> live name of a
        running one).  Reads names without parsing: define stays fast with
        thousands of domains (the files are ours, written by xmlapi).  A
        definition that cannot be read keeps its name through its ``name``
        file; a running domain whose record is corrupt keeps its live name."""
        names: dict[str, str] = {}
        base = self.state.config_domains
        for uuid in self.state.defined_uuids():  # paths joined by hand: this loop is the define cost
            d = f"{base}/{uuid}"
            name = _stored_name(f"{d}/domain.xml")
            if name is None and os.path.exists(f"{d}/domain.xml"):
                name = self._name_file(uuid)
            elif name is not None and not os.path.exists(f"{d}/name"):
                self._backfill_name(uuid, name)
            if name is not None:
                names[uuid] = name
        for uuid in self.state.runtime_uuids():
            if not os.path.exists(self.state.record_file(uuid)):
                continue
            probe = rt.sync(self.state, uuid, locked=False)
            if not probe.alive and not probe.corrupt:
                continue
            name = _stored_name(self.state.live_xml(uuid))
            if name is not None:
                names[uuid if uuid not in names else uuid + "/live"] = name
        return names

    def _backfill_name(self, uuid: str, name: str) -> None:
        """A domain defined before names were kept apart gets its ``name`` file
        (writes in its directory need its lock: taken only if free now)."""
        lock = try_lock(self.state.domain_lock(uuid))
        if lock is None:
            return
        try:
            atomic_write(self.state.name_file(uuid), name + "\n")
        except VirtError:
            pass
        finally:
            lock.release()

    def _check_unique(self, definition: DomainDef) -> bool:
        """libvirt's rule (as the test driver): same UUID = same domain, so the
        name must match; a name taken by another UUID is an error.  True if the
        UUID exists.  Caller holds the global lock."""
        uuid, name = definition.uuid, definition.name
        names = self._names()
        if uuid in names:
            if names[uuid] != name:
                raise OperationFailed(
                    f"operation failed: domain '{names[uuid]}' is already defined with uuid {uuid}")
            return True
        for key, other in names.items():
            if other == name:
                raise OperationFailed(
                    f"operation failed: domain '{name}' already exists with uuid {key.split('/')[0]}")
        return False

    def _write_config(self, definition: DomainDef) -> None:
        uuid = definition.uuid
        ensure_dir(self.state.config_dir(uuid))
        data = definition.to_xml()
        atomic_write(self.state.domain_xml(uuid), data)
        self._remember(data, definition)
        # the name again, apart: if domain.xml ever rots, its name stays reserved (a
        # fallback only: not worth a second fsync on every define)
        atomic_write(self.state.name_file(uuid), definition.name + "\n", sync=False)

    def define(self, xml: str, *, source: str = "<input>") -> DomainRecord:
        definition = self._prepare(xml, source)
        with self._global_lock():
            existed = self._check_unique(definition) and os.path.exists(self.state.domain_xml(definition.uuid))
            with rt.domain_lock(self.state, definition.uuid):
                self._write_config(definition)
                events.lifecycle(self.state, definition.name, definition.uuid, "Defined",
                                 "Updated" if existed else "Added")
        return self.get(definition.uuid)

    def undefine(self, uuid: str, *, managed_save: bool = False, snapshots_metadata: bool = False,
                 nvram: bool = False) -> None:
        with self._global_lock(), rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True, allow_corrupt=True)
            if not v.persistent:
                raise OperationInvalid("Requested operation is not valid: cannot undefine transient domain")
            self._managed_save_undefine_check(uuid, managed_save)
            if os.path.isdir(os.path.join(self.state.config_dir(uuid), "snapshots")):
                from virtctl.drivers.qemu.snapshot.store import undefine_check

                undefine_check(self.state, uuid, snapshots_metadata, active=v.probe.alive)
            if v.probe.alive:
                rt.update_record(self.state, uuid, v.probe.record, persistent=False)
            self._remove_config(uuid)
            events.lifecycle(self.state, self._name_of(v), uuid, "Undefined", "Removed")
            if not v.probe.alive and not v.probe.corrupt:
                shutil.rmtree(self.state.run_dir(uuid), ignore_errors=True)

    def _remove_config(self, uuid: str) -> None:
        d = self.state.config_dir(uuid)
        trash = os.path.join(self.state.config_domains, f".trash-{uuid}-{os.getpid()}")
        os.rename(d, trash)  # atomic: the domain is gone in one step
        fsync_dir(self.state.config_domains)
        shutil.rmtree(trash, ignore_errors=True)

    def rename(self, uuid: str, new_name: str) -> DomainRecord:
        try:
            _domain.check_name(new_name)
        except XMLError as exc:
            raise InvalidArg(str(exc)) from None
        with self._global_lock(), rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True)
            if v.probe.alive:
                raise OperationInvalid("Requested operation is not valid: cannot rename active domain")
            if not v.persistent:
                raise OperationInvalid("Requested operation is not valid: cannot rename a transient domain")
            if self._has_managed_save(uuid):
                # libvirt's rule: the image holds the old name, and would run under it
                raise OperationInvalid(
                    "Requested operation is not valid: domain with a managed saved state can't be renamed")
            for other_uuid, name in self._names().items():
                if other_uuid.split("/")[0] != uuid and name == new_name:
                    raise OperationInvalid(
                        f"Requested operation is not valid: domain with name '{new_name}' already exists")
            old_name = v.config.name
            v.config.name = new_name
            self._write_config(v.config)
            events.lifecycle(self.state, old_name, uuid, "Undefined", "Renamed")
            events.lifecycle(self.state, new_name, uuid, "Defined", "Renamed")
        return self.get(uuid)

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        with rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True, allow_corrupt=True)
            if not v.persistent:
                raise OperationInvalid("Requested operation is not valid: cannot set autostart for transient domain")
            flag = self.state.autostart_flag(uuid)
            if enabled:
                atomic_write(flag, b"")
            else:
                unlink_quiet(flag)
                fsync_dir(os.path.dirname(flag))

    # --- autostart at boot -------------------------------------------------------------------
    def autostart_uuids(self) -> list[str]:
        return [u for u in self.state.defined_uuids() if os.path.exists(self.state.autostart_flag(u))]
