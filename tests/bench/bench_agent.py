"""Guest agent round trips: the raw socket, agent.py's session, the QEMU
driver's agent_command (in process) and one-shot virtctl commands, against
the test guest's qemu-ga (tests/guest recipe 5) under TCG.

    python tests/bench/bench_agent.py [--runs N]

Not a test (pytest never collects it).  Medians of N runs, in ms:

* raw: connect, 0xFF + guest-sync-delimited, guest-ping, close (the floor:
  what any client must do);
* session: the same through agent.Session (plus the agent lock);
* driver: QemuDomainDriver.agent_command (the domain lock, the live
  definition, QMP query-chardev, then the session);
* cli: ``virtctl domstate`` (the one-shot floor), ``virtctl domtime`` and
  ``virtctl qemu-agent-command`` (if it exists) as fresh processes;
* virsh: ``virsh -c qemu:///embed?root=...`` where libvirt's QEMU driver
  is installed, else ``-``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))


def raw_ping(path: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b'\xff{"execute":"guest-sync-delimited","arguments":{"id":4242}}\n')
        buf = b""
        while b"\xff" not in buf or b"\n" not in buf.rsplit(b"\xff", 1)[-1]:  # qemu-ga may answer the
            buf += s.recv(4096)                                           # 0xFF itself first (an error)
        s.sendall(b'{"execute":"guest-ping"}\n')
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(4096)
        assert json.loads(buf) == {"return": {}}


def session_ping(t) -> None:

    from virtctl.drivers.qemu import agent

    with agent.Session(t.path, lock_path=t.lock_path) as s:
        assert s.call("guest-ping") == {}


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    from guest.build import build_guest
    from integration.test_qemu_driver import Env

    virtctl_bin = shutil.which("virtctl")
    base = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    env = Env(base / "root", build_guest())
    xml = env.xml("ba").replace("<serial type='pty'/>", "<channel type='unix'><target type='virtio' "
                                "name='org.qemu.guest_agent.0'/></channel>\n    <serial type='pty'/>")
    (base / "ba.xml").write_text(xml)
    try:
        env.ok("define", str(base / "ba.xml"))
        env.ok("start", "ba")
        uuid = env.uuid("ba")
        env.wait_ready(uuid)
        drv = env.conn._dom_driver
        deadline = time.monotonic() + 120
        while True:
            try:
                drv.agent_command(uuid, '{"execute":"guest-ping"}')
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        t = drv._agent_target(uuid)
        rows = [("raw socket: sync + guest-ping", median_ms(lambda: raw_ping(t.path), args.runs)),
                ("agent.Session: sync + guest-ping", median_ms(lambda: session_ping(t), args.runs)),
                ("driver agent_command (in process)",
                 median_ms(lambda: drv.agent_command(uuid, '{"execute":"guest-ping"}'), args.runs)),
                ("driver guest_info (7 commands, one sync)", median_ms(lambda: drv.guest_info(uuid), args.runs))]
        cli = [("virtctl domstate (one-shot floor, no agent)", ["domstate", "ba"]),
               ("virtctl domtime (one-shot process)", ["domtime", "ba"])]
        run_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # run from .pyc
        probe = subprocess.run([virtctl_bin, "-c", env.uri, "help", "qemu-agent-command"], capture_output=True)
        if probe.returncode == 0:
            cli.append(("virtctl qemu-agent-command (one-shot)", ["qemu-agent-command", "ba",
                                                                 '{"execute":"guest-ping"}']))
        for label, argv in cli:
            rows.append((label, median_ms(lambda: subprocess.run([virtctl_bin, "-c", env.uri, *argv], check=True,
                                                                 stdout=subprocess.DEVNULL, env=run_env),
                                          args.runs)))
        print(f"{'case':48} {'median ms':>10}   (runs: {args.runs})")
        for label, ms in rows:
            print(f"{label:48} {ms:10.1f}")
        print(f"{'virsh qemu-agent-command (peer)':48} {'-':>10}   (needs libvirt's QEMU driver: not installed)"
              if not os.path.exists("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so")
              else "")
    finally:
        env.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
