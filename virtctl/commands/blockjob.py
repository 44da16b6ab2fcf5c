"""Block devices and block jobs: blockcommit, blockpull, blockcopy, blockjob,
blockresize, domblkinfo, with virsh's options, messages and progress line.

The jobs run in the hypervisor (QEMU's block jobs): a command without
--wait starts one and returns; with --wait (or --pivot, --keep-overlay,
--finish, --timeout) it polls the job (virsh waits for an event), draws
``Block Commit: [ 50.00 %]`` on stderr with --verbose, and ends it as asked.
"""
from __future__ import annotations

import time

import click

from virtctl.cli import output
from virtctl.cli.options import Number, command, domain_arg, mutually_exclusive, option, positional
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg, OperationFailed, UsageError

# virsh's virshBlockJobWait waits for libvirt's event, else polls every 500 ms; with no
# daemon to send events, virtctl polls: 20 ms at first, doubling up to 500 ms
POLL_FIRST, POLL = 0.02, 0.5

# virshDomainBlockJobToString / virshDomainBlockJobTypeToString
JOB_NAMES = {"pull": "Block Pull", "copy": "Block Copy", "commit": "Block Commit",
             "active-commit": "Active Block Commit", "backup": "Backup"}


def _disk_arg(help_text: str = "fully-qualified path of disk"):
    return positional("path", help=help_text, completer="disk")


def _scaled(text: str, option_name: str, default_factor: int) -> int:
    """virsh's scaled integer in bytes (a bare number times ``default_factor``)."""
    from virtctl.xml.units import unit_factor

    s = str(text).lstrip(" \t\n\v\f\r")
    if s[:1] == "+":
        s = s[1:]
    i = 0
    while i < len(s) and s[i].isascii() and s[i].isdigit():
        i += 1
    factor = unit_factor(s[i:]) if s[i:] else default_factor
    if not s[:i] or factor is None or int(s[:i]) * factor >= 2**64:
        raise InvalidArg(f"Scaled numeric value '{text}' for <{option_name}> option is malformed or out of range",
                         detail={"option": option_name.lstrip("-")})
    return int(s[:i]) * factor


def bandwidth_bytes(text: str | None, as_bytes: bool) -> int:
    """--bandwidth: MiB/s (a scaled value is rounded down to MiB/s), bytes/s with --bytes;
    a negative value is "unlimited" as for virsh (0 here: QEMU's no limit)."""
    if text is None:
        return 0
    t = str(text).strip()
    if t.startswith("-") and t[1:].isdigit():
        return 0
    if t.isdigit():
        n = int(t)
        return n if as_bytes else n << 20
    n = _scaled(t, "--bandwidth", 1 if as_bytes else 1 << 20)
    return n if as_bytes else (n >> 20) << 20


def _progress(session, label: str, remaining: int, total: int) -> None:
    """virshPrintJobProgress: ``\\rLABEL: [ 50.00 %]`` on stderr."""
    progress = 100.0
    if remaining != 0:
        progress = 100.0 - remaining * 100.0 / total if total else 0.0
        if progress >= 100.0:
            progress = 99.99
    session.out.flush()
    session.err.write(f"\r{label}: [{int(progress * 100) / 100.0:5.2f} %]")
    session.err.flush()


def wait_job(session, dom, path: str, label: str, *, verbose: bool, timeout: float | None,
             async_: bool, two_phase: bool) -> str:
    """virshBlockJobWait: ``completed``, ``ready`` (a two-phase job in sync),
    ``failed`` or ``canceled`` (the timeout or ^C aborted it)."""
    start = time.monotonic()
    last = None
    result = None
    pause = POLL_FIRST
    try:
        while True:
            info = dom.block_job_info(path)
            if info is None or info.get("status") == "completed":
                result = "completed"
                break
            if info.get("status") in ("failed", "cancelled"):
                result = "failed" if info.get("status") == "failed" else "canceled"
                if info.get("error") and not session.json:
                    session.err.write(f"\nerror: {info['error']}")
                break
            if two_phase and info.get("ready"):
                result = "ready"
                break
            if verbose and (info.get("cur"), info.get("end")) != last and not session.json:
                _progress(session, label, info.get("end", 0) - info.get("cur", 0), info.get("end", 0))
            last = (info.get("cur"), info.get("end"))
            if timeout is not None and time.monotonic() - start > timeout:
                raise _Timeout
            time.sleep(pause)
            pause = min(pause * 2, POLL)
    except (KeyboardInterrupt, _Timeout):
        try:
            dom.block_job_abort(path, async_=async_)
        except Exception as exc:  # noqa: BLE001 - virsh's message, then the cause
            raise OperationFailed(f"failed to abort job for disk '{path}'",
                                  detail={"more": [str(getattr(exc, "message", exc))]}) from None
        return "canceled"
    if verbose and result in ("completed", "ready") and not session.json:
        _progress(session, label, 0, 1)
    return result


