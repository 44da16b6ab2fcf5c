"""Benchmark: the native QEMU driver vs bare QEMU vs libvirt's embedded driver.

    python tests/bench/bench_qemu_driver.py [--runs 5] [--domains 1000]
    python tests/bench/bench_qemu_driver.py --one-call [--runs 15] [--virtctl PATH]

* start: ``virtctl -c qemu:///embed?root=... start g`` (one-shot, returns with
  the guest running: QEMU + QMP + monitor + ``cont``) vs bare QEMU with the
  same argv (spawn, QMP greeting, ``cont``) vs ``virsh -c qemu:///embed?root=...
  start`` (libvirt 9.0's embedded driver; its qemu.conf in ROOT/etc is set to
  log to files, run QEMU as the current user, no security driver);
* destroy: ``virtctl destroy`` vs SIGTERM + wait on bare QEMU vs libvirt (where a
  one-shot ``virsh destroy`` works: it does not with libvirt 9.0's embed, whose
  next process does not re-attach to the VM, so we time ``start; destroy`` in one
  virsh process and subtract the start);
* ``list --all`` with N defined domains (seeded by ``define`` through the API).

``--one-call``: only ``virtctl -c URI 'start g; destroy g'`` against bare QEMU's
start+destroy, the two alternated run by run (a shared machine's load then
weighs on both alike), after one warm-up run; ``--virtctl`` times another build.

Medians of ``--runs`` runs; TCG; the test guest of tests/guest/build.py.
Prints a table; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from guest.build import build_guest  # noqa: E402

XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type machine='pc'>hvm</type><kernel>{k}</kernel><initrd>{i}</initrd><cmdline>{c}</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='pty'/><console type='pty'/></devices>
</domain>
"""


def _virtctl() -> str:
    """The virtctl beside this interpreter (run the bench with a venv's python
    to time an installed, byte-compiled virtctl), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "virtctl")
    return beside if os.path.exists(beside) else shutil.which("virtctl")


def timed(argv, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    return time.perf_counter() - t, r


def bench_virtctl(xml: str, runs: int) -> tuple[list[float], list[float], str]:
    virtctl = _virtctl()
    root = tempfile.mkdtemp(prefix="vbq-")
    uri = f"qemu:///embed?root={root}"
    f = Path(root + ".xml")
    f.write_text(xml.format(name="g"))
    subprocess.run([virtctl, "-c", uri, "define", str(f)], check=True, capture_output=True)
    starts, stops = [], []
    try:
        for _ in range(runs):
            t, r = timed([virtctl, "-c", uri, "start", "g"])
            assert r.returncode == 0, r.stderr
            starts.append(t)
            time.sleep(0.3)
            t, r = timed([virtctl, "-c", uri, "destroy", "g"])
            assert r.returncode == 0, r.stderr
            stops.append(t)
            time.sleep(0.1)
            t, r = timed([virtctl, "-c", uri, "start g; destroy g"])
            assert r.returncode == 0, r.stderr
            ONE_CALL.append(t)
    finally:
        subprocess.run([virtctl, "-c", uri, "destroy", "g"], capture_output=True)
        from virtctl.drivers.qemu.state import StateRoot

        sock = StateRoot.for_uri("/embed", {"root": root}).sock
        shutil.rmtree(root, ignore_errors=True)
        if sock.startswith("/tmp/virtctl-"):
            shutil.rmtree(sock, ignore_errors=True)
        f.unlink()
    return starts, stops, ""


ONE_CALL: list[float] = []
BARE: list[list[float]] = [[], []]  # virtctl -c URI 'start g; destroy g' (one process)


def bench_api(xml: str, runs: int) -> tuple[list[float], list[float], str]:
    """The same through the Python API in one warm process: what a shell
    session or a program pays, without Python's start-up per command."""
    import virtctl

    root = tempfile.mkdtemp(prefix="vba-")
    starts, stops = [], []
    conn = virtctl.open(f"qemu:///embed?root={root}")
    try:
        dom = conn.define_domain(xml.format(name="g"))
        for _ in range(runs):
            t = time.perf_counter()
            dom.start()
            starts.append(time.perf_counter() - t)
            time.sleep(0.3)
            t = time.perf_counter()
            dom.destroy()
            stops.append(time.perf_counter() - t)
    finally:
        try:
            dom.destroy()
        except Exception:  # noqa: BLE001 - already shut off
            pass
        conn.close()
        from virtctl.drivers.qemu.state import StateRoot

        sock = StateRoot.for_uri("/embed", {"root": root}).sock
        shutil.rmtree(root, ignore_errors=True)
        if sock.startswith("/tmp/virtctl-"):
            shutil.rmtree(sock, ignore_errors=True)
    return starts, stops, "Python API, one warm process"


