"""Bare-QEMU and QMP-client latencies on this machine (a script, not a test).

    python tests/bench/bench_qemu_bare.py [--runs N] [--qmp-runs N]

Prints one table:
- QEMU (TCG, the test guest of tests/guest/build.py) started with
  ``-daemonize``: until the parent returns, until ``query-status`` says
  running, until the guest prints its ready line; ``quit`` until the process
  is gone (median of --runs, default 5);
- the import cost of ``qemu.qmp`` (``-X importtime`` and wall time of
  ``python -c 'from qemu.qmp import QMPClient'`` vs ``python -c pass``,
  median of --qmp-runs, default 10);
- a one-shot process that connects to a running QEMU's QMP socket,
  negotiates, runs ``query-status`` and exits: qemu.qmp's async QMPClient
  (in asyncio.wait_for) vs tests/qmp_raw.py; and the same call in-process.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from guest.build import build_guest  # noqa: E402
from qmp_raw import QMP, qmp_command  # noqa: E402

PY = sys.executable
QEMU = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"

QEMU_QMP_ONESHOT = r"""
import asyncio, sys
from qemu.qmp import QMPClient
async def main(path):
    c = QMPClient("bench")
    await asyncio.wait_for(c.connect(path), 5)
    try:
        r = await asyncio.wait_for(c.execute("query-status"), 5)
    finally:
        await c.disconnect()
    assert r["status"] == "running", r
asyncio.run(main(sys.argv[1]))
"""

RAW_ONESHOT = r"""
import sys
sys.path.insert(0, sys.argv[2])
from qmp_raw import qmp_command
r = qmp_command(sys.argv[1], "query-status", timeout=5)
assert r["status"] == "running", r
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def median_time(fn, runs: int) -> float:
    return interleaved([fn], runs)[0]


