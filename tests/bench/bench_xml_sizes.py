"""Benchmark: how `define` and `validate` grow with hostile document sizes.

Run as ``python tests/bench/bench_xml_sizes.py [--runs N]`` (not collected by
pytest).  Prints two tables, numbers only:

1. the installed ``virtctl`` as a user runs it (a process per run, median of
   ``--runs``): ``define`` of a domain with 100, 1,000 and 10,000 disks on
   ``test:///default`` and on ``qemu:///embed?root=TMP``, and ``validate``
   of a domain whose root element has 1,000, 10,000 and 100,000 attributes.
   Sizes past the documented limits (xmlapi.MAX_ATTRIBUTES,
   domain_checks.MAX_DEVICES) are refused: the table shows how fast;
2. the XML layer in-process with those limits lifted (parse, validate,
   normalise, format; or parse and validate for the attributes, whose
   culprit finder reports the unknown ones), so that the growth of the
   algorithms themselves is visible: it should be about linear.
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

DISKS = (100, 1_000, 10_000)
ATTRS = (1_000, 10_000, 100_000)


def _dev(i: int) -> str:
    s, i = "", i + 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return "vd" + s


def domain_xml(name: str, disks: int = 0, attrs: int = 0) -> str:
    extra = "".join(f" a{i}='x'" for i in range(attrs))
    devs = "".join(
        f"    <disk type='file' device='disk'>\n"
        f"      <driver name='qemu' type='raw'/>\n"
        f"      <source file='/var/lib/images/{name}-{i}.img'/>\n"
        f"      <target dev='{_dev(i)}' bus='virtio'/>\n"
        f"    </disk>\n" for i in range(disks))
    return (f"<domain type='qemu'{extra}>\n  <name>{name}</name>\n  <memory unit='MiB'>64</memory>\n"
            f"  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n"
            f"  <devices>\n{devs}  </devices>\n</domain>\n")


def _virtctl() -> str:
    exe = Path(sys.executable).with_name("virtctl")
    return str(exe) if exe.exists() else (shutil.which("virtctl") or "virtctl")


def timed_cli(argv: list[str], runs: int) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - t)
        if p.returncode == 0:
            outcome = "ok"
        else:
            err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
            msg = err[-1][7:] if err else p.stderr.strip()[:80]
            outcome = f"exit {p.returncode}: " + msg.split(".xml", 1)[-1].lstrip(":0123456789 ")
    return statistics.median(times), outcome


def cli_table(tmp: Path, runs: int) -> None:
    exe = _virtctl()
    print(f"1. installed virtctl ({exe}), median of {runs} run(s)\n")
    print(f"{'case':46} {'seconds':>8}  outcome")
    for n in DISKS:
        path = tmp / f"disks{n}.xml"
        path.write_text(domain_xml(f"disks{n}", disks=n))
        for label, uri in (("test:///default", "test:///default"),
                           ("qemu:///embed", f"qemu:///embed?root={tmp}/embed-{n}")):
            # a fresh embed root per run: each define is a first define
            def one(run: int, uri=uri) -> list[str]:
                u = uri + (f"-{run}" if uri.startswith("qemu") else "")
                return [exe, "-c", u, "define", str(path)]
            times, outcome = [], ""
            for r in range(runs):
                secs, outcome = timed_cli(one(r), 1)
                times.append(secs)
            print(f"{'define ' + f'{n:,} disks (' + label + ')':46} {statistics.median(times):8.3f}  "
                  f"{outcome[:100]}")
    for n in ATTRS:
        path = tmp / f"attrs{n}.xml"
        path.write_text(domain_xml(f"attrs{n}", attrs=n))
        secs, outcome = timed_cli([exe, "validate", str(path)], runs)
        print(f"{'validate ' + f'{n:,} attributes':46} {secs:8.3f}  {outcome[:100]}")
    print()


def model_table(runs: int) -> None:
    from virtctl.errors import XMLError
    from virtctl.xml import domain as D
    from virtctl.xml import domain_checks as C
    from virtctl.xml import validate as V
    from virtctl.xml import xmlapi

    lifted = [(xmlapi, "MAX_ATTRIBUTES"), (xmlapi, "MAX_CHILDREN"), (xmlapi, "MAX_WIDE_CHILDREN"),
              (xmlapi, "MAX_ELEMENTS"), (C, "MAX_DEVICES")]
    saved = [getattr(m, n) for m, n in lifted]
    for m, n in lifted:
        setattr(m, n, 10**9)
    try:
        print(f"2. the XML layer in-process, limits lifted, median of {runs} run(s) "
              f"(schemas compiled beforehand)\n")
        V.parse_and_validate(domain_xml("warm"), "domain")
        print(f"{'case':46} {'seconds':>8}  {'per item (us)':>13}")
        for n in DISKS:
            data = domain_xml(f"disks{n}", disks=n).encode()

            def define_like(data=data) -> None:
                d = D.DomainDef.parse(data, source="bench.xml")
                d.normalize()
                d.to_xml()
            secs = statistics.median(_time(define_like) for _ in range(runs))
            print(f"{'parse+validate+normalize+format ' + f'{n:,} disks':46} {secs:8.3f}  "
                  f"{secs / n * 1e6:13.1f}")
        for n in ATTRS:
            data = domain_xml(f"attrs{n}", attrs=n).encode()

            def validate_like(data=data) -> None:
                try:
                    V.parse_and_validate(data, "domain", source="bench.xml")
                except XMLError:
                    pass  # the unknown attributes, as expected
            secs = statistics.median(_time(validate_like) for _ in range(runs))
            print(f"{'parse+validate ' + f'{n:,} attributes':46} {secs:8.3f}  {secs / n * 1e6:13.1f}")
    finally:
        for (m, n), v in zip(lifted, saved):
            setattr(m, n, v)


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per case (median shown)")
    args = ap.parse_args()
    os.environ.pop("VIRTCTL_DEFAULT_URI", None)
    os.environ.pop("LIBVIRT_DEFAULT_URI", None)
    with tempfile.TemporaryDirectory(prefix="bench-xml-sizes-") as tmp:
        cli_table(Path(tmp), args.runs)
    model_table(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
