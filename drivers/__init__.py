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
}


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
