"""``<interface type='user'>``: QEMU's own user networking (slirp) or passt,
with libvirt's ``<portForward>`` elements.

Syntax (libvirt 9.0)::

    <interface type='user'>
      <backend type='passt' logFile='/path'/>      <!-- optional: passt, else slirp -->
      <portForward proto='tcp' address='127.0.0.1'>
        <range start='2222' to='22'/>              <!-- host 2222 -> guest 22 -->
        <range start='8000' end='8010'/>           <!-- 8000..8010 -> the same ports -->
        <range start='8005' exclude='yes'/>        <!-- but not 8005 -->
      </portForward>
    </interface>

``to`` shifts the whole range: guest port = host port + (to - start), as
libvirt documents.  Forwards listen only on the address the XML names; with
no ``address`` on 127.0.0.1 (libvirt forwards on every host address then:
virtctl does so only when the XML says ``0.0.0.0`` or ``::``), for session,
embed and system connections alike.

* slirp (no ``<backend>``): one ``hostfwd`` per forwarded port, IPv4 only
  (QEMU 7.2's slirp cannot listen on IPv6);
* passt: a ``passt`` process per interface, started by the driver before
  QEMU (``-t``/``-u`` port specs), QEMU connects to its unix socket with
  ``-netdev stream``.  Its pid is in the runtime record; it is killed when
  the guest stops (runtime.cleanup), whichever way it stops.

A ``<portForward>`` without ``<range>`` (libvirt: every port) is refused:
name the ports.  Pure functions; no lxml at import (the argv builder's
element objects are passed in).
"""
from __future__ import annotations

import ipaddress
import os

from virtctl.drivers.qemu.argv_common import bad, unsupported

DEFAULT_ADDRESS = "127.0.0.1"
MAX_HOSTFWD = 256  # one slirp rule (and one host socket) per port


class Forward:
    """One ``<portForward>``: proto, address, [(host port, guest port)]."""

    __slots__ = ("proto", "address", "ports", "includes", "excludes")

    def __init__(self, proto, address, ports, includes, excludes):
        self.proto, self.address, self.ports = proto, address, ports
        self.includes, self.excludes = includes, excludes  # [(start, end, to)], [(start, end)]


def _port(c, el, name: str, value: str) -> int:
    try:
        p = int(value)
    except (TypeError, ValueError):
        p = -1
    if not 1 <= p <= 65535:
        raise bad(el, f"<range {name}='{value}'> is not a port number (1-65535)")
    return p


def forwards(c, iface) -> list[Forward]:
    """The ``<portForward>`` elements of ``iface`` (consumed in ``c``)."""
    out = []
    for pf in c.children(iface, "portForward"):
        proto = c.attr(pf, "proto")
        if proto not in ("tcp", "udp"):
            raise bad(pf, f"<portForward proto='{proto}'>: proto must be tcp or udp")
        if c.attr(pf, "dev") is not None:
            raise unsupported(pf, "<portForward dev=...>", "forwards are bound to an address, not an interface")
        address = c.attr(pf, "address") or DEFAULT_ADDRESS
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise bad(pf, f"<portForward address='{address}'> is not an IP address") from None
        includes, excludes = [], []
        for r in c.children(pf, "range"):
            start = _port(c, r, "start", c.attr(r, "start"))
            end_s, to_s = c.attr(r, "end"), c.attr(r, "to")
            end = _port(c, r, "end", end_s) if end_s is not None else start
            if end < start:
                raise bad(r, f"<range start='{start}' end='{end}'>: end is below start")
            if c.flag(r, "exclude"):
                if to_s is not None:
                    raise bad(r, "<range exclude='yes'> takes no 'to' (nothing is forwarded)")
                excludes.append((start, end))
                continue
            to = _port(c, r, "to", to_s) if to_s is not None else start
            if to + (end - start) > 65535:
                raise bad(r, f"<range start='{start}' end='{end}' to='{to}'>: guest ports go past 65535")
            includes.append((start, end, to))
        if not includes:
            raise unsupported(pf, f"<portForward proto='{proto}'> without a <range> to forward",
                              "libvirt then forwards every port; name the ports with <range start=... [end=...]>")
        ports, seen = [], set()
        for start, end, to in includes:
            for p in range(start, end + 1):
                if any(a <= p <= b for a, b in excludes):
                    continue
                if p in seen:
                    raise bad(pf, f"host port {p}/{proto} is forwarded twice")
                seen.add(p)
                ports.append((p, p + (to - start)))
        if not ports:
            raise bad(pf, f"<portForward proto='{proto}'>: its exclude ranges leave no port to forward")
        out.append(Forward(proto, address, ports, includes, excludes))
    seen = set()
    for f in out:
        for host, _ in f.ports:
            key = (f.proto, f.address, host)
            if key in seen:
                raise bad(iface, f"host port {host}/{f.proto} on {f.address} is forwarded twice")
            seen.add(key)
    return out


