"""The one qemu-img runner: every ``qemu-img`` the QEMU driver runs goes
through :func:`run` (confined as the QEMU user when ``user`` is given, killed
after a timeout, its last error line in the message).  ``info`` is what the
backing-chain checks (backing.py) and storage volumes (storage/) inspect with;
``create``, ``convert`` and ``resize`` are what volumes are made with."""
from __future__ import annotations

import json

from virtctl.errors import OperationFailed

QEMU_IMG_TIMEOUT = 30.0
# creating, converting and resizing copy data: bounded, but generously
QEMU_IMG_COPY_TIMEOUT = 3600.0


def run(args: list[str], *, what: str, user=None, timeout: float = QEMU_IMG_TIMEOUT,
        keep_caps: tuple[int, ...] = ()) -> bytes:
    """``qemu-img ARGS``; its standard output, or OperationFailed
    ("cannot WHAT: <qemu-img's last error line>")."""
    from virtctl.drivers.qemu import confine

    import shutil  # lazily: a one-shot list never runs qemu-img

    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise OperationFailed("qemu-img is needed for disk images (Debian: apt-get install qemu-utils)")
    try:
        status, out, err = confine.run([qemu_img, *args], user=user, keep_caps=keep_caps, timeout=timeout)
    except OSError as exc:
        raise OperationFailed(f"cannot run '{qemu_img}': {exc.strerror}") from None
    if status != 0:
        msg = err.decode(errors="replace").strip().splitlines()
        last = msg[-1] if msg else f"qemu-img exited with status {status}"
        if "No space left on device" in last:
            raise OperationFailed(f"cannot {what}: no space left on the device (nothing was kept)",
                                  detail={"errno": "ENOSPC"})
        raise OperationFailed(f"cannot {what}: {last}")
    return out


def info(path: str, fmt: str | None, *, user=None, what: str | None = None) -> dict:
    """``qemu-img info`` of one image opened with format ``fmt`` (never
    probed when given; the backing file is not opened)."""
    from virtctl.drivers.qemu import confine

    args = ["info", "-U", "--output=json"] + (["-f", fmt] if fmt else []) + ["--", path]
    keep = (confine.CAP_DAC_READ_SEARCH,) if user is not None else ()
    out = run(args, what=what or f"inspect the disk image '{path}'" + (f" (format {fmt})" if fmt else ""),
              user=user, keep_caps=keep)
    try:
        data = json.loads(out)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise OperationFailed(f"cannot inspect the disk image '{path}': qemu-img gave no JSON object")
    return data


def create(path: str, fmt: str, size: int, *, backing: str | None = None, backing_fmt: str | None = None,
           prealloc_metadata: bool = False) -> None:
    args = ["create", "-q", "-f", fmt]
    if backing:
        args += ["-b", backing, "-F", backing_fmt or "raw"]
    if prealloc_metadata:
        args += ["-o", "preallocation=metadata"]
    run(args + ["--", path, str(size)], what=f"create the volume '{path}'", timeout=QEMU_IMG_COPY_TIMEOUT)


def convert(src: str, src_fmt: str, dst: str, dst_fmt: str) -> None:
    run(["convert", "-q", "-f", src_fmt, "-O", dst_fmt, "--", src, dst], what=f"copy '{src}' to '{dst}'",
        timeout=QEMU_IMG_COPY_TIMEOUT)


def resize(path: str, fmt: str, size: int, *, shrink: bool = False) -> None:
    run(["resize", "-q", "-f", fmt] + (["--shrink"] if shrink else []) + ["--", path, str(size)],
        what=f"resize '{path}'", timeout=QEMU_IMG_COPY_TIMEOUT)
