"""Benchmark: starting the test guest with no NIC, with QEMU's user
networking plus a port forward (slirp ``hostfwd``), and with passt plus the
same forward, side by side.

    python tests/bench/bench_portforward.py [--runs 5]

Per variant and run, on ``qemu:///embed?root=TMP``:

* start: ``virtctl start`` (one-shot; returns with the guest running; for
  passt this includes spawning passt and waiting for its socket);
* ready: from the start command to the guest's ``VIRTCTL-GUEST-READY``
  console line;
* http: from the start command to the first answer of the guest's httpd
  fetched through the forwarded port on 127.0.0.1 (``-`` without a NIC);
* destroy: ``virtctl destroy`` (kills passt too).

Medians of ``--runs`` runs; TCG; the test guest of tests/guest/build.py.
Prints a table; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
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
  <devices>{nic}<serial type='pty'/><console type='pty'/></devices>
</domain>
"""
NIC = ("<interface type='user'>{backend}<model type='virtio'/><portForward proto='tcp' address='127.0.0.1'>"
       "<range start='{port}' to='80'/></portForward></interface>")


def _virtctl() -> str:
    here = Path(sys.executable).parent / "virtctl"
    return str(here) if here.exists() else (shutil.which("virtctl") or "virtctl")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if b"VIRTCTL-GUEST-HTTP" in r.read():
                    return True
        except OSError:
            time.sleep(0.02)
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    g = build_guest()
    v = _virtctl()
    base = Path(tempfile.mkdtemp(prefix="vbpf-"))
    uri = f"qemu:///embed?root={base / 'root'}"
    sys.path.insert(0, str(HERE.parents[1]))
    from virtctl.drivers.qemu.state import StateRoot

    state = StateRoot.for_uri("/embed", {"root": str(base / "root")})
    variants = [("no NIC", None), ("user + hostfwd", ""), ("passt", "<backend type='passt'/>")]
    if shutil.which("passt") is None:
        variants = variants[:2]
    results = {}
    try:
        for label, backend in variants:
            name = "b" + str(len(results))
            port = _free_port()
            nic = "" if backend is None else NIC.format(backend=backend, port=port)
            xml = base / f"{name}.xml"
            xml.write_text(XML.format(name=name, k=g.kernel, i=g.initrd, c=g.cmdline, nic=nic))
            subprocess.run([v, "-c", uri, "define", str(xml)], check=True, capture_output=True)
            rows = {"start": [], "ready": [], "http": [], "destroy": []}
            for _ in range(args.runs + 1):  # the first run warms caches: not counted
                t0 = time.monotonic()
                subprocess.run([v, "-c", uri, "start", name], check=True, capture_output=True)
                t1 = time.monotonic()
                uuid = subprocess.run([v, "-c", uri, "domuuid", name], check=True, capture_output=True,
                                      text=True).stdout.strip()
                log = Path(state.sock_dir(uuid)) / "chardev" / "serial0.log"
                deadline = t0 + 120
                while time.monotonic() < deadline:
                    try:
                        if g.ready_line in log.read_text(errors="replace"):
                            break
                    except FileNotFoundError:
                        pass
                    time.sleep(0.01)
                t2 = time.monotonic()
                ok = backend is not None and _http(port, t0 + 120)
                t3 = time.monotonic()
                subprocess.run([v, "-c", uri, "destroy", name], check=True, capture_output=True)
                t4 = time.monotonic()
                if _ == 0:
                    continue
                rows["start"].append(t1 - t0)
                rows["ready"].append(t2 - t0)
                if ok:
                    rows["http"].append(t3 - t0)
                rows["destroy"].append(t4 - t3)
            results[label] = rows
    finally:
        subprocess.run([v, "-c", uri, "destroy", "b1"], capture_output=True)
        subprocess.run([v, "-c", uri, "destroy", "b2"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    def med(xs):
        return f"{statistics.median(xs) * 1000:8.0f}" if xs else f"{'-':>8}"

    print(f"guest start, medians of {args.runs} runs (ms), TCG, virtctl {v}")
    print(f"{'variant':<16} {'start':>8} {'ready':>8} {'http':>8} {'destroy':>8}")
    for label, rows in results.items():
        print(f"{label:<16} {med(rows['start'])} {med(rows['ready'])} {med(rows['http'])} {med(rows['destroy'])}")


if __name__ == "__main__":
    os.environ.pop("VIRTCTL_DEFAULT_URI", None)
    main()
