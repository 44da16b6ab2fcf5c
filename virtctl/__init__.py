"""virtctl: manage virtual machines, like virsh, without a daemon.

The public API is what this module exports; everything else is internal::

    import virtctl
    with virtctl.open("test:///default") as conn:
        for dom in conn.domains(active=True):
            print(dom.name, dom.info().state.text)
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["open", "Connection", "Domain", "DomainState", "VirtError", "__version__"]


def __getattr__(name: str):
    # Lazy: `virtctl --version` and completion must not pay for the API's imports.
    if name in ("open", "Connection"):
        from virtctl.api import connection

        return getattr(connection, name)
    if name == "Domain":
        from virtctl.api.domain import Domain

        return Domain
    if name == "DomainState":
        from virtctl.api.types import DomainState

        return DomainState
    if name == "VirtError":
        from virtctl.errors import VirtError

        return VirtError
    raise AttributeError(f"module 'virtctl' has no attribute {name!r}")
