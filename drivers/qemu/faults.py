"""Named kill points, for the crash tests: ``VIRTCTL_KILL_AT=POINT[@SIG],...``.

When virtctl reaches a named point listed there, it sends itself SIGKILL
(or ``@INT``, ``@TERM``, ...: that signal, e.g. a Ctrl-C), so a test can
stop it exactly between two steps of a start or a save.  Points:

``start:record`` ``start:helpers`` (passt up) ``start:spawned`` ``start:qemu-up`` ``start:monitor-ready``
``start:resumed`` ``start:committed`` (launch.py); ``save:temp``
``save:stopped`` ``save:migrated`` ``save:marked`` ``save:committed``
``save:quit``, ``restore:loaded`` ``restore:invalidated`` (save.py);
``upload:written`` (storage/pools.py: vol-upload's copy written, not yet renamed).
``snapshot:pending`` ``snapshot:disk`` ``snapshot:job`` ``snapshot:overlays``
``snapshot:switched`` ``snapshot:taken`` ``snapshot:revert-pending``
``snapshot:revert-disk`` ``snapshot:delete-pending`` (snapshot/driver.py);
``snapshot:revert-ext-pending`` ``snapshot:revert-ext-overlay`` ``snapshot:revert-ext-defined``
(snapshot/extrevert.py); ``snapshot:delete-ext-committed`` ``snapshot:delete-ext-merged``
(snapshot/extdelete.py); ``blockjob:pivot-marked`` (blockjob.py).
``hotplug:object-added`` ``hotplug:chardev-added`` ``hotplug:fd-added`` (hotplug/).

Unset (always, outside tests) a kill point costs one comparison with None.
The QEMU and monitor processes never inherit the variable (process.py).
"""
from __future__ import annotations

import os

ENV = "VIRTCTL_KILL_AT"


def _parse(spec: str | None) -> dict[str, int] | None:
    if not spec:
        return None
    import signal  # only here: a one-shot command does not pay for the signal module's enums

    points: dict[str, int] = {}
    for item in spec.split(","):
        name, _, sig = item.strip().partition("@")
        if name:
            points[name] = getattr(signal, f"SIG{sig.upper()}", signal.SIGKILL) if sig else signal.SIGKILL
    return points


_POINTS = _parse(os.environ.get(ENV))


def killpoint(name: str) -> None:
    """Die here (or get the configured signal) if ``VIRTCTL_KILL_AT`` names ``name``."""
    if _POINTS is None:
        return
    sig = _POINTS.get(name)
    if sig is not None:
        os.kill(os.getpid(), sig)
