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

from virtctl.errors import OperationFailed, SystemError_

IFNAMSIZ = 15  # the longest interface name Linux takes


def tool(name: str, package: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise OperationFailed(f"'{name}' is not installed (Debian: {package})")
    return path


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
