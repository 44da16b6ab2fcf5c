"""The wire format of virtctl+ssh:// (README, "Remote virtctl over ssh").

One JSON document per line, UTF-8, both ways, over the ssh session's
stdin/stdout:

1. the server (``virtctl __serve-stdio``) starts by writing its hello:
   ``{"virtctl_remote": PROTOCOL, "version": "0.1.0", "pid": N}``; a client
   that speaks another PROTOCOL stops there (CONNECT_FAILED);
2. the client sends ``{"id": 0, "m": "__open", "a": [URI], "k": {"readonly": b}}``,
   the server opens that URI with its own driver and answers the driver's
   name and its plain attributes;
3. then requests ``{"id": n, "m": "domains.list", "a": [...], "k": {...}}``,
   answered by ``{"id": n, "r": VALUE}`` or ``{"id": n, "e": ERROR}``
   (``VirtError.to_json()`` plus its class).  While a call runs, the server
   may send ``{"id": n, "cb": i, "a": [...]}``: a call of the i-th callable
   argument (progress callbacks).  ``m`` is ``SUB.METHOD`` (SUB one of
   domains, snapshots, pools, networks), ``METHOD`` (the driver's own) or
   ``#H.METHOD`` (a handle the server returned: an event follower);
4. a result that is a byte stream (a console) is answered ``{"__stream": 1}``
   and from then on the session carries the raw bytes both ways, until
   either end closes it.

Values: JSON's own, and tagged objects for the rest: ``{"__t": [...]}`` a
tuple, ``{"__d": [[k, v], ...]}`` a dict (keys of any type), ``{"__b":
base64}`` bytes, ``{"__e": "module:Class", "v": n}`` an enum member,
``{"__r": "module:Class", "f": [...]}`` a record (virtctl/record.py),
``{"__dc": "module:Class", "k": {...}}`` a dataclass record (api/network.py),
``{"__h": n}`` a handle, ``{"__cb": i}`` a callable argument.  Classes are
looked up only in virtctl's own modules.
"""
from __future__ import annotations

import base64
import dataclasses
import enum
import importlib
import json

from virtctl.errors import InternalError, VirtError
from virtctl.record import Record

PROTOCOL = 1
SUBS = ("domains", "snapshots", "pools", "networks")


class Handle:
    """A server-side object the client reaches by number (``{"__h": n}``)."""

    __slots__ = ("num",)

    def __init__(self, num: int):
        self.num = num


class Callback:
    __slots__ = ("num",)

    def __init__(self, num: int):
        self.num = num


def _qualname(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _lookup(name: str, base):
    module, _, qual = name.partition(":")
    if not module.startswith("virtctl.") or not qual:
        raise InternalError(f"remote protocol: refusing class '{name}' (not one of virtctl's)")
    try:
        obj = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        raise InternalError(f"remote protocol: unknown class '{name}' (virtctl versions differ?)") from None
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise InternalError(f"remote protocol: '{name}' is not a {base.__name__}")
    return obj


def encode(value, *, handle=None, callback=None):
    """``value`` as JSON-able data.  ``handle(obj) -> Handle`` is asked for
    objects that are not plain values (None: an error); ``callback(fn) ->
    Callback`` for callables."""
    def enc(v):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, enum.Enum):
            return {"__e": _qualname(type(v)), "v": v.value}
        if isinstance(v, (int, float)):
            return v
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, tuple):
            return {"__t": [enc(x) for x in v]}
        if isinstance(v, dict):
            return {"__d": [[enc(k), enc(x)] for k, x in v.items()]}
        if isinstance(v, (bytes, bytearray)):
            return {"__b": base64.b64encode(bytes(v)).decode("ascii")}
        if isinstance(v, Record):
            return {"__r": _qualname(type(v)), "f": [enc(x) for x in v._values()]}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {"__dc": _qualname(type(v)),
                    "k": {"__d": [[f.name, enc(getattr(v, f.name))] for f in dataclasses.fields(v)]}}
        if isinstance(v, Handle):
            return {"__h": v.num}
        if isinstance(v, Callback):
            return {"__cb": v.num}
        if callable(v) and callback is not None:
            return {"__cb": callback(v).num}
        if handle is not None:
            return {"__h": handle(v).num}
        raise InternalError(f"remote protocol: cannot send a {type(v).__name__}")
    return enc(value)


def decode(data, *, handle=None, callback=None):
    """The value ``encode`` made; ``handle(num)``/``callback(num)`` make the
    local stand-ins of handles and callables."""
    def dec(v):
        if isinstance(v, list):
            return [dec(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "__t" in v:
            return tuple(dec(x) for x in v["__t"])
        if "__d" in v:
            return {_key(dec(k)): dec(x) for k, x in v["__d"]}
        if "__b" in v:
            return base64.b64decode(v["__b"])
        if "__e" in v:
            return _lookup(v["__e"], enum.Enum)(v["v"])
        if "__r" in v:
            return _lookup(v["__r"], Record)(*[dec(x) for x in v["f"]])
        if "__dc" in v:
            cls = _lookup(v["__dc"], object)
            if not dataclasses.is_dataclass(cls):
                raise InternalError(f"remote protocol: '{v['__dc']}' is not a record class")
            return cls(**dec(v["k"]))
        if "__h" in v:
            if handle is None:
                raise InternalError("remote protocol: unexpected handle")
            return handle(v["__h"])
        if "__cb" in v:
            if callback is None:
                raise InternalError("remote protocol: unexpected callback")
            return callback(v["__cb"])
        if "__stream" in v:
            return v
        raise InternalError(f"remote protocol: untagged object {sorted(v)[:3]}")
    return dec(data)


def _key(k):
    return tuple(k) if isinstance(k, list) else k


def dumps(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode("utf-8") + b"\n"


def loads(line: bytes):
    return json.loads(line.decode("utf-8"))


def error_doc(exc: BaseException) -> dict:
    if isinstance(exc, VirtError):
        doc = exc.to_json()
        doc["class"] = type(exc).__name__
        if exc.detail:
            try:
                doc["detail"] = encode(exc.detail)
            except VirtError:
                doc["detail"] = {"__d": []}
        return doc
    return {"code": "INTERNAL_ERROR", "class": "InternalError",
            "message": f"internal error on the remote host: {type(exc).__name__}: {exc}"}


def error_from(doc: dict) -> VirtError:
    from virtctl import errors

    cls = getattr(errors, str(doc.get("class", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, VirtError)):
        cls = VirtError
    code = doc.get("code") if doc.get("code") in errors.CODES else "INTERNAL_ERROR"
    detail = doc.get("detail")
    try:
        detail = decode(detail) if isinstance(detail, dict) else None
    except VirtError:
        detail = None
    exc = cls(str(doc.get("message", "remote error")), code=code, detail=detail,
              context=doc.get("context"))
    return exc
