"""Shared pieces of the QEMU command-line builder (``argv.py``).

* :func:`opt` / :func:`esc` write QEMU's ``key=value,key=value`` syntax with
  every comma in a value doubled (RELIABILITY.md rule 3);
* :func:`js` writes the JSON form used for ``-blockdev``/``-device``/
  ``-object``/``-netdev`` (no escaping question at all);
* :class:`Ctx` walks the definition and records every element and attribute
  the builder interpreted, so that :meth:`Ctx.refuse_unconsumed` can refuse
  whatever is left: nothing in a definition is silently ignored.
"""
from __future__ import annotations

import json

from virtctl.errors import NotSupported, XMLError
from virtctl.xml import xmlapi


def esc(value) -> str:
    """A value for QEMU's key=value option syntax: each ``,`` becomes ``,,``."""
    return str(value).replace(",", ",,")


def opt(first: str | None = None, /, **kv) -> str:
    """``opt("socket", id="x", path=p)`` -> ``socket,id=x,path=p`` (values escaped).

    ``first`` is an implied first value (already trusted or escaped by the
    caller via :func:`esc`); keys may use ``_`` for ``-``."""
    parts = [first] if first is not None else []
    for k, v in kv.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "on" if v else "off"
        parts.append(f"{k.replace('_', '-')}={esc(v)}")
    return ",".join(parts)


def js(obj: dict) -> str:
    """The JSON form of a -device/-blockdev/-object/-netdev argument."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def describe(el, attr: str | None = None) -> str:
    """``<disk type='network'>`` — an element (and its telling attribute) as a user wrote it."""
    tag = xmlapi.qname_of(el)
    keys = [attr] if attr else [a for a in ("type", "model", "name", "device", "mode") if el.get(a) is not None][:1]
    shown = "".join(f" {xmlapi.qname_of(el, k)}='{el.get(k)}'" for k in keys if el.get(k) is not None)
    return f"<{tag}{shown}>"


def unsupported(el, what: str | None = None, why: str = "") -> NotSupported:
    """NOT_SUPPORTED naming the element (and value) the qemu driver refuses."""
    feature = what or describe(el)
    msg = f"{feature} is not supported by the qemu driver"
    if why:
        msg += f": {why}"
    return NotSupported(msg, detail={"driver": "qemu", "feature": feature, "xpath": xmlapi.path_of(el)})


def bad(el, message: str) -> XMLError:
    """A definition that is wrong (not merely unsupported)."""
    return XMLError(f"{xmlapi.path_of(el)}: {message}")


class Ctx:
    """The state of one build: the definition, consumption records, ids."""

    def __init__(self, root, paths, *, machine_family: str, accel: str, arch: str):
        self.root = root
        self.paths = paths
        self.family = machine_family  # "pc" or "q35"
        self.accel = accel  # "tcg" or "kvm"
        self.arch = arch
        self._used_el: set = set()
        self._used_attr: set = set()
        self._counter = 0
        self.cpu_flags: list[str] = []  # from <features> and <clock>
        self.machine_hpet: bool | None = None
        self.serial_count = 0
        self.files = None  # argv_files.HostFiles: how host files are named

    # --- consumption -------------------------------------------------------------
    def use(self, el, *attrs: str):
        """Mark ``el`` (and the attributes named) as interpreted; returns ``el``."""
        if el is not None:
            self._used_el.add(el)
            for a in attrs:
                self._used_attr.add((el, a))
        return el

    def attr(self, el, name: str, default=None):
        """Read an attribute and mark it interpreted."""
        if el is None:
            return default
        self._used_attr.add((el, name))
        v = el.get(name)
        return default if v is None else v

    def child(self, el, tag: str):
        """The first child ``tag`` of ``el``, marked interpreted (None if absent)."""
        if el is None:
            return None
        c = el.find(tag)
        if c is not None:
            self._used_el.add(c)
        return c

    def children(self, el, tag: str) -> list:
        if el is None:
            return []
        out = el.findall(tag)
        self._used_el.update(out)
        return out

    def text(self, el, tag: str) -> str | None:
        c = self.child(el, tag)
        return None if c is None else (c.text or "")

    def use_subtree(self, el) -> None:
        """Everything under ``el`` is fine (metadata)."""
        for d in el.iter():
            if xmlapi.is_element(d):
                self._used_el.add(d)
                for a in d.attrib:
                    self._used_attr.add((d, a))

    def flag(self, el, name: str) -> bool | None:
        """A yes/no or on/off attribute as a bool (None if absent)."""
        v = self.attr(el, name)
        if v is None:
            return None
        if v in ("yes", "on"):
            return True
        if v in ("no", "off"):
            return False
        raise bad(el, f"attribute {name}='{v}' must be yes/no or on/off")

    def refuse_unconsumed(self) -> None:
        """Refuse the first element or attribute nobody interpreted."""
        for el in self.root.iter():
            if not xmlapi.is_element(el):
                continue
            if el not in self._used_el:
                raise unsupported(el)
            for a in el.attrib:
                if (el, a) not in self._used_attr:
                    raise unsupported(el, describe(el, a))

    # --- ids ---------------------------------------------------------------------
    def next_id(self) -> int:
        self._counter += 1
        return self._counter