class _Timeout(Exception):
    pass


def _finish(session, dom, path: str, job: str, outcome: str, message: str, failed_word: str,
            **data) -> None:
    """The end of a --wait: virsh's line (``\\nCommit complete``; it has no
    newline of its own) or the JSON document; exit 1 when aborted or failed."""
    if outcome in ("canceled", "failed"):
        word = "aborted" if outcome == "canceled" else "failed"
        if session.json:
            session.emit({"domain": dom.name, "path": path, "job": job, "result": word, **data})
        else:
            session.extra(f"\n{failed_word} {word}", end="")
        raise click.exceptions.Exit(1)  # virsh: its line says it all, no error line
    if session.json:
        session.emit({"domain": dom.name, "path": path, "job": job, "result": outcome, **data})
    else:
        session.extra(f"\n{message}", end="")


def _blocking_checks(blocking: bool, verbose: bool, async_: bool, ends: str) -> None:
    if blocking:
        return
    if verbose:
        raise UsageError(f"--verbose requires at least one of --timeout, --wait, {ends}")
    if async_:
        raise UsageError(f"--async requires at least one of --timeout, --wait, {ends}")


def _wait_options(f, *, pivot_help: str, finish: tuple[str, str] | None, wait_help: str,
                  timeout_help: str):
    opts = [
        click.option("--wait", is_flag=True, help=wait_help),
        click.option("--verbose", is_flag=True, help="with --wait, display the progress"),
        option("--timeout", type=Number(minimum=1), default=None, metavar="SECONDS", help=timeout_help,
               completer="none"),
    ]
    if pivot_help:
        opts.append(click.option("--pivot", is_flag=True, help=pivot_help))
    if finish:
        opts.append(click.option(finish[0], "finish", is_flag=True, help=finish[1]))
    opts.append(click.option("--async", "async_", is_flag=True, help="with --wait, don't wait for cancel to finish"))
    for o in reversed(opts):
        f = o(f)
    return f


def _bandwidth_options(f):
    f = option("--bandwidth", default=None, metavar="NUMBER", help="bandwidth limit in MiB/s",
               completer="none")(f)
    return f


# --- blockcommit -----------------------------------------------------------------------
def _commit_opts(f):
    f = click.option("--bytes", "bytes_", is_flag=True,
                     help="the bandwidth limit is in bytes/s rather than MiB/s")(f)
    f = click.option("--keep-relative", is_flag=True, help="keep the backing chain relatively referenced")(f)
    f = _wait_options(f, pivot_help="implies --active --wait, pivot when commit is synced",
                      finish=("--keep-overlay", "implies --active --wait, quit when commit is synced"),
                      wait_help="wait for job to complete (with --active, wait for job to sync)",
                      timeout_help="implies --wait, abort if copy exceeds timeout (in seconds)")
    f = click.option("--delete", is_flag=True, help="delete files that were successfully committed")(f)
    f = click.option("--active", is_flag=True, help="trigger two-stage active commit of top file")(f)
    f = option("--top", default=None, metavar="STRING", help="path of top file to commit from (default top of chain)",
               completer="file")(f)
    f = click.option("--shallow", is_flag=True, help="use backing file of top as base")(f)
    f = option("--base", default=None, metavar="STRING",
               help="path of base file to commit into (default bottom of chain)", completer="file")(f)
    return _bandwidth_options(f)


@command("blockcommit", help="""Commit changes from a snapshot down to its backing image.

Without --wait it starts the job and returns ("Block Commit started");
watch it with blockjob.  --active commits the active layer: the job then
reaches a synchronized phase that --pivot ends by making the base the
disk's image (the definition then names it), --keep-overlay by keeping
the top.

\b
Examples:
  virtctl blockcommit web1 vda --active --pivot --verbose
  virtctl blockcommit web1 vda --top /img/mid.qcow2 --base /img/base.qcow2 --wait""")
