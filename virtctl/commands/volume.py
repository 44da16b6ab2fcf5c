"""Storage volume commands: vol-list, vol-info, vol-dumpxml, vol-create,
vol-create-as, vol-clone, vol-delete, vol-resize, vol-path, vol-key,
vol-name, vol-pool."""
from __future__ import annotations

import click

from virtctl.cli import output
from virtctl.cli.options import command, option, positional
from virtctl.cli.session import pass_session
from virtctl.commands.pool import get_pool, pretty_size
from virtctl.errors import InvalidArg


def get_vol(session, vol: str, pool: str | None):
    session.value("vol", vol)
    p = get_pool(session, pool) if pool is not None else None
    return session.conn.lookup_volume(vol, pool=p)


def _vol_options(f):
    f = option("--pool", default=None, help="pool name or uuid", completer="pool")(f)
    return positional("vol", help="vol name, key or path", completer="volume")(f)


def _size(text: str, option: str) -> int:
    """virsh's scaled size for volumes: bytes unless a suffix says otherwise."""
    from virtctl.xml.units import unit_factor

    s = text.strip()
    i = 0
    while i < len(s) and s[i].isdigit():
        i += 1
    factor = unit_factor(s[i:]) if s[i:] else 1
    if not s[:i] or factor is None or int(s[:i]) * factor >= 2**64:
        more = {"more": [f"invalid argument: unknown suffix '{s[i:]}'"]} if s[:i] and factor is None else {}
        raise InvalidArg(f"Malformed size {text}", detail={"option": option, **more})
    return int(s[:i]) * factor


def _done(session, vol, message: str, action: str) -> None:
    if session.json:
        session.emit({"vol": vol.name, "key": vol.key, "path": vol.path, "action": action, "result": "ok"})
    else:
        session.extra(message + "\n", end="")


@command("vol-list", help="List the volumes of a storage pool.\n\n\b\nExample:\n  virtctl vol-list default-pool --details")
@positional("pool", help="pool name or uuid", completer="pool")
@click.option("--details", is_flag=True, help="display extended details")
@pass_session
def vol_list(session, pool, details):
    p = get_pool(session, pool)
    with session.context("Failed to list volumes"):
        recs = [v.snapshot for v in p.volumes()]
    if session.json:
        session.emit({"volumes": [r.to_json() for r in recs]})
        return
    if details:
        rows = [[r.name, r.path, r.type, pretty_size(r.capacity), pretty_size(r.allocation)] for r in recs]
        text = output.table(["Name", "Path", "Type", "Capacity", "Allocation"], rows, header=not session.quiet)
    else:
        text = output.table(["Name", "Path"], [[r.name, r.path] for r in recs], header=not session.quiet)
    session.print(text, end="")


@command("vol-info", help="Show basic information about a storage volume.\n\n\b\nExample:\n  virtctl vol-info --pool default-pool disk1.qcow2")
@_vol_options
@click.option("--bytes", "in_bytes", is_flag=True, help="sizes are represented in bytes rather than pretty units")
@click.option("--physical", is_flag=True, help="return the physical size of the volume in allocation field")
@pass_session
def vol_info(session, vol, pool, in_bytes, physical):
    r = get_vol(session, vol, pool).info()
    fmt = (lambda n: f"{n} bytes") if in_bytes else pretty_size
    pairs = [("Name", r.name), ("Type", r.type), ("Capacity", fmt(r.capacity)),
             ("Physical" if physical else "Allocation", fmt(r.allocation))]
    session.emit(r.to_json(), output.key_values(pairs, width=16))


@command("vol-dumpxml", help="Print a storage volume's XML description.\n\n\b\nExample:\n  virtctl vol-dumpxml --pool default-pool disk1.qcow2")
@_vol_options
@pass_session
def vol_dumpxml(session, vol, pool):
    xml = get_vol(session, vol, pool).xml()
    session.emit({"xml": xml}, xml)


def _read(file: str) -> str:
    from virtctl.commands.domain_lifecycle import _read_xml

    return _read_xml(file)


@command("vol-create", help="Create a volume in a pool from an XML file.\n\n\b\nExample:\n  virtctl vol-create default-pool vol.xml")
@positional("pool", help="pool name or uuid", completer="pool")
@positional("file", help="file containing an XML vol description", completer="file")
@click.option("--prealloc-metadata", is_flag=True, help="preallocate metadata (for qcow2 instead of full allocation)")
@click.option("--validate", is_flag=True, help="validate the XML against the schema (always done)")
@pass_session
def vol_create(session, pool, file, prealloc_metadata, validate):
    p = get_pool(session, pool)
    xml = _read(session.value("file", file))
    with session.context(f"Failed to create vol from {file}"):
        v = p.create_volume(xml, source=file, prealloc_metadata=prealloc_metadata)
    _done(session, v, f"Vol {v.name} created from {file}", "created")


