"""The guest agent commands of the QEMU driver (a mixin of QemuDomainDriver):
qemu-agent-command, guest-agent-timeout, guestinfo, domfsinfo, domfsfreeze,
domfsthaw, domfstrim, domhostname, set-user-password, guestvcpus, domtime,
domifaddr --source agent, and shutdown/reboot --mode agent.

Every call: under the domain lock (briefly) the domain must be running, its
live definition must have the ``org.qemu.guest_agent.0`` channel (else
NOT_SUPPORTED "QEMU guest agent is not configured") and QMP's
``query-chardev`` must say the guest side of that channel is open
(``frontend-open``: qemu-ga has the port open; else AGENT_UNRESPONSIVE "QEMU
guest agent is not connected", at once instead of a timeout).  Then, with
the domain lock released, one agent session (agent.py: the agent lock, the
sync, the commands).  The timeout is the call's, else the domain's
guest-agent-timeout (``agent_timeout`` in the runtime record: gone with the
run), else the default (5 s).

guestinfo's typed parameters, and their order, are libvirt 9.0's
(qemuDomainGetGuestInfo): users, os, timezone, hostname, then filesystems,
disks and interfaces (the last three only when there are any).  Without
types, a type the agent lacks (CommandNotFound/CommandDisabled) is skipped;
with types it is an error.  Disk targets (domfsinfo's devaliases,
``fs.N.disk.M.alias``, ``disk.N.alias``) are the live definition's disks
found by the PCI address the agent reports (the address QEMU gave the disk:
QMP ``query-pci``), else by the drive address under the controller at that
PCI address, else by serial.
"""
from __future__ import annotations

import os

from virtctl.errors import AgentUnresponsive, InvalidArg, NotSupported, OperationFailed, OperationInvalid

AGENT_CHANNEL = "org.qemu.guest_agent.0"
GUEST_VCPU_MAX_ID = 4096  # libvirt's QEMU_GUEST_VCPU_MAX_ID


class _Target:
    """What an agent session needs, read under the domain lock."""

    __slots__ = ("path", "lock_path", "timeout", "run_id", "live", "name")

    def __init__(self, path, lock_path, timeout, run_id, live, name):
        self.path, self.lock_path, self.timeout = path, lock_path, timeout
        self.run_id, self.live, self.name = run_id, live, name


def agent_channel(live_def):
    """(index, <channel> element) of the agent channel, or None."""
    for i, ch in enumerate(live_def.root.findall("devices/channel") if live_def is not None else []):
        tgt = ch.find("target")
        if tgt is not None and tgt.get("type") == "virtio" and tgt.get("name") == AGENT_CHANNEL:
            return i, ch
    return None


def _not_configured() -> NotSupported:
    return NotSupported("argument unsupported: QEMU guest agent is not configured",
                        detail={"driver": "qemu", "feature": "guest agent"})