@domain_arg(completer="domain:running")
@_disk_arg()
@_commit_opts
@mutually_exclusive("pivot", "keep-overlay")
@pass_session
def blockcommit(session, domain, path, bandwidth, base, shallow, top, active, delete, wait, verbose,
                timeout, pivot, finish, async_, keep_relative, bytes_):
    active = active or pivot or finish
    blocking = wait or pivot or finish or timeout is not None
    bw = bandwidth_bytes(bandwidth, bytes_)
    _blocking_checks(blocking, verbose, async_, "--pivot, or --keep-overlay")
    dom = session.domain(domain)
    dom.block_commit(path, base=base, top=top, active=active, shallow=shallow, delete=delete,
                     keep_relative=keep_relative, bandwidth=bw)
    job = "active-commit" if active else "commit"
    if not blocking:
        text = "Active Block Commit started" if active else "Block Commit started"
        if session.json:
            session.emit({"domain": dom.name, "path": path, "job": job, "result": "started"})
        else:
            session.extra(text, end="")
        return
    outcome = wait_job(session, dom, path, "Block Commit", verbose=verbose, timeout=timeout, async_=async_,
                       two_phase=active)
    if outcome in ("canceled", "failed"):
        _finish(session, dom, path, job, outcome, "", "Commit")
    if active:
        if pivot:
            _end(dom, path, pivot=True, async_=async_, what="pivot")
            _finish(session, dom, path, job, "pivoted", "Successfully pivoted", "Commit")
        elif finish:
            _end(dom, path, pivot=False, async_=async_, what="finish")
            _finish(session, dom, path, job, "finished", "Commit complete, overlay image kept", "Commit")
        else:
            _finish(session, dom, path, job, "ready", "Now in synchronized phase", "Commit")
    else:
        _finish(session, dom, path, job, "completed", "Commit complete", "Commit")


def _end(dom, path: str, *, pivot: bool, async_: bool, what: str) -> None:
    from virtctl.errors import VirtError

    try:
        dom.block_job_abort(path, pivot=pivot, async_=async_)
    except VirtError as exc:
        raise VirtError(f"failed to {what} job for disk {path}", code=exc.code,
                        detail={**(exc.detail or {}), "more": [exc.message]}) from None


# --- blockpull ---------------------------------------------------------------------------
@command("blockpull", help="""Populate a disk from its backing image.

Copies the backing chain (down to --base) into the disk's active image;
after it the image no longer needs that part of the chain, and the
definition says so.

\b
Example:
  virtctl blockpull web1 vda --wait --verbose""")
@domain_arg(completer="domain:running")
@_disk_arg()
@_bandwidth_options
@option("--base", default=None, metavar="STRING", help="path of backing file in chain for a partial pull",
        completer="file")
@click.option("--wait", is_flag=True, help="wait for job to finish")
@click.option("--verbose", is_flag=True, help="with --wait, display the progress")
@option("--timeout", type=Number(minimum=1), default=None, metavar="SECONDS",
        help="with --wait, abort if pull exceeds timeout (in seconds)", completer="none")
@click.option("--async", "async_", is_flag=True, help="with --wait, don't wait for cancel to finish")
@click.option("--keep-relative", is_flag=True, help="keep the backing chain relatively referenced")
@click.option("--bytes", "bytes_", is_flag=True, help="the bandwidth limit is in bytes/s rather than MiB/s")
@pass_session
def blockpull(session, domain, path, bandwidth, base, wait, verbose, timeout, async_, keep_relative, bytes_):
    if verbose and not wait:
        raise UsageError("Option --wait is required by option --verbose")
    if async_ and not wait:
        raise UsageError("Option --wait is required by option --async")
    bw = bandwidth_bytes(bandwidth, bytes_)
    dom = session.domain(domain)
    dom.block_pull(path, base=base, keep_relative=keep_relative, bandwidth=bw)
    if not wait:
        if session.json:
            session.emit({"domain": dom.name, "path": path, "job": "pull", "result": "started"})
        else:
            session.extra("Block Pull started", end="")
        return
    outcome = wait_job(session, dom, path, "Block Pull", verbose=verbose, timeout=timeout, async_=async_,
                       two_phase=False)
    _finish(session, dom, path, "pull", outcome, "Pull complete", "Pull")


