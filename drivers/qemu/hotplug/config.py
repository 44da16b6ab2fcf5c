"""attach-device / detach-device ``--config`` of every device kind, with the
rules of libvirt's qemuDomainAttachDeviceConfig / DetachDeviceConfig
(libvirt 9.0, checked against its QEMU driver): which kinds the persistent
definition takes, what counts as "already there", how a device XML
designates the device to remove, and libvirt's words for each refusal.

Disks and interfaces keep virtctl.xml.devices' rules (shared with the test
driver).  What passes here is still validated by the domain schema and by
the argv builder (ops._check_buildable): a kind virtctl cannot start (a
watchdog, a filesystem, ...) is refused with the builder's words."""
from __future__ import annotations

from virtctl.errors import InvalidArg, NotSupported, OperationFailed, OperationInvalid
from virtctl.xml import devices, xmlapi

# libvirt's virDomainDeviceType names for the refusals ("persistent attach of device 'X'")
_CHR = ("serial", "parallel", "console", "channel")
NO_PERSISTENT = ("graphics", "hub", "smartcard", "memballoon", "nvram", "tpm", "panic", "iommu", "video",
                 "audio", "crypto", "pstore")


def _same(root, el):
    return [d for d in root.findall(f"devices/{el.tag}")]


def _canon_addr(el):
    """An element's <address> as comparable values (numbers as numbers), or None."""
    a = el.find("address")
    if a is None or a.get("type") is None:
        return None
    out = []
    for k, v in sorted(a.attrib.items()):
        try:
            out.append((k, int(v, 0)))
        except ValueError:
            out.append((k, v))
    return tuple(out)


def _subtree(el) -> str | None:
    return xmlapi.tostring(el) if el is not None else None


def _text(el, path: str) -> str:
    return (el.findtext(path) or "").strip()


# --- chardevs (serial, parallel, console, channel): virDomainChrEquals -------------------
def _chr_type(el) -> str:
    return el.get("type") or "pty"


def _chr_source(el) -> dict:
    src = el.find("source")
    if src is None or _chr_type(el) == "pty":  # a pty's path is the live one's, never given
        return {}
    return {k: v for k, v in src.attrib.items()}


def _target(el):
    t = el.find("target")
    return t if t is not None else xmlapi.element("target")


def _default_target_type(el) -> str | None:
    return {"serial": "isa-serial", "console": "serial"}.get(el.tag)


def _port_of(root, el) -> int | None:
    """A serial/parallel/console's port: its own, else the one the argv builder
    gives it (serial: its place among the <serial>s; console: 0)."""
    p = _target(el).get("port")
    if p is not None:
        try:
            return int(p, 0)
        except ValueError:
            return None
    if el.tag == "serial":
        used: set[int] = set()
        for s in root.findall("devices/serial"):
            sp = _target(s).get("port")
            n = int(sp) if sp is not None and sp.isdigit() else len(used)
            used.add(n)
            if s is el:
                return n
        return None
    if el.tag == "console":
        return 0
    if el.tag == "parallel":
        return root.findall("devices/parallel").index(el) if el in root.findall("devices/parallel") else None
    return None


def _chr_equal(root, have, want) -> bool:
    if _chr_type(have) != _chr_type(want) or _chr_source(have) != _chr_source(want):
        return False
    th, tw = _target(have), _target(want)
    ttype_h = th.get("type") or _default_target_type(have)
    ttype_w = tw.get("type") or _default_target_type(want)
    if ttype_h != ttype_w:
        return False
    if have.tag == "channel":
        if ttype_w == "guestfwd":
            return (th.get("address"), th.get("port")) == (tw.get("address"), tw.get("port"))
        return th.get("name") == tw.get("name")
    if have.tag == "serial":
        mh, mw = th.find("model"), tw.find("model")
        if (mh.get("name") if mh is not None else None) != (mw.get("name") if mw is not None else None) \
                and mw is not None:
            return False
    # serial, console, parallel: the same target port (a device XML without one designates none)
    wp = tw.get("port")
    try:
        return wp is not None and _port_of(root, have) == int(wp, 0)
    except ValueError:
        return False


