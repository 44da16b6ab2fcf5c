"""Benchmark: disk hotplug through virtctl vs the same QMP commands issued directly.

    python tests/bench/bench_hotplug.py [--runs 5]

One running test guest (pc machine, TCG) under ``qemu:///embed?root=...``.
Per run, both ways on the same domain, one after the other:

* virtctl: ``virtctl attach-disk g IMG vdb --subdriver qcow2 --live`` (one-shot:
  lock, checks, blockdev-add x2, device_add, live definition written), then the
  time until the guest lists ``vdb`` in /sys/block (polled over its console);
  ``virtctl detach-disk g vdb --live`` (device_del, DEVICE_DELETED, blockdev-del);
* raw QMP (tests/qmp_raw.py on the domain's QMP socket): blockdev-add x2 +
  device_add, same wait for the guest; device_del + DEVICE_DELETED + blockdev-del x2.

Medians; prints a table; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
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
  <os><type machine='pc'>hvm</type><kernel>{k}</kernel><initrd>{i}</initrd><cmdline>{c}</cmdline></os>
  <features><acpi/></features>
  <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{boot}'/>
  <target dev='vda' bus='virtio'/></disk><serial type='pty'/><console type='pty'/></devices>
</domain>
"""


def _virtctl() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "virtctl")
    return beside if os.path.exists(beside) else shutil.which("virtctl")


class Guest:
    def __init__(self, sock_dir: Path):
        self.log = sock_dir / "chardev" / "serial0.log"
        self.path = str(sock_dir / "chardev" / "serial0.sock")

    def send(self, line: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.path)
            s.sendall(line.encode() + b"\n")
            time.sleep(0.05)  # (closing at once can lose the line)

    def run(self, cmd: str) -> list[str]:
        start = len(self.log.read_bytes())
        self.send(f"run {cmd}")
        sent = time.monotonic()
        while True:
            text = self.log.read_bytes()[start:].decode(errors="replace")
            if "VIRTCTL-GUEST-DONE" in text:
                return [ln.split(" ", 1)[1] for ln in text.splitlines() if ln.startswith("VIRTCTL-GUEST-OUT ")]
            if time.monotonic() - sent > 3:  # just after boot the console may not listen yet: ask again
                start = len(self.log.read_bytes())
                self.send(f"run {cmd}")
                sent = time.monotonic()
            time.sleep(0.01)

    def wait_block(self, name: str, present: bool, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (name in self.run("ls /sys/block")) != present:
            if time.monotonic() > deadline:
                raise SystemExit(f"guest never {'saw' if present else 'lost'} {name}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    g = build_guest()
    virtctl = _virtctl()
    with tempfile.TemporaryDirectory(prefix="bench-hotplug-") as tmp:
        tmp = Path(tmp)
        uri = f"qemu:///embed?root={tmp / 'root'}"
        boot, img = tmp / "boot.raw", tmp / "data.qcow2"
        boot.write_bytes(b"\0" * (1 << 20))
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "16M"], check=True)
        (tmp / "g.xml").write_text(XML.format(k=g.kernel, i=g.initrd, c=g.cmdline, boot=boot))

        def vc(*a):
            t = time.perf_counter()
            r = subprocess.run([virtctl, "-c", uri, *a], capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"virtctl {' '.join(a)}: {r.stderr}")
            return time.perf_counter() - t

        vc("define", str(tmp / "g.xml"))
        vc("start", "g")
        sys.path.insert(0, str(HERE.parents[1]))
        from virtctl.drivers.qemu.state import StateRoot

        state = StateRoot.for_uri("/embed", {"root": str(tmp / "root")})
        uuid = json.loads(subprocess.run([virtctl, "-c", uri, "--json", "dominfo", "g"], capture_output=True,
                                         text=True).stdout)["uuid"]
        rec = json.loads(Path(state.record_file(uuid)).read_text())
        guest = Guest(Path(state.sock_dir(uuid)))
        deadline = time.monotonic() + 180
        while "VIRTCTL-GUEST-READY" not in guest.log.read_text(errors="replace"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rows = {k: [] for k in ("vc_attach", "vc_seen", "vc_detach", "raw_attach", "raw_seen", "raw_detach")}
        try:
            for _ in range(args.runs):
                t0 = time.perf_counter()
                rows["vc_attach"].append(vc("attach-disk", "g", str(img), "vdb", "--subdriver", "qcow2", "--live"))
                guest.wait_block("vdb", True)
                rows["vc_seen"].append(time.perf_counter() - t0)
                rows["vc_detach"].append(vc("detach-disk", "g", "vdb", "--live"))
                guest.wait_block("vdb", False)

                t0 = time.perf_counter()
                with QMP(rec["paths"]["qmp"], timeout=10) as q:
                    q.command("blockdev-add", {"driver": "file", "filename": str(img), "node-name": "raw-s",
                                               "read-only": False})
                    q.command("blockdev-add", {"driver": "qcow2", "file": "raw-s", "node-name": "raw-f",
                                               "read-only": False})
                    q.command("device_add", {"driver": "virtio-blk-pci", "drive": "raw-f", "id": "raw-disk",
                                             "bus": "pci.0", "addr": "0x10"})
                rows["raw_attach"].append(time.perf_counter() - t0)
                guest.wait_block("vdb", True)
                rows["raw_seen"].append(time.perf_counter() - t0)
                t1 = time.perf_counter()
                with QMP(rec["paths"]["qmp"], timeout=10) as q:
                    q.command("device_del", {"id": "raw-disk"})
                    q.wait_event("DEVICE_DELETED", timeout=30,
                                 match=lambda e: (e.get("data") or {}).get("device") == "raw-disk")
                    q.command("blockdev-del", {"node-name": "raw-f"})
                    q.command("blockdev-del", {"node-name": "raw-s"})
                rows["raw_detach"].append(time.perf_counter() - t1)
                guest.wait_block("vdb", False)
        finally:
            subprocess.run([virtctl, "-c", uri, "destroy", "g"], capture_output=True)
    med = {k: statistics.median(v) * 1000 for k, v in rows.items()}
    print(f"disk hotplug, median of {args.runs} runs (ms)        virtctl   raw QMP")
    print(f"  attach command returns                   {med['vc_attach']:8.0f}  {med['raw_attach']:8.0f}")
    print(f"  attach until the guest lists vdb         {med['vc_seen']:8.0f}  {med['raw_seen']:8.0f}")
    print(f"  detach (device_del .. DEVICE_DELETED ..) {med['vc_detach']:8.0f}  {med['raw_detach']:8.0f}")


if __name__ == "__main__":
    main()
