#!/usr/bin/env python3
"""Storage volumes: virtctl against its peers, side by side (issue 10).

Run as a script, never collected by pytest:

    python tests/bench/bench_storage.py [--quick] [--count 10000] [--size-mib 512]

* ``vol-create-as`` (raw, sparse and fully allocated; qcow2) in the default
  pool of a ``qemu:///embed`` root, against ``qemu-img create`` (and
  ``fallocate``) of the same image directly;
* ``vol-list`` of a pool of COUNT volumes: virtctl on the QEMU driver (COUNT
  real files) and on the test driver, and ``virsh -c test:///NODE`` with a
  node file whose pool has the same COUNT inline volumes;
* ``vol-upload`` / ``vol-download`` of a SIZE MiB file (random data) against
  ``cp`` and ``dd bs=1M conv=fsync`` of the same file on the same file system
  (vol-upload syncs: ``cp`` is shown both without and with a ``sync``).

Every figure is the median wall time of N fresh processes (5; 3 with --quick).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def virtctl_bin() -> str:
    beside = Path(sys.executable).parent / "virtctl"
    return str(beside) if beside.exists() else (shutil.which("virtctl") or "virtctl")


def timed(argv: list[str], *, before=None, runs: int = 5, timeout: float = 600) -> float:
    out = []
    for _ in range(runs):
        if before:
            before()
        t = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
        out.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.decode(errors='replace')}")
    return statistics.median(out)


def row(label: str, ours: float, peer_label: str, peer: float | None, extra: str = "") -> None:
    ratio = f"{ours / peer:6.2f}x" if peer else "      "
    ptxt = f"{peer * 1000:9.1f} ms" if peer is not None else "        —   "
    print(f"{label:<34} {ours * 1000:9.1f} ms   {peer_label:<30} {ptxt}  {ratio} {extra}")


def node_xml(count: int) -> str:
    vols = "".join(f"  <volume><name>v{i:05d}.raw</name><capacity>1048576</capacity>"
                   f"<allocation>0</allocation><target/></volume>\n" for i in range(count))
    return ("<node>\n<pool type='dir'>\n  <name>big</name>\n  <uuid>35bb2ad9-388a-cdfe-461a-b8907f6e53ff</uuid>\n"
            "  <capacity>1099511627776000</capacity>\n  <allocation>0</allocation>\n"
            "  <available>1099511627776000</available>\n  <target><path>/big</path></target>\n"
            f"{vols}</pool>\n</node>\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--count", type=int, default=10000, help="volumes in the vol-list pool")
    ap.add_argument("--size-mib", type=int, default=512, help="size of the uploaded file")
    a = ap.parse_args()
    runs = 3 if a.quick else 5
    vc = virtctl_bin()
    qimg = shutil.which("qemu-img")
    virsh = shutil.which("virsh")
    work = Path(tempfile.mkdtemp(prefix="bench-storage-", dir=os.environ.get("BENCH_DIR", "/var/tmp")))
    root = work / "root"
    uri = f"qemu:///embed?root={root}"
    images = root / "images"
    subprocess.run([vc, "-c", uri, "pool-list"], check=True, stdout=subprocess.DEVNULL)
    images.mkdir(parents=True, exist_ok=True)
    print(f"virtctl {vc}; files in {work}; median of {runs} runs\n")
    print(f"{'virtctl':<34} {'':>12}   {'peer':<30}")

    # --- vol-create-as vs qemu-img create
    def rm(*paths):
        def f():
            for p in paths:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        return f
    for label, vargs, peer in [
        ("vol-create-as raw 1G --alloc 0", ["v.raw", "1G", "--allocation", "0"],
         [qimg, "create", "-q", "-f", "raw", str(work / "p.raw"), "1G"]),
        ("vol-create-as raw 1G (allocated)", ["v.raw", "1G"],
         ["sh", "-c", f"{qimg} create -q -f raw {work / 'p.raw'} 1G && fallocate -l 1G {work / 'p.raw'}"]),
        ("vol-create-as qcow2 10G", ["v.raw", "10G", "--format", "qcow2"],
         [qimg, "create", "-q", "-f", "qcow2", str(work / "p.raw"), "10G"]),
    ]:
        ours = timed([vc, "-c", uri, "vol-create-as", "default", *vargs], before=rm(images / "v.raw"), runs=runs)
        theirs = timed(peer, before=rm(work / "p.raw"), runs=runs)
        row(label, ours, "qemu-img create" + (" + fallocate" if "allocated" in label else ""), theirs)
    rm(images / "v.raw", work / "p.raw")()

    # --- vol-list of COUNT volumes
    for i in range(a.count):
        with open(images / f"v{i:05d}.raw", "wb") as f:
            f.truncate(1 << 20)
    node = work / "node.xml"
    node.write_text(node_xml(a.count))
    lruns = max(1, runs // 2)
    ours = timed([vc, "-c", uri, "vol-list", "default"], runs=lruns)
    ours_d = timed([vc, "-c", uri, "vol-list", "default", "--details"], runs=lruns)
    ours_t = timed([vc, "-c", f"test://{node}", "vol-list", "big"], runs=lruns)
    theirs = timed([virsh, "-c", f"test://{node}", "vol-list", "big"], runs=lruns) if virsh else None
    theirs_d = timed([virsh, "-c", f"test://{node}", "vol-list", "big", "--details"], runs=lruns) if virsh else None
    row(f"vol-list {a.count} (qemu, files)", ours, "virsh test driver, same count", theirs)
    row(f"vol-list --details {a.count} (qemu)", ours_d, "virsh test driver --details", theirs_d)
    row(f"vol-list {a.count} (test driver)", ours_t, "virsh test driver", theirs)
    for i in range(a.count):
        os.unlink(images / f"v{i:05d}.raw")

    # --- vol-upload / vol-download vs cp / dd
    size = a.size_mib << 20
    src = work / "src.bin"
    with open(src, "wb") as f:
        for _ in range(a.size_mib):
            f.write(os.urandom(1 << 20))
    subprocess.run([vc, "-c", uri, "vol-create-as", "default", "u.raw", str(size)], check=True,
                   stdout=subprocess.DEVNULL)
    mb = a.size_mib
    up = timed([vc, "-c", uri, "vol-upload", "--pool", "default", "u.raw", str(src)], runs=runs)
    cp = timed(["cp", str(src), str(work / "cp.bin")], before=rm(work / "cp.bin"), runs=runs)
    cps = timed(["sh", "-c", f"cp {src} {work / 'cp.bin'} && sync {work / 'cp.bin'}"], before=rm(work / "cp.bin"),
                runs=runs)
    dd = timed(["dd", f"if={src}", f"of={work / 'cp.bin'}", "bs=1M", "conv=fsync", "status=none"],
               before=rm(work / "cp.bin"), runs=runs)
    row(f"vol-upload {mb} MiB", up, "cp", cp, f"({mb / up:.0f} vs {mb / cp:.0f} MiB/s)")
    row("", up, "cp + sync", cps, f"({mb / up:.0f} vs {mb / cps:.0f} MiB/s)")
    row("", up, "dd bs=1M conv=fsync", dd, f"({mb / up:.0f} vs {mb / dd:.0f} MiB/s)")
    down = timed([vc, "-c", uri, "vol-download", "--pool", "default", "u.raw", str(work / "d.bin")],
                 before=rm(work / "d.bin"), runs=runs)
    cpv = timed(["cp", str(images / "u.raw"), str(work / "d.bin")], before=rm(work / "d.bin"), runs=runs)
    row(f"vol-download {mb} MiB", down, "cp of the volume file", cpv, f"({mb / down:.0f} vs {mb / cpv:.0f} MiB/s)")
    # sparse: a volume that is mostly holes
    subprocess.run([vc, "-c", uri, "vol-create-as", "default", "s.raw", str(size), "--allocation", "0"], check=True,
                   stdout=subprocess.DEVNULL)
    downs = timed([vc, "-c", uri, "vol-download", "--pool", "default", "s.raw", str(work / "d.bin"), "--sparse"],
                  before=rm(work / "d.bin"), runs=runs)
    cpss = timed(["cp", "--sparse=always", str(images / "s.raw"), str(work / "d.bin")], before=rm(work / "d.bin"),
                 runs=runs)
    row(f"vol-download --sparse {mb} MiB hole", downs, "cp --sparse=always", cpss)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
