"""The guest agent's commands on a libvirt connection (qemu-agent-command,
guest-agent-timeout, guestinfo, domfsinfo, domfsfreeze, domfsthaw, domfstrim,
domhostname, set-user-password, guestvcpus): a mixin of
domains.LibvirtDomainDriver (``self.lv``, ``self.conn``, ``self._dom``).

Each method is one libvirt call (virDomainGetFSInfo, virDomainFSFreeze, ...,
virDomainQemuAgentCommand through libvirt_qemu); libvirt's errors through
errors.TABLE (VIR_ERR_AGENT_UNRESPONSIVE is AGENT_UNRESPONSIVE)."""
from __future__ import annotations

from virtctl.drivers.libvirt.errors import convert, mapped
from virtctl.drivers.libvirt.flags import flags as _flags

# api/domain.py's GUEST_INFO_TYPES -> VIR_DOMAIN_GUEST_INFO_*
_INFO_TYPES = {"users": "USERS", "os": "OS", "timezone": "TIMEZONE", "hostname": "HOSTNAME",
               "filesystem": "FILESYSTEM", "disks": "DISKS", "interfaces": "INTERFACES"}
_HOSTNAME_SOURCES = {"lease": "VIR_DOMAIN_GET_HOSTNAME_LEASE", "agent": "VIR_DOMAIN_GET_HOSTNAME_AGENT"}


class DomainAgentMixin:
    def agent_command(self, uuid: str, command: str, *, timeout: int | None = None) -> str:
        import json

        import libvirt_qemu

        d = self._dom(uuid)
        seconds = libvirt_qemu.VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT if timeout is None else timeout
        with mapped(self.lv):
            reply = libvirt_qemu.qemuAgentCommand(d, command, seconds, 0)
        # libvirt answers the agent's whole reply; the contract is its return value
        try:
            obj = json.loads(reply) if reply else None
        except ValueError:
            from virtctl.errors import OperationFailed

            raise OperationFailed(f"internal error: the guest agent's answer is not JSON: {reply[:200]!r}") from None
        value = obj.get("return") if isinstance(obj, dict) and "return" in obj else obj
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def set_agent_timeout(self, uuid: str, timeout: int) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.agentSetResponseTimeout(timeout, 0)

    def guest_info(self, uuid: str, types: tuple[str, ...] = ()) -> list[tuple[str, object]]:
        lv, d = self.lv, self._dom(uuid)
        bits = _flags(lv, *((t in types, f"VIR_DOMAIN_GUEST_INFO_{b}") for t, b in _INFO_TYPES.items()))
        with mapped(lv):
            params = d.guestInfo(bits, 0)
        return list((params or {}).items())

    def fs_info(self, uuid: str) -> list[dict]:
        d = self._dom(uuid)
        with mapped(self.lv):
            infos = d.fsInfo(0)
        return [{"mountpoint": m, "name": n, "fstype": t, "devaliases": list(aliases or [])}
                for m, n, t, aliases in infos or []]

    def fs_freeze(self, uuid: str, mountpoints: tuple[str, ...] = ()) -> int:
        d = self._dom(uuid)
        with mapped(self.lv):
            return d.fsFreeze(list(mountpoints) or None, 0)

    def fs_thaw(self, uuid: str, mountpoints: tuple[str, ...] = ()) -> int:
        d = self._dom(uuid)
        with mapped(self.lv):
            return d.fsThaw(list(mountpoints) or None, 0)

    def fs_trim(self, uuid: str, mountpoint: str | None = None, minimum: int = 0) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            # the binding takes the unsigned long long as a signed one: the same 64 bits
            d.fSTrim(mountpoint, minimum - 2**64 if minimum >= 2**63 else minimum, 0)

    def guest_hostname(self, uuid: str, source: str | None = None) -> str:
        from virtctl.errors import InvalidArg

        lv = self.lv
        if source is not None and source not in _HOSTNAME_SOURCES:
            raise InvalidArg(f"Unknown data source '{source}'", detail={"source": source})
        d = self._dom(uuid)
        with mapped(lv):
            return d.hostname(getattr(lv, _HOSTNAME_SOURCES[source]) if source else 0)

    def set_user_password(self, uuid: str, user: str, password: str, *, encrypted: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            d.setUserPassword(user, password, _flags(lv, (encrypted, "VIR_DOMAIN_PASSWORD_ENCRYPTED")))

    def guest_vcpus(self, uuid: str) -> list[tuple[str, object]]:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            params = d.guestVcpus(0)
        if params is None:  # the binding returns None where libvirt failed, and raises nothing
            raise convert(lv, lv.libvirtError("virDomainGetGuestVcpus() failed"))
        return list(params.items())

    def set_guest_vcpus(self, uuid: str, cpulist: str, *, enable: bool) -> None:
        d = self._dom(uuid)
        with mapped(self.lv):
            d.setGuestVcpus(cpulist, 1 if enable else 0, 0)
