"""A module imported on first use, for start-up time: a one-shot ``list``
must not pay for what only ``start`` or ``save`` needs (lxml, subprocess,
gzip, ...).  ``launch = lazy("virtctl.drivers.qemu.launch")`` at module
level, then ``launch.start_domain(...)`` as before."""
from __future__ import annotations


class _LazyModule:
    __slots__ = ("_lazy_name", "_lazy_module")

    def __init__(self, name: str):
        object.__setattr__(self, "_lazy_name", name)
        object.__setattr__(self, "_lazy_module", None)

    def _load(self):
        mod = self._lazy_module
        if mod is None:
            mod = __import__(self._lazy_name, fromlist=["_"])
            object.__setattr__(self, "_lazy_module", mod)
        return mod

    def __getattr__(self, attr: str):
        return getattr(self._load(), attr)

    def __setattr__(self, attr: str, value) -> None:  # monkeypatching reaches the module
        setattr(self._load(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._load(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._lazy_name!r}>"


def lazy(name: str):
    """The module ``name``, imported when an attribute of it is first read."""
    return _LazyModule(name)
