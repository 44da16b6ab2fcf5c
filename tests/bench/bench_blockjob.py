"""Benchmark: block jobs through virtctl vs the same QMP job issued directly.

    python tests/bench/bench_blockjob.py [--mib 256] [--runs 3]

One running test guest (TCG) whose vda is top.qcow2 (holding N MiB of
data, written with qemu-io before the start) over an empty base.qcow2:

* copy: ``virtctl blockcopy g vda DEST --wait --finish`` (qemu-img create,
  blockdev-add, blockdev-mirror, wait for ready, cancel, node cleanup) vs
  the same over a raw QMP socket (tests/qmp_raw.py: blockdev-add x2,
  blockdev-mirror, poll query-block-jobs until ready, block-job-cancel,
  job-dismiss, blockdev-del x2), each to a fresh qemu-img created file;
* commit: ``virtctl blockcommit g vda --active --keep-overlay`` (the top's N
  MiB into the base, the overlay kept so that every run does the same work)
  vs block-commit over raw QMP (poll until ready, block-job-cancel,
  job-dismiss).

virtctl's figure includes its process start (one-shot command).  Medians of
``--runs``.  Prints a table; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from guest.build import build_guest  # noqa: E402
from qmp_raw import QMP  # noqa: E402

XML = """<domain type='qemu'>
  <name>g</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type machine='pc'>hvm</type><kernel>{kernel}</kernel><initrd>{initrd}</initrd><cmdline>{cmdline}</cmdline></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{top}'/>
      <target dev='vda' bus='virtio'/></disk>
    <serial type='pty'/><console type='pty'/>
  </devices>
</domain>
"""


def virtctl_bin() -> str:
    exe = Path(sys.executable).with_name("virtctl")
    return str(exe) if exe.exists() else (shutil.which("virtctl") or "virtctl")


def wait_job(q, job: str, want: str) -> None:
    while True:
        for j in q.command("query-block-jobs"):
            if j["device"] == job and (j.get("ready") if want == "ready" else j["status"] == want):
                return
        time.sleep(0.02)


def raw_copy(sock: str, src_node: str, dest: str, mib: int) -> float:
    t = time.perf_counter()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", dest, f"{mib * 2}M"], check=True)
    with QMP(sock, timeout=30) as q:
        q.command("blockdev-add", {"driver": "file", "filename": dest, "node-name": "rawc-s"})
        q.command("blockdev-add", {"driver": "qcow2", "file": "rawc-s", "node-name": "rawc-f", "backing": None})
        q.command("blockdev-mirror", {"job-id": "rawcopy", "device": src_node, "target": "rawc-f",
                                      "sync": "full", "auto-dismiss": False})
        wait_job(q, "rawcopy", "ready")
        q.command("block-job-cancel", {"device": "rawcopy"})
        wait_job(q, "rawcopy", "concluded")
        q.command("job-dismiss", {"id": "rawcopy"})
        q.command("blockdev-del", {"node-name": "rawc-f"})
        q.command("blockdev-del", {"node-name": "rawc-s"})
    return time.perf_counter() - t


def raw_commit(sock: str, top_node: str, base_node: str) -> float:
    t = time.perf_counter()
    with QMP(sock, timeout=30) as q:
        q.command("block-commit", {"job-id": "rawcommit", "device": top_node, "base-node": base_node,
                                   "auto-dismiss": False})
        wait_job(q, "rawcommit", "ready")
        q.command("block-job-cancel", {"device": "rawcommit"})
        wait_job(q, "rawcommit", "concluded")
        q.command("job-dismiss", {"id": "rawcommit"})
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    g = build_guest()
    tmp = Path(tempfile.mkdtemp(prefix="bench-blockjob-"))
    root, vc = tmp / "root", virtctl_bin()
    uri = f"qemu:///embed?root={root}"
    base, top = tmp / "base.qcow2", tmp / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), f"{a.mib * 2}M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(top)], check=True)
    subprocess.run(["qemu-io", "-c", f"write -P 0x5a 0 {a.mib}M", str(top)], check=True, capture_output=True)
    (tmp / "g.xml").write_text(XML.format(kernel=g.kernel, initrd=g.initrd, cmdline=g.cmdline, top=top))

    def v(*args):
        return subprocess.run([vc, "-c", uri, *args], check=True, capture_output=True, text=True).stdout

    v("define", str(tmp / "g.xml"))
    v("start", "g")
    try:
        from virtctl.drivers.qemu.state import StateRoot

        import virtctl

        conn = virtctl.open(uri)
        uuid = conn.lookup_domain("g").uuid
        rec = json.loads(Path(StateRoot.for_uri("/embed", {"root": str(root)}).record_file(uuid)).read_text())
        sock = rec["paths"]["qmp"]
        with QMP(sock, timeout=30) as q:
            top_node = next(b["inserted"]["node-name"] for b in q.command("query-block") if b.get("inserted"))
            base_node = next(n["node-name"] for n in q.command("query-named-block-nodes", {"flat": True})
                             if n.get("file") == str(base) and n["drv"] == "qcow2")
        res = {"copy": ([], []), "commit": ([], [])}
        for i in range(a.runs):
            dest = tmp / f"vc-copy{i}.qcow2"
            t = time.perf_counter()
            v("blockcopy", "g", "vda", str(dest), "--wait", "--finish")
            res["copy"][0].append(time.perf_counter() - t)
            res["copy"][1].append(raw_copy(sock, top_node, str(tmp / f"raw-copy{i}.qcow2"), a.mib))
            for p in (dest, tmp / f"raw-copy{i}.qcow2"):
                os.unlink(p)
            t = time.perf_counter()
            v("blockcommit", "g", "vda", "--active", "--keep-overlay")
            res["commit"][0].append(time.perf_counter() - t)
            res["commit"][1].append(raw_commit(sock, top_node, base_node))
        print(f"block jobs, {a.mib} MiB of data, TCG guest, medians of {a.runs} runs")
        print(f"{'job':<10}{'virtctl':>12}{'raw QMP':>12}{'MiB/s virtctl':>16}{'MiB/s raw':>12}")
        for k, (ours, raw) in res.items():
            mo, mr = statistics.median(ours), statistics.median(raw)
            print(f"{k:<10}{mo:>11.3f}s{mr:>11.3f}s{a.mib / mo:>16.0f}{a.mib / mr:>12.0f}")
    finally:
        subprocess.run([vc, "-c", uri, "destroy", "g"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
