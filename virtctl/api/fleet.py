"""Several hosts at once: the named remotes of the config file (``[remotes.NAME]
uri = "..."``), each queried on its own connection, in parallel threads.

A host that fails (cannot be reached, refuses, times out) is one result
among the others, with its error; it never stops the rest.
"""
from __future__ import annotations

from virtctl.errors import InvalidArg, VirtError


class HostResult:
    """What one host answered: ``value`` or ``error`` (a VirtError)."""

    __slots__ = ("host", "uri", "value", "error")

    def __init__(self, host: str, uri: str, value=None, error: VirtError | None = None):
        self.host, self.uri, self.value, self.error = host, uri, value, error


def select_remotes(spec: str) -> list[tuple[str, str]]:
    """``web1,web2`` or ``all``: [(name, uri)] in the order given (``all``: the config file's)."""
    from virtctl.uri import remote_uri, remotes

    names = [n.strip() for n in spec.split(",")]
    if any(not n for n in names):
        raise InvalidArg(f"invalid --remote '{spec}': a comma list of remote names, or 'all'")
    if names == ["all"]:
        known = remotes()
        if not known:
            from virtctl.uri import config_path

            raise InvalidArg(f"--remote all: the config file '{config_path()}' names no remotes "
                             "([remotes.NAME] uri = \"...\")")
        return list(known.items())
    seen: list[tuple[str, str]] = []
    for n in names:
        if n not in (s for s, _ in seen):
            seen.append((n, remote_uri(n.lstrip("@"))))
    return seen


def query(hosts: list[tuple[str, str]], fn, *, readonly: bool = True) -> list[HostResult]:
    """``fn(conn)`` on a connection to every host, in parallel; results in ``hosts``' order."""
    import threading

    from virtctl.api.connection import Connection

    results = [HostResult(h, u) for h, u in hosts]

    def one(res: HostResult) -> None:
        try:
            with Connection(res.uri, readonly=readonly) as conn:
                res.value = fn(conn)
        except VirtError as exc:
            res.error = exc
        except Exception as exc:  # noqa: BLE001 - a bug on one host is that host's error
            res.error = VirtError(f"internal error: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(r,), daemon=True) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
