#!/usr/bin/env python3
"""Completion latency: a bash TAB on a domain name, virtctl versus virsh,
and a TAB in virtctl's interactive shell.

Run as a script, never collected by pytest:

    python tests/bench/bench_completion.py [--runs N]

* bash TAB, virtctl: one ``virtctl __complete`` process, exactly as the
  bash script runs it (``--format bash --line ... --cur ...``), listing the
  domains of ``test:///default``;
* bash TAB, virsh: ``virsh -c test:///default complete -- destroy --domain t``
  (virsh 9.0's own completion entry, which bash-completion's virsh script calls);
* shell TAB: the engine call the interactive shell makes, with the metadata
  cache warm (no process, no hypervisor).

Processes are timed with ``time.perf_counter`` around ``subprocess.run``;
the table shows the median and the minimum of N runs.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def find_virtctl() -> str | None:
    beside = Path(sys.executable).parent / "virtctl"
    return str(beside) if beside.exists() else shutil.which("virtctl")


def time_process(argv: list[str], runs: int, expect: str) -> list[float]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    assert expect in out, (argv, out)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        times.append(time.perf_counter() - t)
    return times


def time_shell_tab(runs: int) -> list[float]:
    from virtctl.cli.cache import MetadataCache
    from virtctl.cli.complete import CachedCommandSource, complete, split_partial
    from virtctl.cli.session import Session

    session = Session(uri="test:///default")
    session.conn  # noqa: B018 - the shell connects at start
    cache = MetadataCache(session)
    cache.refresh()
    cache.wait(1)
    commands = CachedCommandSource()
    text = "destroy t"
    words, inc, _ = split_partial(text)
    assert complete(words, inc, cache.metadata, commands).values() == ["test"]  # warm
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        words, inc, _ = split_partial(text)
        complete(words, inc, cache.metadata, commands)
        times.append(time.perf_counter() - t)
    session.close()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    rows = []
    virtctl = find_virtctl()
    if virtctl:
        line = "virtctl -c test:///default destroy t"
        rows.append(("bash TAB, virtctl __complete (1 process)",
                     time_process([virtctl, "__complete", "--format", "bash", "--line", line, "--cur", "t"],
                                  args.runs, "test")))
        rows.append(("bash TAB, virtctl, command name (no process)", None))
        rows.append(("python -c pass (interpreter floor)",
                     time_process([sys.executable, "-c", "print('test')"], args.runs, "test")))
    virsh = shutil.which("virsh")
    if virsh:
        rows.append(("bash TAB, virsh complete (1 process)",
                     time_process([virsh, "-c", "test:///default", "complete", "--", "destroy", "--domain", "t"],
                                  args.runs, "test")))
    rows.append(("shell TAB, virtctl engine, cache warm", time_shell_tab(args.runs * 50)))
    print(f"{'case':<48} {'median':>10} {'min':>10}")
    print("-" * 70)
    for name, times in rows:
        if times is None:
            print(f"{name:<48} {'0':>10} {'-':>10}")
            continue
        med, lo = statistics.median(times), min(times)
        fmt = (lambda s: f"{s * 1e6:.0f} us") if med < 1e-3 else (lambda s: f"{s * 1e3:.1f} ms")
        print(f"{name:<48} {fmt(med):>10} {fmt(lo):>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