def vol_xml(name: str, capacity: int, allocation: int | None, fmt: str | None,
            backing: str | None = None, backing_format: str | None = None) -> str:
    from xml.sax.saxutils import escape, quoteattr

    out = f"<volume>\n  <name>{escape(name)}</name>\n  <capacity>{capacity}</capacity>\n"
    if allocation is not None:
        out += f"  <allocation>{allocation}</allocation>\n"
    out += f"  <target>\n    <format type={quoteattr(fmt or 'raw')}/>\n  </target>\n"
    if backing:
        out += f"  <backingStore>\n    <path>{escape(backing)}</path>\n"
        if backing_format:
            out += f"    <format type={quoteattr(backing_format)}/>\n"
        out += "  </backingStore>\n"
    return out + "</volume>\n"


@command("vol-create-as", help="""Create a volume in a pool from a name and a size.

Sizes take virsh's suffixes (bytes by default): 10G, 512MiB.

\b
Examples:
  virtctl vol-create-as default-pool disk1.qcow2 10G --format qcow2
  virtctl vol-create-as default-pool top.qcow2 10G --format qcow2 --backing-vol disk1.qcow2 --backing-vol-format qcow2""")
@positional("pool", help="pool name", completer="pool")
@positional("name", help="name of the volume", completer="none")
@positional("capacity", help="size of the vol, as scaled integer (default bytes)", completer="none")
@option("--allocation", completer="none", default=None, help="initial allocation size, as scaled integer (default bytes)")
@option("--format", "fmt", completer="enum:raw|qcow2|qcow|qed|vmdk|vpc|vdi|bochs|cloop|dmg|iso", default=None, help="file format type raw,bochs,qcow,qcow2,qed,vmdk")
@option("--backing-vol", completer="volume", default=None, help="the backing volume if taking a snapshot")
@option("--backing-vol-format", completer="enum:raw|qcow2|qcow|qed|vmdk|vpc|vdi|bochs|cloop|dmg|iso", default=None, help="format of backing volume if taking a snapshot")
@click.option("--prealloc-metadata", is_flag=True, help="preallocate metadata (for qcow2 instead of full allocation)")
@click.option("--print-xml", is_flag=True, help="print XML document, but don't define/create")
@pass_session
def vol_create_as(session, pool, name, capacity, allocation, fmt, backing_vol, backing_vol_format,
                  prealloc_metadata, print_xml):
    cap = _size(capacity, "capacity")
    alloc = _size(allocation, "allocation") if allocation is not None else None
    backing = None
    p = None if print_xml and not backing_vol else get_pool(session, pool)
    if backing_vol:
        backing = session.conn.lookup_volume(backing_vol, pool=p).path
    xml = vol_xml(session.value("name", name), cap, alloc, fmt, backing, backing_vol_format)
    if print_xml:
        session.emit({"xml": xml}, xml)
        return
    with session.context(f"Failed to create vol {name}"):
        v = p.create_volume(xml, prealloc_metadata=prealloc_metadata)
    _done(session, v, f"Vol {v.name} created", "created")


@command("vol-clone", help="Clone a volume (within its pool, or into --newpool).\n\n\b\nExample:\n  virtctl vol-clone --pool default-pool disk1.qcow2 disk2.qcow2")
@positional("vol", help="orig vol name or path or key", completer="volume")
@positional("newname", help="clone name", completer="none")
@option("--pool", default=None, help="pool name or uuid", completer="pool")
@click.option("--prealloc-metadata", is_flag=True, help="preallocate metadata (for qcow2 instead of full allocation)")
@click.option("--reflink", is_flag=True, help="use btrfs COW lightweight copy")
@pass_session
def vol_clone(session, vol, newname, pool, prealloc_metadata, reflink):
    src = get_vol(session, vol, pool)
    p = src.pool()
    info = src.info()
    xml = vol_xml(session.value("newname", newname), info.capacity, info.allocation, info.format)
    with session.context(f"Failed to clone vol from {src.name}"):
        v = p.create_volume(xml, prealloc_metadata=prealloc_metadata, clone_from=src)
    _done(session, v, f"Vol {newname} cloned from {src.name}", "cloned")