# --- cpu lists (libvirt's bitmap syntax) -------------------------------------------------
def format_cpulist(ids) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (virBitmapFormat)."""
    out, run = [], None
    for i in sorted(set(ids)):
        if run and i == run[1] + 1:
            run[1] = i
        else:
            if run:
                out.append(run)
            run = [i, i]
    if run:
        out.append(run)
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in out)


def parse_cpulist(text: str, limit: int = GUEST_VCPU_MAX_ID) -> set[int]:
    """``"0-3,^2,5"`` -> ``{0, 1, 3, 5}`` (virBitmapParse); INVALID_ARG when malformed."""
    def bad() -> InvalidArg:
        return InvalidArg(f"invalid argument: Failed to parse bitmap '{text}'", detail={"cpulist": text})

    out: set[int] = set()
    if not text or not text.strip():
        raise bad()
    for part in text.split(","):
        part = part.strip()
        neg = part.startswith("^")
        lo, sep, hi = part.lstrip("^").partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()) or (neg and sep):
            raise bad()
        a, b = int(lo), int(hi) if sep else int(lo)
        if a > b or b >= limit:
            raise bad()
        rng = set(range(a, b + 1))
        out = out - rng if neg else out | rng
    return out


# --- the agent's answers as libvirt's parameters --------------------------------------------
def _need(obj, key: str, command: str, kind=str):
    from virtctl.drivers.qemu.agent import malformed

    v = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise malformed(command, f"'{key}' missing in reply of {command}")
    return v


def _list(value, command: str) -> list:
    from virtctl.drivers.qemu.agent import malformed

    if not isinstance(value, list):
        raise malformed(command, f"{command} reply was missing return data")
    return value


def users_params(ret) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("user.count", len(_list(ret, "guest-get-users")))]
    for i, u in enumerate(ret):
        out.append((f"user.{i}.name", _need(u, "user", "guest-get-users")))
        if isinstance(u.get("domain"), str):
            out.append((f"user.{i}.domain", u["domain"]))
        t = u.get("login-time")
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            from virtctl.drivers.qemu.agent import malformed

            raise malformed("guest-get-users", "'login-time' missing in reply of guest-get-users")
        out.append((f"user.{i}.login-time", int(t * 1000)))
    return out


_OS_KEYS = ("id", "name", "pretty-name", "version", "version-id", "machine", "variant", "variant-id",
            "kernel-release", "kernel-version")


def os_params(ret) -> list[tuple[str, object]]:
    if not isinstance(ret, dict):
        return _list(ret, "guest-get-osinfo")  # raises
    return [(f"os.{k}", ret[k]) for k in _OS_KEYS if isinstance(ret.get(k), str)]


def timezone_params(ret) -> list[tuple[str, object]]:
    if not isinstance(ret, dict):
        return _list(ret, "guest-get-timezone")
    out: list[tuple[str, object]] = []
    if isinstance(ret.get("zone"), str):
        out.append(("timezone.name", ret["zone"]))
    out.append(("timezone.offset", _need(ret, "offset", "guest-get-timezone", int)))
    return out


def fs_entries(ret) -> list[dict]:
    """guest-get-fsinfo's answer checked, in mount order (the agent lists the
    newest mount first: reversed, as libvirt does)."""
    cmd = "guest-get-fsinfo"
    out = []
    for e in reversed(_list(ret, cmd)):
        for key in ("mountpoint", "name", "type"):
            _need(e, key, cmd)
        _list(e.get("disk"), cmd)
        out.append(e)
    return out


def interfaces(ret) -> list[dict]:
    """guest-network-get-interfaces as domifaddr's shape, an alias (``eth0:1``)
    merged into its interface (libvirt's qemuAgentGetInterfaces)."""
    from virtctl.drivers.qemu.network.domif import agent_interfaces

    return agent_interfaces(_list(ret, "guest-network-get-interfaces"))


def interface_params(ifaces: list[dict]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("if.count", len(ifaces))]
    for i, it in enumerate(ifaces):
        out.append((f"if.{i}.name", it["name"]))
        if it.get("hwaddr") is not None:
            out.append((f"if.{i}.hwaddr", it["hwaddr"]))
        out.append((f"if.{i}.addr.count", len(it["addrs"])))
        for j, a in enumerate(it["addrs"]):
            out += [(f"if.{i}.addr.{j}.type", a["type"]), (f"if.{i}.addr.{j}.addr", a["addr"]),
                    (f"if.{i}.addr.{j}.prefix", a["prefix"])]
    return out


class DiskMatcher:
    """The live definition's disk target for a disk address the agent reports."""

    def __init__(self, live_def, pci_devices: dict[tuple[int, int, int, int], str]):
        self.by_pci = pci_devices  # (domain, bus, slot, function) -> qdev id
        self.disks = []  # (alias, target, serial, controller, (bus, target, unit) or None)
        for el in live_def.root.findall("devices/disk") if live_def is not None else []:
            tgt, alias, serial, addr = el.find("target"), el.find("alias"), el.find("serial"), el.find("address")
            drive = None
            if addr is not None and addr.get("type") == "drive":
                try:
                    drive = (int(addr.get("controller", "0")), int(addr.get("bus", "0")),
                             int(addr.get("target", "0")), int(addr.get("unit", "0")))
                except ValueError:
                    drive = None
            self.disks.append((alias.get("name") if alias is not None else None,
                               tgt.get("dev") if tgt is not None else None,
                               (serial.text or "").strip() if serial is not None else None, drive))
        self.controllers = {}  # alias -> (type, index)
        for el in live_def.root.findall("devices/controller") if live_def is not None else []:
            alias = el.find("alias")
            if alias is not None and el.get("index", "0").isdigit():
                self.controllers[alias.get("name")] = int(el.get("index", "0"))

    def target(self, addr) -> str | None:
        if not isinstance(addr, dict):
            return None
        pci = addr.get("pci-controller") or {}
        try:
            key = (int(pci.get("domain", 0)), int(pci["bus"]), int(pci["slot"]), int(pci["function"]))
        except (KeyError, TypeError, ValueError):
            key = None
        qdev = self.by_pci.get(key) if key is not None else None
        if qdev:
            for alias, target, _serial, _drive in self.disks:
                if alias == qdev:
                    return target
            if qdev in self.controllers:
                ctrl = self.controllers[qdev]
                want = (ctrl, addr.get("bus"), addr.get("target"), addr.get("unit"))
                for _alias, target, _serial, drive in self.disks:
                    if drive is not None and drive == want:
                        return target
        serial = addr.get("serial")
        if serial:
            for _alias, target, dserial, _drive in self.disks:
                if dserial and dserial == serial:
                    return target
        return None


def fs_params(entries: list[dict], match: DiskMatcher) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("fs.count", len(entries))]
    for i, e in enumerate(entries):
        out += [(f"fs.{i}.name", e["name"]), (f"fs.{i}.mountpoint", e["mountpoint"]),
                (f"fs.{i}.fstype", e["type"])]
        for key in ("total-bytes", "used-bytes"):
            if isinstance(e.get(key), int):
                out.append((f"fs.{i}.{key}", e[key]))
        disks = e.get("disk") or []
        out.append((f"fs.{i}.disk.count", len(disks)))
        for j, d in enumerate(disks):
            target = match.target(d)
            if target:
                out.append((f"fs.{i}.disk.{j}.alias", target))
            if isinstance(d, dict) and d.get("serial"):
                out.append((f"fs.{i}.disk.{j}.serial", d["serial"]))
            if isinstance(d, dict) and d.get("dev"):
                out.append((f"fs.{i}.disk.{j}.device", d["dev"]))
    return out


