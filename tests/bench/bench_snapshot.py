"""Benchmark: QEMU-driver snapshots.

    python tests/bench/bench_snapshot.py [--runs 5] [--snapshots 1000]

* ``snapshot-create-as`` of a running 256 MiB test guest on a qcow2 disk
  (one-shot virtctl: lock, checks, pending.json, QMP ``snapshot-save`` job,
  wait, dismiss, metadata) vs the same ``snapshot-save`` job issued directly
  on the same QEMU's QMP socket (connect, job, poll ``query-jobs``,
  ``job-dismiss``); runs alternate, each with a new tag;
* ``snapshot-list`` (and ``--tree``) of a shut-off domain with N snapshots
  (metadata written through store.py, as the driver writes it: a tree where
  snapshot i's parent is i // 2) vs ``virsh -c test:///default`` listing N
  snapshots made in the same process (the time of "N creates + list" minus
  "N creates", median of runs).

Medians; TCG; prints a table, asserts nothing.
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

XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type machine='pc'>hvm</type><kernel>{k}</kernel><initrd>{i}</initrd><cmdline>{c}</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='pty'/><console type='pty'/>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{disk}'/>
      <target dev='vda' bus='virtio'/></disk></devices>
</domain>
"""


def _virtctl() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "virtctl")
    return beside if os.path.exists(beside) else shutil.which("virtctl")


# an installed virtctl runs from .pyc files: let this one write and use them
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=ENV, **kw)
    return time.perf_counter() - t, r


def direct_save(qmp_path: str, tag: str, node: str) -> float:
    from qmp_raw import QMP

    t = time.perf_counter()
    with QMP(qmp_path, timeout=60) as q:
        q.command("snapshot-save", {"job-id": f"b-{tag}", "tag": tag, "vmstate": node, "devices": [node]})
        while True:
            jobs = {j["id"]: j for j in q.command("query-jobs")}
            if jobs[f"b-{tag}"]["status"] == "concluded":
                assert "error" not in jobs[f"b-{tag}"], jobs
                q.command("job-dismiss", {"id": f"b-{tag}"})
                break
            time.sleep(0.005)
    return time.perf_counter() - t


