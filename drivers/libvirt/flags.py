"""libvirt flag words from virtctl's keyword options, for every module of the driver."""
from __future__ import annotations


def flags(lv, *pairs: tuple[bool, str]) -> int:
    """The OR of ``lv.NAME`` for each ``(on, NAME)`` pair that is on."""
    out = 0
    for on, name in pairs:
        if on:
            out |= getattr(lv, name)
    return out
