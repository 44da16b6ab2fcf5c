"""Disk backing chains, resolved by virtctl: QEMU never follows an image's
header on its own.

Before a start (``command.prepare``), every ``<disk>`` with a file or block
source gets its whole chain written into the live definition as
``<backingStore>`` elements, as libvirt shows them in the XML of a running
domain::

    <source file='/img/top.qcow2'/>
    <backingStore type='file'>
      <format type='qcow2'/>
      <source file='/img/base.qcow2'/>
      <backingStore/>                    (the end: base has no backing file)
    </backingStore>

The argv builder then emits one ``-blockdev`` pair per layer, each format
node naming the next layer in ``backing`` and the last ``backing: null``;
a confined QEMU receives every layer as a descriptor (argv_files.py).

Rules:

* each layer is read with ``qemu-img info -U --output=json -f FORMAT``: the
  format is always given (never probed), and the backing file is not opened
  before its own format is known (no ``--backing-chain``, which would probe
  a backing file whose format the image does not record);
* a backing file whose format the image does not record is refused (as
  libvirt does), naming the image and the fix (``qemu-img rebase -u -F``);
  where the definition names that layer with its ``<format>``, that is used;
* a chain the definition gives (``<backingStore>``, ``<backingStore/>`` for
  "no backing file") must be the image's: another file, another format or
  a missing or extra layer is refused; a chain the definition stops giving
  is completed from the images, unless the connection says
  ``backing=definition`` (then a guest reads only the backing files its
  definition names, and an image naming another one is refused);
* only local files and block devices (no ``json:`` or network backing),
  no qcow2 external data file (QEMU would open it by path), no loops, at
  most :data:`MAX_DEPTH` layers;
* a confined connection runs ``qemu-img`` as the QEMU user with only
  ``CAP_DAC_READ_SEARCH`` (it may read any image, write nothing): a hostile
  image header is parsed by an unprivileged process.
"""
from __future__ import annotations

import os
import stat

from virtctl.errors import OperationFailed
from virtctl.xml import xmlapi

# formats with a backing file; the others (raw, iso, vdi, vhdx, vpc) end a chain
COW = {"qcow2", "qed", "vmdk"}
FORMATS = {"raw", "qcow2", "qed", "vmdk", "vdi", "vhdx", "vpc"}
MAX_DEPTH = 32


def qemu_img_info(path: str, fmt: str, *, user=None) -> dict:
    """``qemu-img info`` of one image opened with format ``fmt`` (never probed,
    backing file not opened); run confined when ``user`` is given (the shared
    runner, qemu_img.py)."""
    from virtctl.drivers.qemu import qemu_img

    return qemu_img.info(path, fmt, user=user)


def settings(query: dict[str, str], *, confined: bool = False) -> bool:
    """The URI's ``backing=image|definition``: True when a guest may read only the
    backing files its definition names.  Default: ``definition`` on a confined
    connection (QEMU gets only what virtctl, as root, opens for it: an image
    from anywhere must not make it open /etc/shadow), else ``image`` (as
    libvirt: the images' headers name them; QEMU runs as the caller, who can
    read those files anyway)."""
    from virtctl.errors import ConnectFailed

    value = query.get("backing", "definition" if confined else "image")
    if value not in ("image", "definition"):
        raise ConnectFailed(f"backing='{value}' in the URI: use backing=image or backing=definition")
    return value == "definition"


def annotate(definition, *, user=None, inspect=qemu_img_info, named_only: bool = False):
    """A copy of ``definition`` with every disk's backing chain explicit (see
    the module docstring); raises OperationFailed naming the disk and image.
    ``named_only``: an image naming a backing file the definition does not is
    refused instead of followed."""
    live = definition.copy()
    for disk in live.root.findall("devices/disk"):
        _disk(disk, user, inspect, named_only)
    return live


def _target(disk) -> str:
    t = disk.find("target")
    return (t.get("dev") if t is not None else None) or "?"


def _disk(disk, user, inspect, named_only) -> None:
    dtype = disk.get("type", "file")
    if dtype not in ("file", "block"):
        return  # the builder refuses it
    src = disk.find("source")
    path = src.get("file" if dtype == "file" else "dev") if src is not None else None
    if not path:
        return  # an empty CD-ROM drive
    drv = disk.find("driver")
    fmt = (drv.get("type") if drv is not None else None) or "raw"
    if fmt not in FORMATS:
        return  # the builder refuses it
    _chain(disk, _target(disk), path, fmt, src, user, inspect, named_only)


