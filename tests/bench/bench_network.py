"""Benchmark: QEMU driver networks, inside a network namespace of its own.

    python tests/bench/bench_network.py [--runs 5]

* net-start / net-destroy of a NAT network with DHCP (bridge, address,
  nftables table, dnsmasq) vs the bare commands they run (``ip link add``,
  ``ip addr add``, ``ip link set up``, ``nft -f``, ``dnsmasq``; and their
  removal) — the peer is what a shell script would do;
* guest start: ``virtctl start`` of the test guest with an ``<interface
  type='network'>`` (tap made and put on the bridge) vs the same guest with
  ``<interface type='user'>``; and the time from ``start`` to the guest's
  DHCP lease line (``VIRTCTL-GUEST-NET eth0``) for each.

Medians of ``--runs`` runs; TCG; asserts nothing.  Everything runs under
``ip netns exec virtctl-bench-<random>``: nothing touches the host's network.
"""
from __future__ import annotations

import argparse
import os
import secrets
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
from integration.test_qemu_driver import GUEST_XML  # noqa: E402

VIRTCTL = shutil.which("virtctl") or str(Path(sys.executable).parent / "virtctl")
NET = """<network><name>bench</name><forward mode='nat'/><bridge name='vcbr-bench'/>
<ip address='10.88.0.1' prefix='24'><dhcp><range start='10.88.0.100' end='10.88.0.200'/></dhcp></ip></network>"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    ns = f"virtctl-bench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="vnb-"))
    try:
        bench(ns, tmp, args.runs)
    finally:
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", ns])
        shutil.rmtree(tmp, ignore_errors=True)


def bench(ns: str, tmp: Path, runs: int) -> None:
    ex = ["ip", "netns", "exec", ns]
    subprocess.run(ex + ["ip", "link", "set", "lo", "up"], check=True)
    uri = f"qemu:///embed?root={tmp}/root"
    from virtctl.drivers.qemu.state import StateRoot

    state = StateRoot.for_uri("/embed", {"root": f"{tmp}/root"})

    def vc(*a, check=True):
        return subprocess.run(ex + [VIRTCTL, "-c", uri, *a], capture_output=True, text=True, check=check)

    def timed(fn) -> float:
        print(".", end="", file=sys.stderr, flush=True)
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1000

    (tmp / "net.xml").write_text(NET)
    vc("net-define", str(tmp / "net.xml"))
    starts, destroys = [], []
    for _ in range(runs):
        starts.append(timed(lambda: vc("net-start", "bench")))
        destroys.append(timed(lambda: vc("net-destroy", "bench")))
    # the peer: the same objects made by hand
    conf = tmp / "dm.conf"
    conf.write_text(f"pid-file={tmp}/dm.pid\nexcept-interface=lo\nbind-dynamic\ninterface=vcbr-bench\nno-resolv\n"
                    f"dhcp-range=10.88.0.100,10.88.0.200,255.255.255.0\ndhcp-leasefile={tmp}/dm.leases\n")
    nft = ("table ip bare {\n chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n"
           "  ip saddr 10.88.0.0/24 ip daddr != 10.88.0.0/24 masquerade\n }\n}\n")
    p_start, p_destroy = [], []

    def sh(*c, inp=None):
        subprocess.run(ex + list(c), check=True, input=inp, text=True, capture_output=True)

    def bare_start():
        sh("ip", "link", "add", "name", "vcbr-bench", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        sh("ip", "addr", "add", "10.88.0.1/24", "dev", "vcbr-bench")
        sh("ip", "link", "set", "vcbr-bench", "up")
        sh("nft", "-f", "-", inp=nft)
        sh("dnsmasq", f"--conf-file={conf}", "--user=root")

    def bare_destroy():
        os.kill(int((tmp / "dm.pid").read_text()), signal.SIGTERM)
        sh("nft", "delete", "table", "ip", "bare")
        sh("ip", "link", "del", "vcbr-bench")

    for _ in range(runs):
        p_start.append(timed(bare_start))
        p_destroy.append(timed(bare_destroy))
        time.sleep(0.05)

    g = build_guest()
    vc("net-start", "bench")
    rows = []
    for kind, iface in (("network", "<interface type='network'><source network='bench'/><model type='virtio'/>"
                                     "</interface>"),
                        ("user", "<interface type='user'><model type='virtio'/></interface>")):
        xml = GUEST_XML.format(name=f"g-{kind}", uuid="", kernel=g.kernel, initrd=g.initrd, cmdline=g.cmdline,
                               lifecycle="").replace("<devices>", "<devices>\n    " + iface)
        (tmp / f"{kind}.xml").write_text(xml)
        vc("define", str(tmp / f"{kind}.xml"))
        st, lease = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            vc("start", f"g-{kind}")
            st.append((time.perf_counter() - t0) * 1000)
            uuid = vc("domuuid", f"g-{kind}").stdout.strip()
            log = Path(state.sock_dir(uuid)) / "chardev" / "serial0.log"
            deadline = time.monotonic() + 120
            while "VIRTCTL-GUEST-NET eth0" not in (log.read_text(errors="replace") if log.exists() else ""):
                if time.monotonic() > deadline:
                    print(f"no DHCP lease line in {log}", file=sys.stderr)
                    break
                time.sleep(0.02)
            lease.append((time.perf_counter() - t0) * 1000)
            vc("destroy", f"g-{kind}")
        rows.append((kind, statistics.median(st), statistics.median(lease)))
    vc("net-destroy", "bench")

    print(f"median of {runs} runs, ms (inside network namespace {ns})")
    print(f"{'case':<34}{'virtctl':>10}{'peer':>10}")
    print(f"{'net-start (NAT+DHCP)':<34}{statistics.median(starts):>10.1f}{statistics.median(p_start):>10.1f}"
          "   peer: ip/nft/dnsmasq by hand")
    print(f"{'net-destroy':<34}{statistics.median(destroys):>10.1f}{statistics.median(p_destroy):>10.1f}")
    net, user = rows
    print(f"{'start, guest running':<34}{net[1]:>10.1f}{user[1]:>10.1f}   virtctl: type=network, peer: type=user")
    print(f"{'start to DHCP lease in the guest':<34}{net[2]:>10.1f}{user[2]:>10.1f}")


if __name__ == "__main__":
    main()
