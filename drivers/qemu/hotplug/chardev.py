"""Devices with a backend object or chardev, in and out of a running QEMU:

* ``<rng model='virtio'>``: ``object-add`` (rng-random / rng-builtin) +
  ``device_add`` virtio-rng-pci on a free PCI slot (pci.py); removal
  ``device_del`` + DEVICE_DELETED, then ``object-del``;
* a virtio ``<channel>``: ``chardev-add`` + ``device_add`` virtserialport on
  the domain's virtio-serial controller; removal ``device_del`` +
  DEVICE_DELETED, then ``chardev-remove``.

The arguments come from the argv builder (the element built alone, then its
ids renumbered), so a hotplugged device is what it would be at start.  The
pending step goes into the runtime record first (``hotplug``: the device id
and its ``object`` or ``chardev``); a refusal removes the backend again; a
kill -9 in between is finished by the next command (repair.py)."""
from __future__ import annotations

import json
import os

from virtctl.drivers.qemu import faults
from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import NotSupported, OperationFailed
from virtctl.xml import devices, xmlapi

# what a built-alone definition keeps besides the device (nothing that needs resolving)
_DROP = ("disk", "interface", "graphics", "video", "audio", "rng", "channel", "serial", "console",
         "input", "memballoon")


def new_element(root, tag: str, el=None):
    """The device of ``tag`` just added to a live definition: the one without
    an alias (every device of a running domain has one), or the one with the
    user alias ``el`` gives."""
    fresh = [d for d in root.findall(f"devices/{tag}") if d.find("alias") is None]
    if not fresh and el is not None and devices.alias_of(el):
        fresh = [d for d in root.findall(f"devices/{tag}") if devices.alias_of(d) == devices.alias_of(el)]
    if not fresh:
        raise OperationFailed(f"operation failed: the new <{tag}> is not in the live definition")
    return fresh[-1]


def _alone(definition, me_live):
    """A copy of ``definition`` whose only device (besides controllers) is ``me_live``'s copy."""
    same = definition.root.findall(f"devices/{me_live.tag}")
    alone = definition.copy()
    me = alone.root.findall(f"devices/{me_live.tag}")[same.index(me_live)]
    for tag in _DROP:
        for d in alone.root.findall(f"devices/{tag}"):
            if d is not me:
                d.getparent().remove(d)
    return alone


def _build(state, uuid: str, alone) -> list[str]:
    from virtctl.drivers.qemu.argv import build_argv

    return build_argv(alone, state.runtime_paths(uuid))


def _free(prefix: str, live_root, taken: set[str]) -> int:
    used = {devices.alias_of(d) for d in live_root.findall("devices/*")} | taken
    n = 0
    while f"{prefix}{n}" in used:
        n += 1
    return n


def _split_opts(s: str) -> list[str]:
    """QEMU's key=value list: ``,`` separates, ``,,`` is a comma."""
    out, cur, i = [], "", 0
    while i < len(s):
        if s[i] == ",":
            if s[i + 1:i + 2] == ",":
                cur += ","
                i += 2
                continue
            out.append(cur)
            cur = ""
        else:
            cur += s[i]
        i += 1
    return out + [cur]


def chardev_add_args(opt: str) -> dict:
    """``chardev-add`` arguments of a ``-chardev`` option the builder wrote."""
    parts = _split_opts(opt)
    kind, kv = parts[0], dict(p.split("=", 1) for p in parts[1:])
    on = {"on": True, "off": False}
    common = {k: (on[v] if k == "logappend" else v) for k, v in kv.items() if k in ("logfile", "logappend")}
    if kind == "socket":
        if "path" not in kv:
            raise NotSupported("this function is not supported by the connection driver: a channel socket "
                               "passed as a descriptor (confined QEMU)",
                               detail={"driver": "qemu", "feature": "attach-device channel confined"})
        data = {"addr": {"type": "unix", "data": {"path": kv["path"]}}, **common}
        for k in ("server", "wait"):
            if k in kv:
                data[k] = on[kv[k]]
    elif kind == "file":
        data = {"out": kv["path"], **common}
        if "append" in kv:
            data["append"] = on[kv["append"]]
    elif kind == "null":
        data = common
    else:
        raise NotSupported(f"this function is not supported by the connection driver: a '{kind}' chardev",
                           detail={"driver": "qemu", "feature": f"chardev-add {kind}"})
    return {"id": kv["id"], "backend": {"type": kind, "data": data}}


