"""event: wait for domain events and print them, as virsh's ``event``.

Events come from the connection's event journal (drivers/qemu/events.py);
on the test driver nothing but this process can change the domains, so
``event`` only waits (as virsh's own ``event`` does in a batch on
test:///default).
"""
from __future__ import annotations

import click

from virtctl.cli.options import Number, command, mutually_exclusive, option
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg

# virsh event --list, in libvirt's event-id order
EVENT_TYPES = (
    "lifecycle", "reboot", "rtc-change", "watchdog", "io-error", "graphics", "io-error-reason",
    "control-error", "block-job", "disk-change", "tray-change", "pm-wakeup", "pm-suspend",
    "balloon-change", "pm-suspend-disk", "device-removed", "block-job-2", "tunable",
    "agent-lifecycle", "device-added", "migration-iteration", "job-completed",
    "device-removal-failed", "metadata-change", "block-threshold", "memory-failure",
    "memory-device-size-change",
)


def timestamp(t: float) -> str:
    """virsh's event timestamp (libvirt's virTimeStringNowRaw, always UTC)."""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}+0000"


def event_text(ev: dict) -> str:
    """One event as virsh prints it (without the timestamp)."""
    kind, name = ev.get("event"), ev.get("name")
    head = f"event '{kind}' for domain '{name}'"
    if kind == "lifecycle":
        return f"{head}: {ev.get('lifecycle')} {ev.get('detail')}"
    if kind == "reboot":
        return head
    if kind == "rtc-change":
        return f"{head}: {ev.get('offset', 0)}"
    if kind == "watchdog":
        return f"{head}: {ev.get('action')}"
    if kind == "io-error":
        return f"{head}: {ev.get('path') or ev.get('device')} ({ev.get('device')}) {ev.get('action')}"
    if kind in ("device-removed", "device-added"):
        return f"{head}: {ev.get('alias')}"
    if kind == "io-error-reason":  # virsh names it 'io-error' in the line
        return (f"event 'io-error' for domain '{name}': {ev.get('path') or ev.get('device')} "
                f"({ev.get('device')}) {ev.get('action')} due to {ev.get('reason')}")
    if kind == "balloon-change":
        return f"{head}: {ev.get('actual')}KiB"
    if kind in ("pm-wakeup", "pm-suspend", "pm-suspend-disk"):
        return head  # virsh prints no reason: libvirt defines none
    if kind == "metadata-change":
        return f"{head}: type {ev.get('type')}, uri {ev.get('uri') or '(null)'}"
    if kind == "device-removal-failed":
        return f"{head}: {ev.get('alias')}"
    if kind in ("block-job", "block-job-2"):
        return f"{head}: {ev.get('job_type')} for {ev.get('disk')} {ev.get('status')}"
    if kind == "disk-change":
        return (f"event 'disk-change' for domain '{name}' disk {ev.get('alias')}: "
                f"{ev.get('old') or '(null)'} -> {ev.get('new') or '(null)'}: {ev.get('reason')}")
    if kind == "tray-change":
        return f"event 'tray-change' for domain '{name}' disk {ev.get('alias')}: {ev.get('tray')}"
    if kind == "agent-lifecycle":
        return f"{head}: state: '{ev.get('state')}' reason: '{ev.get('reason')}'"
    if kind == "migration-iteration":
        return f"{head}: iteration: '{ev.get('iteration')}'"
    if kind in ("job-completed", "tunable"):  # typed parameters, one per line
        return f"{head}:" + "".join(f"\n\t{k}: {_typed(v)}" for k, v in (ev.get("params") or {}).items())
    if kind == "block-threshold":
        return (f"{head}: dev: {ev.get('device')}({ev.get('path') or '(null)'}) "
                f"{ev.get('threshold')} {ev.get('excess')}")
    if kind == "memory-device-size-change":
        return f"{head}:\nalias: {ev.get('alias')}\nsize: {ev.get('size')}"
    return head


def _typed(v) -> str:
    """A typed parameter's value as libvirt prints it (virTypedParameterToString)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:f}"
    return str(v)


def event_json(ev: dict) -> dict:
    """An event's JSON Lines object (README: the event shape)."""
    out = {"time": ev.get("time"), "type": ev.get("event"), "domain": ev.get("name"), "uuid": ev.get("uuid")}
    if ev.get("event") == "lifecycle":
        out["event"], out["detail"] = ev.get("lifecycle"), ev.get("detail")
    for k, v in ev.items():
        if k not in ("time", "kind", "name", "uuid", "event", "detail", "lifecycle", "pid"):
            out[k] = v
    return out