def disk_params(ret: list, match: DiskMatcher) -> list[tuple[str, object]]:
    cmd = "guest-get-disks"
    out: list[tuple[str, object]] = [("disk.count", len(ret))]
    for i, d in enumerate(ret):
        out.append((f"disk.{i}.name", _need(d, "name", cmd)))
        out.append((f"disk.{i}.partition", _need(d, "partition", cmd, bool)))
        deps = [x for x in d.get("dependencies") or [] if isinstance(x, str)]
        if deps:
            out.append((f"disk.{i}.dependency.count", len(deps)))
            out += [(f"disk.{i}.dependency.{j}.name", x) for j, x in enumerate(deps)]
        addr = d.get("address")
        if isinstance(addr, dict):
            if addr.get("serial"):
                out.append((f"disk.{i}.serial", addr["serial"]))
            target = match.target(addr)
            if target:
                out.append((f"disk.{i}.alias", target))
        if isinstance(d.get("alias"), str):
            out.append((f"disk.{i}.guest_alias", d["alias"]))
    return out


def _pci_devices(q) -> dict[tuple[int, int, int, int], str]:
    """(domain 0, bus, slot, function) -> qdev id of every PCI device (query-pci)."""
    out: dict[tuple[int, int, int, int], str] = {}

    def walk(bus: dict) -> None:
        for dev in bus.get("devices") or []:
            if dev.get("qdev_id"):
                out[(0, int(dev.get("bus", 0)), int(dev.get("slot", 0)), int(dev.get("function", 0)))] = \
                    dev["qdev_id"]
            bridge = (dev.get("pci_bridge") or {}).get("devices")
            if bridge is not None:
                walk(dev["pci_bridge"])

    for bus in q.command("query-pci") or []:
        walk(bus)
    return out