# --- blockcopy ---------------------------------------------------------------------------
@command("blockcopy", help="""Copy a disk backing image chain to dest.

The destination (--dest FILE, or --xml with a <disk> naming it) is created
(qcow2 or raw, --format; the source's format by default) unless
--reuse-external; --shallow copies only the top image, sharing its backing
chain.  The job mirrors the disk until it is ended: --pivot switches the
disk to the copy (the definition then names it), --finish keeps the
source and leaves the copy.

\b
Examples:
  virtctl blockcopy web1 vda /img/web1-copy.qcow2 --wait --pivot --verbose
  virtctl blockcopy web1 vda --dest /img/c.raw --format raw --finish""")
@domain_arg(completer="domain:running")
@_disk_arg("fully-qualified path of source disk")
@option("--dest", default=None, metavar="STRING", help="path of the copy to create", completer="file",
        positional=True)
@_bandwidth_options
@click.option("--shallow", is_flag=True, help="make the copy share a backing chain")
@click.option("--reuse-external", is_flag=True, help="reuse existing destination")
@click.option("--blockdev", is_flag=True, help="copy destination is block device instead of regular file")
@click.option("--wait", is_flag=True, help="wait for job to reach mirroring phase")
@click.option("--verbose", is_flag=True, help="with --wait, display the progress")
@option("--timeout", type=Number(minimum=1), default=None, metavar="SECONDS",
        help="implies --wait, abort if copy exceeds timeout (in seconds)", completer="none")
@click.option("--pivot", is_flag=True, help="implies --wait, pivot when mirroring starts")
@click.option("--finish", is_flag=True, help="implies --wait, quit when mirroring starts")
@click.option("--async", "async_", is_flag=True, help="with --wait, don't wait for cancel to finish")
@option("--xml", default=None, metavar="STRING", help="filename containing XML description of the copy destination",
        completer="file")
@option("--format", "format_", default=None, metavar="STRING", help="format of the destination file",
        completer="enum:raw|qcow2")
@option("--granularity", type=Number(minimum=0), default=0, metavar="NUMBER",
        help="power-of-two granularity to use during the copy", completer="none")
@option("--buf-size", type=Number(minimum=0), default=0, metavar="NUMBER",
        help="maximum amount of in-flight data during the copy", completer="none")
@click.option("--bytes", "bytes_", is_flag=True, help="the bandwidth limit is in bytes/s rather than MiB/s")
@click.option("--transient-job", is_flag=True, help="the copy job is not persisted if VM is turned off")
@click.option("--synchronous-writes", is_flag=True,
              help="the copy job forces guest writes to be synchronously written to the destination")
@click.option("--print-xml", is_flag=True, help="print the XML used to start the copy job instead of starting the job")
@click.option("--raw", is_flag=True, help="format=raw (virsh's alias)")
@mutually_exclusive("dest", "xml")
@mutually_exclusive("format", "xml")
@mutually_exclusive("blockdev", "xml")
@mutually_exclusive("pivot", "finish")
@pass_session
def blockcopy(session, domain, path, dest, bandwidth, shallow, reuse_external, blockdev, wait, verbose,
              timeout, pivot, finish, async_, xml, format_, granularity, buf_size, bytes_, transient_job,
              synchronous_writes, print_xml, raw):
    if raw:
        format_ = format_ or "raw"
    blocking = wait or pivot or finish or timeout is not None
    bw = bandwidth_bytes(bandwidth, bytes_)
    if not dest and not xml:
        raise UsageError("need either --dest or --xml")
    _blocking_checks(blocking, verbose, async_, "--pivot, or --finish")
    dom = session.domain(domain)
    xml_text = None
    if xml:
        dest, format_, blockdev, xml_text = _dest_of_xml(xml)
    if print_xml and xml_text is not None:  # virsh prints the file as it is
        session.emit({"domain": dom.name, "path": path, "xml": xml_text}, xml_text)
        return
    if print_xml:
        from virtctl.api.storage import xml_escape

        kind, attr = ("block", "dev") if blockdev else ("file", "file")
        drv = f"  <driver type='{xml_escape(format_)}'/>\n" if format_ else ""
        text = f"<disk type='{kind}'>\n  <source {attr}='{xml_escape(dest)}'/>\n{drv}</disk>\n"
        session.emit({"domain": dom.name, "path": path, "xml": text}, text)
        return
    dom.block_copy(path, dest, format=format_, blockdev=blockdev, shallow=shallow,
                   reuse_external=reuse_external, bandwidth=bw, transient_job=transient_job,
                   granularity=granularity, buf_size=buf_size, synchronous_writes=synchronous_writes)
    if not blocking:
        if session.json:
            session.emit({"domain": dom.name, "path": path, "job": "copy", "dest": dest, "result": "started"})
        else:
            session.extra("Block Copy started", end="")
        return
    outcome = wait_job(session, dom, path, "Block Copy", verbose=verbose, timeout=timeout, async_=async_,
                       two_phase=True)
    if outcome in ("canceled", "failed"):
        _finish(session, dom, path, "copy", outcome, "", "Copy", dest=dest)
    if pivot:
        _end(dom, path, pivot=True, async_=async_, what="pivot")
        _finish(session, dom, path, "copy", "pivoted", "Successfully pivoted", "Copy", dest=dest)
    elif finish:
        _end(dom, path, pivot=False, async_=async_, what="finish")
        _finish(session, dom, path, "copy", "finished", "Successfully copied", "Copy", dest=dest)
    else:
        _finish(session, dom, path, "copy", "ready", "Now in mirroring phase", "Copy", dest=dest)


