"""Benchmark: ``top``'s own CPU use per refresh.

    python tests/bench/bench_top.py [--domains 10] [--frames 20] [--qemu 3]

Runs ``virtctl top --batch --iterations N --delay D`` as a child and takes
its CPU time (user + system, from wait4's rusage) for N = 1 and N = 1 +
``--frames``: the difference over ``--frames`` is the CPU one refresh
costs (a snapshot of every domain, the rates, the frame), start-up left
out.  Also in-process: ``top_frame.sample`` + ``rows`` + ``text_frame``
timed with process_time.  On the test driver with a node file of
``--domains`` running domains; with ``--qemu N`` also on qemu:///embed with
N running test guests (tests/guest/build.py).  Prints figures; asserts
nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

NODE_DOMAIN = ("  <domain type='test'><name>t{i}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
               "<os><type>hvm</type></os></domain>\n")
GUEST = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type machine='pc'>hvm</type><kernel>{k}</kernel><initrd>{i}</initrd><cmdline>{c}</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='pty'/><console type='pty'/><memballoon model='virtio'/></devices>
</domain>
"""


def _virtctl() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "virtctl")
    return beside if os.path.exists(beside) else shutil.which("virtctl")


def _child_cpu(argv: list[str]) -> float:
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0, p.stderr.read()
    return ru.ru_utime + ru.ru_stime


def per_refresh(virtctl: str, uri: str, frames: int, delay: float) -> tuple[float, float]:
    """(CPU seconds of one refresh, of start-up + the first frame)."""
    base = [virtctl, "-c", uri, "top", "--batch", "--delay", str(delay), "--iterations"]
    one = min(_child_cpu(base + ["1"]) for _ in range(3))
    many = min(_child_cpu(base + [str(1 + frames)]) for _ in range(2))
    return max(0.0, many - one) / frames, one


def in_process(uri: str, frames: int) -> float:
    import virtctl as api
    from virtctl.commands import top_frame as tf

    conn = api.open(uri)
    try:
        prev = tf.sample(conn)
        t = time.process_time()
        for _ in range(frames):
            cur = tf.sample(conn)
            tf.text_frame(tf.sort_rows(tf.rows(prev, cur), "cpu"))
            prev = cur
        return (time.process_time() - t) / frames
    finally:
        conn.close()


def report(label: str, virtctl: str, uri: str, frames: int, delay: float) -> None:
    cpu, first = per_refresh(virtctl, uri, frames, delay)
    inproc = in_process(uri, frames)
    print(f"{label}:")
    print(f"  CPU per refresh (child, {frames} frames)  {cpu * 1000:7.2f} ms  "
          f"({cpu / delay * 100:.2f}% of one CPU at --delay {delay:g})")
    print(f"  CPU per refresh (in-process)         {inproc * 1000:7.2f} ms")
    print(f"  start-up + first frame (CPU)         {first * 1000:7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=10)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--qemu", type=int, default=0, help="also N running QEMU test guests")
    a = ap.parse_args()
    virtctl = _virtctl()
    d = tempfile.mkdtemp(prefix="vbtop-")
    try:
        node = Path(d) / "node.xml"
        node.write_text("<node>\n" + "".join(NODE_DOMAIN.format(i=i) for i in range(a.domains)) + "</node>\n")
        report(f"top, test driver, {a.domains} running domains", virtctl, f"test://{node}", a.frames, a.delay)
        if a.qemu:
            from guest.build import build_guest

            g = build_guest()
            root = Path(d) / "root"
            uri = f"qemu:///embed?root={root}"
            names = [f"g{i}" for i in range(a.qemu)]
            try:
                for n in names:
                    f = Path(d) / f"{n}.xml"
                    f.write_text(GUEST.format(name=n, k=g.kernel, i=g.initrd, c=g.cmdline))
                    subprocess.run([virtctl, "-c", uri, "define", str(f)], check=True, capture_output=True)
                    subprocess.run([virtctl, "-c", uri, "start", n], check=True, capture_output=True)
                time.sleep(2)
                report(f"top, qemu:///embed, {a.qemu} running guests", virtctl, uri, a.frames, a.delay)
            finally:
                for n in names:
                    subprocess.run([virtctl, "-c", uri, "destroy", n], capture_output=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
