"""The QMP arguments of one disk, taken from the argv builder: the disk's
definition is built alone (with the domain's controllers) and its
``-blockdev`` / ``-device`` JSON reused, node names made unique for the run."""
from __future__ import annotations

import json

from virtctl.xml import devices


def node_prefix(dev_id: str) -> str:
    return f"hp-{dev_id}"[:24]


def _rename(obj, prefix: str):
    if isinstance(obj, dict):
        return {k: _rename(v, prefix) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rename(v, prefix) for v in obj]
    if isinstance(obj, str) and obj.startswith("libvirt-"):
        return prefix + obj[len("libvirt"):]
    return obj


def disk_objects(state, uuid: str, definition, target: str, *, files=None, user=None):
    """(annotated disk element, [blockdev-add arguments, in order], device_add
    arguments or None for a drive without medium) of the disk ``target`` of
    ``definition``; the source is checked as at start (volume, backing chain,
    the builder's refusals).

    ``files``: the builder's HostFiles (passed mode for a confined QEMU: the
    images are then named ``/dev/fdset/S`` and ``files.requests`` says which
    file each set S holds); ``user``: the QEMU user, who reads the chain."""
    from virtctl.drivers.qemu import backing
    from virtctl.drivers.qemu.argv import build_argv
    from virtctl.drivers.qemu.storage.resolve import resolve

    alone = definition.copy()
    for d in alone.root.findall("devices/disk"):
        if devices.disk_target(d) != target:
            d.getparent().remove(d)
    for tag in ("interface", "graphics", "video", "audio", "rng"):  # not needed to place a disk
        for d in alone.root.findall(f"devices/{tag}"):
            d.getparent().remove(d)
    alone = resolve(state, alone)
    live = backing.annotate(alone, user=user, named_only=getattr(state, "backing_named", False))
    argv = build_argv(live, state.runtime_paths(uuid), files=files)
    blockdevs = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-blockdev"]
    names = {b["node-name"] for b in blockdevs}
    dev = None
    for i, a in enumerate(argv):
        if a == "-device":
            d = json.loads(argv[i + 1])
            if d.get("drive") in names or (not names and d.get("driver", "").startswith(("ide-", "scsi-"))
                                            and d.get("id", "").count("-") >= 2):
                dev = d
    disk_el = live.root.find("devices/disk")
    if dev is None:
        return disk_el, [], None
    prefix = node_prefix(dev["id"])
    return disk_el, _rename(blockdevs, prefix), _rename(dev, prefix)


def chain_nodes(q, top: str) -> list[str]:
    """``top`` and the nodes below it (file, backing), parents first, from
    QEMU's block graph; just ``top`` and its ``-storage`` twin if the graph
    cannot be read."""
    try:
        graph = q.command("x-debug-query-block-graph")
    except Exception:  # noqa: BLE001 - an older or newer QEMU: the naming rule
        return [top] + ([top[:-len("format")] + "storage"] if top.endswith("-format") else [])
    by_id = {n["id"]: n for n in graph.get("nodes", [])}
    by_name = {n.get("name"): n["id"] for n in graph.get("nodes", []) if n.get("type") == "block-driver"}
    out, todo = [], [by_name.get(top)]
    while todo:
        nid = todo.pop(0)
        if nid is None or nid not in by_id:
            continue
        name = by_id[nid].get("name")
        if name and name not in out:
            out.append(name)
        todo += [e["child"] for e in graph.get("edges", []) if e["parent"] == nid]
    return out or [top]


def drive_of(q, dev_id: str) -> str | None:
    """The top node name of the medium in device ``dev_id`` (None: empty)."""
    for b in q.command("query-block") or []:
        qdev = b.get("qdev", "")
        if qdev == dev_id or qdev.startswith(f"/machine/peripheral/{dev_id}/"):
            ins = b.get("inserted")
            return ins.get("node-name") if ins else None
    return None


def rewrite(obj, mapping: dict):
    """``obj`` (blockdev-add arguments) with each string in ``mapping`` replaced."""
    if isinstance(obj, dict):
        return {k: rewrite(v, mapping) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rewrite(v, mapping) for v in obj]
    return mapping.get(obj, obj) if isinstance(obj, str) else obj


def fdsets_of(q, prefix: str) -> list[int]:
    """The fd sets virtctl added for the hotplugged disk of node prefix
    ``prefix`` (their descriptors' ``opaque`` is ``PREFIX:path``)."""
    out = []
    for s in q.command("query-fdsets") or []:
        if any(str(f.get("opaque", "")).startswith(prefix + ":") for f in s.get("fds", [])):
            out.append(s["fdset-id"])
    return out


def remove_fdsets(q, ids) -> None:
    for i in ids or []:
        try:
            q.command("remove-fd", {"fdset-id": i})
        except Exception:  # noqa: BLE001 - gone already
            pass
