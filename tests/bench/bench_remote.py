#!/usr/bin/env python3
"""virtctl+ssh:// against plain ``ssh host virtctl ...``, in one run.

    python tests/bench/bench_remote.py [--runs N]

Starts the tests' own sshd on 127.0.0.1 (tests/sshd_fixture.py), then times,
as fresh processes (median of N runs, default 15): ``list --all`` and
``dominfo test`` through ``virtctl -c virtctl+ssh://127.0.0.1/...`` and
through ``ssh 127.0.0.1 virtctl -c URI ...``, on test:///default and on an
empty qemu:///embed root; and ten ``dominfo`` in one command string (one
ssh session) against ten ``ssh`` runs.  Each once with a fresh ssh
connection per run and once with ssh's ControlMaster (the same master for
both sides).  Not run by pytest.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshd_fixture import SshServer  # noqa: E402

VIRTCTL = str(Path(sys.executable).parent / "virtctl")


def timed(argv, env, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=120)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"{argv}: {r.stderr.decode()}")
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="vt-bench-remote-"))
    srv = SshServer.start(base / "sshd")
    embed = base / "embed"
    embed.mkdir()
    try:
        cm = srv.dir / "ssh_config_cm"
        cm.write_text(f"Host 127.0.0.1\n  ControlMaster auto\n  ControlPath {srv.dir}/cm-%C\n"
                      "  ControlPersist 120\n" + srv.ssh_config.read_text())
        print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
              f"(1/5/15 min), {os.cpu_count()} CPUs; median of {a.runs} runs, ms")
        print(f"{'':44} {'virtctl+ssh://':>15} {'ssh host virtctl':>17}")
        for label, cfg in (("fresh ssh connection", srv.ssh_config), ("ControlMaster", cm)):
            env = dict(os.environ, VIRTCTL_SSH_COMMAND=f"ssh -F {cfg}", NO_COLOR="1")
            ssh = ["ssh", "-F", str(cfg), "-o", "BatchMode=yes", "127.0.0.1"]
            if cfg is cm:  # start the master, outside the timings
                subprocess.run(ssh + ["true"], check=True, env=env)
            print(f"-- {label}")
            for target, remote_path, local in (
                    ("test:///default", "/default?driver=test", "test:///default"),
                    ("qemu:///embed", f"/embed?root={embed}", f"qemu:///embed?root={embed}")):
                uri = f"virtctl+ssh://127.0.0.1{remote_path}{'&' if '?' in remote_path else '?'}command={VIRTCTL}"
                for cmd in (["list", "--all"], ["dominfo", "test"]):
                    if cmd[0] == "dominfo" and target != "test:///default":
                        continue
                    ours = timed([VIRTCTL, "-c", uri, *cmd], env, a.runs)
                    theirs = timed(ssh + [f"{VIRTCTL} -c '{local}' {' '.join(cmd)}"], env, a.runs)
                    print(f"{target + ' ' + ' '.join(cmd):44} {ours:15.1f} {theirs:17.1f}")
            ten = "; ".join(["dominfo test"] * 10)
            ours = timed([VIRTCTL, "-c", f"virtctl+ssh://127.0.0.1/default?driver=test&command={VIRTCTL}", ten],
                         env, max(3, a.runs // 3))
            t0 = time.perf_counter()
            for _ in range(max(3, a.runs // 3)):
                for _ in range(10):
                    subprocess.run(ssh + [f"{VIRTCTL} -c test:///default dominfo test"], stdout=subprocess.DEVNULL,
                                   check=True, env=env)
            theirs = (time.perf_counter() - t0) * 1000 / max(3, a.runs // 3)
            print(f"{'10 x dominfo (one session vs 10 ssh runs)':44} {ours:15.1f} {theirs:17.1f}")
            if cfg is cm:
                subprocess.run(ssh[:-1] + ["-O", "exit", "127.0.0.1"], env=env, capture_output=True)
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
