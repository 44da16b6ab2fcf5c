"""Checks of a domain definition that its schema cannot make, with
libvirt's messages where libvirt makes the same check (``virsh -c
test:///default define`` is the oracle), and virtctl's limits on hostile
sizes.  Used by :class:`virtctl.xml.domain.DomainDef`; ``check_name`` by
every driver that renames."""
from __future__ import annotations

import re

from virtctl.errors import InvalidArg, XMLError
from virtctl.xml.units import to_kib, unit_factor

NAME_MAX = 200  # bytes; generous, but keeps file and socket names sane
# Devices in one <devices>: libvirt's 9.0 corpus has at most 248, QEMU 7.2's
# largest machine has room for a few hundred PCI devices.  libvirt sets no
# limit; ours keeps every per-device step (addresses, argv) cheap.
MAX_DEVICES = 4096
# vCPUs: QEMU 7.2's largest x86 machine allows 288, KVM at most 4096.
# libvirt's generic parser allows 2^32-1 and its test driver hangs
# allocating 2^31 of them.
MAX_VCPUS = 16384
UINT_MAX = 2**32 - 1
# libvirt's largest memory size: LLONG_MAX bytes (a <memory> of 2^53 KiB is
# "numerical overflow").
MEMORY_MAX_BYTES = 2**63 - 1
MEMORY_MISSING = "XML error: Memory size must be specified via <memory> or in the <numa> configuration"

# Characters a name may not contain besides C0 controls: C1 controls
# (U+0080-U+009F, some terminals read U+009B as an escape sequence), the
# line and paragraph separators (a name on two lines in `list`) and the
# bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069), which make a name display as another one ("Trojan
# Source", CVE-2021-42574).  libvirt accepts all of them.
_BAD_NAME_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def check_name(name: str | None, what: str = "domain") -> str:
    """Refuse names that break paths, terminals or command lines.

    libvirt's schema accepts ``a/b`` and ``..``; we refuse them in code
    (see RELIABILITY.md).  A leading ``-`` is refused because such a name
    cannot be typed as an argument."""
    if name is None or name == "":
        raise XMLError(f"{what} name must not be empty")
    if "/" in name:
        raise XMLError(f"{what} name '{name}' cannot contain '/'")
    bad = _BAD_NAME_CHARS.search(name)
    if bad:
        c = ord(bad.group())
        # {name!r} escapes the character, so the message itself is safe to print
        if c < 0x20 or 0x7f <= c <= 0x9f:
            raise XMLError(f"{what} name {name!r} cannot contain control characters")
        if c in (0x2028, 0x2029):
            raise XMLError(f"{what} name {name!r} cannot contain a line or paragraph separator (U+{c:04X})")
        raise XMLError(f"{what} name {name!r} cannot contain bidirectional control characters (U+{c:04X})")
    if name in (".", ".."):
        raise XMLError(f"{what} name '{name}' is not allowed")
    if name.startswith("-"):
        raise XMLError(f"{what} name '{name}' cannot start with '-'")
    if name != name.strip():
        raise XMLError(f"{what} name {name!r} cannot start or end with white space")
    if len(name.encode("utf-8")) > NAME_MAX:
        raise XMLError(f"{what} name is longer than {NAME_MAX} bytes")
    return name


def check_devices(root, source: str) -> None:
    """At most ``MAX_DEVICES`` children of ``<devices>``."""
    dev = root.find("devices")
    n = len(dev) if dev is not None else 0
    if n > MAX_DEVICES:
        raise XMLError(f"{source}: /domain/devices: {n} devices, more than the limit of "
                       f"{MAX_DEVICES} per domain")


def check_vcpus(root) -> None:
    """``<vcpu>`` and its ``current`` as libvirt parses them, then our limit."""
    el = root.find("vcpu")
    if el is None:
        return
    # the schema has made sure both are positive integers, if validated
    text = (el.text or "1").strip()
    if not (text.isascii() and text.isdigit()) or int(text) > UINT_MAX:
        raise XMLError("XML error: maximum vcpus count must be an integer")
    maximum = int(text)
    current = el.get("current")
    if current is not None:
        if not (current.isascii() and current.strip().isdigit()) or int(current) > UINT_MAX:
            raise XMLError(f"XML error: Invalid value for attribute 'current' in element 'vcpu': "
                           f"'{current}'. Expected non-negative integer value")
        if int(current) > maximum:
            raise XMLError("unsupported configuration: maximum vCPU count must not be less than "
                           "current vCPU count")
    if maximum > MAX_VCPUS:
        raise XMLError(f"XML error: maximum vcpus count {maximum} is larger than the limit of "
                       f"{MAX_VCPUS}")


def check_vcpu_request(count: int) -> None:
    if count > MAX_VCPUS:
        raise InvalidArg(f"invalid argument: {count} vCPUs is more than the limit of {MAX_VCPUS}")


def size_kib(value: int, unit: str | None, text: str, tag: str = "memory") -> int:
    """A memory size of the XML in KiB, with libvirt's overflow message."""
    if unit is not None and unit_factor(unit) is None:
        raise XMLError(f"/domain/{tag}: unknown memory unit '{unit}'")
    try:
        return to_kib(value, unit, limit=MEMORY_MAX_BYTES)
    except InvalidArg as exc:
        if value < 0:
            raise XMLError(f"/domain/{tag}: {exc}") from None
        raise XMLError(f"numerical overflow: value too large: {text}{unit or ''}") from None


def numa_kib(root) -> int:
    """The memory of the guest NUMA cells, in KiB (0 without cells)."""
    total = 0
    for cell in root.findall("cpu/numa/cell"):
        mem = (cell.get("memory") or "0").strip()
        if mem.isascii() and mem.isdigit():
            total += size_kib(int(mem), cell.get("unit"), mem, "cpu/numa/cell")
    return total