class QemuGuestAgentMixin:
    # --- the session ------------------------------------------------------------------------
    def _agent_target(self, uuid: str) -> _Target:
        """Running, configured, connected: the channel's socket and the domain's timeout."""
        from virtctl.drivers.qemu.qmp import QMPError
        from virtctl.drivers.qemu import runtime as rt

        with self._running(uuid) as run:
            if run.record.get("state", "running") != "running":
                raise OperationInvalid("Requested operation is not valid: domain is not running")
            live_def = self._live(uuid)
            found = agent_channel(live_def)
            if found is None:
                raise _not_configured()
            i, ch = found
            src = ch.find("source")
            ctype = ch.get("type", "pty")
            if ctype not in ("unix", "pty"):
                raise NotSupported(f"argument unsupported: the guest agent channel is of type '{ctype}': virtctl "
                                   "talks to it over a unix socket (type='unix' or 'pty')",
                                   detail={"driver": "qemu", "feature": "guest agent"})
            if src is not None and ctype == "unix" and src.get("mode", "bind") == "connect":
                raise NotSupported("argument unsupported: the guest agent channel connects out "
                                   "(<source mode='connect'>): something else is its agent's client",
                                   detail={"driver": "qemu", "feature": "guest agent"})
            from virtctl.drivers.qemu.argv_chardev import channel_socket

            path = src.get("path") if src is not None and ctype == "unix" and src.get("path") else \
                channel_socket(run, i)
            try:
                with run.qmp() as q:
                    chardevs = q.command("query-chardev") or []
            except (QMPError, OSError) as exc:
                raise rt.qmp_error(exc, "guest agent") from None
            label = f"charchannel{i}"
            dev = next((c for c in chardevs if c.get("label") == label), None)
            if dev is not None and not dev.get("frontend-open", True):
                from virtctl.drivers.qemu.agent import NOT_CONNECTED

                raise AgentUnresponsive(NOT_CONNECTED, detail={"channel": label})
            timeout = run.record.get("agent_timeout", -1)
            return _Target(path, os.path.join(self.state.locks_dir, f"agent-{uuid}.lock"),
                           timeout if isinstance(timeout, int) else -1, run.record.get("run_id"), live_def,
                           live_def.name if live_def is not None else uuid)

    def _agent_session(self, uuid: str, timeout: int | None = None, target: _Target | None = None):
        from virtctl.drivers.qemu import agent

        t = target or self._agent_target(uuid)
        return agent.Session(t.path, lock_path=t.lock_path,
                             timeout=t.timeout if timeout is None else agent.check_timeout(timeout))

    def _agent_call(self, uuid: str, command: str, arguments: dict | None = None, *,
                    timeout: int | None = None):
        with self._agent_session(uuid, timeout) as s:
            return s.call(command, arguments)

    def _disk_matcher(self, uuid: str, live_def) -> DiskMatcher:
        from virtctl.drivers.qemu.qmp import QMPError

        pci: dict = {}
        try:
            with self._running(uuid) as run, run.qmp() as q:
                pci = _pci_devices(q)
        except (QMPError, OSError):
            pass  # the targets are informative: no PCI map, no PCI match
        return DiskMatcher(live_def, pci)

    # --- the contract -----------------------------------------------------------------------
    def agent_command(self, uuid: str, command: str, *, timeout: int | None = None) -> str:
        from virtctl.drivers.qemu import agent

        request = agent.parse_command(command)
        if timeout is not None:
            agent.check_timeout(timeout)
        with self._agent_session(uuid, timeout) as s:
            s.send(request)
            answer = s.reply(request["execute"])
        if answer is None:  # timeout 0: sent, not waited for
            return ""
        if "error" in answer:
            raise agent.agent_error(request["execute"], answer["error"])
        # the contract's value: the answer's "return" (libvirt hands over the whole {"return":...})
        return agent.compact(answer.get("return"))

    def set_agent_timeout(self, uuid: str, timeout: int) -> None:
        from virtctl.drivers.qemu import agent

        agent.check_timeout(timeout)
        with self._running(uuid) as run:
            run.update(agent_timeout=timeout)

    def get_time(self, uuid: str) -> tuple[int, int]:
        from virtctl.drivers.qemu.agent import malformed

        ns = self._agent_call(uuid, "guest-get-time")
        if not isinstance(ns, int) or isinstance(ns, bool):
            raise malformed("guest-get-time", "malformed return value")
        return ns // 10**9, ns % 10**9

    def set_time(self, uuid: str, seconds: int | None, *, sync: bool = False) -> None:
        if sync:
            self._agent_call(uuid, "guest-set-time")
            return
        if seconds is None:
            raise InvalidArg("invalid argument: no time to set")
        if int(seconds) > (2**63 - 1) // 10**9:
            raise InvalidArg(f"invalid argument: Time '{seconds}' is too big for guest agent")
        self._agent_call(uuid, "guest-set-time", {"time": int(seconds) * 10**9})

    def guest_info(self, uuid: str, types: tuple[str, ...] = ()) -> list[tuple[str, object]]:
        from virtctl.api.domain import GUEST_INFO_TYPES
        from virtctl.drivers.qemu.agent import is_unsupported

        bad = [t for t in types if t not in GUEST_INFO_TYPES]
        if bad:
            raise InvalidArg(f"invalid argument: unsupported guest information types {', '.join(bad)} "
                             f"(known: {', '.join(GUEST_INFO_TYPES)})", detail={"types": bad})
        wanted = set(types or GUEST_INFO_TYPES)
        report = bool(types)
        commands = (("users", "guest-get-users"), ("os", "guest-get-osinfo"), ("timezone", "guest-get-timezone"),
                    ("hostname", "guest-get-host-name"), ("filesystem", "guest-get-fsinfo"),
                    ("disks", "guest-get-disks"), ("interfaces", "guest-network-get-interfaces"))
        target = self._agent_target(uuid)
        got: dict[str, object] = {}
        with self._agent_session(uuid, target=target) as s:
            for kind, command in commands:
                if kind not in wanted:
                    continue
                try:
                    got[kind] = s.call(command)
                except OperationFailed as exc:
                    if report or not is_unsupported(exc):
                        raise
        out: list[tuple[str, object]] = []
        if "users" in got:
            out += users_params(got["users"])
        if "os" in got:
            out += os_params(got["os"])
        if "timezone" in got:
            out += timezone_params(got["timezone"])
        if "hostname" in got:
            out.append(("hostname", _need(got["hostname"], "host-name", "guest-get-host-name")))
        fs = fs_entries(got["filesystem"]) if "filesystem" in got else []
        disks = _list(got["disks"], "guest-get-disks") if "disks" in got else []
        if fs or disks:
            match = self._disk_matcher(uuid, target.live)
            if fs:
                out += fs_params(fs, match)
            if disks:
                out += disk_params(disks, match)
        ifaces = interfaces(got["interfaces"]) if "interfaces" in got else []
        if ifaces:
            out += interface_params(ifaces)
        return out

    def fs_info(self, uuid: str) -> list[dict]:
        target = self._agent_target(uuid)
        with self._agent_session(uuid, target=target) as s:
            entries = fs_entries(s.call("guest-get-fsinfo"))
        match = self._disk_matcher(uuid, target.live) if entries else None
        out = []
        for e in entries:
            aliases = [t for t in (match.target(d) for d in e.get("disk") or []) if t]
            out.append({"mountpoint": e["mountpoint"], "name": e["name"], "fstype": e["type"],
                        "devaliases": aliases})
        return out

    def fs_freeze(self, uuid: str, mountpoints: tuple[str, ...] = ()) -> int:
        if mountpoints:
            n = self._agent_call(uuid, "guest-fsfreeze-freeze-list", {"mountpoints": list(mountpoints)})
        else:
            n = self._agent_call(uuid, "guest-fsfreeze-freeze")
        return self._count(n, "guest-fsfreeze-freeze")

    def fs_thaw(self, uuid: str, mountpoints: tuple[str, ...] = ()) -> int:
        if mountpoints:
            raise NotSupported("argument unsupported: specifying mountpoints is not supported",
                               detail={"driver": "qemu", "feature": "domfsthaw --mountpoint"})
        return self._count(self._agent_call(uuid, "guest-fsfreeze-thaw"), "guest-fsfreeze-thaw")

    @staticmethod
    def _count(n, command: str) -> int:
        from virtctl.drivers.qemu.agent import malformed

        if not isinstance(n, int) or isinstance(n, bool):
            raise malformed(command, "malformed return value")
        return n

    def fs_trim(self, uuid: str, mountpoint: str | None = None, minimum: int = 0) -> None:
        if mountpoint is not None:
            raise NotSupported("argument unsupported: Specifying mount point is not supported for now",
                               detail={"driver": "qemu", "feature": "domfstrim --mountpoint"})
        if minimum < 0:
            raise InvalidArg(f"invalid argument: minimum '{minimum}' is negative")
        self._agent_call(uuid, "guest-fstrim", {"minimum": int(minimum)})

    def guest_hostname(self, uuid: str, source: str | None = None) -> str:
        if source not in (None, "agent", "lease"):
            raise InvalidArg(f"invalid argument: Unknown data source '{source}'", detail={"source": source})
        if source == "lease":
            return self._lease_hostname(uuid)
        ret = self._agent_call(uuid, "guest-get-host-name")
        return _need(ret, "host-name", "guest-get-host-name")

    def _lease_hostname(self, uuid: str) -> str:
        from virtctl.drivers.qemu.network.domif import lease_hostname

        with self._running(uuid):
            live_def = self._live(uuid)
        name = lease_hostname(self.state, live_def)
        if not name:
            raise OperationFailed(f"no hostname found for domain {live_def.name if live_def is not None else uuid}",
                                  detail={"uuid": uuid})
        return name

    def set_user_password(self, uuid: str, user: str, password: str, *, encrypted: bool = False) -> None:
        import base64

        self._agent_call(uuid, "guest-set-user-password",
                         {"crypted": bool(encrypted), "username": user,
                          "password": base64.b64encode(password.encode()).decode("ascii")})

    def _guest_cpus(self, s) -> list[tuple[int, bool, bool]]:
        """(logical id, online, can offline) of every vCPU the agent knows."""
        from virtctl.drivers.qemu.agent import malformed

        out = []
        for e in _list(s.call("guest-get-vcpus"), "guest-get-vcpus"):
            cid = _need(e, "logical-id", "guest-get-vcpus", int)
            online = _need(e, "online", "guest-get-vcpus", bool)
            if cid < 0 or cid >= GUEST_VCPU_MAX_ID:
                raise malformed("guest-get-vcpus", f"vcpu id '{cid}' reported by guest agent is out of range")
            out.append((cid, online, e.get("can-offline") is True))
        return out

    def guest_vcpus(self, uuid: str) -> list[tuple[str, object]]:
        with self._agent_session(uuid) as s:
            cpus = self._guest_cpus(s)
        return [("vcpus", format_cpulist(c for c, _o, _f in cpus)),
                ("online", format_cpulist(c for c, o, _f in cpus if o)),
                ("offlinable", format_cpulist(c for c, _o, f in cpus if f))]

    def set_guest_vcpus(self, uuid: str, cpulist: str, *, enable: bool) -> None:
        from virtctl.drivers.qemu.agent import malformed

        wanted = parse_cpulist(cpulist)
        with self._agent_session(uuid) as s:
            cpus = self._guest_cpus(s)
            changes = []
            for cid, _online, offlinable in cpus:
                if cid not in wanted:
                    continue
                if not enable and not offlinable:
                    raise NotSupported(f"Operation not supported: vCPU '{cid}' is not offlinable",
                                       detail={"driver": "qemu", "feature": "guestvcpus --disable",
                                               "vcpu": cid})
                changes.append({"logical-id": cid, "online": bool(enable)})
                wanted.discard(cid)
            if wanted:
                raise InvalidArg(f"invalid argument: guest is missing vCPUs '{format_cpulist(wanted)}'",
                                 detail={"vcpus": sorted(wanted)})
            while changes:  # the agent may set fewer than asked: send the rest again
                n = s.call("guest-set-vcpus", {"vcpus": changes})
                if not isinstance(n, int) or isinstance(n, bool) or n <= 0 or n > len(changes):
                    raise malformed("guest-set-vcpus", "guest agent returned malformed or invalid return value")
                changes = changes[n:]

    # --- domifaddr --source agent -------------------------------------------------------------
    def interface_addresses(self, uuid: str, source: str = "lease") -> list[dict]:
        if source != "agent":
            return super().interface_addresses(uuid, source)
        return interfaces(self._agent_call(uuid, "guest-network-get-interfaces"))

    # --- shutdown/reboot --mode agent -----------------------------------------------------------
    def _agent_power(self, uuid: str, modes: tuple[str, ...], *, reboot: bool) -> str | None:
        """libvirt's qemuDomainShutdownFlags/qemuDomainReboot choice: the agent when
        asked (or, with no mode, when it is connected); ACPI when asked, or with
        no mode, if the agent could not do it.  The run's id when the agent did
        it (or the run ended meanwhile), None when ACPI is to be used."""
        agent_asked, acpi_asked = "agent" in modes, "acpi" in modes
        forced = agent_asked and not acpi_asked
        if not agent_asked and modes:
            return None
        if not modes:  # no mode: the agent only if it is there (a plain shutdown stays lean without one)
            from virtctl.drivers.qemu.state import read_bytes

            try:
                data = read_bytes(self.state.live_xml(uuid))
            except Exception:  # noqa: BLE001 - unreadable: the ACPI path reports what is wrong
                data = None
            if not data or AGENT_CHANNEL.encode() not in data:
                return None
        try:
            target = self._agent_target(uuid)
        except (NotSupported, AgentUnresponsive, OperationInvalid):
            if forced:
                raise
            return None
        lc = target.live.lifecycle if target.live is not None else {}
        if reboot:
            mode = "powerdown" if lc.get("on_reboot") in ("destroy", "preserve") else "reboot"
        else:
            mode = "reboot" if lc.get("on_poweroff") in ("restart", "rename-restart") else "powerdown"
        try:
            self._agent_shutdown(uuid, target, mode)
            return target.run_id or ""
        except (AgentUnresponsive, OperationFailed):
            if forced:
                raise
            if self._run_ended(uuid, target.run_id):
                return target.run_id or ""  # it went away by itself meanwhile
            return None

    def _run_ended(self, uuid: str, run_id) -> bool:
        from virtctl.drivers.qemu import runtime as rt

        try:
            probe = rt.sync(self.state, uuid, locked=False)
        except Exception:  # noqa: BLE001 - a record being rewritten: not known to be over
            return False
        return probe.record is None or probe.record.get("run_id") != run_id

    def _agent_shutdown(self, uuid: str, target: _Target, mode: str) -> None:
        """guest-shutdown, then wait (60 s, libvirt's) for the guest to act: the
        monitor's SHUTDOWN (or RESET) event of this run, or the run's end.  An
        error answer from the agent fails it (qemu-ga answers a successful
        guest-shutdown with nothing)."""
        import json
        import select
        import time

        from virtctl.drivers.qemu import agent

        with self._running(uuid) as run:
            if run.record.get("fake_reboot"):
                run.update(fake_reboot=False)
        events = self.state.events_file(uuid)
        try:
            offset = os.path.getsize(events)
        except OSError:
            offset = 0
        want = "RESET" if mode == "reboot" else "SHUTDOWN"

        def acted() -> bool:
            """The guest powered off or reset (the monitor's event), or the run is over."""
            try:
                with open(events, "rb") as f:
                    f.seek(offset)
                    for line in f.read().splitlines():
                        try:
                            ev = json.loads(line)
                        except ValueError:
                            continue
                        if ev.get("run_id") == target.run_id and ev.get("event") == want:
                            return True
            except OSError:
                pass
            return self._run_ended(uuid, target.run_id)

        with self._agent_session(uuid, target=target) as s:
            s.send({"execute": "guest-shutdown", "arguments": {"mode": mode}})
            deadline = time.monotonic() + agent.SHUTDOWN_WAIT
            while True:
                if acted():
                    return
                if s.pending() or select.select([s], [], [], 0.1)[0]:
                    try:
                        answer = s.reply("guest-shutdown", agent.SHUTDOWN_WAIT)
                    except AgentUnresponsive:  # the channel closed: QEMU going away is success
                        deadline2 = time.monotonic() + 10
                        while time.monotonic() < deadline2:
                            if acted():
                                return
                            time.sleep(0.1)
                        raise
                    if "error" in answer:
                        raise agent.agent_error("guest-shutdown", answer["error"])
                    return  # an agent that answers a shutdown: done as far as it says
                if time.monotonic() >= deadline:
                    raise AgentUnresponsive(agent.NOT_AVAILABLE, detail={"agent_command": "guest-shutdown"})
