"""Block jobs and block device information on a libvirt connection
(blockcommit, blockpull, blockcopy, blockjob, blockresize, domblkinfo): a
mixin of domains.LibvirtDomainDriver (``self.lv``, ``self.conn``, ``self._dom``).

Bandwidths go to libvirt in bytes/s (the *_BANDWIDTH_BYTES flags).  libvirt
forgets a block job when it ends, so ``block_job_info`` reports a finished
job as none (commands/blockjob.py then says "completed"); a two-phase job
(copy, active commit) is ready when libvirt reports cur == end (libvirt keeps
them apart until the job is ready).
"""
from __future__ import annotations

from virtctl.drivers.libvirt.errors import mapped
from virtctl.drivers.libvirt.flags import flags as _flags
from virtctl.errors import InvalidArg

# virDomainBlockJobType -> virtctl's job names (commands/blockjob.JOB_NAMES)
_JOB_TYPES = {1: "pull", 2: "copy", 3: "commit", 4: "active-commit", 5: "backup"}
_TWO_PHASE = ("copy", "active-commit")


def _dest_xml(dest: str, fmt: str | None, blockdev: bool) -> str:
    """virsh's blockcopy destination <disk> for a path."""
    from xml.sax.saxutils import quoteattr

    kind, attr = ("block", "dev") if blockdev else ("file", "file")
    driver = f"<driver type={quoteattr(fmt)}/>" if fmt else ""
    return f"<disk type='{kind}'><source {attr}={quoteattr(dest)}/>{driver}</disk>"


class BlockJobMixin:
    def block_info(self, uuid: str, disk: str) -> dict:
        d = self._dom(uuid)
        with mapped(self.lv):
            capacity, allocation, physical = d.blockInfo(disk, 0)
        return {"capacity": capacity, "allocation": allocation, "physical": physical}

    def block_resize(self, uuid: str, disk: str, size: int) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            if d.isActive():
                # as virtctl's QEMU driver: no shrinking under a running guest
                # (libvirt would; the guest loses what lay past the new end)
                current = d.blockInfo(disk, 0)[0]
                rounded = (size + 511) // 512 * 512
                if rounded < current:
                    raise InvalidArg(f"invalid argument: cannot shrink disk '{disk}' from {current} to {rounded} "
                                     "bytes while the guest uses it (virtctl refuses to lose the guest's data)",
                                     detail={"current": current, "size": rounded})
            d.blockResize(disk, size, lv.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

    def block_commit(self, uuid: str, disk: str, *, base: str | None = None, top: str | None = None,
                     active: bool = False, shallow: bool = False, delete: bool = False,
                     keep_relative: bool = False, bandwidth: int = 0) -> None:
        lv, d = self.lv, self._dom(uuid)
        p = "VIR_DOMAIN_BLOCK_COMMIT_"
        flags = _flags(lv, (active, p + "ACTIVE"), (shallow, p + "SHALLOW"), (delete, p + "DELETE"),
                       (keep_relative, p + "RELATIVE"), (bool(bandwidth), p + "BANDWIDTH_BYTES"))
        with mapped(lv):
            d.blockCommit(disk, base, top, bandwidth, flags)

    def block_pull(self, uuid: str, disk: str, *, base: str | None = None, keep_relative: bool = False,
                   bandwidth: int = 0) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            if base is not None or keep_relative:  # as virsh: a rebase onto base, else a pull
                flags = _flags(lv, (keep_relative, "VIR_DOMAIN_BLOCK_REBASE_RELATIVE"),
                               (bool(bandwidth), "VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES"))
                d.blockRebase(disk, base, bandwidth, flags)
            else:
                d.blockPull(disk, bandwidth, _flags(lv, (bool(bandwidth), "VIR_DOMAIN_BLOCK_PULL_BANDWIDTH_BYTES")))

    def block_copy(self, uuid: str, disk: str, dest: str, *, format: str | None = None,  # noqa: A002
                   blockdev: bool = False, shallow: bool = False, reuse_external: bool = False,
                   bandwidth: int = 0, transient_job: bool = False, granularity: int = 0,
                   buf_size: int = 0, synchronous_writes: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        p = "VIR_DOMAIN_BLOCK_COPY_"
        flags = _flags(lv, (shallow, p + "SHALLOW"), (reuse_external, p + "REUSE_EXT"),
                       (transient_job, p + "TRANSIENT_JOB"), (synchronous_writes, p + "SYNCHRONOUS_WRITES"))
        params = {}
        if bandwidth:
            params[lv.VIR_DOMAIN_BLOCK_COPY_BANDWIDTH] = bandwidth
        if granularity:
            params[lv.VIR_DOMAIN_BLOCK_COPY_GRANULARITY] = granularity
        if buf_size:
            params[lv.VIR_DOMAIN_BLOCK_COPY_BUF_SIZE] = buf_size
        with mapped(lv):
            d.blockCopy(disk, _dest_xml(dest, format, blockdev), params or None, flags)

    def block_job_info(self, uuid: str, disk: str) -> dict | None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            info = d.blockJobInfo(disk, lv.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES)
        if not info:
            return None
        kind = _JOB_TYPES.get(info.get("type"), "unknown")
        cur, end = int(info.get("cur", 0)), int(info.get("end", 0))
        ready = kind in _TWO_PHASE and end > 0 and cur == end
        return {"type": kind, "bandwidth": int(info.get("bandwidth", 0)), "cur": cur, "end": end,
                "ready": ready, "status": "ready" if ready else "running", "error": None}

    def block_job_abort(self, uuid: str, disk: str, *, pivot: bool = False, async_: bool = False) -> None:
        lv, d = self.lv, self._dom(uuid)
        flags = _flags(lv, (pivot, "VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT"), (async_, "VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC"))
        with mapped(lv):
            d.blockJobAbort(disk, flags)

    def block_job_set_speed(self, uuid: str, disk: str, bandwidth: int) -> None:
        lv, d = self.lv, self._dom(uuid)
        with mapped(lv):
            d.blockJobSetSpeed(disk, bandwidth, lv.VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES)
