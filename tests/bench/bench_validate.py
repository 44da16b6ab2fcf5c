"""Benchmark: parse + validate time of virtctl against virt-xml-validate.

Run as ``python tests/bench/bench_validate.py`` (not collected by pytest).
Prints the median of several runs for the largest domain file of the libvirt
corpus and for a generated domain with 500 disks, through virtctl
(xmlapi.parse + validate.validate, schemas already compiled, and a cold
first run) and through ``virt-xml-validate`` (a process per run) where it is
installed.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from virtctl.xml import validate as V
from virtctl.xml import xmlapi

SHARED = Path(os.environ.get("VIRTCTL_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
CORPUS = SHARED / "corpus" / "libvirt-9.0"
RUNS = 15


def many_disks(n: int = 500) -> str:
    disks = []
    for i in range(n):
        bus, slot = divmod(i, 32)
        disks.append(
            f"    <disk type='file' device='disk'>\n"
            f"      <driver name='qemu' type='qcow2' cache='none'/>\n"
            f"      <source file='/var/lib/images/disk{i}.qcow2'/>\n"
            f"      <target dev='vd{i}' bus='virtio'/>\n"
            f"      <address type='pci' domain='0x0000' bus='0x{bus + 1:02x}' slot='0x{slot:02x}' function='0x0'/>\n"
            f"    </disk>\n")
    return ("<domain type='kvm'>\n  <name>many</name>\n  <memory unit='MiB'>1024</memory>\n"
            "  <vcpu>2</vcpu>\n  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n  </os>\n"
            "  <devices>\n" + "".join(disks) + "  </devices>\n</domain>\n")


def median_ms(fn, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    cases = []
    domain_files = sorted((CORPUS / "domain" / "valid").glob("*.xml"), key=lambda p: p.stat().st_size)
    if domain_files:
        big = domain_files[-1]
        cases.append((f"largest corpus domain ({big.name}, {big.stat().st_size} B)", big.read_bytes()))
    gen = many_disks().encode()
    cases.append((f"generated domain, 500 disks ({len(gen)} B)", gen))

    tool = shutil.which("virt-xml-validate") if shutil.which("xmllint") else None
    t = time.perf_counter()
    V.validate(xmlapi.parse(cases[-1][1]))
    cold = (time.perf_counter() - t) * 1000
    print(f"first validation in this process (loads and compiles the schema): {cold:.1f} ms")
    print(f"{'document':<58} {'virtctl':>12} {'virt-xml-validate':>18}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in cases:
            ours = median_ms(lambda: V.validate(xmlapi.parse(data), "domain"))
            peer = "not installed"
            if tool:
                path = Path(tmp) / "doc.xml"
                path.write_bytes(data)
                peer_ms = median_ms(lambda: subprocess.run([tool, str(path), "domain"],
                                                           capture_output=True, check=True), runs=5)
                peer = f"{peer_ms:.1f} ms"
            print(f"{name:<58} {ours:>9.1f} ms {peer:>18}")
        # the diagnosis path: a bad value deep in the 500-disk domain
        bad = gen.replace(b"<target dev='vd499' bus='virtio'/>", b"<target dev='vd499' bus='virtioo'/>")
        def diagnose():
            try:
                V.validate(xmlapi.parse(bad), "domain", text=bad)
            except Exception:
                pass
        print(f"{'500 disks, one bad bus (diagnosis to the culprit)':<58} {median_ms(diagnose, 5):>9.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
