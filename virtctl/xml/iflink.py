"""Finding a domain's ``<interface>`` as virsh's domif-getlink/-setlink do,
and its ``<link state>`` (absent: up).

An interface is named by its MAC address (compared case-insensitively) or
its ``<target dev>``; a string that parses as a MAC is only ever a MAC.
"""
from __future__ import annotations

import re

_MAC = re.compile(r"^[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){5}$")
STATES = ("up", "down")


def is_mac(ident: str) -> bool:
    return bool(_MAC.match(ident))


def _mac_key(mac: str) -> tuple[int, ...]:
    return tuple(int(p, 16) for p in mac.split(":"))


def find(root, ident: str):
    """(index among <interface>, element) of the interface ``ident`` names, or None."""
    mac = is_mac(ident)
    for i, el in enumerate(root.findall("devices/interface")):
        if mac:
            m = el.find("mac")
            if m is not None and m.get("address") and is_mac(m.get("address")) \
                    and _mac_key(m.get("address")) == _mac_key(ident):
                return i, el
        else:
            t = el.find("target")
            if t is not None and t.get("dev") == ident:
                return i, el
    return None


def not_found_get(ident: str) -> str:
    """virsh domif-getlink's words."""
    return f"Interface ({'mac' if is_mac(ident) else 'dev'}: {ident}) not found."


def state_of(el) -> str:
    link = el.find("link")
    return (link.get("state") if link is not None else None) or "up"


def set_state(el, state: str) -> None:
    """Set ``<link state>`` (appended as libvirt's virsh does when absent)."""
    from virtctl.xml import xmlapi

    link = el.find("link")
    if link is None:
        link = xmlapi.sub(el, "link")
    link.set("state", state)