def backend(c, iface) -> str:
    """'slirp' or 'passt' (``<backend type>``; consumes its logFile too)."""
    b = c.child(iface, "backend")
    if b is None:
        return "slirp"
    btype = c.attr(b, "type")
    if btype is None:
        return "slirp"
    if btype != "passt":
        raise unsupported(b, f"<backend type='{btype}'>")
    c.attr(b, "logFile")
    return "passt"


def hostfwd(fwds: list[Forward], iface) -> list[dict]:
    """slirp's ``hostfwd`` list (JSON -netdev form)."""
    rules = []
    for f in fwds:
        if ipaddress.ip_address(f.address).version == 6:
            raise unsupported(iface, f"<portForward address='{f.address}'> with QEMU's user networking",
                              "its slirp listens on IPv4 only; use <backend type='passt'/> for IPv6")
        addr = "" if f.address == "0.0.0.0" else f.address
        for host, guest in f.ports:
            rules.append({"str": f"{f.proto}:{addr}:{host}-:{guest}"})
    if len(rules) > MAX_HOSTFWD:
        raise unsupported(iface, f"{len(rules)} forwarded ports with QEMU's user networking",
                          f"at most {MAX_HOSTFWD} (one rule per port); use <backend type='passt'/> for ranges")
    return rules


def passt_specs(fwds: list[Forward]) -> list[str]:
    """passt's ``-t``/``-u`` options: ``ADDR/START-END:TO-TOEND,~X-Y``."""
    args: list[str] = []
    have = {"tcp": False, "udp": False}
    for f in fwds:
        parts = []
        for start, end, to in f.includes:
            rng = f"{start}" if start == end else f"{start}-{end}"
            if to != start:
                rng += f":{to}" if start == end else f":{to}-{to + end - start}"
            parts.append(rng)
        parts += [f"~{a}" if a == b else f"~{a}-{b}" for a, b in f.excludes]
        addr = f.address
        args += ["-t" if f.proto == "tcp" else "-u", f"{addr}/{','.join(parts)}"]
        have[f.proto] = True
    for proto, flag in (("tcp", "-t"), ("udp", "-u")):
        if not have[proto]:
            args += [flag, "none"]  # (passt would otherwise mirror TCP forwards on UDP)
    return args


def socket_path(paths, index: int) -> str:
    return os.path.join(paths.chardev_dir, f"passt-net{index}.sock")


def log_path(paths, index: int) -> str:
    return os.path.join(paths.chardev_dir, f"passt-net{index}.log")


def netdev(c, iface, netdev_id: str, index: int) -> dict:
    """The -netdev (JSON) for an ``<interface type='user'>``."""
    kind = backend(c, iface)
    src = c.child(iface, "source")
    if src is not None:
        if kind != "passt":
            raise unsupported(src, "<source dev=...> with QEMU's user networking", "only with passt")
        c.attr(src, "dev")
    fwds = forwards(c, iface)
    if kind == "passt":
        return {"type": "stream", "id": netdev_id, "server": False,
                "addr": {"type": "unix", **_sock(c, socket_path(c.paths, index))}}
    dev = {"type": "user", "id": netdev_id}
    rules = hostfwd(fwds, iface)
    if rules:
        dev["hostfwd"] = rules
    return dev


def _sock(c, path: str) -> dict:
    got = c.files.socket(path, listen=False) if c.files is not None else {"path": path}
    if "fd" in got:
        return {"type": "fd", "str": str(got["fd"])}
    return {"path": got["path"]}
