"""The dnsmasq of one network (DHCP and DNS on its bridge), as libvirt runs
it: its own conf, hosts files, pid file and lease file in the network's run
directory.  It daemonizes, so it outlives virtctl; :func:`alive` tells a
dead one (or a pid reused by another program) from ours."""
from __future__ import annotations

import ipaddress
import os
import time

from virtctl.drivers.qemu.network import hostnet
from virtctl.drivers.qemu.state import atomic_write, unlink_quiet
from virtctl.errors import OperationFailed


def paths(rundir: str) -> dict[str, str]:
    return {k: os.path.join(rundir, f) for k, f in (
        ("conf", "dnsmasq.conf"), ("pid", "dnsmasq.pid"), ("leases", "dnsmasq.leases"),
        ("hostsfile", "dnsmasq.hostsfile"), ("addnhosts", "dnsmasq.addnhosts"))}


def conf_text(d, bridge: str, p: dict[str, str]) -> str:
    lines = ["# written by virtctl: the network '%s'; changed by net-start" % d.name,
             "strict-order", f"pid-file={p['pid']}", "except-interface=lo", "bind-dynamic",
             f"interface={bridge}", "no-resolv", "no-hosts", f"addn-hosts={p['addnhosts']}"]
    if d.address is not None and (d.ranges or d.hosts):
        net = d.address.network
        for s, e in d.ranges:
            lines.append(f"dhcp-range={s},{e},{net.netmask}")
        if not d.ranges:  # static hosts only
            lines.append(f"dhcp-range={net.network_address},static,{net.netmask}")
        size = sum(int(ipaddress.IPv4Address(e)) - int(ipaddress.IPv4Address(s)) + 1
                   for s, e in d.ranges) + len(d.hosts)
        # no-ping: no 3 s ICMP probe before each offer (only our guests are on the bridge)
        lines += ["no-ping", "dhcp-no-override", "dhcp-authoritative", f"dhcp-lease-max={max(size, 1)}",
                  f"dhcp-hostsfile={p['hostsfile']}", f"dhcp-leasefile={p['leases']}"]
        if d.mode == "isolated":
            lines.append("dhcp-option=3")  # no router: nothing to route through
    return "\n".join(lines) + "\n"


def write_files(d, bridge: str, rundir: str) -> dict[str, str]:
    p = paths(rundir)
    hosts = []
    for h in d.hosts:
        fields = [f for f in (h.mac, h.ip, h.name) if f]
        if fields:
            hosts.append(",".join(fields))
    atomic_write(p["hostsfile"], "".join(x + "\n" for x in hosts), sync=False)
    atomic_write(p["addnhosts"], "".join(f"{ip} {' '.join(n)}\n" for ip, n in d.dns_hosts), sync=False)
    atomic_write(p["conf"], conf_text(d, bridge, p), sync=False)
    return p


def _pid(p: dict[str, str]) -> int | None:
    try:
        with open(p["pid"]) as f:
            return int(f.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def alive(rundir: str) -> int | None:
    """The pid of this network's dnsmasq if it runs (its command line names
    our conf file), else None."""
    p = paths(rundir)
    pid = _pid(p)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat", "rb") as f:
            st = f.read()
    except OSError:
        return None
    if st[st.rfind(b")") + 2:].startswith(b"Z"):
        return None
    if not cmd or not os.path.basename(cmd[0].decode(errors="replace")).startswith("dnsmasq"):
        return None
    if f"--conf-file={p['conf']}".encode() not in cmd:
        return None
    return pid


def start(rundir: str) -> int:
    p = paths(rundir)
    unlink_quiet(p["pid"], missing_ok_only=False)
    argv = [hostnet.tool("dnsmasq", "dnsmasq-base"), f"--conf-file={p['conf']}"]
    if os.geteuid() == 0:
        argv.append("--user=root")  # its pid and lease files stay writable in our 0700 directory
    hostnet.run(argv, what="start dnsmasq")  # forks; the parent exits once it is up
    deadline = time.monotonic() + 5
    while True:
        pid = alive(rundir)
        if pid is not None:
            return pid
        if time.monotonic() > deadline:
            raise OperationFailed("dnsmasq started but wrote no pid file within 5s")
        time.sleep(0.01)


def stop(rundir: str) -> None:
    import signal

    pid = alive(rundir)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while alive(rundir) == pid:
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline += 5
        time.sleep(0.01)


def leases(rundir: str) -> list[dict]:
    """dnsmasq's lease file: ``EXPIRY MAC IP HOSTNAME CLIENTID`` a line."""
    try:
        with open(paths(rundir)["leases"]) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for ln in lines:
        f = ln.split()
        if len(f) < 4 or ":" in f[2]:
            continue
        out.append({"expiry": int(f[0]) if f[0].isdigit() else 0, "mac": f[1].lower(), "address": f[2],
                    "hostname": None if f[3] == "*" else f[3],
                    "client_id": None if len(f) < 5 or f[4] == "*" else f[4]})
    return out
