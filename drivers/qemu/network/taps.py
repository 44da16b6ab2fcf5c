"""A guest interface's tap device on a bridge.  ``create`` at domain start
(and by hotplug), ``remove`` when the guest stops; the runtime record lists
the taps a run made (``rec["taps"]``), and only those are ever removed.

qemu:///system and embed roots as root: virtctl makes the tap (``ip tuntap``,
owned by the QEMU user when QEMU is confined) and QEMU opens it by name
(``-netdev tap,ifname=...,script=no,downscript=no``).  Without root
(qemu:///session): ``-netdev bridge`` through qemu-bridge-helper, which
must be allowed the bridge in /etc/qemu/bridge.conf; it makes the tap
itself and it goes when QEMU exits."""
from __future__ import annotations

import os

from virtctl.drivers.qemu.network import hostnet
from virtctl.errors import OperationFailed

BRIDGE_CONF = "/etc/qemu/bridge.conf"
HELPERS = ("/usr/lib/qemu/qemu-bridge-helper", "/usr/libexec/qemu-bridge-helper")


def privileged() -> bool:
    return os.geteuid() == 0


def target(iface_el) -> tuple[str | None, str | None]:
    """(tap name, bridge) of a resolved ``<interface>``."""
    tgt, src = iface_el.find("target"), iface_el.find("source")
    return (tgt.get("dev") if tgt is not None else None), (src.get("bridge") if src is not None else None)


def tap_interfaces(root) -> list:
    """The ``<interface>``s of a live definition that need a tap made by virtctl."""
    if not privileged():
        return []
    return [el for el in root.findall("devices/interface") if el.get("type") in ("network", "bridge")]


def create(state, iface_el, domain: str, *, uid: int | None = None) -> str:
    """Make the tap of a resolved ``<interface>`` and put it on its bridge; its name."""
    name, bridge = target(iface_el)
    if not name or not bridge:
        raise OperationFailed(f"domain '{domain}': interface has no tap name or bridge (not resolved)")
    args = ["tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr"]
    if uid is not None:
        args += ["user", str(uid)]
    hostnet.ip(*args, what=f"create the tap device '{name}'")
    try:
        hostnet.ip("link", "set", name, "master", bridge, what=f"attach '{name}' to the bridge '{bridge}'")
        hostnet.ip("link", "set", name, "up", what=f"bring '{name}' up")
    except BaseException:
        remove(name)
        raise
    return name


def remove(name: str) -> None:
    """Remove the tap ``name`` if it is one (a tun/tap device); never anything else."""
    if not name or not os.path.exists(f"/sys/class/net/{name}/tun_flags"):
        return
    hostnet.ip("link", "del", name, what=f"remove the tap device '{name}'", check=False)


def remove_all(rec: dict) -> None:
    """The taps a run's record names (only in the network namespace they were made in)."""
    taps = rec.get("taps") or []
    if not taps or rec.get("netns") not in (None, hostnet.netns_id()):
        return
    for name in taps:
        remove(name)


def bridge_helper(bridge: str) -> str:
    """qemu-bridge-helper's path when it may attach to ``bridge``, else a clear error."""
    helper = next((h for h in HELPERS if os.path.exists(h)), None)
    if helper is None:
        raise OperationFailed("an <interface type='network'|'bridge'> without root needs qemu-bridge-helper "
                              "(Debian: qemu-system-common), or use qemu:///system as root")
    allowed = []
    try:
        with open(BRIDGE_CONF) as f:
            for line in f:
                w = line.split()
                if len(w) == 2 and w[0] == "allow":
                    allowed.append(w[1])
    except OSError:
        pass
    if bridge not in allowed and "all" not in allowed:
        raise OperationFailed(f"qemu-bridge-helper may not attach to the bridge '{bridge}': add the line "
                              f"'allow {bridge}' to {BRIDGE_CONF} (as root; the helper must be setuid root: "
                              f"chmod u+s {helper}), or use qemu:///system as root", detail={"bridge": bridge})
    return helper


def netdev(iface_el, netdev_id: str) -> dict:
    """QEMU's ``-netdev`` for a resolved ``<interface type='network'|'bridge'>``."""
    name, bridge = target(iface_el)
    if privileged():
        return {"type": "tap", "id": netdev_id, "ifname": name or "vnet0", "script": "no",
                "downscript": "no", "vhost": False}
    return {"type": "bridge", "id": netdev_id, "br": bridge, "helper": bridge_helper(bridge)}