# --- attach ------------------------------------------------------------------------------------
def check_attach(definition, el) -> None:
    """libvirt's refusals of ``el`` for the persistent ``definition``; also
    what libvirt fills in on insert (a controller's index, a serial port)."""
    root = definition.root
    tag = el.tag
    if tag in ("disk", "interface"):
        return
    if tag in NO_PERSISTENT:
        raise NotSupported(f"Operation not supported: persistent attach of device '{tag}' is not supported",
                           detail={"driver": "qemu", "feature": f"attach-device --config {tag}"})
    if tag == "controller":
        ctype, idx = el.get("type"), el.get("index")
        taken = _controller_indexes(root, ctype)
        if idx is not None:
            if idx.isdigit() and int(idx) in taken:
                raise OperationInvalid(f"Requested operation is not valid: controller index='{idx}' already exists",
                                       detail={"type": ctype, "index": idx})
        else:  # libvirt: the first unused index of its type
            n = 0
            while n in taken:
                n += 1
            attrs = dict(el.attrib)
            el.attrib.clear()
            for k, val in [("type", ctype), ("index", str(n))] + [(k, x) for k, x in attrs.items() if k != "type"]:
                el.set(k, val)
    elif tag == "filesystem":
        dst = _target(el).get("dir")
        if any(_target(f).get("dir") == dst for f in _same(root, el)):
            raise OperationInvalid("Requested operation is not valid: Target already exists",
                                   detail={"target": dst})
    elif tag == "hostdev":
        if any(_hostdev_equal(h, el) for h in _same(root, el)):
            raise OperationInvalid("Requested operation is not valid: device is already in the domain configuration",
                                   detail={"device": "hostdev"})
    elif tag == "lease":
        key, ls = _text(el, "key"), _text(el, "lockspace")
        if any(_text(x, "key") == key and _text(x, "lockspace") == ls for x in _same(root, el)):
            raise OperationInvalid(f"Requested operation is not valid: Lease {key} in lockspace {ls} already exists",
                                   detail={"key": key, "lockspace": ls})
    elif tag == "shmem":
        if any(s.get("name") == el.get("name") for s in _same(root, el)):
            raise OperationInvalid("Requested operation is not valid: device is already in the domain configuration",
                                   detail={"device": "shmem", "name": el.get("name")})
    elif tag == "watchdog":
        if _same(root, el):
            raise OperationInvalid("Requested operation is not valid: domain already has a watchdog",
                                   detail={"device": "watchdog"})
    elif tag == "vsock":
        if _same(root, el):
            raise OperationInvalid("Requested operation is not valid: domain already has a vsock device",
                                   detail={"device": "vsock"})
    elif tag == "rng":
        key = _canon_addr(el)
        if key is not None and any(_canon_addr(d) == key for d in root.findall("devices/*")):
            raise NotSupported("unsupported configuration: a device with the same address already exists",
                               detail={"device": "rng"})
    elif tag == "console":
        if (_target(el).get("type") or "serial") == "serial":
            raise NotSupported("Operation not supported: attaching serial console is not supported",
                               detail={"driver": "qemu", "feature": "attach-device --config console serial"})
    elif tag == "channel":
        t = _target(el)
        if (t.get("type") == "virtio" and t.get("name")
                and any(_target(c).get("type") == "virtio" and _target(c).get("name") == t.get("name")
                        for c in _same(root, el))):
            raise OperationInvalid("Requested operation is not valid: chardev already exists",
                                   detail={"name": t.get("name")})
    elif tag == "serial":
        t = el.find("target")
        if t is None or t.get("port") is None:  # libvirt gives it the first free port
            used = {_port_of(root, s) for s in root.findall("devices/serial")}
            n = 0
            while n in used:
                n += 1
            if t is None:
                t = xmlapi.sub(el, "target", index=_after_source(el))
            t.set("port", str(n))


