"""QemuNetworkDriver: networks made of a Linux bridge, dnsmasq and an
nftables table, with no daemon.

Files (``<config>`` and ``<run>`` are the connection's state roots):

* ``<config>/networks/<uuid>.xml`` the definition (atomic writes), and
  ``<uuid>.autostart``;  transient networks (net-create) keep theirs in the
  run directory only (``<run>/networks/<uuid>/transient.xml``);
* ``<run>/networks/<uuid>/state.json`` the ownership record: the bridge,
  nft table and dnsmasq this network made, the network namespace it was
  made in, ``phase`` ``starting`` or ``active``; beside it dnsmasq's conf,
  hosts files, pid file and lease file;
* ``<run>/locks/net-<uuid>.lock`` held for a whole net-start / net-destroy;
  ``<run>/locks/global.lock`` for define / undefine (name uniqueness).

Ownership: the record is written (and synced) *before* anything is made, and
names only what net-start checked did not exist; net-destroy removes exactly
what it names.  A kill -9 during net-start leaves a ``starting`` record: the
next net-start or net-destroy removes what it names and carries on.  A network
is active while its record says ``active``; a dead dnsmasq is reported (the
record's ``warning``) and net-start on the running network restarts it.
"""
from __future__ import annotations

import os
import shutil

from virtctl.api.network import NetworkRecord
from virtctl.drivers.base import NetworkDriver
from virtctl.drivers.qemu import events
from virtctl.drivers.qemu.faults import killpoint
from virtctl.drivers.qemu.locks import FileLock
from virtctl.drivers.qemu.network import defs, dnsmasq, hostnet, nft
from virtctl.drivers.qemu.state import atomic_write, ensure_dir, read_json, unlink_quiet, write_json
from virtctl.errors import NoNetwork, OperationFailed, OperationInvalid, XMLError

PHASE_STARTING, PHASE_ACTIVE = "starting", "active"