@command("event", help="""Wait for domain events and print them.

Without --loop it ends after the first event; --timeout SECONDS ends the
wait.  Events are those that happen after it started: lifecycle changes
made by any virtctl process on this connection (define, start, shutdown,
destroy, ...) and what the guests do (power off, reboot, pause on an error).
With --json each event is one JSON object on its own line (JSON Lines).

\b
Examples:
  virtctl event --all --loop --timestamp
  virtctl event --domain web1 --event lifecycle --timeout 60
  virtctl --json event --all --loop | jq -c 'select(.event == "Stopped")'""")
@option("--domain", metavar="DOMAIN", help="filter by domain name, id or uuid", completer="domain:all")
@option("--event", "event_", metavar="TYPE", help="which event type to wait for",
        completer="enum:" + "|".join(EVENT_TYPES))
@click.option("--all", "all_", is_flag=True, help="wait for all events instead of just one type")
@click.option("--loop", is_flag=True, help="loop until timeout or interrupt, rather than one event")
@option("--timeout", type=Number(minimum=1), metavar="SECONDS", help="timeout seconds", completer="none")
@click.option("--list", "list_", is_flag=True, help="list valid event types")
@click.option("--timestamp", "timestamp_", is_flag=True, help="show timestamp for each printed event")
@mutually_exclusive("list", "all")
@mutually_exclusive("list", "event")
@mutually_exclusive("all", "event")
@pass_session
def event(session, domain, event_, all_, loop, timeout, list_, timestamp_):
    if list_:
        session.emit(list(EVENT_TYPES), "".join(t + "\n" for t in EVENT_TYPES))
        return
    if not all_ and event_ is None:
        raise InvalidArg("one of --list, --all, or --event <type> is required")
    if event_ is not None and event_ not in EVENT_TYPES:
        raise InvalidArg(f"unknown event type {event_}", detail={"event": event_})
    uuid = session.domain(domain).uuid if domain is not None else None
    count, end = follow(session, uuid=uuid, types=None if all_ else {event_}, loop=loop,
                        timeout=timeout, stamp=bool(timestamp_))
    _finish(session, count, end)


def _line(session, obj: dict) -> None:
    import json

    session.out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    session.out.flush()


def follow(session, *, uuid, types, loop: bool, timeout: int | None, stamp: bool,
           kind: str = "domain", text=None, to_json=None) -> tuple[int, str | None]:
    """Print matching events of ``kind`` (domain, network, pool) until one
    was printed (``loop``: until the timeout or an interrupt); (how many,
    how it ended: "timeout", "interrupted", or None after the one event)."""
    import time

    text = text or event_text
    to_json = to_json or event_json
    follower = session.conn.event_follower()
    deadline = None if timeout is None else time.monotonic() + timeout
    count = 0
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return count, "timeout"
            for ev in follower.wait(left):
                if ev.get("kind") != kind or (uuid is not None and ev.get("uuid") != uuid) \
                        or (types is not None and ev.get("event") not in types):
                    continue
                count += 1
                if session.json:
                    _line(session, to_json(ev))
                else:
                    session.out.write((timestamp(ev.get("time") or time.time()) + ": " if stamp else "")
                                      + text(ev) + "\n")
                    session.out.flush()
                if not loop:
                    return count, None
    except KeyboardInterrupt:  # virsh: Ctrl-C ends the wait, the count is still printed
        return count, "interrupted"
    finally:
        follower.close()


def _finish(session, count: int, end: str | None) -> None:
    """The last lines: how the wait ended (``end``: "timeout", "interrupted" or
    None for one event received), then the count, as virsh."""
    if session.json:
        _line(session, {"events_received": count, "timed_out": end == "timeout"})
    else:
        if end is not None:
            session.print(f"event loop {'timed out' if end == 'timeout' else end}")
        session.print(f"events received: {count}")
    if not count:
        raise click.exceptions.Exit(1)  # virsh: no event is a failure, without a message


# --- net-event and pool-event ---------------------------------------------------------------
NET_EVENT_TYPES = ("lifecycle",)
POOL_EVENT_TYPES = ("lifecycle", "refresh")
# what virsh calls the object in its lines ("for network x", "for storage pool x": no quotes)
_OBJECT_WORDS = {"network": "network", "pool": "storage pool"}