def _controller_indexes(root, ctype: str) -> set[int]:
    """The indexes the controllers of ``ctype`` have (one without an index:
    the first free one, as the argv builder and libvirt give it)."""
    same = [c for c in root.findall("devices/controller") if c.get("type") == ctype]
    taken = {int(c.get("index")) for c in same if (c.get("index") or "").isdigit()}
    for c in same:
        if not (c.get("index") or "").isdigit():
            n = 0
            while n in taken:
                n += 1
            taken.add(n)
    return taken


def _controller_index(root, ctl) -> int | None:
    """``ctl``'s index: its own, else the one the argv builder gives it."""
    if (ctl.get("index") or "").isdigit():
        return int(ctl.get("index"))
    same = [c for c in root.findall("devices/controller") if c.get("type") == ctl.get("type")]
    taken = {int(c.get("index")) for c in same if (c.get("index") or "").isdigit()}
    for c in same:
        if not (c.get("index") or "").isdigit():
            n = 0
            while n in taken:
                n += 1
            taken.add(n)
            if c is ctl:
                return n
    return None


def _after_source(el) -> int:
    kids = [k for k in el if xmlapi.is_element(k)]
    src = el.find("source")
    return kids.index(src) + 1 if src is not None else 0


def _hostdev_equal(a, b) -> bool:
    if (a.get("mode") or "subsystem", a.get("type")) != (b.get("mode") or "subsystem", b.get("type")):
        return False
    return _canon_source(a.find("source")) == _canon_source(b.find("source"))


def _canon_source(src) -> str | None:
    if src is None:
        return None
    c = xmlapi.copy(src)
    for x in c.iter():
        for k in list(x.attrib):
            v = x.get(k)
            try:
                if v.lower().startswith("0x"):
                    x.set(k, str(int(v, 16)))
            except ValueError:
                pass
    return xmlapi.tostring(c)


# --- detach ----------------------------------------------------------------------------------------
def _missing(code, message: str, el):
    return code(message, detail={"device": el.tag})