@command("vol-delete", help="Delete a volume and its data.\n\n\b\nExample:\n  virtctl vol-delete --pool default-pool disk2.qcow2")
@_vol_options
@click.option("--delete-snapshots", is_flag=True, help="delete snapshots associated with volume")
@pass_session
def vol_delete(session, vol, pool, delete_snapshots):
    v = get_vol(session, vol, pool)
    with session.context(f"Failed to delete vol {vol}"):
        v.delete()
    _done(session, v, f"Vol {vol} deleted", "deleted")


@command("vol-resize", help="""Resize a volume to a new capacity (or by --delta).

Shrinking needs --shrink.

\b
Example:
  virtctl vol-resize --pool default-pool disk1.qcow2 20G""")
@_vol_options
@positional("capacity", help="new capacity for the vol, as scaled integer (default bytes)", completer="none")
@click.option("--allocate", is_flag=True, help="allocate the new capacity, rather than leaving it sparse")
@click.option("--delta", is_flag=True, help="use capacity as a delta to current size, rather than the new size")
@click.option("--shrink", is_flag=True, help="allow the resize to shrink the volume")
@pass_session
def vol_resize(session, vol, pool, capacity, allocate, delta, shrink):
    v = get_vol(session, vol, pool)
    text = capacity[1:] if capacity.startswith("-") else capacity
    if capacity.startswith("-"):
        delta = shrink = True  # virsh: a leading '-' means --delta --shrink
    n = _size(text, "capacity")
    with session.context(f"Failed to change size of volume '{v.name}' to {capacity}"):
        v.resize(n, delta=delta, shrink=shrink, allocate=allocate)
    _done(session, v, f"Size of volume '{v.name}' successfully changed to {capacity}", "resized")


def _one(name: str, what: str, helptext: str, get):
    @command(name, help=helptext)
    @_vol_options
    @pass_session
    def cmd(session, vol, pool):
        v = get_vol(session, vol, pool)
        value = get(v)
        session.emit({what: value}, value + "\n")
    cmd.__name__ = name.replace("-", "_")
    return cmd


vol_path = _one("vol-path", "path", "Print a volume's path given its name or key.\n\n\b\nExample:\n  virtctl vol-path --pool default-pool disk1.qcow2",
                lambda v: v.path)
vol_key = _one("vol-key", "key", "Print a volume's key given its name or path.\n\n\b\nExample:\n  virtctl vol-key --pool default-pool disk1.qcow2",
               lambda v: v.key)
vol_name = _one("vol-name", "name", "Print a volume's name given its key or path.\n\n\b\nExample:\n  virtctl vol-name /default-pool/disk1.qcow2",
                lambda v: v.name)


@command("vol-pool", help="Print the pool a volume (given by key or path) is in.\n\n\b\nExample:\n  virtctl vol-pool /default-pool/disk1.qcow2")
@positional("vol", help="volume key or path", completer="none")
@click.option("--uuid", is_flag=True, help="return the pool uuid rather than pool name")
@pass_session
def vol_pool(session, vol, uuid):
    p = get_vol(session, vol, None).pool()
    session.emit({"pool": p.name, "uuid": p.uuid}, (p.uuid if uuid else p.name) + "\n")


def _offsets(offset: str | None, length: str | None) -> tuple[int, int]:
    return (_size(offset, "offset") if offset else 0), (_size(length, "length") if length else 0)


@command("vol-upload", help="""Write a local file's bytes into a volume.

The bytes go at --offset (the volume's other bytes kept) into a complete new
copy that replaces the volume only once written: an interrupted upload or a
full disk leaves the volume as it was.  A progress bar is drawn on stderr
when it is a terminal.

\b
Example:
  virtctl vol-upload --pool default disk1.raw ./disk.img""")
@_vol_options
@positional("file", help="file", completer="file")
@option("--offset", default=None, completer="none", help="volume offset to upload to")
@option("--length", default=None, completer="none", help="amount of data to upload")
@click.option("--sparse", is_flag=True, help="preserve sparseness of volume")
@pass_session
def vol_upload(session, vol, pool, file, offset, length, sparse):
    v = get_vol(session, vol, pool)
    off, n = _offsets(offset, length)
    try:
        src = open(session.value("file", file), "rb")
    except OSError as exc:
        from virtctl.errors import NoFile

        raise NoFile(f"cannot read {file}: {exc.strerror}", context="cannot upload to volume") from None
    from virtctl.commands.domain_save import progress_bar

    with src, session.context(f"cannot upload to volume {vol}"), progress_bar(session, f"vol-upload {vol}") as bar:
        v.upload(src, offset=off, length=n, sparse=sparse, progress=bar)
    _done(session, v, "", "uploaded") if session.json else None


