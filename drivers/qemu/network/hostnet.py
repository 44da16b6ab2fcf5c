"""The host side of networks: ``ip`` (iproute2) run as a command.

``ip`` rather than pyroute2: pyroute2 is not a dependency (nor packaged
here), and its import alone costs more than the handful of ``ip`` calls a
net-start makes (each ~2 ms); the JSON output of ``ip -j`` is stable.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

from virtctl.errors import OperationDenied, OperationFailed, SystemError_

IFNAMSIZ = 15  # the longest interface name Linux takes


def tool(name: str, package: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise OperationFailed(f"'{name}' is not installed (Debian: {package})")
    return path


CAP_NET_ADMIN = 12


def can_admin_network() -> bool:
    """Whether this process may create bridges, addresses and firewall rules
    (CAP_NET_ADMIN in its effective set: root, or a capability given)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def require_net_admin(network: str) -> None:
    """OPERATION_DENIED saying what to do, before anything is made: without
    CAP_NET_ADMIN the first ``ip link add`` would fail with a bare
    'Operation not permitted' (and libvirt's session daemon simply has no
    such networks)."""
    if can_admin_network():
        return
    raise OperationDenied(
        f"cannot start network '{network}': creating its bridge, address and firewall rules needs "
        "CAP_NET_ADMIN (root). Start it as root (qemu:///system, or the same embed root as root); "
        "qemu:///session guests can then use its bridge through qemu-bridge-helper "
        "(allow it in /etc/qemu/bridge.conf: 'allow BRIDGE')",
        detail={"network": network, "needs": "CAP_NET_ADMIN"})


def run(argv: list[str], *, what: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a host tool; OPERATION_FAILED quoting its stderr when it fails."""
    try:
        r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise SystemError_(f"cannot run '{argv[0]}': {exc.strerror}") from None
    if check and r.returncode != 0:
        raise OperationFailed(f"cannot {what}: {(r.stderr or r.stdout).strip() or f'status {r.returncode}'}",
                              detail={"command": argv})
    return r


def ip(*args: str, what: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([tool("ip", "iproute2"), *args], what=what, check=check)


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def is_bridge(name: str) -> bool:
    return os.path.isdir(f"/sys/class/net/{name}/bridge")


def links() -> list[str]:
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def addresses() -> list[tuple[str, str, int]]:
    """(interface, address, prefix) of every IPv4 address of this namespace."""
    out = ip("-j", "-4", "addr", "show", what="list the host's addresses").stdout
    res = []
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                res.append((link.get("ifname", "?"), a["local"], int(a["prefixlen"])))
    return res


def netns_id() -> str:
    """Which network namespace this process is in (``net:[inode]``)."""
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return "?"


def check_ifname(name: str, what: str) -> None:
    from virtctl.errors import XMLError

    if not name or len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name) or name in (".", ".."):
        raise XMLError(f"invalid {what} name '{name}': an interface name has 1 to {IFNAMSIZ} characters, "
                       "no '/' and no blanks", detail={"name": name})
