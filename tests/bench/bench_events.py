"""Benchmark: event latency, from QEMU's event to the line ``virtctl event`` prints.

    python tests/bench/bench_events.py [--runs 30]

One running test guest on an embed root; a follower ``virtctl --json event
--loop --all`` reads the journal.  Each run sends QMP ``stop`` (then
``cont``) on the domain's command socket from this process, which also
receives QEMU's STOP/RESUME event there (the raw QMP peer: what a client
holding its own QMP connection would see).  Per event: the time from
sending the command to (a) the raw QMP event and (b) the follower's line
(the monitor's QMP event -> journal append -> inotify -> print).
libvirtd is the natural peer (``virsh event``); where it is absent (this
machine) the raw QMP figure is the floor to compare with.

Prints medians and 90th percentiles in ms; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_qemu_driver import XML, _virtctl  # noqa: E402
from guest.build import build_guest  # noqa: E402
from qmp_raw import QMP  # noqa: E402


def _lines(fd: int, buf: bytearray, timeout: float):
    """The next complete line from ``fd`` (raw reads), with its arrival time."""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("no line from the follower")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise EOFError("the follower ended")
        buf += chunk
    t = time.perf_counter()
    i = buf.index(b"\n")
    line = bytes(buf[:i])
    del buf[:i + 1]
    return t, json.loads(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    virtctl = _virtctl()
    g = build_guest()
    base = Path(tempfile.mkdtemp(prefix="bench-events-"))
    uri = f"qemu:///embed?root={base / 'root'}"
    xml = base / "g.xml"
    xml.write_text(XML.format(name="g", k=g.kernel, i=g.initrd, c=g.cmdline))
    run = lambda *args: subprocess.run([virtctl, "-c", uri, *args], check=True, capture_output=True, text=True)  # noqa: E731
    run("define", str(xml))
    run("start", "g")
    follower = None
    try:
        from virtctl.drivers.qemu.state import StateRoot

        state = StateRoot.for_uri("/embed", {"root": str(base / "root")})
        uuid = run("domuuid", "g").stdout.strip()
        rec = json.loads(Path(state.record_file(uuid)).read_text())
        follower = subprocess.Popen([virtctl, "-c", uri, "--json", "event", "--loop", "--all"],
                                    stdout=subprocess.PIPE)
        time.sleep(1.0)  # its start-up
        fd, buf = follower.stdout.fileno(), bytearray()
        raw = {"STOP": [], "RESUME": []}
        ours = {"STOP": [], "RESUME": []}
        with QMP(rec["paths"]["qmp"], timeout=10) as q:
            for _ in range(a.runs):
                for cmd, ev, want in (("stop", "STOP", "Suspended"), ("cont", "RESUME", "Resumed")):
                    t0 = time.perf_counter()
                    q.command(cmd)
                    q.wait_event(ev, timeout=10)
                    raw[ev].append(time.perf_counter() - t0)
                    while True:
                        t, doc = _lines(fd, buf, 10)
                        if doc.get("event") == want:
                            break
                    ours[ev].append(t - t0)
                    time.sleep(0.05)
        print(f"event latency, {a.runs} runs each, ms from the QMP command sent "
              f"(median / p90); peer: {'libvirtd' if shutil.which('libvirtd') else 'raw QMP (no libvirtd here)'}")
        print(f"{'event':<10}{'raw QMP event':>20}{'virtctl event line':>22}{'difference':>14}")
        for ev in ("STOP", "RESUME"):
            r, o = sorted(raw[ev]), sorted(ours[ev])
            p90 = lambda xs: xs[int(0.9 * (len(xs) - 1))] * 1000  # noqa: E731
            med_r, med_o = statistics.median(r) * 1000, statistics.median(o) * 1000
            print(f"{ev:<10}{med_r:>11.2f} / {p90(r):6.2f}{med_o:>13.2f} / {p90(o):6.2f}{med_o - med_r:>14.2f}")
    finally:
        if follower is not None:
            follower.terminate()
            follower.wait()
        subprocess.run([virtctl, "-c", uri, "destroy", "g"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
