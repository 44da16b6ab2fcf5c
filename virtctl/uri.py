"""Connection URIs and how the default one is chosen.

Order (first that is set wins): ``-c/--connect``, ``VIRTCTL_DEFAULT_URI``,
``uri = "..."`` in ``$XDG_CONFIG_HOME/virtctl/config.toml``, then the built-in
default: ``qemu:///system`` for root, ``qemu:///session`` for everyone else.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from virtctl.errors import ConnectFailed, VirtError


@dataclass(frozen=True)
class URI:
    """A parsed libvirt-style URI: ``driver[+transport]://[host]/path[?query]``."""

    text: str
    scheme: str
    transport: str | None
    host: str
    path: str
    query: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "URI":
        if "://" not in text:
            raise ConnectFailed(f"invalid connection URI '{text}': expected driver:///path, e.g. test:///default")
        try:
            parts = urlsplit(text)
        except ValueError as exc:
            raise ConnectFailed(f"invalid connection URI '{text}': {exc}") from None
        scheme, _, transport = parts.scheme.partition("+")
        if not scheme:
            raise ConnectFailed(f"invalid connection URI '{text}': no driver name")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        return cls(text=text, scheme=scheme.lower(), transport=transport or None,
                   host=parts.netloc, path=unquote(parts.path), query=query)


def config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "virtctl", "config.toml")


def builtin_default() -> str:
    return "qemu:///system" if os.geteuid() == 0 else "qemu:///session"


def _from_config() -> str | None:
    path = config_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VirtError(f"cannot read config file '{path}': {exc.strerror}", code="SYSTEM_ERROR") from None
    import tomllib  # lazily: most runs have no config file

    try:
        conf = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise VirtError(f"config file '{path}' is not valid TOML: {exc}", code="INVALID_ARG") from None
    uri = conf.get("uri")
    if uri is not None and not isinstance(uri, str):
        raise VirtError(f"config file '{path}': 'uri' must be a string", code="INVALID_ARG")
    return uri or None


def resolve(explicit: str | None) -> str:
    """The URI to connect to, by the documented order."""
    if explicit:
        return explicit
    env = os.environ.get("VIRTCTL_DEFAULT_URI")
    if env:
        return env
    return _from_config() or builtin_default()
