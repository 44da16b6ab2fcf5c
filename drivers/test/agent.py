"""The guest agent's commands on the test driver (a mixin of ``TestDomainDriver``),
answered as libvirt 9.0's test driver answers them:

* domfsinfo: two ext4 filesystems, ``/`` and ``/boot``, on the first disk of
  device "disk" (``vda1``, ``vda2``; none without such a disk);
* domfsfreeze / domfsthaw: those two, frozen and thawed for real (a domain
  remembers which are frozen while the connection lasts, as libvirt's keeps
  it with the domain object): the count is of those that changed; another
  mount point is "mount point not found";
* domfstrim: accepted (``/``, ``/boot`` or all), nothing happens;
* domhostname: ``NAMEhost``; a ``--source`` is refused as libvirt's refuses its
  flag (``unsupported flags (0x2) in function testDomainGetHostname``);
* set-user-password: accepted (``--encrypted`` too), nothing happens;
* guestinfo, qemu-agent-command, guest-agent-timeout, guestvcpus: not
  supported, in libvirt's words (the test driver has no such functions).

Every one that is supported needs the domain running.
"""
from __future__ import annotations

from virtctl.errors import OperationInvalid, not_supported, unsupported_flags

_MOUNTPOINTS = ("/", "/boot")
_HOSTNAME_FLAGS = {"lease": 0x1, "agent": 0x2}  # VIR_DOMAIN_GET_HOSTNAME_LEASE, _AGENT


class TestAgentMixin:
    def _agent_active(self, uuid: str):
        d = self._get(uuid)
        if d.id is None:
            raise OperationInvalid("Requested operation is not valid: domain is not running")
        return d

    def _frozen(self, uuid: str, d) -> list[bool]:
        """The frozen state of ``/`` and ``/boot``: kept with the domain object
        (a domain defined anew under the same UUID starts thawed)."""
        table = self.__dict__.setdefault("_agent_frozen", {})
        entry = table.get(uuid)
        if entry is None or entry[0] is not d:
            entry = table[uuid] = (d, [False, False])
        return entry[1]

    def fs_info(self, uuid: str) -> list[dict]:
        d = self._agent_active(uuid)
        for el in d.current.root.findall("devices/disk"):
            if (el.get("device") or "disk") != "disk":
                continue
            tgt = el.find("target")
            name = tgt.get("dev") if tgt is not None else ""
            return [{"mountpoint": m, "name": f"{name}{i}", "fstype": "ext4", "devaliases": [name]}
                    for i, m in enumerate(_MOUNTPOINTS, 1)]
        return []

    def _fs_change(self, uuid: str, mountpoints: tuple[str, ...], freeze: bool) -> int:
        d = self._agent_active(uuid)
        state = self._frozen(uuid, d)
        if not mountpoints:
            n = sum(1 for s in state if s != freeze)
            state[:] = [freeze, freeze]
            return n
        new = list(state)
        n = 0
        for m in mountpoints:
            if m not in _MOUNTPOINTS:
                # nothing changes when one is unknown (libvirt works on a copy)
                raise OperationInvalid(f"Requested operation is not valid: mount point not found: {m}",
                                       detail={"mountpoint": m})
            i = _MOUNTPOINTS.index(m)
            if new[i] != freeze:
                new[i] = freeze
                n += 1
        state[:] = new
        return n

    def fs_freeze(self, uuid: str, mountpoints: tuple[str, ...] = ()) -> int:
        return self._fs_change(uuid, mountpoints, True)

    def fs_thaw(self, uuid: str, mountpoints: tuple[str, ...] = ()) -> int:
        return self._fs_change(uuid, mountpoints, False)

    def fs_trim(self, uuid: str, mountpoint: str | None = None, minimum: int = 0) -> None:
        self._agent_active(uuid)
        if mountpoint is not None and mountpoint not in _MOUNTPOINTS:
            raise OperationInvalid(f"Requested operation is not valid: mount point not found: {mountpoint}",
                                   detail={"mountpoint": mountpoint})

    def guest_hostname(self, uuid: str, source: str | None = None) -> str:
        if source is not None:
            raise unsupported_flags("test", f"domhostname --source {source}", _HOSTNAME_FLAGS.get(source, 0),
                                    "testDomainGetHostname")
        d = self._agent_active(uuid)
        return f"{d.current.name}host"

    def set_user_password(self, uuid: str, user: str, password: str, *, encrypted: bool = False) -> None:
        self._agent_active(uuid)  # accepted and forgotten, as libvirt's test driver does

    # --- what libvirt's test driver has no function for ------------------------------------
    def agent_command(self, uuid: str, command: str, *, timeout: int | None = None) -> str:
        raise not_supported("test", "virDomainQemuAgentCommand")

    def set_agent_timeout(self, uuid: str, timeout: int) -> None:
        raise not_supported("test", "virDomainAgentSetResponseTimeout")

    def guest_info(self, uuid: str, types: tuple[str, ...] = ()) -> list[tuple[str, object]]:
        raise not_supported("test", "virDomainGetGuestInfo")

    def guest_vcpus(self, uuid: str) -> list[tuple[str, object]]:
        raise not_supported("test", "virDomainGetGuestVcpus")

    def set_guest_vcpus(self, uuid: str, cpulist: str, *, enable: bool) -> None:
        raise not_supported("test", "virDomainSetGuestVcpus")