def bench_bare(xml: str, runs: int) -> tuple[list[float], list[float], str]:
    sys.path.insert(0, str(HERE.parents[1]))
    from qmp_raw import QMP

    from virtctl.drivers.qemu.argv import build_argv
    from virtctl.drivers.qemu.paths import RuntimePaths
    from virtctl.xml.domain import DomainDef

    d = tempfile.mkdtemp(prefix="vbb-")
    os.mkdir(f"{d}/chr")
    paths = RuntimePaths(qmp=f"{d}/qmp.sock", qmp_monitor=f"{d}/qmp2.sock", pidfile=f"{d}/pid",
                         chardev_dir=f"{d}/chr", vnc_socket=f"{d}/vnc.sock", log=f"{d}/log")
    definition = DomainDef.parse(xml.format(name="g"))
    definition.normalize()
    argv = build_argv(definition, paths, emulator=shutil.which("qemu-system-x86_64"))
    starts, stops = [], []
    try:
        for _ in range(runs):
            for s in (paths.qmp, paths.qmp_monitor):
                if os.path.exists(s):
                    os.unlink(s)
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            while True:
                try:
                    q = QMP(paths.qmp, timeout=10)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    time.sleep(0.002)
            q.command("cont")
            q.close()
            starts.append(time.perf_counter() - t0)
            time.sleep(0.3)
            t0 = time.perf_counter()
            p.send_signal(signal.SIGTERM)
            p.wait()
            stops.append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return starts, stops, "same argv (build_argv), spawn + QMP + cont; SIGTERM + wait"


def bench_libvirt(xml: str, runs: int) -> tuple[list[float], list[float], str]:
    virsh = shutil.which("virsh")
    if virsh is None:
        return [], [], "virsh not installed (apt-get install libvirt-clients libvirt-daemon-driver-qemu)"
    root = tempfile.mkdtemp(prefix="vbl-")
    os.makedirs(f"{root}/etc")
    Path(f"{root}/etc/qemu.conf").write_text(
        'stdio_handler = "file"\nsecurity_driver = "none"\nuser = "root"\ngroup = "root"\n'
        'dynamic_ownership = 0\n' if os.geteuid() == 0 else
        'stdio_handler = "file"\nsecurity_driver = "none"\ndynamic_ownership = 0\n')
    uri = f"qemu:///embed?root={root}"
    f = Path(root + ".xml")
    f.write_text(xml.format(name="g"))
    r = subprocess.run([virsh, "-q", "-c", uri, "define", str(f)], capture_output=True, text=True)
    if r.returncode:
        return [], [], f"libvirt embed cannot define: {r.stderr.strip()[-200:]}"
    starts, stops, note = [], [], "one-shot start; destroy = ('start; destroy' in one virsh) - start"
    try:
        for _ in range(runs):
            t, r = timed([virsh, "-q", "-c", uri, "start", "g"])
            if r.returncode:
                return [], [], f"libvirt embed cannot start: {r.stderr.strip().splitlines()[-1]}"
            starts.append(t)
            subprocess.run([virsh, "-q", "-c", uri, "destroy", "g"], capture_output=True)
            _kill_qemu_named(root)
            t2, r = timed([virsh, "-q", "-c", uri, "start g; destroy g"])
            if r.returncode == 0:
                stops.append(max(0.0, t2 - t))
            _kill_qemu_named(root)
    finally:
        _kill_qemu_named(root)
        shutil.rmtree(root, ignore_errors=True)
        f.unlink()
    return starts, stops, note


def _kill_qemu_named(marker: str) -> None:
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and "qemu-system" in cmd:
                try:
                    os.kill(int(d), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def bench_list(n: int, runs: int) -> tuple[list[float], float]:
    import virtctl

    virtctl_bin = _virtctl()
    root = tempfile.mkdtemp(prefix="vbn-")
    uri = f"qemu:///embed?root={root}"
    t0 = time.perf_counter()
    with virtctl.open(uri) as conn:
        for i in range(n):
            conn.define_domain(f"<domain type='qemu'><name>d{i:04d}</name><memory unit='MiB'>64</memory>"
                               "<os><type>hvm</type></os></domain>")
    seed = time.perf_counter() - t0
    times = []
    try:
        for _ in range(runs):
            t, r = timed([virtctl_bin, "-c", uri, "list", "--all"])
            assert r.returncode == 0 and r.stdout.count("shut off") == n, r.stderr
            times.append(t)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return times, seed


def _bare_setup(xml: str):
    """Bare QEMU's argv (the same build_argv as the driver's) and its paths."""
    sys.path.insert(0, str(HERE.parents[1]))
    from virtctl.drivers.qemu.argv import build_argv
    from virtctl.drivers.qemu.paths import RuntimePaths
    from virtctl.xml.domain import DomainDef

    d = tempfile.mkdtemp(prefix="vbb-")
    os.mkdir(f"{d}/chr")
    paths = RuntimePaths(qmp=f"{d}/qmp.sock", qmp_monitor=f"{d}/qmp2.sock", pidfile=f"{d}/pid",
                         chardev_dir=f"{d}/chr", vnc_socket=f"{d}/vnc.sock", log=f"{d}/log")
    definition = DomainDef.parse(xml.format(name="g"))
    definition.normalize()
    return d, paths, build_argv(definition, paths, emulator=shutil.which("qemu-system-x86_64"))


def _bare_once(paths, argv) -> float:
    """Bare QEMU start (spawn, QMP greeting, cont) + destroy (SIGTERM, wait), one figure."""
    from qmp_raw import QMP

    for s in (paths.qmp, paths.qmp_monitor):
        if os.path.exists(s):
            os.unlink(s)
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    while True:
        try:
            q = QMP(paths.qmp, timeout=10)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.002)
    q.command("cont")
    q.close()
    p.send_signal(signal.SIGTERM)
    p.wait()
    return time.perf_counter() - t0