def _args(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def rng_plan(state, run, new_live, el, index: int) -> tuple:
    """(live element, object-add arguments, device_add arguments) of the new rng."""
    live_el = new_element(new_live.root, "rng", el)
    argv = _build(state, run.uuid, _alone(new_live, live_el))
    obj = next(json.loads(a) for a in _args(argv, "-object") if json.loads(a).get("qom-type", "").startswith("rng-"))
    dev = next(json.loads(a) for a in _args(argv, "-device") if json.loads(a).get("driver") == "virtio-rng-pci")
    obj["id"], dev["rng"], dev["id"] = f"objrng{index}", f"objrng{index}", f"rng{index}"
    return live_el, obj, dev


def channel_plan(state, run, new_live, el, index: int) -> tuple:
    """(live element, chardev-add arguments, device_add arguments, the socket
    virtctl named for it or None) of the new channel."""
    from virtctl.drivers.qemu.argv import channel_socket

    live_el = new_element(new_live.root, "channel", el)
    tgt = live_el.find("target")
    if tgt is None or tgt.get("type") != "virtio":
        raise NotSupported(f"unsupported configuration: hotplug of <channel><target type="
                           f"'{tgt.get('type') if tgt is not None else None}'> (only virtio channels are)",
                           detail={"driver": "qemu", "feature": "attach-device channel"})
    argv = _build(state, run.uuid, _alone(new_live, live_el))
    paths = state.runtime_paths(run.uuid)
    default0, mine = channel_socket(paths, 0), channel_socket(paths, index)
    cid = f"charchannel{index}"
    opt = next(a for a in _args(argv, "-chardev") if a.split(",")[1:2] == ["id=charchannel0"])
    opt = opt.replace("id=charchannel0", f"id={cid}", 1)
    socket_path = None
    if f"path={default0}" in opt:  # a socket virtctl names: this channel's own
        opt = opt.replace(f"path={default0}", f"path={mine}", 1)
        socket_path = mine
    dev = next(json.loads(a) for a in _args(argv, "-device") if json.loads(a).get("driver") == "virtserialport")
    dev["chardev"], dev["id"] = cid, f"channel{index}"
    return live_el, chardev_add_args(opt), dev, socket_path


def _peripherals(q) -> set[str]:
    return {p.get("name") for p in q.command("qom-list", {"path": "/machine/peripheral"}) or []}


def attach(state, run, new_live, el) -> str:
    """Plug the rng or channel ``el`` (already in ``new_live``) into QEMU;
    its element in ``new_live`` gets its alias and address.  Returns the alias."""
    from virtctl.drivers.qemu.hotplug import pci
    from virtctl.drivers.qemu.hotplug.disk import _set_alias
    from virtctl.drivers.qemu.qmp import QMPError

    if getattr(state, "confine", None) is not None:
        raise NotSupported(f"this function is not supported by the connection driver: <{el.tag}> hotplug on a "
                           "confined QEMU (qemu:///system) is not available yet",
                           detail={"driver": "qemu", "feature": f"attach-device {el.tag} confined"})
    with run.qmp() as q:
        try:
            if el.tag == "rng":
                objects = {o.get("name") for o in q.command("qom-list", {"path": "/objects"}) or []}
                index = _free("rng", new_live.root, {o[3:] for o in objects if o.startswith("objrng")})
                live_el, backend, dev = rng_plan(state, run, new_live, el, index)
                socket_path = None
                pci.place(q, new_live, dev, live_el)
            else:
                labels = {c.get("label") for c in q.command("query-chardev") or []}
                index = _free("channel", new_live.root, {lb[4:] for lb in labels if lb.startswith("charchannel")})
                live_el, backend, dev, socket_path = channel_plan(state, run, new_live, el, index)
                bus = dev.get("bus", "").rsplit(".", 1)[0]
                if bus not in _peripherals(q):
                    raise OperationFailed(
                        f"operation failed: the running domain has no virtio-serial controller '{bus}' for the "
                        "channel (QEMU has one when the domain starts with a channel or a <controller "
                        "type='virtio-serial'>)", detail={"controller": bus})
        except QMPError as exc:
            raise rt.qmp_error(exc, f"attach {el.tag}") from None
        _set_alias(live_el, dev["id"])
        kind = "object" if el.tag == "rng" else "chardev"
        backend_id = backend["id"]
        run.update(hotplug={"op": "attach", "id": dev["id"], kind: backend_id, "socket": socket_path,
                            "device": xmlapi.tostring(live_el)})
        added = False
        try:
            if el.tag == "rng":
                q.command("object-add", backend)
                added = True
                faults.killpoint("hotplug:object-added")
            else:
                q.command("chardev-add", backend)
                added = True
                faults.killpoint("hotplug:chardev-added")
            q.command("device_add", dev)
            faults.killpoint("hotplug:device-added")
        except (QMPError, OSError) as exc:
            if added:
                release(q, {kind: backend_id, "socket": socket_path}, settle=1.0)
            run.update(hotplug=None)
            raise rt.qmp_error(exc, f"attach {el.tag}") from None
        if el.tag == "channel":
            _channel_address(q, live_el, dev)
        run.update(hotplug=None)
    return dev["id"]


def _channel_address(q, live_el, dev) -> None:
    """The virtio-serial address QEMU gave the port (libvirt shows it)."""
    try:
        nr = q.command("qom-get", {"path": f"/machine/peripheral/{dev['id']}", "property": "nr"})
    except Exception:  # noqa: BLE001 - an address is shown when QEMU tells it
        return
    bus = dev.get("bus", "virtio-serial0.0").rsplit(".", 1)[0]
    ctrl = bus[len("virtio-serial"):] if bus.startswith("virtio-serial") else "0"
    for a in live_el.findall("address"):
        live_el.remove(a)
    xmlapi.sub(live_el, "address", {"type": "virtio-serial", "controller": ctrl or "0", "bus": "0",
                                    "port": str(nr)})


def own_socket(state, run, removed, cid: str) -> str | None:
    """The socket virtctl named for channel ``removed`` (chardev ``cid``), or
    None when the definition names its own path."""
    from virtctl.drivers.qemu.argv import channel_socket

    src = removed.find("source")
    if (src is not None and src.get("path")) or removed.get("type", "pty") not in ("pty", "unix") \
            or not cid.startswith("charchannel") or not cid[len("charchannel"):].isdigit():
        return None
    return channel_socket(state.runtime_paths(run.uuid), int(cid[len("charchannel"):]))


def backend_of(q, removed, alias: str) -> dict:
    """What backs the running device ``alias`` (an rng's object, a channel's chardev)."""
    prop = "rng" if removed.tag == "rng" else "chardev"
    try:
        val = q.command("qom-get", {"path": f"/machine/peripheral/{alias}", "property": prop})
    except Exception:  # noqa: BLE001 - the naming rule
        val = None
    if removed.tag == "rng":
        return {"object": (val.rsplit("/", 1)[-1] if isinstance(val, str) and val else f"obj{alias}")}
    return {"chardev": val if isinstance(val, str) and val else f"char{alias}"}


def release(q, backend: dict, settle: float = 3.0) -> bool:
    """Delete an object / chardev a removed device used (retried a short while:
    QEMU lets go of it when the device is finalized); True when gone."""
    import time

    from virtctl.drivers.qemu.qmp import QMPError

    deadline = time.monotonic() + settle
    while True:
        try:
            if backend.get("object"):
                q.command("object-del", {"id": backend["object"]})
            if backend.get("chardev"):
                q.command("chardev-remove", {"id": backend["chardev"]})
            done = True
        except QMPError as exc:
            text = str(exc)
            done = "not found" in text or "not find" in text or "doesn't exist" in text
            if not done and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
        break
    sock = backend.get("socket")
    if done and sock:
        try:
            os.unlink(sock)
        except OSError:
            pass
    return done
