"""Typed, read-only views of the parts of a ``<domain>`` that drivers and
commands need beyond names, memory and vCPUs: OS and boot, features,
clock, CPU, lifecycle actions, and each device kind.

Each view is a frozen dataclass built from the element tree on demand; the
tree stays the source of truth, so whatever a view does not describe is
still in the tree and survives a round trip.  Every view keeps ``element``
(the element it was read from) for code that needs the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field

LIFECYCLE_DEFAULTS = {"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "destroy"}


def _int(value: str | None, default: int | None = None) -> int | None:
    if value is None:
        return default
    try:
        return int(value, 0)
    except ValueError:
        return default


@dataclass(frozen=True)
class OS:
    type: str
    arch: str | None
    machine: str | None
    boot_devices: tuple[str, ...]
    kernel: str | None
    initrd: str | None
    cmdline: str | None
    loader: str | None
    firmware: str | None


@dataclass(frozen=True)
class Clock:
    offset: str
    timers: dict[str, dict[str, str]]  # name -> attributes (present, tickpolicy, ...)


@dataclass(frozen=True)
class CPU:
    mode: str | None
    model: str | None
    sockets: int | None
    cores: int | None
    threads: int | None
    features: dict[str, str]  # name -> policy


@dataclass(frozen=True)
class Device:
    """Any device: its kind (element name), ``type``/``model`` attributes,
    alias and the element itself."""

    kind: str
    type: str | None
    model: str | None
    alias: str | None
    element: object = field(repr=False, compare=False)

    def get(self, path: str, attr: str) -> str | None:
        el = self.element.find(path)
        return None if el is None else el.get(attr)


@dataclass(frozen=True)
class Controller(Device):
    index: int = 0


@dataclass(frozen=True)
class CharDevice(Device):
    """serial, console, parallel, channel."""

    source_path: str | None = None
    target_type: str | None = None
    target_name: str | None = None
    target_port: int | None = None


@dataclass(frozen=True)
class Graphics(Device):
    port: int | None = None
    autoport: bool = False
    listen: str | None = None
    socket: str | None = None
    has_password: bool = False


def read_os(root) -> OS:
    os_el = root.find("os")
    if os_el is None:
        return OS("hvm", None, None, (), None, None, None, None, None)
    t = os_el.find("type")
    loader = os_el.find("loader")
    return OS(
        type=(t.text or "hvm").strip() if t is not None else "hvm",
        arch=t.get("arch") if t is not None else None,
        machine=t.get("machine") if t is not None else None,
        boot_devices=tuple(b.get("dev", "") for b in os_el.findall("boot")),
        kernel=os_el.findtext("kernel"),
        initrd=os_el.findtext("initrd"),
        cmdline=os_el.findtext("cmdline"),
        loader=(loader.text or "").strip() if loader is not None else None,
        firmware=os_el.get("firmware"),
    )


def read_features(root) -> dict[str, dict[str, str]]:
    """Feature name -> its attributes (``{}`` for a bare ``<acpi/>``);
    hyperv enlightenments appear as ``hyperv.relaxed`` etc."""
    out: dict[str, dict[str, str]] = {}
    feats = root.find("features")
    if feats is None:
        return out
    for el in feats:
        if not isinstance(el.tag, str):
            continue
        out[el.tag] = dict(el.attrib)
        if el.tag in ("hyperv", "kvm", "xen"):
            for sub in el:
                if isinstance(sub.tag, str):
                    out[f"{el.tag}.{sub.tag}"] = dict(sub.attrib)
    return out


def read_clock(root) -> Clock:
    el = root.find("clock")
    if el is None:
        return Clock("utc", {})
    return Clock(el.get("offset", "utc"), {t.get("name", ""): dict(t.attrib) for t in el.findall("timer")})


def read_cpu(root) -> CPU | None:
    el = root.find("cpu")
    if el is None:
        return None
    topo = el.find("topology")
    return CPU(
        mode=el.get("mode"),
        model=(el.findtext("model") or "").strip() or None,
        sockets=_int(topo.get("sockets")) if topo is not None else None,
        cores=_int(topo.get("cores")) if topo is not None else None,
        threads=_int(topo.get("threads")) if topo is not None else None,
        features={f.get("name", ""): f.get("policy", "require") for f in el.findall("feature")},
    )


def read_lifecycle(root) -> dict[str, str]:
    return {tag: (root.findtext(tag) or default).strip() for tag, default in LIFECYCLE_DEFAULTS.items()}


def _alias(el) -> str | None:
    a = el.find("alias")
    return a.get("name") if a is not None else None


def _model(el) -> str | None:
    if el.get("model"):
        return el.get("model")
    m = el.find("model")
    return m.get("type") if m is not None else None


def read_devices(root, kind: str) -> list[Device]:
    """Every ``<devices>/<kind>`` as the most specific view."""
    out: list[Device] = []
    for el in root.findall(f"devices/{kind}"):
        base = dict(kind=kind, type=el.get("type"), model=_model(el), alias=_alias(el), element=el)
        if kind == "controller":
            out.append(Controller(**base, index=_int(el.get("index"), 0) or 0))
        elif kind in ("serial", "console", "parallel", "channel"):
            src, tgt = el.find("source"), el.find("target")
            out.append(CharDevice(
                **base,
                source_path=src.get("path") if src is not None else None,
                target_type=tgt.get("type") if tgt is not None else None,
                target_name=tgt.get("name") if tgt is not None else None,
                target_port=_int(tgt.get("port")) if tgt is not None else None,
            ))
        elif kind == "graphics":
            listen = el.find("listen")
            out.append(Graphics(
                **base, port=_int(el.get("port")), autoport=el.get("autoport") == "yes",
                listen=el.get("listen") or (listen.get("address") if listen is not None else None),
                socket=el.get("socket") or (listen.get("socket") if listen is not None else None),
                has_password=el.get("passwd") is not None,
            ))
        else:
            out.append(Device(**base))
    return out