def _dest_of_xml(file: str) -> tuple[str, str | None, bool, str]:
    """(path, format, is a block device, the file's text) of the <disk> in ``file``."""
    from virtctl.xml import xmlapi

    try:
        with open(file, "rb") as f:
            data = f.read(10 << 20)
    except OSError as exc:
        raise OperationFailed(f"Failed to open file '{file}': {exc.strerror}") from None
    root = xmlapi.parse(data)
    if root.tag != "disk":
        raise InvalidArg(f"{file}: the destination must be a <disk> element, not <{root.tag}>")
    src, drv = root.find("source"), root.find("driver")
    kind = root.get("type", "file")
    if kind not in ("file", "block"):
        raise InvalidArg(f"{file}: <disk type='{kind}'> cannot be a copy destination (file or block)")
    p = src.get("file" if kind == "file" else "dev") if src is not None else None
    if not p:
        raise InvalidArg(f"{file}: the <disk> has no <source {'file' if kind == 'file' else 'dev'}=...>")
    return p, drv.get("type") if drv is not None else None, kind == "block", data.decode("utf-8", "replace")


# --- blockjob ------------------------------------------------------------------------------
@command("blockjob", help="""Query, adjust speed, or cancel active block operations.

Without a mode it shows the job (--info): "Block Commit: [ 42.00 %]" and
the bandwidth limit; --raw the fields.  --abort cancels the job (--pivot
first switches the disk to the job's new image: the base of an active
commit, the copy of a blockcopy); --bandwidth changes its speed.

\b
Examples:
  virtctl blockjob web1 vda --info
  virtctl blockjob web1 vda --bandwidth 100
  virtctl blockjob web1 vda --pivot""")
@domain_arg(completer="domain:running")
@_disk_arg()
@click.option("--abort", is_flag=True, help="abort the active job on the specified disk")
@click.option("--async", "async_", is_flag=True, help="implies --abort; request but don't wait for job end")
@click.option("--pivot", is_flag=True, help="implies --abort; conclude and pivot a copy or commit job")
@click.option("--info", is_flag=True, help="get active job information for the specified disk")
@click.option("--bytes", "bytes_", is_flag=True, help="get/set bandwidth in bytes rather than MiB/s")
@click.option("--raw", is_flag=True, help="implies --info; output details rather than human summary")
@_bandwidth_options
@mutually_exclusive("raw", "abort")
@mutually_exclusive("raw", "pivot")
@mutually_exclusive("raw", "async")
@mutually_exclusive("raw", "bandwidth")
@mutually_exclusive("info", "abort")
@mutually_exclusive("info", "pivot")
@mutually_exclusive("info", "async")
@mutually_exclusive("info", "bandwidth")
@mutually_exclusive("bytes", "abort")
@mutually_exclusive("bytes", "pivot")
@mutually_exclusive("bytes", "async")
@pass_session
def blockjob(session, domain, path, abort, async_, pivot, info, bytes_, raw, bandwidth):
    dom = session.domain(domain)
    session.value("path", path)
    if bandwidth is not None:
        bw = bandwidth_bytes(bandwidth, bytes_)
        dom.block_job_set_speed(path, bw)
        session.emit({"domain": dom.name, "path": path, "bandwidth": bw, "result": "ok"})
        return
    if abort or pivot or async_:
        dom.block_job_abort(path, pivot=pivot, async_=async_)
        session.emit({"domain": dom.name, "path": path, "result": "pivoted" if pivot else "aborted"})
        return
    job = dom.block_job_info(path)
    if session.json:
        session.emit({"domain": dom.name, "path": path, "job": job})
        return
    if job is None or job.get("status") in ("completed", "failed", "cancelled"):
        if not raw:
            session.extra(f"No current block job for {path}", end="")
        return
    speed = job.get("bandwidth", 0)
    if raw:
        bw = speed if bytes_ else speed >> 20
        session.print(f" type={job['type']}\n bandwidth={bw}\n cur={job['cur']}\n end={job['end']}")
        return
    _progress(session, JOB_NAMES.get(job["type"], "Unknown job"), job["end"] - job["cur"], job["end"])
    if speed:
        val, unit = _pretty(speed)
        session.out.write(f"    Bandwidth limit: {speed} bytes/s ({val:.3f} {unit}/s)")
    session.print()