def find(definition, el):
    """The element of ``definition`` that device XML ``el`` designates, as
    libvirt matches each kind; libvirt's error when there is none."""
    root = definition.root
    tag = el.tag
    if tag in ("disk", "interface"):
        match = devices.find_match(root, el)
        if match is None:
            raise devices.not_found(el)
        return match
    if tag in NO_PERSISTENT or tag not in devices.DEVICE_TAGS or tag == "chardev":
        raise NotSupported(f"Operation not supported: persistent detach of device '{tag}' is not supported",
                           detail={"driver": "qemu", "feature": f"detach-device --config {tag}"})
    same = _same(root, el)
    alias = devices.alias_of(el)
    if alias:
        hit = next((d for d in same if devices.alias_of(d) == alias), None)
        if hit is not None:
            return hit
    addr = _canon_addr(el)

    def at_addr(d) -> bool:  # an address given must be the device's
        return addr is None or _canon_addr(d) == addr

    if tag == "controller":
        idx = el.get("index")
        hit = next((c for c in same if idx is not None and idx.isdigit() and c.get("type") == el.get("type")
                    and _controller_index(root, c) == int(idx)), None)
        if hit is None:
            raise _missing(OperationFailed, "device not found: device not present in domain configuration", el)
        return hit
    if tag in _CHR:
        hit = next((c for c in same if _chr_equal(root, c, el)), None)
        if hit is None:
            raise _missing(InvalidArg, "invalid argument: device not present in domain configuration", el)
        return hit
    if tag == "filesystem":
        dst = _target(el).get("dir")
        hit = next((f for f in same if _target(f).get("dir") == dst), None)
        if hit is None:
            raise _missing(OperationFailed, "device not found: no matching filesystem device was found", el)
        return hit
    if tag == "rng":
        hit = next((r for r in same if _rng_equal(r, el) and at_addr(r)), None)
        if hit is None:
            raise _missing(OperationFailed, "device not found: no matching RNG device was found", el)
        return hit
    if tag == "input":
        hit = next((i for i in same if i.get("type") == el.get("type") and _input_bus(i) == _input_bus(el)
                    and at_addr(i)), None)
        if hit is None:
            raise _missing(OperationFailed, "device not found: matching input device not found", el)
        return hit
    if tag == "sound":
        hit = next((s for s in same if s.get("model") == el.get("model") and at_addr(s)), None)
        if hit is None:
            raise _missing(OperationFailed, "device not found: device not present in domain configuration", el)
        return hit
    if tag == "watchdog":
        if not same:
            raise _missing(OperationFailed, "device not found: domain has no watchdog", el)
        return same[0]
    if tag == "vsock":
        cid = el.find("cid")
        want = dict(cid.attrib) if cid is not None else {}
        for v in same:
            have = dict(v.find("cid").attrib) if v.find("cid") is not None else {}
            if (el.get("model") in (None, v.get("model"))
                    and all(have.get(k) == val for k, val in want.items()) and at_addr(v)):
                return v
        raise _missing(OperationFailed, "operation failed: matching vsock device not found", el)
    if tag == "hostdev":
        hit = next((h for h in same if _hostdev_equal(h, el)), None)
        if hit is None:
            raise _missing(OperationFailed, "device not found: device not present in domain configuration", el)
        return hit
    if tag == "lease":
        key, ls = _text(el, "key"), _text(el, "lockspace")
        hit = next((x for x in same if _text(x, "key") == key and _text(x, "lockspace") == ls), None)
        if hit is None:
            raise _missing(OperationFailed, f"device not found: Lease {key} in lockspace {ls} does not exist", el)
        return hit
    if tag == "shmem":
        hit = next((s for s in same if s.get("name") == el.get("name")), None)
        if hit is None:
            raise _missing(OperationFailed, "device not found: matching shmem device was not found", el)
        return hit
    if tag == "memory":
        want = devices._canon(el)
        hit = next((m for m in same if devices._canon(m) == want), None)
        if hit is None:
            raise _missing(OperationFailed, "device not found: matching memory device was not found", el)
        return hit
    want = devices._canon(el)  # redirdev and the rest: the same XML
    hit = next((d for d in same if devices._canon(d) == want), None)
    if hit is None:
        raise _missing(OperationFailed, f"device not found: no matching {tag} was found", el)
    return hit


def _input_bus(el) -> str:
    return el.get("bus") or ("usb" if el.get("type") == "tablet" else "ps2")


def _rng_equal(have, want) -> bool:
    """virDomainRNGDefEquals: model, backend model and source, rate."""
    if have.get("model") != want.get("model"):
        return False
    bh, bw = have.find("backend"), want.find("backend")
    if (bh is None) != (bw is None):
        return False
    if bh is not None:
        if bh.get("model") != bw.get("model"):
            return False
        if bh.get("model") == "random" and ((bh.text or "").strip() or "/dev/urandom") != \
                ((bw.text or "").strip() or "/dev/urandom"):
            return False
        if bh.get("model") == "egd" and (bh.get("type"), _subtree(bh.find("source"))) != \
                (bw.get("type"), _subtree(bw.find("source"))):
            return False
    rh, rw = have.find("rate"), want.find("rate")
    if rw is not None and (rh is None or dict(rh.attrib) != dict(rw.attrib)):
        return False
    return True


def detached(definition, el):
    """(copy of ``definition`` without the device ``el`` designates, the removed device)."""
    if el.tag in ("disk", "interface"):
        return devices.detached(definition, el)
    new = definition.copy()
    match = find(new, el)
    removed = xmlapi.copy(match)
    match.getparent().remove(match)
    return new, removed
