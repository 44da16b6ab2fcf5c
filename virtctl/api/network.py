"""Network handles: the public API for virtual networks.

A :class:`Network` is keyed by UUID, as a :class:`~virtctl.api.domain.Domain`
is; its attributes are those of the snapshot it was made from and
``info()`` refreshes them.  Nothing here prints.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NetworkRecord:
    """What a driver reports about one network."""

    uuid: str
    name: str
    active: bool
    persistent: bool
    autostart: bool
    bridge: str | None = None
    warning: str | None = None  # something wrong with a running network (qemu: dnsmasq died)

    def to_json(self) -> dict:
        out = {"name": self.name, "uuid": self.uuid, "active": self.active,
               "persistent": self.persistent, "autostart": self.autostart, "bridge": self.bridge}
        if self.warning:
            out["warning"] = self.warning
        return out


class Network:
    """A handle to one network of a connection."""

    def __init__(self, conn, rec: NetworkRecord):
        self._conn = conn
        self._rec = rec

    @property
    def uuid(self) -> str:
        return self._rec.uuid

    @property
    def name(self) -> str:
        return self._rec.name

    @property
    def snapshot(self) -> NetworkRecord:
        """The record this handle was made from (no driver call)."""
        return self._rec

    @property
    def _drv(self):
        return self._conn._driver.networks

    def info(self) -> NetworkRecord:
        self._rec = self._drv.get(self.uuid)
        return self._rec

    def xml(self, *, inactive: bool = False) -> str:
        return self._drv.get_xml(self.uuid, inactive=inactive)

    def start(self) -> None:
        self._conn._check_writable("starting a network")
        self._drv.start(self.uuid)

    def destroy(self, *, force: bool = False) -> None:
        """``force``: even with running domains attached (the qemu driver refuses otherwise)."""
        self._conn._check_writable("destroying a network")
        if force:
            self._drv.destroy(self.uuid, force=True)
        else:
            self._drv.destroy(self.uuid)

    def undefine(self) -> None:
        self._conn._check_writable("undefining a network")
        self._drv.undefine(self.uuid)

    def set_autostart(self, enabled: bool) -> None:
        self._conn._check_writable("changing a network's autostart")
        self._drv.set_autostart(self.uuid, enabled=enabled)

    def dhcp_leases(self, mac: str | None = None) -> list[dict]:
        return self._drv.dhcp_leases(self.uuid, mac=mac)

    def update(self, command: str, section: str, xml: str, *, parent_index: int | None = None,
               live: bool = False, config: bool = False) -> None:
        """Change one part of the definition (net-update): ``command`` is add,
        add-first, add-last, delete or modify; ``section`` ip-dhcp-host,
        ip-dhcp-range or dns-host."""
        self._conn._check_writable("updating a network")
        self._drv.update(self.uuid, command, section, xml, parent_index=parent_index, live=live, config=config)
