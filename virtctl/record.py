"""Frozen value classes without ``dataclasses``: a dataclass costs about a
millisecond to create (it compiles its methods), and a one-shot ``list``
imports a handful.  A subclass names its ``_fields`` (in order) and
``__slots__``; ``_defaults`` gives a value, or ``dict`` for a fresh empty
dict per instance.  Instances compare and hash by value, repr as
dataclasses do, refuse assignment, and ``_asdict()`` as ``dataclasses.asdict``
(a shallow one: the fields hold plain values)."""
from __future__ import annotations


class Record:
    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _defaults: dict = {}

    def __init__(self, *args, **kwargs):
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        setter = object.__setattr__
        for name, value in zip(fields, args):
            setter(self, name, value)
        for name in fields[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in self._defaults:
                value = self._defaults[name]
                value = {} if value is dict else value
            else:
                raise TypeError(f"{type(self).__name__}() missing argument '{name}'")
            setter(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected or repeated arguments: "
                            + ", ".join(sorted(kwargs)))

    def _values(self) -> tuple:
        return tuple(getattr(self, n) for n in self._fields)

    def _asdict(self) -> dict:
        return {n: (dict(v) if isinstance(v, dict) else v) for n, v in zip(self._fields, self._values())}

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self):
        return hash(self._values())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields) + ")"

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to field '{name}' of a frozen {type(self).__name__}")

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete field '{name}' of a frozen {type(self).__name__}")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return type(self)(*(__import__("copy").deepcopy(v, memo) for v in self._values()))

    def __reduce__(self):
        return (type(self), self._values())
