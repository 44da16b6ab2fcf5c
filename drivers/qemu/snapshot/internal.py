"""Internal snapshots: inside the qcow2 images themselves.

Shut off: ``qemu-img snapshot -c/-a/-d/-l`` on each image (the shared
runner, qemu_img.py; ``-U`` only to list).  Running: QEMU 7.2's
``snapshot-save`` / ``snapshot-load`` / ``snapshot-delete`` jobs, which
take the format node names of the disks (``vmstate``: the node that keeps
the memory); each job is waited for with ``query-jobs`` and dismissed
(``job-dismiss``), its error quoted.
"""
from __future__ import annotations

import json
import time

from virtctl.errors import OperationFailed

JOB_TIMEOUT = 600.0
POLL = 0.02


# --- shut off: qemu-img ---------------------------------------------------------------------
def img_tags(path: str, fmt: str = "qcow2") -> list[str]:
    """The internal snapshot tags ``qemu-img snapshot -l`` lists in ``path``."""
    from virtctl.drivers.qemu import qemu_img

    out = qemu_img.run(["info", "-U", "--output=json", "-f", fmt, "--", path],
                       what=f"list the snapshots of '{path}'")
    try:
        data = json.loads(out)
    except ValueError:
        raise OperationFailed(f"cannot list the snapshots of '{path}': qemu-img gave no JSON") from None
    return [s.get("name") for s in data.get("snapshots") or []]


def img_snapshot(op: str, tag: str, path: str, fmt: str = "qcow2") -> None:
    """``qemu-img snapshot -c|-a|-d TAG`` on one image (the domain is shut off)."""
    from virtctl.drivers.qemu import qemu_img

    words = {"-c": "create", "-a": "apply", "-d": "delete"}[op]
    # qemu-img snapshot has no -f: the format is given in --image-opts (never probed)
    opts = f"driver={fmt},file.driver=file,file.filename={path.replace(',', ',,')}"
    qemu_img.run(["snapshot", "-q", "--image-opts", op, tag, opts],
                 what=f"{words} snapshot '{tag}' in '{path}'", timeout=qemu_img.QEMU_IMG_COPY_TIMEOUT)


# --- running: QMP jobs ------------------------------------------------------------------------
def block_nodes(q) -> dict[str, dict]:
    """The running QEMU's disks: image file name -> {"node", "format", "tags", "backing"}
    of the top format node (``query-block``)."""
    out = {}
    for b in q.command("query-block") or []:
        ins = b.get("inserted")
        if not ins:
            continue
        img = ins.get("image") or {}
        out[img.get("filename") or ins.get("file")] = {
            "node": ins.get("node-name"), "format": img.get("format"), "ro": ins.get("ro"),
            "tags": [s.get("name") for s in img.get("snapshots") or []],
            "vmstate": {s.get("name"): s.get("vm-state-size", 0) for s in img.get("snapshots") or []},
            "backing": (img.get("backing-image") or {}).get("filename"), "device": b.get("qdev")}
    return out


def job_id(name: str) -> str:
    import hashlib

    return "virtctl-snap-" + hashlib.sha1(name.encode()).hexdigest()[:12]


def run_job(q, command: str, args: dict, what: str, timeout: float = JOB_TIMEOUT) -> None:
    """Start a job and wait for it to conclude; dismiss it; OperationFailed with
    QEMU's error if it failed."""
    from virtctl.drivers.qemu import runtime as rt
    from virtctl.drivers.qemu.qmp import QMPError

    try:
        q.command(command, args)
    except (QMPError, OSError) as exc:
        raise rt.qmp_error(exc, what) from None
    err = wait_job(q, args["job-id"], what, timeout)
    if err:
        raise OperationFailed(f"operation failed: {what}: {err}")


def wait_job(q, jid: str, what: str, timeout: float = JOB_TIMEOUT) -> str | None:
    """Wait for job ``jid`` to conclude and dismiss it: its error, or None.
    A job that is not there (dismissed already) is None too."""
    from virtctl.drivers.qemu import runtime as rt
    from virtctl.drivers.qemu.qmp import QMPError

    deadline = time.monotonic() + timeout
    while True:
        try:
            jobs = {j.get("id"): j for j in q.command("query-jobs") or []}
        except (QMPError, OSError) as exc:
            raise rt.qmp_error(exc, what) from None
        q.events.clear()
        job = jobs.get(jid)
        if job is None:
            return None
        if job.get("status") == "concluded":
            try:
                q.command("job-dismiss", {"id": jid})
            except (QMPError, OSError):
                pass
            return job.get("error")
        if time.monotonic() > deadline:
            raise OperationFailed(f"operation failed: {what}: QEMU's job {jid} did not finish "
                                  f"in {timeout:g} s (it is still running)")
        time.sleep(POLL)
