"""The nftables table of one network: ``ip virtctl-<name>``, created whole
by net-start (``nft -f``, one transaction) and deleted whole by
net-destroy.  virtctl never touches a table it did not name so.

nat:      masquerade the subnet going elsewhere; forward from the subnet and
          replies to it, reject other traffic into or out of the bridge
route:    forward to and from the subnet, no NAT
isolated: reject all forwarding into and out of the bridge
open:     no table (the host's own rules decide)
"""
from __future__ import annotations

from virtctl.drivers.qemu.network import hostnet

FAMILY = "ip"


def table_name(net_name: str) -> str:
    return "virtctl-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in net_name)


def ruleset(d, bridge: str, table: str) -> str | None:
    if d.mode == "open":
        return None
    sub = str(d.subnet) if d.subnet is not None else None
    fwd = []
    post = []
    if d.mode == "nat":
        fwd = [f'iifname "{bridge}" ip saddr {sub} accept',
               f'oifname "{bridge}" ip daddr {sub} ct state related,established accept']
        post = [f'ip saddr {sub} ip daddr 224.0.0.0/24 return',
                f'ip saddr {sub} ip daddr 255.255.255.255 return',
                f'ip saddr {sub} ip daddr != {sub} masquerade']
    elif d.mode == "route":
        fwd = [f'iifname "{bridge}" ip saddr {sub} accept', f'oifname "{bridge}" ip daddr {sub} accept']
    fwd += [f'iifname "{bridge}" oifname "{bridge}" accept',
            f'iifname "{bridge}" reject', f'oifname "{bridge}" reject']
    text = [f"table {FAMILY} {table} {{",
            "  chain forward {", "    type filter hook forward priority filter; policy accept;"]
    text += [f"    {r}" for r in fwd] + ["  }"]
    if post:
        text += ["  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;"]
        text += [f"    {r}" for r in post] + ["  }"]
    return "\n".join(text + ["}"]) + "\n"


def exists(table: str) -> bool:
    r = hostnet.run([hostnet.tool("nft", "nftables"), "list", "table", FAMILY, table], what="list", check=False)
    return r.returncode == 0


def create(text: str) -> None:
    hostnet.run([hostnet.tool("nft", "nftables"), "-f", "-"], what="install the network's nftables rules",
                input=text)


def delete(table: str) -> None:
    if exists(table):
        hostnet.run([hostnet.tool("nft", "nftables"), "delete", "table", FAMILY, table],
                    what=f"delete the nftables table '{table}'")
