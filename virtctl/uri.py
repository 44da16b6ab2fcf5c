"""Connection URIs and how the default one is chosen.

Order (first that is set wins):

1. ``-c/--connect URI``;
2. ``$VIRTCTL_DEFAULT_URI``;
3. virsh's ``$VIRSH_DEFAULT_CONNECT_URI``, then libvirt's ``$LIBVIRT_DEFAULT_URI``;
4. ``uri_default = "..."`` in libvirt's client config,
   ``$XDG_CONFIG_HOME/libvirt/libvirt.conf`` (``~/.config/libvirt/libvirt.conf``;
   as root, if that file does not exist, ``/etc/libvirt/libvirt.conf``, the
   one libvirt reads);
5. ``uri = "..."`` in ``$XDG_CONFIG_HOME/virtctl/config.toml``;
6. the built-in default: ``qemu:///system`` for root, ``qemu:///session``
   for everyone else.

virtctl's own settings come first; virsh's and libvirt's are honoured below
them so that a user's existing set-up keeps working.
"""
from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

from virtctl.errors import ConnectFailed, VirtError
from virtctl.record import Record

# the file libvirt itself reads as root
SYSTEM_LIBVIRT_CONF = "/etc/libvirt/libvirt.conf"


class URI(Record):
    """A parsed libvirt-style URI: ``driver[+transport]://[host]/path[?query]``:
    text, scheme, transport (or None), host, path, query (a dict)."""

    _fields = ("text", "scheme", "transport", "host", "path", "query")
    _defaults = {"query": dict}
    __slots__ = _fields

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


def _config_home() -> str:
    return os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")


def config_path() -> str:
    return os.path.join(_config_home(), "virtctl", "config.toml")


def libvirt_conf_path() -> str | None:
    """libvirt's client config that applies, or None when there is none."""
    path = os.path.join(_config_home(), "libvirt", "libvirt.conf")
    if os.path.exists(path):
        return path
    if os.geteuid() == 0 and os.path.exists(SYSTEM_LIBVIRT_CONF):
        return SYSTEM_LIBVIRT_CONF
    return None


def builtin_default() -> str:
    return "qemu:///system" if os.geteuid() == 0 else "qemu:///session"


def _read(path: str, what: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VirtError(f"cannot read {what} '{path}': {exc.strerror}", code="SYSTEM_ERROR") from None


def _config() -> dict | None:
    path = config_path()
    data = _read(path, "config file")
    if data is None:
        return None
    import tomllib  # lazily: most runs have no config file

    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise VirtError(f"config file '{path}' is not valid TOML: {exc}", code="INVALID_ARG") from None


def _from_config() -> str | None:
    conf = _config()
    if conf is None:
        return None
    path = config_path()
    uri = conf.get("uri")
    if uri is not None and not isinstance(uri, str):
        raise VirtError(f"config file '{path}': 'uri' must be a string", code="INVALID_ARG")
    return uri or None


def uri_default_of(text: str, path: str = "libvirt.conf") -> str | None:
    """``uri_default`` from the text of a libvirt.conf (libvirt's ``key = value``
    format: ``#`` comments, strings in double or single quotes; other keys,
    lists spanning lines and all, are not looked at)."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("uri_default"):
            continue
        key, eq, value = line.partition("=")
        if key.strip() != "uri_default" or not eq:
            continue
        value = value.strip()
        quote = value[:1]
        end = value.find(quote, 1) if quote in ("'", '"') else -1
        rest = value[end + 1:].strip() if end > 0 else "x"
        if end < 0 or (rest and not rest.startswith("#") and rest != ";"):
            raise VirtError(f"libvirt config file '{path}': uri_default must be a quoted string",
                            code="INVALID_ARG")
        return value[1:end] or None
    return None


def _from_libvirt_conf() -> str | None:
    path = libvirt_conf_path()
    if path is None:
        return None
    data = _read(path, "libvirt config file")
    if data is None:
        return None
    return uri_default_of(data.decode("utf-8", errors="replace"), path)


def remotes() -> dict[str, str]:
    """The named remotes of the config file, in its order: ``[remotes.NAME]``
    tables with ``uri = "..."`` (README, "Named remotes and the fleet view")."""
    conf = _config() or {}
    table = conf.get("remotes", {})
    path = config_path()
    if not isinstance(table, dict):
        raise VirtError(f"config file '{path}': 'remotes' must be a table ([remotes.NAME])", code="INVALID_ARG")
    out = {}
    for name, entry in table.items():
        uri = entry.get("uri") if isinstance(entry, dict) else None
        if not isinstance(uri, str) or not uri:
            raise VirtError(f"config file '{path}': [remotes.{name}] needs uri = \"...\"", code="INVALID_ARG")
        out[name] = uri
    return out


def remote_uri(name: str) -> str:
    """The URI of the named remote ``name`` (``-c @name``); CONNECT_FAILED when there is none."""
    known = remotes()
    if name not in known:
        have = ", ".join(known) or "none"
        raise ConnectFailed(f"no remote named '{name}' in the config file '{config_path()}' "
                            f"(known: {have}); add [remotes.{name}] uri = \"...\"",
                            detail={"remote": name})
    return known[name]


def resolve(explicit: str | None) -> str:
    """The URI to connect to, by the documented order; ``@NAME`` is the named remote NAME."""
    uri = _resolve(explicit)
    return remote_uri(uri[1:]) if uri.startswith("@") else uri


def _resolve(explicit: str | None) -> str:
    if explicit:
        return explicit
    for var in ("VIRTCTL_DEFAULT_URI", "VIRSH_DEFAULT_CONNECT_URI", "LIBVIRT_DEFAULT_URI"):
        env = os.environ.get(var)
        if env:
            return env
    return _from_libvirt_conf() or _from_config() or builtin_default()
