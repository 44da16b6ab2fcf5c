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
    parser.add_argument("--virtctl", metavar="PATH",
                        help="the virtctl to time (default: the one beside this python)")
    args = parser.parse_args(argv)
    big_timeout = args.timeout or None

    reps = 5 if args.quick else 15
    big_reps = 1 if args.quick else 3

    virtctl = args.virtctl or find_virtctl()
    virsh = shutil.which("virsh")
    py = sys.executable

    # Keep runs independent of the developer's configuration and colours.
    env = dict(os.environ)
    env.pop("VIRTCTL_DEFAULT_URI", None)
    env.pop("LIBVIRT_DEFAULT_URI", None)
    env.pop("VIRSH_DEFAULT_CONNECT_URI", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time byte-compiled code, as an install runs
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

    failures: list[Exception] = []
    with tempfile.TemporaryDirectory(prefix="virtctl-bench-") as tmp:
        qroot = Path(tmp) / "qemu-root"
        quri = f"qemu:///embed?root={qroot}"
        qxml = Path(tmp) / "g.xml"
        qxml.write_text("<domain type='qemu'><name>g</name><memory unit='MiB'>64</memory>"
                        "<os><type>hvm</type></os></domain>\n", encoding="utf-8")
        have_qemu = virtctl is not None and subprocess.run(
            [virtctl, "-c", quri, "define", str(qxml)], capture_output=True, env=env).returncode == 0
        vroot = Path(tmp) / "virsh-root"
        virsh_quri = f"qemu:///embed?root={vroot}"
        have_virsh_qemu = virsh is not None and subprocess.run(
            [virsh, "-q", "-c", virsh_quri, "define", str(qxml)], capture_output=True,
            env=env).returncode == 0

        # one-shot commands: (case, virtctl argv, virsh argv)
        one_shot = []
        for label, uri, vuri, dom, ok, vok in (
                ("test", "test:///default", "test:///default", "test", True, virsh is not None),
                ("qemu", quri, virsh_quri, "g", have_qemu, have_virsh_qemu)):
            for cmd in (["list", "--all"], ["dominfo", dom], ["domstate", dom]):
                one_shot.append((f"{' '.join(cmd)} ({label})",
                                 vc("-c", uri, *cmd) if ok else None,
                                 vs("-c", vuri, *cmd) if vok else None))
        one_shot.append(("--json list (test)", vc("-c", "test:///default", "--json", "list"), None))

        rows = []
        floors = ([py, "-c", "pass"], [py, "-c", "import click"])
        for name, vc_argv, peer_argv in one_shot:
            print(f"timing: {name} ...", flush=True)
            if vc_argv:
                median_ms(vc_argv, 1, env, failures)  # warm-up: byte-compile, page cache
            # interleaved runs (floor, floor+click, virtctl, virsh, floor, ...): a
            # change in the machine's load weighs on every column alike
            samples = interleaved([*floors, vc_argv, peer_argv], reps, env, failures)
            f_py, f_click, ours, peer = (statistics.median(x) * 1000 if x else None for x in samples)
            over = (statistics.median(a - b for a, b in zip(samples[2], samples[1])) * 1000
                    if samples[2] and samples[1] else None)
            rows.append((name, fmt_ms(ours), fmt_ms(f_py), fmt_ms(f_click), fmt_ms(over),
                         fmt_ms(peer), _ratio(ours, peer)))

        # batch mode: N commands on stdin in one process, per-command cost
        batch_rows = []
        for label, uri, dom, ok in (("test", "test:///default", "test", True), ("qemu", quri, "g", have_qemu)):
            if not (virtctl and ok):
                continue
            print(f"timing: batch dominfo ({label}) ...", flush=True)
            per = batch_cost(virtctl, uri, f"dominfo {dom}", env, failures, reps)
            batch_rows.append((f"stdin batch: dominfo ({label}), per command", per))

        node_rows = []
        node_files: dict[int, Path] = {}
        for n in (1_000, 10_000):
            path = Path(tmp) / f"node-{n}.xml"
            write_node_file(path, n)
            node_files[n] = path
        uri_1k = f"test://{node_files[1_000]}"
        print(f"Line-count check on the 1,000-domain node file ({uri_1k}):")
        vc_lines = vs_lines = None
        if virtctl:
            vc_lines, vc_err = count_lines([virtctl, "-c", uri_1k, "list", "--all"], env, big_timeout)
            print(f"  virtctl: {vc_lines} lines" if vc_lines is not None else f"  virtctl FAILED: {vc_err}")
        if virsh:
            vs_lines, vs_err = count_lines([virsh, "-c", uri_1k, "list", "--all"], env, big_timeout)
            print(f"  virsh  : {vs_lines} lines" if vs_lines is not None else f"  virsh FAILED: {vs_err}")
        if vc_lines is not None and vs_lines is not None:
            print(f"  => line counts are {'SAME' if vc_lines == vs_lines else 'DIFFERENT'}")
        for n, path in node_files.items():
            uri = f"test://{path}"
            name = f"list --all ({n:,} domains, test node file)"
            print(f"timing: {name} ...", flush=True)
            ours = median_ms(vc("-c", uri, "list", "--all"), big_reps, env, failures, big_timeout)
            peer = median_ms(vs("-c", uri, "list", "--all"), big_reps, env, failures, big_timeout)
            node_rows.append((name, fmt_ms(ours), fmt_ms(peer), _ratio(ours, peer)))

    print()
    print_table(("one-shot command", "virtctl", "python -c pass", "python+click", "virtctl-click",
                 "virsh", "virtctl/virsh"), rows)
    print()
    print("ms, median of fresh processes; 'virtctl-click' is the median of the paired differences\n(virtctl run minus the python+click run next to it): the overhead above that floor.")
    print()
    print_table(("batch (one process, commands on stdin)", "ms per command"),
                [(name, f"{per:.3f}" if isinstance(per, float) else "-") for name, per in batch_rows])
    print()
    print_table(("large node files", "virtctl", "virsh", "virtctl/virsh"), node_rows)
    print()
    print("'>N' = killed after the --timeout (N ms); the ratio is then a lower bound.")
    print("QEMU start/destroy against bare QEMU and list --all of 1,000 QEMU domains:"
          " tests/bench/bench_qemu_driver.py.")
    if failures:
        print(f"\n{len(failures)} command(s) failed or timed out; see the '!!' lines above.")
    return 1 if failures else 0


def interleaved(argvs: list[list[str] | None], reps: int, env: dict[str, str],
                failures: list[Exception]) -> list[list[float]]:
    """``reps`` rounds, each running every argv once in turn; the samples (s)
    of each argv ([] for None or a failure)."""
    out: list[list[float]] = [[] for _ in argvs]
    dead = [a is None for a in argvs]
    for _ in range(reps):
        for i, argv in enumerate(argvs):
            if dead[i]:
                continue
            try:
                out[i].append(time_once(argv, env, None))
            except (RunFailed, OSError) as exc:
                failures.append(exc)
                print(f"  !! {' '.join(argv)} failed: {exc}", flush=True)
                dead[i], out[i] = True, []
    return out


def _ratio(ours, peer) -> str:
    if isinstance(ours, float) and isinstance(peer, float) and peer:
        return f"{ours / peer:.2f}x"
    if isinstance(ours, str) and isinstance(peer, float) and peer:
        return f">{float(ours[1:]) / peer:.0f}x"
    return "-"


def batch_cost(virtctl: str, uri: str, command: str, env: dict[str, str],
               failures: list[Exception], reps: int, n: int = 1000) -> float | None:
    """(time of N lines on stdin - time of 1 line) / (N - 1), in ms: the cost
    of one more command in the stdin batch mode."""
    def run(lines: int) -> float | None:
        data = (command + "\n") * lines
        samples = []
        for _ in range(max(3, reps // 3)):
            start = time.perf_counter()
            proc = subprocess.run([virtctl, "-c", uri], input=data.encode(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env)
            samples.append(time.perf_counter() - start)
            if proc.returncode:
                failures.append(RunFailed([virtctl, "-c", uri], proc.returncode, proc.stderr.decode()))
                print(f"  !! batch '{command}' on {uri} failed: {proc.stderr.decode().strip()}")
                return None
        return statistics.median(samples)

    one, many = run(1), run(n)
    if one is None or many is None:
        return None
    return max(0.0, (many - one) / (n - 1) * 1000.0)


def print_table(header: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))


if __name__ == "__main__":
    sys.exit(main())