def interleaved(fns, runs: int) -> list[float]:
    """Median time of each of ``fns``, run in turn (A B C A B C ...) so that
    load from other processes on the machine hits all of them alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def run_ok(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def pid_alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return st.rsplit(")", 1)[1].split()[0] != "Z"


class Daemonized:
    """One ``-daemonize`` QEMU running the test guest."""

    def __init__(self, guest):
        self.dir = Path(tempfile.mkdtemp(prefix="vqb-"))
        self.qmp = self.dir / "qmp.sock"
        self.log = self.dir / "serial.log"
        self.argv = [QEMU, "-machine", "pc", "-accel", "tcg", "-m", "256",
                     "-nodefaults", "-no-user-config", "-display", "none",
                     "-serial", f"file:{self.log}",
                     "-qmp", f"unix:{self.qmp},server=on,wait=off",
                     "-pidfile", str(self.dir / "qemu.pid"), "-daemonize",
                     *guest.qemu_args()]
        self.ready_line = guest.ready_line
        self.pid = None

    def start(self) -> dict:
        t0 = time.perf_counter()
        run_ok(self.argv)  # -daemonize: the parent exits once QEMU is set up
        t_parent = time.perf_counter() - t0
        self.pid = int((self.dir / "qemu.pid").read_text())
        while True:
            try:
                with QMP(str(self.qmp), timeout=5) as q:
                    if q.command("query-status")["status"] == "running":
                        break
            except (FileNotFoundError, ConnectionRefusedError):
                pass
            time.sleep(0.001)
        t_running = time.perf_counter() - t0
        while self.ready_line not in self.log.read_text(errors="replace"):
            if time.perf_counter() - t0 > 300:
                raise RuntimeError("guest not ready after 300 s")
            time.sleep(0.02)
        t_ready = time.perf_counter() - t0
        return {"parent": t_parent, "running": t_running, "ready": t_ready}

    def quit(self) -> float:
        t0 = time.perf_counter()
        with QMP(str(self.qmp), timeout=5) as q:
            q.command("quit")
        while pid_alive(self.pid):
            time.sleep(0.001)
        return time.perf_counter() - t0

    def kill(self) -> None:
        if self.pid and pid_alive(self.pid):
            os.kill(self.pid, 9)
        shutil.rmtree(self.dir, ignore_errors=True)


def import_costs(runs: int) -> list[tuple[str, str]]:
    out = subprocess.run([PY, "-X", "importtime", "-c", "from qemu.qmp import QMPClient"],
                         capture_output=True, text=True, check=True).stderr
    cum = {}
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            cum[m.group(4)] = int(m.group(2))
    rows = [("importtime cumulative: qemu.qmp", f"{cum.get('qemu.qmp', 0) / 1000:8.1f} ms"),
            ("  of which asyncio", f"{cum.get('asyncio', 0) / 1000:8.1f} ms")]
    py_pass, py_raw, py_qmp = interleaved([
        lambda: run_ok([PY, "-c", "pass"]),
        lambda: run_ok([PY, "-c", f"import sys; sys.path.insert(0, {str(TESTS)!r}); "
                        "import qmp_raw"]),
        lambda: run_ok([PY, "-c", "from qemu.qmp import QMPClient"])], runs)
    rows += [("python -c pass", ms(py_pass)),
             ("python -c 'import qmp_raw'", ms(py_raw)),
             ("python -c 'from qemu.qmp import QMPClient'", ms(py_qmp)),
             ("  qemu.qmp import cost (wall difference)", ms(py_qmp - py_pass))]
    return rows


def qmp_costs(sock: Path, runs: int) -> list[tuple[str, str]]:
    import asyncio
    from qemu.qmp import QMPClient

    async def qemu_qmp_once():
        c = QMPClient("bench")
        await asyncio.wait_for(c.connect(str(sock)), 5)
        try:
            return await asyncio.wait_for(c.execute("query-status"), 5)
        finally:
            await c.disconnect()

    one_qmp, one_raw = interleaved([
        lambda: run_ok([PY, "-c", QEMU_QMP_ONESHOT, str(sock)]),
        lambda: run_ok([PY, "-c", RAW_ONESHOT, str(sock), str(TESTS)])], runs)
    in_qmp, in_raw = interleaved([
        lambda: asyncio.run(qemu_qmp_once()),
        lambda: qmp_command(str(sock), "query-status")], runs * 2)
    return [("one-shot process, qemu.qmp QMPClient", ms(one_qmp)),
            ("one-shot process, qmp_raw", ms(one_raw)),
            ("in-process connect+query-status, qemu.qmp", ms(in_qmp)),
            ("in-process connect+query-status, qmp_raw", ms(in_raw))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--qmp-runs", type=int, default=10)
    args = ap.parse_args()
    guest = build_guest()
    try:
        import qemu.qmp  # noqa: F401
        have_qmp = True
    except ImportError:
        have_qmp = False

    rows: list[tuple[str, str]] = []
    starts, quits = [], []
    for _ in range(args.runs):
        vm = Daemonized(guest)
        try:
            starts.append(vm.start())
            quits.append(vm.quit())
        finally:
            vm.kill()
    for key, label in (("parent", "QEMU -daemonize: parent returned"),
                       ("running", "QEMU start -> query-status running"),
                       ("ready", "QEMU start -> guest ready line (TCG)")):
        rows.append((label, ms(statistics.median(s[key] for s in starts))))
    rows.append(("QMP quit -> process gone", ms(statistics.median(quits))))

    if have_qmp:
        rows += import_costs(args.qmp_runs)
        vm = Daemonized(guest)
        try:
            vm.start()
            rows += qmp_costs(vm.qmp, args.qmp_runs)
        finally:
            vm.kill()
    else:
        rows.append(("qemu.qmp", "not installed"))

    import platform
    qver = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"# {qver}; Python {platform.python_version()}; {os.cpu_count()} CPUs; "
          f"medians: QEMU x{args.runs}, Python/QMP x{args.qmp_runs}")
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
