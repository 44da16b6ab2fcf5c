"""A definition's memory balloon and its statistics period
(``<memballoon model='virtio'><stats period='N'/></memballoon>``), shared by
every driver's ``dommemstat`` and ``dommemstat --period``."""
from __future__ import annotations

from virtctl.xml import xmlapi


def balloon(definition):
    """The ``<memballoon>`` element of a usable balloon; None when there is
    none or it is ``model='none'`` (libvirt: no balloon, no statistics)."""
    el = definition.root.find("devices/memballoon")
    if el is None or el.get("model") == "none":
        return None
    return el


def stats_period(definition) -> int:
    """The statistics collection period in seconds (0: not collected)."""
    el = balloon(definition)
    st = el.find("stats") if el is not None else None
    try:
        return int(st.get("period")) if st is not None else 0
    except (TypeError, ValueError):
        return 0


def set_stats_period(definition, period: int) -> None:
    """Record ``period`` on the balloon (the caller checked there is one);
    0 removes ``<stats>``, as libvirt formats it."""
    el = balloon(definition)
    st = el.find("stats")
    if period == 0:
        if st is not None:
            el.remove(st)
        return
    if st is None:
        st = xmlapi.sub(el, "stats", index=0)
    st.set("period", str(period))