def object_event_text(ev: dict) -> str:
    """A network's or pool's event as virsh prints it (without the timestamp)."""
    head = f"event '{ev.get('event')}' for {_OBJECT_WORDS.get(ev.get('kind'), ev.get('kind'))} {ev.get('name')}"
    if ev.get("event") == "lifecycle":
        return f"{head}: {ev.get('lifecycle')}"
    return head


def object_event_json(ev: dict) -> dict:
    """A network's or pool's event as a JSON Lines object (README: the event shape)."""
    out = {"time": ev.get("time"), "type": ev.get("event"), ev.get("kind"): ev.get("name"), "uuid": ev.get("uuid")}
    if ev.get("event") == "lifecycle":
        out["event"] = ev.get("lifecycle")
    return out


def _object_event(session, kind: str, types: tuple, key, event_, loop, timeout, list_, timestamp_):
    if list_:
        session.emit(list(types), "".join(t + "\n" for t in types))
        return
    if event_ is None:
        raise InvalidArg("either --list or --event <type> is required")
    if event_ not in types:
        raise InvalidArg(f"unknown event type {event_}", detail={"event": event_})
    uuid = None
    if key is not None:
        session.value(kind, key)
        if kind == "network":
            with session.context(f"failed to get network '{key}'"):
                uuid = session.conn.lookup_network(key).uuid
        else:
            uuid = session.conn.lookup_pool(key).uuid
    count, end = follow(session, uuid=uuid, types={event_}, loop=loop, timeout=timeout,
                        stamp=bool(timestamp_), kind=kind, text=object_event_text, to_json=object_event_json)
    _finish(session, count, end)


@command("net-event", help="""Wait for network events and print them.

Without --loop it ends after the first event; --timeout SECONDS ends the
wait.  Events are those that happen after it started: a network defined,
undefined, started or stopped by any virtctl process on this connection.
With --json each event is one JSON object on its own line (JSON Lines).

\b
Examples:
  virtctl net-event --event lifecycle --loop --timestamp
  virtctl net-event --network default --event lifecycle --timeout 60""")
@option("--network", metavar="NETWORK", help="filter by network name or uuid", completer="network:all")
@option("--event", "event_", metavar="TYPE", help="which event type to wait for",
        completer="enum:" + "|".join(NET_EVENT_TYPES))
@click.option("--loop", is_flag=True, help="loop until timeout or interrupt, rather than one-shot")
@option("--timeout", type=Number(minimum=1), metavar="SECONDS", help="timeout seconds", completer="none")
@click.option("--list", "list_", is_flag=True, help="list valid event types")
@click.option("--timestamp", "timestamp_", is_flag=True, help="show timestamp for each printed event")
@pass_session
def net_event(session, network, event_, loop, timeout, list_, timestamp_):
    _object_event(session, "network", NET_EVENT_TYPES, network, event_, loop, timeout, list_, timestamp_)


@command("pool-event", help="""Wait for storage pool events and print them.

Without --loop it ends after the first event; --timeout SECONDS ends the
wait.  Events are those that happen after it started: lifecycle (a pool
defined, undefined, started, stopped, built or deleted) and refresh, by
any virtctl process on this connection.  With --json each event is one
JSON object on its own line (JSON Lines).

\b
Examples:
  virtctl pool-event --event lifecycle --loop --timestamp
  virtctl pool-event --pool default --event refresh --timeout 60""")
@option("--pool", metavar="POOL", help="filter by storage pool name or uuid", completer="pool")
@option("--event", "event_", metavar="TYPE", help="which event type to wait for",
        completer="enum:" + "|".join(POOL_EVENT_TYPES))
@click.option("--loop", is_flag=True, help="loop until timeout or interrupt, rather than one-shot")
@option("--timeout", type=Number(minimum=1), metavar="SECONDS", help="timeout seconds", completer="none")
@click.option("--list", "list_", is_flag=True, help="list valid event types")
@click.option("--timestamp", "timestamp_", is_flag=True, help="show timestamp for each printed event")
@pass_session
def pool_event(session, pool, event_, loop, timeout, list_, timestamp_):
    _object_event(session, "pool", POOL_EVENT_TYPES, pool, event_, loop, timeout, list_, timestamp_)