@command("vol-download", help="""Copy a volume's bytes into a local file.

The file appears only complete (written under a temporary name, then
renamed); --sparse leaves the volume's holes and runs of zeros as holes.  A
progress bar is drawn on stderr when it is a terminal.

\b
Example:
  virtctl vol-download --pool default disk1.raw ./copy.img""")
@_vol_options
@positional("file", help="file", completer="file")
@option("--offset", default=None, completer="none", help="volume offset to download from")
@option("--length", default=None, completer="none", help="amount of data to download")
@click.option("--sparse", is_flag=True, help="preserve sparseness of volume")
@pass_session
def vol_download(session, vol, pool, file, offset, length, sparse):
    import os

    v = get_vol(session, vol, pool)
    off, n = _offsets(offset, length)
    path = session.value("file", file)
    tmp = f"{path}.virtctl-part-{os.getpid()}"
    try:
        from virtctl.commands.domain_save import progress_bar

        with open(tmp, "xb") as dst, session.context(f"cannot download from volume {vol}"), \
                progress_bar(session, f"vol-download {vol}") as bar:
            v.download(dst, offset=off, length=n, sparse=sparse, progress=bar)
        os.replace(tmp, path)  # the file appears only complete
    except OSError as exc:
        from virtctl.errors import SystemError_

        raise SystemError_(f"cannot write {path}: {exc.strerror}", context="cannot download from volume") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _done(session, v, "", "downloaded") if session.json else None


WIPE_ALGORITHMS = ("zero", "nnsa", "dod", "bsi", "gutmann", "schneier", "pfitzner7", "pfitzner33", "random", "trim")


@command("vol-wipe", help="""Erase a volume's data.

--algorithm zero (the default) writes zeros over every byte of data of the
file, random writes random bytes; a qcow2 volume is then made anew, empty,
at the same capacity (its backing file kept).  virsh's other algorithms
(nnsa, dod, bsi, gutmann, schneier, pfitzner7, pfitzner33: scrub(1)'s
patterns; trim) are refused as not supported.  A volume a running domain
uses is refused.

\b
Examples:
  virtctl vol-wipe --pool default disk2.qcow2
  virtctl vol-wipe --pool default disk2.raw --algorithm random""")
@_vol_options
@option("--algorithm", default=None, completer="enum:" + "|".join(WIPE_ALGORITHMS),
        help="perform selected wiping algorithm")
@pass_session
def vol_wipe(session, vol, pool, algorithm):
    v = get_vol(session, vol, pool)  # virsh looks the volume up first
    if algorithm is not None and algorithm not in WIPE_ALGORITHMS:
        raise InvalidArg(f"Unsupported algorithm '{algorithm}'", detail={"option": "algorithm"})
    with session.context(f"Failed to wipe vol {vol}"):
        v.wipe(algorithm=algorithm or "zero")
    _done(session, v, f"Vol {vol} wiped", "wiped")


@command("vol-create-from", help="""Create a volume from an XML file, with another volume's contents.

\b
Example:
  virtctl vol-create-from default copy.xml disk1.qcow2""")
@positional("pool", help="pool name", completer="pool")
@positional("file", help="file containing an XML vol description", completer="file")
@positional("vol", help="input vol name or key", completer="volume")
@option("--inputpool", default=None, completer="pool", help="pool name or uuid of the input volume's pool")
@click.option("--prealloc-metadata", is_flag=True, help="preallocate metadata (for qcow2 instead of full allocation)")
@click.option("--reflink", is_flag=True, help="use btrfs COW lightweight copy")
@click.option("--validate", is_flag=True, help="validate the XML against the schema (always done)")
@pass_session
def vol_create_from(session, pool, file, vol, inputpool, prealloc_metadata, reflink, validate):
    p = get_pool(session, pool)
    xml = _read(session.value("file", file))
    src = get_vol(session, vol, inputpool)
    with session.context(f"Failed to create vol from {file}"):
        v = p.create_volume(xml, source=file, prealloc_metadata=prealloc_metadata, clone_from=src)
    _done(session, v, f"Vol {v.name} created from input vol {src.name}", "created")