def _chain(disk, dev: str, path: str, fmt: str, src, user, inspect, named_only) -> None:
    el, top = disk, path
    seen: set[tuple[int, int]] = set()
    for depth in range(MAX_DEPTH + 1):
        ident = _identity(path)
        if ident is not None:
            if ident in seen:
                raise OperationFailed(f"disk '{dev}': the backing chain of '{top}' loops back to '{path}'")
            seen.add(ident)
        given = el.find("backingStore")
        if fmt not in COW:
            backing, bfmt = None, None
        else:
            info = inspect(path, fmt, user=user)
            _refuse_data_file(info, dev, path)
            backing = info.get("full-backing-filename") or info.get("backing-filename")
            bfmt = info.get("backing-filename-format")
        if given is not None and _is_end(given):
            if backing:
                raise OperationFailed(
                    f"disk '{dev}': the definition says '{path}' has no backing file (<backingStore/>), "
                    f"but the image names '{backing}': remove that <backingStore/> or fix the image")
            return
        if given is None:
            if not backing:
                _insert(el, xmlapi.element("backingStore"), src if el is disk else None)
                return
            _check_local(dev, path, backing)
            if not bfmt:
                raise OperationFailed(
                    f"disk '{dev}': the image '{path}' names its backing file '{backing}' but not that "
                    f"file's format, and virtctl never lets QEMU guess a format: record it with "
                    f"'qemu-img rebase -u -F FORMAT -b {backing} {path}' (FORMAT: raw, qcow2, ...), or name "
                    f"it in the definition with <backingStore type='file'><format type='FORMAT'/>"
                    f"<source file='{backing}'/></backingStore>")
            if bfmt not in FORMATS:
                raise OperationFailed(f"disk '{dev}': the backing file '{backing}' of '{path}' has format "
                                      f"'{bfmt}', which the qemu driver does not support")
            if named_only:
                raise OperationFailed(
                    f"disk '{dev}': the image '{path}' names the backing file '{backing}' ({bfmt}), which the "
                    f"definition does not; this connection lets a guest read only the files its definition "
                    f"names (backing=definition): add <backingStore type='file'><format type='{bfmt}'/>"
                    f"<source file='{backing}'/></backingStore> to the disk, or flatten the image "
                    f"(qemu-img convert)")
            given = _new_layer(backing, bfmt)
            _insert(el, given, src if el is disk else None)
        else:
            gtype = given.get("type")
            gsrc = given.find("source")
            gpath = gsrc.get("file" if gtype == "file" else "dev") if gsrc is not None and gtype in (
                "file", "block") else None
            gfmt_el = given.find("format")
            gfmt = gfmt_el.get("type") if gfmt_el is not None else None
            if not gpath:
                return  # the builder names what is wrong with this <backingStore>
            if not backing:
                raise OperationFailed(f"disk '{dev}': the definition names '{gpath}' as the backing file of "
                                      f"'{path}', but that image has no backing file")
            if not _same_file(gpath, backing):
                raise OperationFailed(f"disk '{dev}': the definition names '{gpath}' as the backing file of "
                                      f"'{path}', but the image names '{backing}'")
            if gfmt and bfmt and gfmt != bfmt:
                raise OperationFailed(f"disk '{dev}': the definition says the backing file '{gpath}' has format "
                                      f"'{gfmt}', but '{path}' records '{bfmt}'")
            if not gfmt:
                if not bfmt:
                    raise OperationFailed(f"disk '{dev}': give the format of the backing file '{gpath}' "
                                          "(<format type=...> in its <backingStore>): the image does not record it")
                if gfmt_el is None:
                    gfmt_el = xmlapi.element("format")
                    given.insert(0, gfmt_el)
                gfmt_el.set("type", bfmt)
                gfmt = bfmt
            backing = gpath
            bfmt = gfmt
        el, path, fmt, src = given, backing, bfmt, None
    raise OperationFailed(f"disk '{dev}': the backing chain of '{top}' is deeper than {MAX_DEPTH} images")


def _is_end(bs) -> bool:
    return bs.get("type") is None and not any(xmlapi.is_element(c) for c in bs)


def _new_layer(path: str, fmt: str):
    try:
        block = stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        block = False  # opening it says why
    layer = xmlapi.element("backingStore", {"type": "block" if block else "file"})
    xmlapi.sub(layer, "format", {"type": fmt})
    xmlapi.sub(layer, "source", {"dev" if block else "file": path})
    return layer


def _insert(parent, layer, after) -> None:
    """Place ``layer`` right after ``after`` (the disk's <source>), else last."""
    if after is not None:
        after.addnext(layer)
    else:
        parent.append(layer)


def _check_local(dev: str, path: str, backing: str) -> None:
    if backing.startswith("json:") or not os.path.isabs(backing):
        raise OperationFailed(f"disk '{dev}': the backing file '{backing}' of '{path}' is not a local file "
                              "(only files and block devices are supported)")


def _refuse_data_file(info: dict, dev: str, path: str) -> None:
    data = (info.get("format-specific") or {}).get("data") or {}
    if isinstance(data, dict) and data.get("data-file"):
        raise OperationFailed(f"disk '{dev}': the image '{path}' keeps its data in the external file "
                              f"'{data['data-file']}', which the qemu driver does not support")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _same_file(a: str, b: str) -> bool:
    ia, ib = _identity(a), _identity(b)
    if ia is not None and ib is not None:
        return ia == ib
    return os.path.normpath(a) == os.path.normpath(b)