def bench_create(runs: int) -> tuple[list[float], list[float], list[float]]:
    virtctl = _virtctl()
    g = build_guest()
    root = tempfile.mkdtemp(prefix="vbs-")
    uri = f"qemu:///embed?root={root}"
    disk = os.path.join(root, "d.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "64M"], check=True)
    f = Path(root + ".xml")
    f.write_text(XML.format(name="g", k=g.kernel, i=g.initrd, c=g.cmdline, disk=disk))
    subprocess.run([virtctl, "-c", uri, "define", str(f)], check=True, capture_output=True)
    subprocess.run([virtctl, "-c", uri, "start", "g"], check=True, capture_output=True)
    try:
        from virtctl.drivers.qemu.state import StateRoot

        st = StateRoot.for_uri("/embed", {"root": root})
        uuid = st.defined_uuids()[0]
        log = Path(st.sock_dir(uuid)) / "chardev" / "serial0.log"
        deadline = time.monotonic() + 120
        while g.ready_line not in (log.read_text(errors="replace") if log.exists() else ""):
            assert time.monotonic() < deadline, "the guest did not boot"
            time.sleep(0.1)
        rec = json.loads(Path(st.record_file(uuid)).read_text())
        qmp_path = rec["paths"]["qmp"]
        out = subprocess.run([virtctl, "-c", uri, "qemu-monitor-command", "g", '{"execute":"query-block"}'],
                             check=True, capture_output=True, text=True).stdout
        node = [b["inserted"]["node-name"] for b in json.loads(out)["return"] if b.get("inserted")][0]
        ours, direct, floor = [], [], []
        timed([virtctl, "-c", uri, "snapshot-create-as", "g", "warm-up"])  # byte-compiles
        for n in range(runs):
            t, r = timed([virtctl, "-c", uri, "snapshot-create-as", "g", f"v{n}"])
            assert r.returncode == 0, r.stderr
            ours.append(t)
            direct.append(direct_save(qmp_path, f"d{n}", node))
            floor.append(timed([virtctl, "-c", uri, "domstate", "g"])[0])
        return ours, direct, floor
    finally:
        subprocess.run([virtctl, "-c", uri, "destroy", "g"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        f.unlink(missing_ok=True)


def bench_list(count: int, runs: int) -> dict[str, list[float]]:
    from virtctl.drivers.qemu.snapshot.store import Store
    from virtctl.drivers.qemu.state import StateRoot
    from virtctl.xml import xmlapi

    virtctl = _virtctl()
    root = tempfile.mkdtemp(prefix="vbl-")
    uri = f"qemu:///embed?root={root}"
    disk = os.path.join(root, "d.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "16M"], check=True)
    f = Path(root + ".xml")
    f.write_text(XML.format(name="l", k="/k", i="/i", c="", disk=disk))
    subprocess.run([virtctl, "-c", uri, "define", str(f)], check=True, capture_output=True)
    st = StateRoot.for_uri("/embed", {"root": root})
    uuid = st.defined_uuids()[0]
    store = Store(st, uuid)
    dom = xmlapi.parse(Path(st.domain_xml(uuid)).read_bytes())
    for i in range(count):
        doc = xmlapi.element("domainsnapshot")
        xmlapi.sub(doc, "name", text=f"s{i}")
        xmlapi.sub(doc, "state", text="shutoff")
        if i:
            xmlapi.sub(xmlapi.sub(doc, "parent"), "name", text=f"s{i // 2}")
        xmlapi.sub(doc, "creationTime", text=str(1_700_000_000 + i))
        xmlapi.sub(doc, "memory", {"snapshot": "no"})
        xmlapi.sub(xmlapi.sub(doc, "disks"), "disk", {"name": "vda", "snapshot": "internal"})
        doc.append(xmlapi.copy(dom))
        store.write(doc)
    store.set_current(f"s{count - 1}")
    out: dict[str, list[float]] = {"list": [], "tree": [], "virsh": []}
    timed([virtctl, "-c", uri, "snapshot-list", "l"])  # warm-up
    try:
        for _ in range(runs):
            t, r = timed([virtctl, "-c", uri, "snapshot-list", "l"])
            assert r.returncode == 0 and r.stdout.count("\n") >= count, r.stderr
            out["list"].append(t)
            t, r = timed([virtctl, "-c", uri, "snapshot-list", "l", "--tree"])
            assert r.returncode == 0, r.stderr
            out["tree"].append(t)
        if shutil.which("virsh"):
            creates = "; ".join(f"snapshot-create-as test s{i}" for i in range(count))
            for _ in range(runs):
                a, r = timed(["virsh", "-q", "-c", "test:///default", creates])
                b, r2 = timed(["virsh", "-q", "-c", "test:///default", creates + "; snapshot-list test"])
                assert r2.returncode == 0, r2.stderr
                out["virsh"].append(max(0.0, b - a))
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)
        f.unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--snapshots", type=int, default=1000)
    a = ap.parse_args()
    med = statistics.median
    ours, direct, floor = bench_create(a.runs)
    print(f"snapshot-create-as, running 256 MiB guest (median of {a.runs}):")
    print(f"  virtctl snapshot-create-as (one-shot)  {med(ours) * 1000:8.1f} ms")
    print(f"  QMP snapshot-save job, direct          {med(direct) * 1000:8.1f} ms")
    print(f"  virtctl domstate (one-shot floor)      {med(floor) * 1000:8.1f} ms")
    print(f"  virtctl overhead                       {(med(ours) - med(direct)) * 1000:8.1f} ms")
    r = bench_list(a.snapshots, a.runs)
    print(f"snapshot-list of {a.snapshots} snapshots (median of {a.runs}):")
    print(f"  virtctl snapshot-list (qemu, on disk)  {med(r['list']) * 1000:8.1f} ms")
    print(f"  virtctl snapshot-list --tree           {med(r['tree']) * 1000:8.1f} ms")
    if r["virsh"]:
        print(f"  virsh snapshot-list (test driver, in memory; list part only)"
              f"  {med(r['virsh']) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
