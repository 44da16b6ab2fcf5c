"""libvirt's size units: ``<memory unit='MiB'>512</memory>`` and virsh's
scaled arguments (``setmem dom 1G``).

One function decides what a unit means, for the XML and the command line.
Sizes are kept in KiB, rounded up, as libvirt does.
"""
from __future__ import annotations

from virtctl.errors import InvalidArg

ULLONG_MAX = 2**64 - 1


def unit_factor(unit: str) -> int | None:
    """Bytes per ``unit``; None for an unknown unit.

    ``b``/``byte``/``bytes`` = 1; ``KB``, ``MB``, ... are powers of 1000;
    ``k``/``K``/``KiB``, ``m``/``MiB``, ... are powers of 1024 (libvirt's
    rules, which ignore case: ``kb`` is ``KB``, ``KIB`` is ``KiB``)."""
    u = unit.strip()
    if u.lower() in ("b", "byte", "bytes"):
        return 1
    if not u:
        return None
    letter = u[0].lower()
    powers = "kmgtpe"
    if letter not in powers:
        return None
    rest = u[1:].lower()  # libvirt compares the suffix without case: kIB, Kb
    n = powers.index(letter) + 1
    if rest in ("", "ib"):
        return 1024**n
    if rest == "b":
        return 1000**n
    return None


def to_kib(value: int, unit: str | None, *, default: str = "KiB", limit: int = ULLONG_MAX) -> int:
    """``value`` in ``unit`` as KiB, rounded up; InvalidArg when out of range."""
    factor = unit_factor(unit if unit else default)
    if factor is None:
        raise InvalidArg(f"unknown memory unit '{unit}'")
    nbytes = value * factor
    if value < 0 or nbytes > limit:
        raise InvalidArg(f"memory size {value} {unit or default} is out of range")
    return -(-nbytes // 1024)


def parse_scaled(text: str, *, default_unit: str = "KiB", what: str = "size") -> int:
    """Parse virsh's scaled integer ``1024``, ``1G``, ``512MiB`` into KiB."""
    s = text.strip()
    i = 0
    while i < len(s) and s[i].isdigit():
        i += 1
    digits, suffix = s[:i], s[i:]
    if not digits or not digits.isascii():
        raise InvalidArg(f"Scaled numeric value '{text}' for <{what}> option is malformed or out of range")
    if suffix and unit_factor(suffix) is None:
        raise InvalidArg(f"Scaled numeric value '{text}' for <{what}> option is malformed or out of range")
    try:
        return to_kib(int(digits), suffix or None, default=default_unit)
    except InvalidArg:
        raise InvalidArg(f"Scaled numeric value '{text}' for <{what}> option is malformed or out of range") from None