def bench_one_call(xml: str, runs: int, virtctl: str) -> tuple[list[float], list[float]]:
    """``virtctl -c URI 'start g; destroy g'`` and bare QEMU's start+destroy,
    alternated run by run so that the machine's load weighs on both alike."""
    root = tempfile.mkdtemp(prefix="vbo-")
    uri = f"qemu:///embed?root={root}"
    f = Path(root + ".xml")
    f.write_text(xml.format(name="g"))
    subprocess.run([virtctl, "-c", uri, "define", str(f)], check=True, capture_output=True)
    d, paths, argv = _bare_setup(xml)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    ones, bares = [], []
    try:
        r = subprocess.run([virtctl, "-c", uri, "start g; destroy g"], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr  # warm-up: byte-compiles, fills the emulator cache
        for _ in range(runs):
            bares.append(_bare_once(paths, argv))
            time.sleep(0.1)
            t, r = timed([virtctl, "-c", uri, "start g; destroy g"], env=env)
            assert r.returncode == 0, r.stderr
            ones.append(t)
            time.sleep(0.1)
    finally:
        subprocess.run([virtctl, "-c", uri, "destroy", "g"], capture_output=True)
        from virtctl.drivers.qemu.state import StateRoot

        sock = StateRoot.for_uri("/embed", {"root": root}).sock
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)
        if sock.startswith("/tmp/virtctl-"):
            shutil.rmtree(sock, ignore_errors=True)
        f.unlink()
    return ones, bares


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:8.0f} ms" if xs else "       n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--one-call", action="store_true",
                    help="only 'start g; destroy g' in one call against bare QEMU, run by run alternated")
    ap.add_argument("--virtctl", help="the virtctl to time (default: the one beside this python)")
    a = ap.parse_args()
    g = build_guest()
    xml = XML.replace("{k}", str(g.kernel)).replace("{i}", str(g.initrd)).replace("{c}", g.cmdline)
    if a.one_call:
        before = load()
        ones, bares = bench_one_call(xml, a.runs, a.virtctl or _virtctl())
        ratios = sorted(o / b for o, b in zip(ones, bares))
        print(f"start+destroy in one call, median of {a.runs} alternated runs (load {before} -> {load()}):\n"
              f"  virtctl 'start g; destroy g' {med(ones)}, bare QEMU start+destroy {med(bares)}: "
              f"{statistics.median(ones) / statistics.median(bares):.1f}x "
              f"(median of the per-run ratios {statistics.median(ratios):.1f}x)")
        return
    rows = []
    for label, fn in (("virtctl (qemu:///embed)", bench_virtctl), ("virtctl API (warm process)", bench_api),
                      ("bare QEMU", bench_bare),
                      ("virsh (libvirt qemu:///embed)", bench_libvirt)):
        starts, stops, note = fn(xml, a.runs)
        if fn is bench_bare:
            BARE[:] = [starts, stops]
        rows.append((label, med(starts), med(stops), note))
    print(f"start/destroy latency of the test guest (TCG), median of {a.runs}")
    print(f"{'':32} {'start':>11} {'destroy':>11}  notes")
    for label, s, d, note in rows:
        print(f"{label:32} {s:>11} {d:>11}  {note}")
    bare = [a + b for a, b in zip(BARE[0], BARE[1])]
    if ONE_CALL and bare:
        ratio = statistics.median(ONE_CALL) / statistics.median(bare)
        print(f"\nstart+destroy in one call: virtctl 'start g; destroy g' {med(ONE_CALL)}, "
              f"bare QEMU start+destroy {med(bare)}: {ratio:.1f}x")
    times, seed = bench_list(a.domains, a.runs)
    print(f"\nvirtctl list --all with {a.domains} defined domains: {med(times)}"
          f"  (seeding by API define took {seed:.1f} s)")


if __name__ == "__main__":
    main()
