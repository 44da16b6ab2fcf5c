"""Benchmark: ``domstats`` of N running guests vs the raw QMP queries behind
it, and ``capabilities`` with and without its cache.

    python tests/bench/bench_domstats.py [--guests 3] [--runs 5]

* domstats: one ``virtctl domstats`` (every group, all guests) vs, per
  guest, a bare QMP session (tests/qmp_raw.py) running query-cpus-fast,
  query-balloon, query-blockstats and query-block, plus reading /proc
  (the floor: what any tool must do to get the same figures); in-process
  (API) too, so the CLI start-up is visible;
* capabilities: ``virtctl capabilities`` with its probe cache removed
  before each run vs with the cache in place;
* the test driver: ``domstats`` of a node file with ten running domains,
  ``virsh -c test:///NODE.xml domstats`` vs ``virtctl`` (``--test-only``:
  this part alone, no QEMU).

Medians of ``--runs``; TCG; the test guest of tests/guest/build.py.
Prints a table; asserts nothing.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from guest.build import build_guest  # noqa: E402
from qmp_raw import QMP  # noqa: E402

XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type machine='pc'>hvm</type><kernel>{k}</kernel><initrd>{i}</initrd><cmdline>{c}</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='pty'/><console type='pty'/><memballoon model='virtio'/>
  <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>
"""


def _virtctl() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "virtctl")
    return beside if os.path.exists(beside) else shutil.which("virtctl")


def _median(f, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


NODE_DOMAIN = """  <domain type='test'>
    <name>t{i}</name>
    <memory unit='MiB'>128</memory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
  </domain>
"""


def bench_test_driver(virtctl: str, runs: int, count: int = 10) -> None:
    """domstats of ``count`` running test-driver domains: virsh vs virtctl."""
    virsh = shutil.which("virsh")
    d = tempfile.mkdtemp(prefix="vbt-")
    try:
        node = Path(d) / "node.xml"
        node.write_text("<node>\n" + "".join(NODE_DOMAIN.format(i=i) for i in range(count)) + "</node>\n")
        uri = f"test://{node}"
        env = {"PATH": "/usr/bin:/bin", "HOME": d, "LC_ALL": "C.UTF-8"}

        def one(prog):
            r = subprocess.run([prog, "-c", uri, "domstats"], capture_output=True, text=True, env=env)
            assert r.returncode == 0 and r.stdout.count("Domain: ") == count, r.stderr
            return r.stdout

        ours, theirs = one(virtctl), (one(virsh) if virsh else None)
        print(f"domstats, test driver, {count} running domains (median of {runs}):")
        print(f"  virtctl                     {_median(lambda: one(virtctl), runs) * 1000:8.1f} ms")
        if virsh:
            print(f"  virsh                       {_median(lambda: one(virsh), runs) * 1000:8.1f} ms")
            blocks = lambda text: sorted(text.strip().split("\n\n"))  # noqa: E731 - order: README differs
            print(f"  same records (order aside): {blocks(ours) == blocks(theirs)}")
        start = _median(lambda: subprocess.run([virtctl, "-c", uri, "list --name"], capture_output=True,
                                               env=env), runs)
        print(f"  (virtctl list --name, start-up {start * 1000:6.1f} ms)")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--guests", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--test-only", action="store_true", help="only the test-driver comparison")
    a = ap.parse_args()
    virtctl = _virtctl()
    bench_test_driver(virtctl, a.runs)
    if a.test_only:
        return
    g = build_guest()
    root = tempfile.mkdtemp(prefix="vbs-")
    uri = f"qemu:///embed?root={root}"
    import virtctl as api
    from virtctl.drivers.qemu.state import StateRoot

    state = StateRoot.for_uri("/embed", {"root": root})
    names = [f"g{i}" for i in range(a.guests)]
    try:
        for n in names:
            disk = Path(root + f"-{n}.raw")
            disk.write_bytes(b"\0" * (1 << 20))
            f = Path(root + f"-{n}.xml")
            f.write_text(XML.format(name=n, k=g.kernel, i=g.initrd, c=g.cmdline, disk=disk))
            subprocess.run([virtctl, "-c", uri, "define", str(f)], check=True, capture_output=True)
            subprocess.run([virtctl, "-c", uri, "start", n], check=True, capture_output=True)
        time.sleep(1)
        conn = api.open(uri)
        records = {d.name: Path(state.record_file(d.uuid)) for d in conn.domains()}

        def cli():
            r = subprocess.run([virtctl, "-c", uri, "domstats"], capture_output=True, text=True)
            assert r.returncode == 0 and r.stdout.count("Domain: ") == a.guests, r.stderr

        def inproc():
            assert len(conn.domain_stats()) == a.guests

        def raw():
            import json

            for n in names:
                rec = json.loads(records[n].read_text())
                with QMP(rec["paths"]["qmp"], timeout=5) as q:
                    for c in ("query-status", "query-cpus-fast", "query-balloon", "query-blockstats", "query-block"):
                        q.command(c)
                pid = rec["pid"]
                for tid in os.listdir(f"/proc/{pid}/task"):
                    Path(f"/proc/{pid}/task/{tid}/schedstat").read_text()
                Path(f"/proc/{pid}/stat").read_text()

        t_cli, t_api, t_raw = (_median(f, a.runs) for f in (cli, inproc, raw))

        caps_dir = Path(state.run) / "caps"

        def uncached():
            shutil.rmtree(caps_dir, ignore_errors=True)
            subprocess.run([virtctl, "-c", uri, "capabilities"], check=True, capture_output=True)

        def cached():
            subprocess.run([virtctl, "-c", uri, "capabilities"], check=True, capture_output=True)

        t_unc = _median(uncached, a.runs)
        cached()
        t_cac = _median(cached, a.runs)
        t_nodeinfo = _median(lambda: subprocess.run([virtctl, "-c", uri, "nodeinfo"], check=True,
                                                    capture_output=True), a.runs)
        print(f"domstats, {a.guests} running guests (median of {a.runs}):")
        print(f"  virtctl domstats (CLI)      {t_cli * 1000:8.1f} ms")
        print(f"  API conn.domain_stats()     {t_api * 1000:8.1f} ms")
        print(f"  raw QMP + /proc (floor)     {t_raw * 1000:8.1f} ms")
        print("capabilities:")
        print(f"  uncached (probes QEMU)      {t_unc * 1000:8.1f} ms")
        print(f"  cached                      {t_cac * 1000:8.1f} ms")
        print(f"  (virtctl nodeinfo, start-up {t_nodeinfo * 1000:8.1f} ms)")
    finally:
        for n in names:
            subprocess.run([virtctl, "-c", uri, "destroy", n], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
