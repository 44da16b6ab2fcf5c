#!/usr/bin/env python3
"""One-shot command latency: virtctl versus virsh (and the Python floor).

Run as a script, never collected by pytest:

    python tests/bench/bench_cli.py [--quick]

Every measurement is a fresh process started with ``subprocess.run`` (stdout
to DEVNULL) and timed with ``time.perf_counter``; the table reports the median
of N runs (15 by default, 5 with ``--quick``; 3 / 1 for the large generated
test-driver node files, each run killed after --timeout seconds, default 120).
See tests/bench/README.md.
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
import uuid
from pathlib import Path

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


# --------------------------------------------------------------------------
# locating the tools
# --------------------------------------------------------------------------

def find_virtctl() -> str | None:
    """The virtctl console script of *this* interpreter, if there is one.

    Preferring the script beside sys.executable avoids timing wrapper layers
    such as pyenv's bash shims (tens of ms of extra start-up per run).
    """
    beside = Path(sys.executable).parent / "virtctl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("virtctl")


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else f"unknown (exit {out.returncode})"


# --------------------------------------------------------------------------
# node-file generation
# --------------------------------------------------------------------------

def write_node_file(path: Path, count: int) -> None:
    """A libvirt test-driver node file with *count* inline domains.

    Odd-numbered domains carry ``<test:runstate>5</test:runstate>`` (shut off),
    so about half the domains are inactive.
    """
    parts = ["<node>\n"]
    for i in range(count):
        dom_uuid = uuid.UUID(int=(0x5EED << 96) | i)
        if i % 2:
            head = f"<domain type='test' xmlns:test='{TEST_NS}'>"
            extra = "<test:runstate>5</test:runstate>"
        else:
            head = "<domain type='test'>"
            extra = ""
        parts.append(
            f"  {head}<name>d{i}</name><uuid>{dom_uuid}</uuid>"
            f"<memory>1024</memory><os><type>hvm</type></os>{extra}</domain>\n"
        )
    parts.append("</node>\n")
    path.write_text("".join(parts), encoding="utf-8")


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------

class RunTimedOut(Exception):
    def __init__(self, argv: list[str], timeout: float) -> None:
        super().__init__(f"timed out after {timeout:g} s")
        self.argv = argv
        self.timeout = timeout


class RunFailed(Exception):
    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"exit {returncode}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


def time_once(argv: list[str], env: dict[str, str], timeout: float | None) -> float:
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunTimedOut(argv, timeout or 0.0) from None
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RunFailed(argv, proc.returncode,
                        proc.stderr.decode("utf-8", "replace"))
    return elapsed


def median_ms(argv: list[str] | None, reps: int, env: dict[str, str],
              failures: list[Exception], timeout: float | None = None) -> float | str | None:
    """Median in ms; None if not run or failed, a string such as ">120 s" on timeout."""
    if argv is None:
        return None
    try:
        samples = [time_once(argv, env, timeout) for _ in range(reps)]
    except RunTimedOut as exc:
        failures.append(exc)
        print(f"  !! {' '.join(argv)} {exc}; killed", flush=True)
        return f">{exc.timeout * 1000:.0f}"
    except RunFailed as exc:
        failures.append(exc)
        print(f"  !! {' '.join(argv)} failed ({exc.returncode}):", flush=True)
        for line in exc.stderr.rstrip().splitlines() or ["(no stderr)"]:
            print(f"     {line}", flush=True)
        return None
    except OSError as exc:
        print(f"  !! {' '.join(argv)} could not start: {exc}", flush=True)
        return None
    return statistics.median(samples) * 1000.0


def count_lines(argv: list[str], env: dict[str, str],
                timeout: float | None) -> tuple[int | None, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:g} s"
    if proc.returncode != 0:
        return None, proc.stderr
    return len(proc.stdout.splitlines()), proc.stderr


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def fmt_ms(value: float | str | None) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="5 repetitions (1 for the big node files) instead of 15 (3)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="kill a node-file run after this long (default 120; 0 = never)")
    args = parser.parse_args(argv)
    big_timeout = args.timeout or None

    reps = 5 if args.quick else 15
    big_reps = 1 if args.quick else 3

    virtctl = find_virtctl()
    virsh = shutil.which("virsh")
    py = sys.executable

    # Keep runs independent of the developer's configuration and colours.
    env = dict(os.environ)
    env.pop("VIRTCTL_DEFAULT_URI", None)
    env.pop("LIBVIRT_DEFAULT_URI", None)
    env["NO_COLOR"] = "1"

    print(f"Python   : {sys.version.split()[0]} ({py})")
    if virtctl:
        print(f"virtctl  : {tool_version([virtctl, '--version'])} ({virtctl})")
    else:
        print("virtctl  : NOT FOUND (virtctl rows will show '-')")
    if virsh:
        print(f"virsh    : {tool_version([virsh, '--version'])} ({virsh})")
    else:
        print("virsh    : not found, peer columns skipped")
    print(f"reps     : {reps} (node-file cases: {big_reps}); median of fresh processes")
    print()

    def vc(*a: str) -> list[str] | None:
        return [virtctl, *a] if virtctl else None

    def vs(*a: str) -> list[str] | None:
        return [virsh, *a] if virsh else None

    # (case, virtctl argv, peer argv, peer name, repetitions, timeout)
    cases: list[tuple[str, list[str] | None, list[str] | None, str, int, float | None]] = [
        ("list --all (test:///default)",
         vc("-c", "test:///default", "list", "--all"),
         vs("-c", "test:///default", "list", "--all"), "virsh", reps, None),
        ("dominfo test (test:///default)",
         vc("-c", "test:///default", "dominfo", "test"),
         vs("-c", "test:///default", "dominfo", "test"), "virsh", reps, None),
        ("--json list (test:///default)",
         vc("-c", "test:///default", "--json", "list"),
         None, "-", reps, None),
        ("floor: python -c 'import click'",
         [py, "-c", "import click"], None, "-", reps, None),
        ("floor: python -c pass",
         [py, "-c", "pass"], None, "-", reps, None),
    ]

    failures: list[Exception] = []
    with tempfile.TemporaryDirectory(prefix="virtctl-bench-") as tmp:
        node_files: dict[int, Path] = {}
        for n in (1_000, 10_000):
            path = Path(tmp) / f"node-{n}.xml"
            write_node_file(path, n)
            node_files[n] = path
            uri = f"test://{path}"
            cases.append((f"list --all ({n:,} domains)",
                          vc("-c", uri, "list", "--all"),
                          vs("-c", uri, "list", "--all"), "virsh", big_reps,
                          big_timeout))

        # Sanity check: both tools list the same number of lines.
        uri_1k = f"test://{node_files[1_000]}"
        print(f"Line-count check on the 1,000-domain node file ({uri_1k}):")
        vc_lines = vs_lines = None
        if virtctl:
            vc_lines, vc_err = count_lines([virtctl, "-c", uri_1k, "list", "--all"], env,
                                          big_timeout)
            if vc_lines is None:
                print("  virtctl FAILED:")
                for line in vc_err.rstrip().splitlines() or ["(no stderr)"]:
                    print(f"     {line}")
            else:
                print(f"  virtctl: {vc_lines} lines")
        if virsh:
            vs_lines, vs_err = count_lines([virsh, "-c", uri_1k, "list", "--all"], env,
                                          big_timeout)
            if vs_lines is None:
                print(f"  virsh FAILED: {vs_err.strip()}")
            else:
                print(f"  virsh  : {vs_lines} lines")
        if vc_lines is not None and vs_lines is not None:
            verdict = "SAME" if vc_lines == vs_lines else "DIFFERENT"
            print(f"  => line counts are {verdict}")
        print()

        rows = []
        for name, vc_argv, peer_argv, peer_name, n, limit in cases:
            print(f"timing: {name} ...", flush=True)
            ours = median_ms(vc_argv, n, env, failures, limit)
            peer = median_ms(peer_argv, n, env, failures, limit) if peer_argv else None
            if isinstance(ours, float) and isinstance(peer, float) and peer:
                ratio = f"{ours / peer:.2f}x"
            elif isinstance(ours, str) and isinstance(peer, float) and peer:
                ratio = f">{float(ours[1:]) / peer:.0f}x"
            else:
                ratio = "-"
            rows.append((name, fmt_ms(ours), fmt_ms(peer),
                         peer_name if peer_argv else "-", ratio))

    print()
    header = ("case", "virtctl median (ms)", "peer median (ms)", "peer", "ratio")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(header, widths)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))
    print()
    print("ratio = virtctl / peer (below 1.00x means virtctl is faster).")
    print("The 'floor' rows time the interpreter alone, in the virtctl column.")
    print("'>N' = killed after the --timeout (N ms); the ratio is then a lower bound.")
    if failures:
        print(f"\n{len(failures)} command(s) failed or timed out; see the '!!' lines above.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
