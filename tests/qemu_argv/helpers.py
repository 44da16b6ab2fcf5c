"""Shared pieces of the argv tests: runtime paths, fixtures' disks, a real QEMU start."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from qmp_raw import QMP
from virtctl.drivers.qemu.paths import RuntimePaths
from virtctl.xml.domain import DomainDef

DATA = Path(__file__).resolve().parent / "data"
VIRT_INSTALL = Path(__file__).resolve().parents[1] / "data" / "virt-install"
QEMU = shutil.which("qemu-system-x86_64")
QEMU_IMG = shutil.which("qemu-img")


def paths(base: str = "/run/vt/u") -> RuntimePaths:
    return RuntimePaths(qmp=f"{base}/qmp.sock", qmp_monitor=f"{base}/mon.sock", pidfile=f"{base}/qemu.pid",
                        chardev_dir=f"{base}/chardev", vnc_socket=f"{base}/vnc.sock", log=f"{base}/qemu.log")


def parse(text: str, *, validate: bool = True) -> DomainDef:
    return DomainDef.parse(text, source="<test>", validate=validate)


def fake_bzimage(path: Path) -> None:
    """A file QEMU's x86 loader accepts as a Linux bzImage (never run: QEMU stays paused)."""
    b = bytearray(65536)
    b[0x1f1] = 4  # setup sectors
    b[0x202:0x206] = b"HdrS"
    b[0x206:0x208] = struct.pack("<H", 0x020F)  # boot protocol 2.15
    b[0x211] = 1  # loaded high
    b[0x22C:0x230] = struct.pack("<I", 0x7FFFFFFF)  # initrd_addr_max
    path.write_bytes(bytes(b))


def materialize(definition: DomainDef, workdir: Path) -> None:
    """Point every disk, kernel and file of a fixture at small files in ``workdir``:
    qcow2/raw images made with qemu-img (16 MiB), a fake bzImage, an empty initrd."""
    r = definition.root
    for i, disk in enumerate(r.findall("devices/disk")):
        src = disk.find("source")
        if src is None or not src.get("file"):
            continue
        drv = disk.find("driver")
        fmt = (drv.get("type") if drv is not None else None) or "raw"
        if disk.get("device") == "cdrom":
            img = workdir / f"cd{i}.iso"
            img.write_bytes(b"\0" * 2048 * 16)
        else:
            img = workdir / f"disk{i}.{fmt}"
            if not img.exists():
                subprocess.run([QEMU_IMG, "create", "-q", "-f", fmt, str(img), "16M"], check=True)
        src.set("file", str(img))
    kernel = r.find("os/kernel")
    if kernel is not None:
        fake_bzimage(workdir / "vmlinuz")
        kernel.text = str(workdir / "vmlinuz")
    initrd = r.find("os/initrd")
    if initrd is not None:
        (workdir / "initrd").write_bytes(b"\0" * 512)
        initrd.text = str(workdir / "initrd")


def tcg(definition: DomainDef) -> DomainDef:
    """virt-install writes type='kvm' and host-passthrough; /dev/kvm is unreliable here."""
    r = definition.root
    r.set("type", "qemu")
    cpu = r.find("cpu")
    if cpu is not None and cpu.get("mode") == "host-passthrough":
        cpu.attrib.clear()
        cpu.set("mode", "host-model")
    return definition


@contextmanager
def runtime_dir():
    """A short runtime directory (unix socket paths must stay under 108 bytes)."""
    d = tempfile.mkdtemp(prefix="vta-", dir="/tmp")
    try:
        os.chmod(d, 0o700)
        os.mkdir(os.path.join(d, "chardev"))
        yield paths(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextmanager
def running(argv: list[str], rp: RuntimePaths, timeout: float = 15.0):
    """Start QEMU with ``argv`` (which has -S), yield a QMP connection on
    ``rp.qmp``, then ``quit`` it; the QEMU log is in any failure message."""
    log = open(rp.log, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(rp.qmp):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError(f"QEMU did not start (rc {proc.returncode}):\n"
                                     + Path(rp.log).read_text(errors="replace") + "\nargv: " + repr(argv))
            time.sleep(0.02)
        try:
            q = QMP(rp.qmp, timeout=timeout)
        except Exception as exc:
            proc.wait(timeout)
            raise AssertionError(f"QEMU failed ({exc}, rc {proc.returncode}):\n"
                                 + Path(rp.log).read_text(errors="replace") + "\nargv: " + repr(argv)) from None
        with q:
            yield q
            try:
                q.command("quit")
            except Exception:  # QEMU may close the socket before replying
                pass
        assert proc.wait(timeout) == 0, Path(rp.log).read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
