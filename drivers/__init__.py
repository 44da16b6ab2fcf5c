"""Hypervisor drivers, chosen by the URI scheme.

The registry maps a scheme to ``module:Class``; a driver module is imported
only when a URI with its scheme is opened, so a one-shot command pays only
for the driver it uses.
"""
from __future__ import annotations

import importlib

from virtctl.errors import ConnectFailed

REGISTRY: dict[str, str] = {
    "test": "virtctl.drivers.test.driver:TestDriver",
    "qemu": "virtctl.drivers.qemu.driver:QemuDriver",
    "libvirt": "virtctl.drivers.libvirt.driver:LibvirtDriver",
    "virtctl": "virtctl.drivers.remote.driver:RemoteDriver",  # virtctl+ssh://: virtctl on another host
}

# the hypervisor schemes of libvirt 9.0's drivers: a URI with one of these that
# virtctl has no driver of its own for goes to libvirt (README, "Which URI goes where")
LIBVIRT_SCHEMES = frozenset({
    "qemu", "test", "xen", "libxl", "lxc", "ch", "bhyve", "vbox", "vmwareplayer", "vmwarews",
    "vmwarefusion", "esx", "gsx", "vpx", "hyperv", "openvz", "vz", "parallels", "remote"})


def route(uri) -> str:
    """The registry entry for a parsed URI: ``libvirt:URI`` always goes to
    libvirt; ``test:`` and ``qemu:`` without a transport or host stay virtctl's
    own; with one (``qemu+ssh://host/system``, ``qemu+unix:///system``), or for
    a libvirt scheme virtctl has no driver for (``xen://``, ``lxc:///``), libvirt."""
    if uri.scheme in REGISTRY and uri.scheme != "libvirt" and not uri.transport and not uri.host:
        return uri.scheme
    if uri.scheme == "libvirt" or uri.scheme in LIBVIRT_SCHEMES:
        return "libvirt"
    return uri.scheme


def driver_class(scheme: str):
    target = REGISTRY.get(scheme)
    if target is None:
        known = ", ".join(sorted(REGISTRY))
        raise ConnectFailed(f"no connection driver available for '{scheme}' URIs (known: {known})")
    module, _, cls = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # only the driver module itself missing means "not in this build";
        # anything else it fails to import is a bug and must say so
        if exc.name in (module, module.rpartition(".")[0]):
            raise ConnectFailed(f"the '{scheme}' driver is not available in this build") from None
        raise
    return getattr(mod, cls)