def _pretty(n: int) -> tuple[float, str]:
    """vshPrettyCapacity."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    v, i = float(n), 0
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    return v, units[i]


# --- blockresize ------------------------------------------------------------------------------
@command("blockresize", help="""Resize block device of domain.

SIZE is a scaled integer, in KiB without a suffix (B for bytes, as virsh).
The domain must be running; the guest sees the new size at once.  A size
below the current one is refused (a shrink loses the guest's data; use
vol-resize --shrink on a stopped domain).

\b
Example:
  virtctl blockresize web1 vda 20G""")
@domain_arg(completer="domain:running")
@positional("path", help="Fully-qualified path of block device", completer="disk")
@positional("size", help="New size of the block device, as scaled integer (default KiB)", completer="none")
@pass_session
def blockresize(session, domain, path, size):
    n = _scaled(size, "size", 1024)
    dom = session.domain(domain)
    with session.context(f"Failed to resize block device '{path}'"):
        dom.block_resize(path, n)
    session.done(dom, f"Block device '{path}' is resized", "resized", end="", path=path, size=n)


# --- domblkinfo ---------------------------------------------------------------------------------
@command("domblkinfo", help="""Get block device size info for a domain.

Capacity (the size the guest sees), Allocation (bytes of the image in
use on the host) and Physical (the image file's size), as libvirt reports
them; --all: every disk in a table.

\b
Examples:
  virtctl domblkinfo web1 vda --human
  virtctl domblkinfo web1 --all""")
@domain_arg()
@option("--device", default=None, metavar="STRING", help="block device", completer="disk", positional=True)
@click.option("--human", is_flag=True, help="Human readable output")
@click.option("--all", "all_", is_flag=True, help="display all block devices info")
@mutually_exclusive("all", "device")
@pass_session
def domblkinfo(session, domain, device, human, all_):
    if not all_ and device is None:
        raise UsageError("command 'domblkinfo' requires <device> option")
    dom = session.domain(domain)

    def fmt(n: int) -> str:
        if not human:
            return str(n)
        v, unit = _pretty(n)
        return f"{v:.3f} {unit}"

    if not all_:
        session.value("device", device)
        info = dom.block_info(device)
        if session.json:
            session.emit({"domain": dom.name, "device": device, **info})
            return
        session.out.write(output.key_values([("Capacity", fmt(info["capacity"])),
                                             ("Allocation", fmt(info["allocation"])),
                                             ("Physical", fmt(info["physical"]))], width=16))
        return
    from virtctl.xml import xmlapi

    root = xmlapi.parse(dom.xml())
    rows, docs = [], []
    for d in root.findall("devices/disk"):
        tgt = d.find("target")
        target = tgt.get("dev", "") if tgt is not None else ""
        src = d.find("source")
        if src is None or not (src.get("file") or src.get("dev") or src.get("volume")):
            rows.append([target, "-", "-", "-"])
            docs.append({"device": target, "capacity": None, "allocation": None, "physical": None})
            continue
        info = dom.block_info(target)
        rows.append([target, fmt(info["capacity"]), fmt(info["allocation"]), fmt(info["physical"])])
        docs.append({"device": target, **info})
    if session.json:
        session.emit({"domain": dom.name, "disks": docs})
        return
    session.out.write(output.table(["Target", "Capacity", "Allocation", "Physical"], rows))