class QemuNetworkDriver(NetworkDriver):
    driver_name = "qemu"

    def __init__(self, state, users=None):
        self.state = state
        # users(network name, bridge) -> names of running domains with an interface on it
        self._users = users or (lambda name, bridge: [])
        self.conf_dir = os.path.join(state.config, "networks")
        self.run_base = os.path.join(state.run, "networks")

    # --- files
    def _rundir(self, uuid: str) -> str:
        return os.path.join(self.run_base, uuid)

    def _record_path(self, uuid: str) -> str:
        return os.path.join(self._rundir(uuid), "state.json")

    def _lock(self, uuid: str) -> FileLock:
        ensure_dir(self.state.locks_dir)
        return FileLock(os.path.join(self.state.locks_dir, f"net-{uuid}.lock"), what="network lock")

    def _defs(self) -> dict[str, tuple[defs.NetDef, bool]]:
        """uuid -> (definition, persistent); damaged files are skipped."""
        out: dict[str, tuple[defs.NetDef, bool]] = {}
        for base, persistent in ((self.conf_dir, True), (self.run_base, False)):
            try:
                names = sorted(os.listdir(base))
            except FileNotFoundError:
                continue
            for n in names:
                path = os.path.join(base, n, "transient.xml") if not persistent else os.path.join(base, n)
                if persistent and not n.endswith(".xml"):
                    continue
                if not persistent and not os.path.exists(path):
                    continue
                try:
                    with open(path) as f:
                        d = defs.parse(f.read(), path)
                except (OSError, XMLError, Exception):  # noqa: BLE001 - one bad file never hides the others
                    continue
                if d.uuid not in out:
                    out[d.uuid] = (d, persistent)
        return out

    def _def(self, uuid: str) -> tuple[defs.NetDef, bool]:
        d = self._defs().get(uuid)
        if d is None:
            raise NoNetwork(f"Network not found: no network with matching uuid '{uuid}'", detail={"uuid": uuid})
        return d

    def _record(self, uuid: str) -> dict | None:
        try:
            return read_json(self._record_path(uuid))
        except Exception:  # noqa: BLE001 - an unreadable record: treated as a stale start
            return {"phase": PHASE_STARTING}

    def _live_def(self, uuid: str, d: defs.NetDef) -> defs.NetDef:
        """The definition the running network was started with."""
        path = os.path.join(self._rundir(uuid), "live.xml")
        try:
            with open(path) as f:
                return defs.parse(f.read(), path)
        except (OSError, XMLError):
            return d

    def _to_record(self, d: defs.NetDef, persistent: bool) -> NetworkRecord:
        rec = self._record(d.uuid)
        active = bool(rec) and rec.get("phase") == PHASE_ACTIVE
        r = NetworkRecord(uuid=d.uuid, name=d.name, active=active, persistent=persistent,
                          autostart=persistent and os.path.exists(os.path.join(self.conf_dir, d.uuid + ".autostart")),
                          bridge=(rec or {}).get("bridge") if active else d.bridge)
        if active and rec.get("dnsmasq") and dnsmasq.alive(self._rundir(d.uuid)) is None:
            r.warning = "dnsmasq is not running (DHCP and DNS are down): net-start restarts it"
        elif active and rec.get("netns") != hostnet.netns_id():
            r.warning = f"the network runs in another network namespace ({rec.get('netns')})"
        return r

    # --- reading
    def list(self) -> list[NetworkRecord]:
        return sorted((self._to_record(d, p) for d, p in self._defs().values()), key=lambda r: r.name)

    def get(self, uuid: str) -> NetworkRecord:
        return self._to_record(*self._def(uuid))

    def get_xml(self, uuid: str, *, inactive: bool = False) -> str:
        d, _ = self._def(uuid)
        rec = self._record(uuid)
        if not inactive and rec and rec.get("phase") == PHASE_ACTIVE:
            return self._live_def(uuid, d).xml()
        return d.xml()

    def active_bridges(self) -> dict[str, str]:
        """network name -> bridge, for the active networks (domain start)."""
        out = {}
        for d, _ in self._defs().values():
            rec = self._record(d.uuid)
            if rec and rec.get("phase") == PHASE_ACTIVE and rec.get("bridge"):
                out[d.name] = rec["bridge"]
        return out

    # --- definitions
    def _check_unique(self, d: defs.NetDef, all_defs) -> None:
        for other, _ in all_defs.values():
            if other.name == d.name and other.uuid != d.uuid:
                raise OperationFailed(f"operation failed: network '{d.name}' already exists with uuid {other.uuid}",
                                      detail={"network": d.name, "uuid": other.uuid})
            if other.uuid == d.uuid and other.name != d.name:
                raise OperationFailed(f"operation failed: network '{other.name}' is already defined with uuid "
                                      f"{other.uuid}", detail={"network": other.name, "uuid": other.uuid})
            if other.uuid != d.uuid and d.bridge and other.bridge == d.bridge:
                raise OperationFailed(f"operation failed: bridge name '{d.bridge}' already in use by network "
                                      f"'{other.name}'", detail={"bridge": d.bridge, "network": other.name})

    def _assign_bridge(self, d: defs.NetDef, all_defs) -> None:
        """No <bridge name>: the first free virbrN, as libvirt picks one at define."""
        if d.bridge:
            return
        from virtctl.xml import xmlapi

        taken = {o.bridge for o, _ in all_defs.values() if o.uuid != d.uuid} | set(hostnet.links())
        n = 0
        while f"virbr{n}" in taken:
            n += 1
        d.bridge = f"virbr{n}"
        br = d.root.find("bridge")
        if br is None:
            br = xmlapi.element("bridge", {"name": d.bridge, "stp": "on", "delay": "0"})
            fwd = d.root.find("forward")
            anchor = fwd if fwd is not None else d.root.find("uuid")
            d.root.insert(list(d.root).index(anchor) + 1, br)
        else:
            br.set("name", d.bridge)

    def define(self, xml: str, *, source: str = "<input>") -> NetworkRecord:
        d = defs.parse(xml, source)
        with FileLock(self.state.global_lock, what="global lock"):
            all_defs = self._defs()
            self._check_unique(d, all_defs)
            old = all_defs.get(d.uuid)
            if old is not None and old[0].bridge and not d.bridge:
                d.bridge = old[0].bridge
                d.root.find("bridge") is not None and d.root.find("bridge").set("name", d.bridge)
            self._assign_bridge(d, all_defs)
            d = defs.parse(d.xml(), source)  # the formatted document is what is kept
            ensure_dir(self.conf_dir)
            atomic_write(os.path.join(self.conf_dir, d.uuid + ".xml"), d.xml())
            if old is not None and not old[1]:  # a transient network becomes persistent
                unlink_quiet(os.path.join(self._rundir(d.uuid), "transient.xml"))
            events.emit(self.state, "network", d.name, d.uuid, "lifecycle", None, lifecycle="Defined")
        return self._to_record(d, True)

    def create_xml(self, xml: str, *, source: str = "<input>") -> NetworkRecord:
        d = defs.parse(xml, source)
        with FileLock(self.state.global_lock, what="global lock"):
            all_defs = self._defs()
            self._check_unique(d, all_defs)
            if d.uuid in all_defs:
                raise OperationInvalid(f"Requested operation is not valid: network '{d.name}' is already defined; "
                                       "use net-start", detail={"network": d.name})
            self._assign_bridge(d, all_defs)
            d = defs.parse(d.xml(), source)
            ensure_dir(self.run_base)
            ensure_dir(self._rundir(d.uuid))
            atomic_write(os.path.join(self._rundir(d.uuid), "transient.xml"), d.xml())
        try:
            self.start(d.uuid)
        except BaseException:
            self._forget_transient(d.uuid)
            raise
        return self._to_record(d, False)

    def _forget_transient(self, uuid: str) -> None:
        shutil.rmtree(self._rundir(uuid), ignore_errors=True)

    def undefine(self, uuid: str) -> None:
        d, persistent = self._def(uuid)
        with FileLock(self.state.global_lock, what="global lock"):
            rec = self._record(uuid)
            if rec and rec.get("phase") == PHASE_ACTIVE:
                raise OperationInvalid(f"Requested operation is not valid: Network '{d.name}' is still running",
                                       detail={"network": d.name})
            unlink_quiet(os.path.join(self.conf_dir, uuid + ".autostart"))
            unlink_quiet(os.path.join(self.conf_dir, uuid + ".xml"))
            events.emit(self.state, "network", d.name, d.uuid, "lifecycle", None, lifecycle="Undefined")

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        d, persistent = self._def(uuid)
        if not persistent:
            raise OperationInvalid("Requested operation is not valid: cannot set autostart for transient network")
        flag = os.path.join(self.conf_dir, uuid + ".autostart")
        if enabled:
            atomic_write(flag, "")
        else:
            unlink_quiet(flag)

    # --- start / destroy
    def _teardown(self, uuid: str, rec: dict) -> None:
        """Remove what ``rec`` says this network made (and nothing else)."""
        if rec.get("netns") and rec["netns"] != hostnet.netns_id():
            raise OperationInvalid(f"Requested operation is not valid: the network was started in another "
                                   f"network namespace ({rec['netns']}); run this there")
        rundir = self._rundir(uuid)
        dnsmasq.stop(rundir)
        table = rec.get("table")
        if table and table.startswith("virtctl-"):
            nft.delete(table)
        br = rec.get("bridge")
        if br and rec.get("bridge_made") and hostnet.link_exists(br):
            hostnet.ip("link", "del", br, what=f"remove the bridge '{br}'")
        for name in ("dnsmasq.conf", "dnsmasq.pid", "dnsmasq.hostsfile", "dnsmasq.addnhosts", "live.xml"):
            unlink_quiet(os.path.join(rundir, name), missing_ok_only=False)
        unlink_quiet(self._record_path(uuid), missing_ok_only=False)

    def _check_collisions(self, d: defs.NetDef) -> None:
        br = d.bridge
        if hostnet.link_exists(br):
            raise OperationFailed(f"cannot start network '{d.name}': the bridge name '{br}' is already taken by an "
                                  "interface virtctl did not make", detail={"bridge": br})
        if d.subnet is None:
            return
        import ipaddress

        for ifname, addr, prefix in hostnet.addresses():
            other = ipaddress.IPv4Interface(f"{addr}/{prefix}").network
            if other.overlaps(d.subnet):
                raise OperationFailed(f"cannot start network '{d.name}': its subnet {d.subnet} overlaps {other} "
                                      f"of the interface '{ifname}'",
                                      detail={"subnet": str(d.subnet), "interface": ifname, "other": str(other)})
        for other, _ in self._defs().values():
            rec = self._record(other.uuid)
            if other.uuid != d.uuid and rec and rec.get("phase") == PHASE_ACTIVE:
                o = self._live_def(other.uuid, other)
                if o.subnet is not None and o.subnet.overlaps(d.subnet):
                    raise OperationFailed(f"cannot start network '{d.name}': its subnet {d.subnet} overlaps "
                                          f"{o.subnet} of the network '{o.name}'",
                                          detail={"subnet": str(d.subnet), "network": o.name})

    def start(self, uuid: str) -> None:
        d, _ = self._def(uuid)
        with self._lock(uuid):
            rec = self._record(uuid)
            rundir = self._rundir(uuid)
            if rec and rec.get("phase") == PHASE_ACTIVE:
                if rec.get("dnsmasq") and dnsmasq.alive(rundir) is None:
                    live = self._live_def(uuid, d)
                    dnsmasq.write_files(live, rec["bridge"], rundir)
                    dnsmasq.start(rundir)  # the one thing a running network can lose
                    return
                raise OperationInvalid(f"Requested operation is not valid: network '{d.name}' is already active",
                                       detail={"network": d.name})
            if rec:
                self._teardown(uuid, rec)  # what a killed net-start left
            hostnet.require_net_admin(d.name)
            for tool, pkg in (("ip", "iproute2"), ("dnsmasq", "dnsmasq-base"), ("nft", "nftables")):
                hostnet.tool(tool, pkg)
            self._check_collisions(d)
            table = nft.table_name(d.name)
            rules = nft.ruleset(d, d.bridge, table)
            if rules is not None and nft.exists(table):
                raise OperationFailed(f"cannot start network '{d.name}': an nftables table '{table}' exists that "
                                      "this network did not make (delete it: nft delete table ip " + table + ")")
            use_dhcp = d.address is not None and bool(d.ranges or d.hosts or d.dns_hosts)
            ensure_dir(self.run_base)
            ensure_dir(rundir)
            rec = {"uuid": uuid, "name": d.name, "phase": PHASE_STARTING, "bridge": d.bridge, "bridge_made": True,
                   "table": table if rules is not None else None, "dnsmasq": use_dhcp or d.address is not None,
                   "netns": hostnet.netns_id(), "pid": os.getpid()}
            write_json(self._record_path(uuid), rec)  # before anything exists: the record names it
            atomic_write(os.path.join(rundir, "live.xml"), d.xml(), sync=False)
            try:
                killpoint("net-start:record")
                br = d.bridge
                hostnet.ip("link", "add", "name", br, "type", "bridge", "stp_state", "0", "forward_delay", "0",
                           what=f"create the bridge '{br}'")
                killpoint("net-start:bridge")
                if d.address is not None:
                    hostnet.ip("addr", "add", str(d.address), "dev", br, what=f"give '{br}' the address {d.address}")
                hostnet.ip("link", "set", br, "up", what=f"bring '{br}' up")
                if d.mode in ("nat", "route"):
                    _enable_forwarding()
                if rules is not None:
                    nft.create(rules)
                killpoint("net-start:nft")
                if rec["dnsmasq"]:
                    dnsmasq.write_files(d, br, rundir)
                    dnsmasq.start(rundir)
                killpoint("net-start:dnsmasq")
                rec["phase"] = PHASE_ACTIVE
                write_json(self._record_path(uuid), rec)
                events.emit(self.state, "network", d.name, d.uuid, "lifecycle", None, lifecycle="Started")
            except BaseException:
                try:
                    self._teardown(uuid, rec)
                except Exception:  # noqa: BLE001 - the record stays: the next net-start/destroy finishes
                    pass
                raise

    def destroy(self, uuid: str, *, force: bool = False) -> None:
        d, persistent = self._def(uuid)
        with self._lock(uuid):
            rec = self._record(uuid)
            if not rec:
                raise OperationInvalid(f"Requested operation is not valid: network '{d.name}' is not active",
                                       detail={"network": d.name})
            if rec.get("phase") == PHASE_ACTIVE and not force:
                users = self._users(d.name, rec.get("bridge"))
                if users:
                    raise OperationInvalid(
                        f"Requested operation is not valid: network '{d.name}' is in use by running domain(s) "
                        f"{', '.join(repr(u) for u in users)} (stop them first, or net-destroy --force: their "
                        "interfaces lose the network)", detail={"network": d.name, "domains": users})
            self._teardown(uuid, rec)
            events.emit(self.state, "network", d.name, d.uuid, "lifecycle", None, lifecycle="Stopped")
        if not persistent:
            self._forget_transient(uuid)

    def dhcp_leases(self, uuid: str, *, mac: str | None = None) -> list[dict]:
        d, _ = self._def(uuid)
        rec = self._record(uuid)
        if not rec or rec.get("phase") != PHASE_ACTIVE:
            raise OperationInvalid(f"Requested operation is not valid: network '{d.name}' is not active")
        live = self._live_def(uuid, d)
        out = []
        for lease in dnsmasq.leases(self._rundir(uuid)):
            if mac and lease["mac"] != mac.lower():
                continue
            out.append({"expiry": _expiry(lease["expiry"]), "mac": lease["mac"], "protocol": "ipv4",
                        "address": lease["address"], "prefix": live.address.network.prefixlen if live.address else 24,
                        "hostname": lease["hostname"], "client_id": lease["client_id"]})
        return out

    def update(self, uuid: str, command: str, section: str, xml: str, *, parent_index: int | None = None,
               live: bool = False, config: bool = False) -> None:
        from virtctl.xml.network_update import apply

        d, persistent = self._def(uuid)
        rec = self._record(uuid)
        active = bool(rec) and rec.get("phase") == PHASE_ACTIVE
        if live or (not config and active):
            from virtctl.errors import not_supported

            raise not_supported("qemu", "net-update --live (change the definition with --config and restart "
                                "the network)")
        if not persistent:
            raise OperationInvalid("Requested operation is not valid: cannot change persistent config of a "
                                   "transient network")
        from virtctl.xml import xmlapi

        el = xmlapi.copy(d.root)
        apply(el, command, section, xml, parent_index, d.name)
        new = defs.parse(xmlapi.tostring(el), "<net-update>")
        atomic_write(os.path.join(self.conf_dir, uuid + ".xml"), new.xml())


def _expiry(ts: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "never"


def _enable_forwarding() -> None:
    """nat and route need IPv4 forwarding (per network namespace), as libvirt turns it on."""
    path = "/proc/sys/net/ipv4/ip_forward"
    try:
        with open(path) as f:
            if f.read().strip() == "1":
                return
        with open(path, "w") as f:
            f.write("1\n")
    except OSError as exc:
        raise OperationFailed(f"cannot enable IPv4 forwarding ({path}): {exc.strerror}") from None
