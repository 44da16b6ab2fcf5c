"""Networks of the QEMU driver, for real: bridge, dnsmasq, nftables, taps.

Every test runs virtctl inside a network namespace of its own (``ip netns
add virtctl-test-<random>``, ``lo`` up): the bridges, taps, dnsmasq and
nftables tables exist only there, guest traffic stays there, and the
namespace is deleted at teardown (its processes killed first)."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from integration.test_qemu_driver import BOOT, VIRTCTL, Env

pytestmark = pytest.mark.qemu

NET_XML = """<network><name>{name}</name>{forward}<bridge name='{bridge}'/>
  <ip address='{addr}' prefix='24'>{dhcp}</ip></network>"""


class NsEnv(Env):
    def __init__(self, root, guest, ns):
        super().__init__(root, guest)
        self.ns = ns

    def sh(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(["ip", "netns", "exec", self.ns, *argv], capture_output=True, text=True, timeout=60)
        assert not check or r.returncode == 0, f"{argv} -> {r.returncode}: {r.stderr}"
        return r

    def run(self, *args: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, VIRTCTL, "-c", self.uri, *args],
                              capture_output=True, text=True, timeout=timeout, env=env or self.env)

    def links(self) -> set[str]:
        return {x["ifname"] for x in json.loads(self.sh("ip", "-j", "link").stdout)}

    def tables(self) -> str:
        return self.sh("nft", "list", "tables").stdout

    def dnsmasqs(self) -> list[int]:
        out = []
        for p in subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True).stdout.split():
            try:
                with open(f"/proc/{p}/stat") as f:
                    st = f.read()
                if "(dnsmasq)" in st and st[st.rfind(")") + 2] != "Z":
                    out.append(int(p))
            except OSError:
                pass
        return out

    def net(self, name: str, *, bridge: str, addr: str = "10.77.0.1", forward: str = "<forward mode='nat'/>",
            dhcp: str | None = None) -> str:
        if dhcp is None:
            base = addr.rsplit(".", 1)[0]
            dhcp = f"<dhcp><range start='{base}.100' end='{base}.200'/></dhcp>"
        p = self.root.parent / f"net-{name}.xml"
        p.write_text(NET_XML.format(name=name, forward=forward, bridge=bridge, addr=addr, dhcp=dhcp))
        return str(p)

    def guest_with(self, name: str, iface: str) -> str:
        p = self.root.parent / f"dom-{name}.xml"
        p.write_text(self.xml(name).replace("<devices>", "<devices>\n    " + iface))
        self.ok("define", str(p))
        return name

    def cleanup(self) -> None:
        for pid in subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        self.conn.close()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


@pytest.fixture
def nenv(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    if os.geteuid() != 0 or subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        pytest.skip("needs root and 'ip netns' (a network namespace of the test's own)")
    ns = f"virtctl-test-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    e = NsEnv(tmp_path / "root", test_guest, ns)
    e.sh("ip", "link", "set", "lo", "up")
    yield e
    e.cleanup()


def _wait_serial(env, name: str, text: str, timeout: float = BOOT) -> str:
    log = env.serial_log(env.uuid(name))
    deadline = time.monotonic() + timeout
    while True:
        data = log.read_text(errors="replace") if log.exists() else ""
        if text in data:
            return data
        assert time.monotonic() < deadline, f"no {text!r}: {data[-1500:]!r}"
        time.sleep(0.1)


def test_nat_network_lease_http_dnsmasq_death_and_full_cleanup(nenv):
    env = nenv
    env.ok("net-define", env.net("lab", bridge="vcbr-lab"))
    env.ok("net-start", "lab")
    assert "vcbr-lab" in env.links() and "virtctl-lab" in env.tables() and len(env.dnsmasqs()) == 1
    env.guest_with("g1", "<interface type='network'><mac address='52:54:00:aa:00:01'/>"
                         "<source network='lab'/><model type='virtio'/></interface>")
    env.ok("start", "g1")
    live = env.ok("dumpxml", "g1")
    assert "<source network='lab' bridge='vcbr-lab'/>" in live and "<target dev='vnet0'/>" in live, live
    assert env.sh("cat", "/sys/class/net/vnet0/master/uevent").stdout.count("INTERFACE=vcbr-lab") == 1
    data = _wait_serial(env, "g1", "VIRTCTL-GUEST-NET eth0 ")
    ip = data.split("VIRTCTL-GUEST-NET eth0 ", 1)[1].split()[0]
    leases = json.loads(env.ok("--json", "net-dhcp-leases", "lab"))["leases"]
    assert [(x["mac"], x["address"], x["prefix"]) for x in leases] == [("52:54:00:aa:00:01", ip, 24)]
    assert ip.startswith("10.77.0.") and 100 <= int(ip.rsplit(".", 1)[1]) <= 200
    assert "52:54:00:aa:00:01" in env.ok("net-dhcp-leases", "lab", "--mac", "52:54:00:AA:00:01")
    body = env.sh(sys.executable, "-c", "import sys, urllib.request as u; "
                  "sys.stdout.write(u.urlopen(sys.argv[1], timeout=30).read().decode())", f"http://{ip}/").stdout
    assert "VIRTCTL-GUEST-HTTP" in body
    addrs = json.loads(env.ok("--json", "domifaddr", "g1"))["interfaces"]
    assert addrs == [{"name": "vnet0", "hwaddr": "52:54:00:aa:00:01",
                      "addrs": [{"type": "ipv4", "addr": ip, "prefix": 24}]}]
    assert f"vnet0      52:54:00:aa:00:01    ipv4         {ip}/24" in env.ok("domifaddr", "g1")
    arp = json.loads(env.ok("--json", "domifaddr", "g1", "--source", "arp"))["interfaces"]
    assert [(a["name"], a["addrs"][0]["addr"]) for a in arp] == [("vnet0", ip)]
    st = json.loads(env.ok("--json", "domifstat", "g1", "vnet0"))
    tap_tx = int(env.sh("cat", "/sys/class/net/vnet0/statistics/tx_bytes").stdout)
    tap_rx = int(env.sh("cat", "/sys/class/net/vnet0/statistics/rx_bytes").stdout)
    # swapped as libvirt reports them: what the tap sent, the guest received
    assert 0 < st["rx_bytes"] <= tap_tx and 0 < st["tx_bytes"] <= tap_rx, (st, tap_tx, tap_rx)
    assert "vnet0 rx_bytes " in env.ok("domifstat", "g1", "52:54:00:aa:00:01").replace("52:54:00:aa:00:01", "vnet0")
    # domstats reads the same counters (one reader, domif.tap_counters), named as virsh's
    ds = dict(ln.strip().split("=", 1) for ln in env.ok("domstats", "g1", "--interface").splitlines() if "=" in ln)
    assert ds["net.count"] == "1" and ds["net.0.name"] == "vnet0", ds
    assert st["rx_bytes"] <= int(ds["net.0.rx.bytes"]) <= int(env.sh("cat", "/sys/class/net/vnet0/statistics/tx_bytes").stdout)
    assert [k for k in ds if k.startswith("net.0.") and k != "net.0.name"] == [
        f"net.0.{d}.{f}" for d in ("rx", "tx") for f in ("bytes", "pkts", "errs", "drop")]
    # a guest with the same MAC on the same network is refused, nothing made
    env.guest_with("g2", "<interface type='network'><mac address='52:54:00:aa:00:01'/>"
                         "<source network='lab'/><model type='virtio'/></interface>")
    r = env.run("start", "g2")
    assert r.returncode == 1 and "52:54:00:aa:00:01 is already used" in r.stderr and "'g1'" in r.stderr, r.stderr
    assert "vnet1" not in env.links()
    r = env.run("net-destroy", "lab")
    assert r.returncode == 4 and "in use by running domain(s) 'g1'" in r.stderr, r.stderr
    # dnsmasq killed: noticed, restarted by net-start
    os.kill(env.dnsmasqs()[0], signal.SIGKILL)
    time.sleep(0.2)
    assert "dnsmasq is not running" in env.ok("net-info", "lab")
    assert "dnsmasq is not running" in env.run("net-list").stderr
    env.ok("net-start", "lab")
    assert len(env.dnsmasqs()) == 1 and "Warning" not in env.ok("net-info", "lab")
    env.ok("destroy", "g1")
    assert "vnet0" not in env.links()
    env.ok("net-destroy", "lab")
    assert "vcbr-lab" not in env.links() and "virtctl-lab" not in env.tables() and env.dnsmasqs() == []
    assert "inactive" in env.ok("net-list", "--all")


def test_isolated_network_and_bridge_interface(nenv):
    env = nenv
    env.ok("net-define", env.net("iso", bridge="vcbr-iso", addr="10.78.0.1", forward=""))
    env.ok("net-start", "iso")
    rules = env.sh("nft", "list", "table", "ip", "virtctl-iso").stdout
    assert 'iifname "vcbr-iso" reject' in rules and "masquerade" not in rules
    env.sh("ip", "link", "add", "testbr0", "type", "bridge")
    env.sh("ip", "link", "set", "testbr0", "up")
    env.guest_with("gb", "<interface type='bridge'><source bridge='testbr0'/><target dev='tapgb0'/>"
                         "<model type='virtio'/></interface>"
                         "<interface type='network'><source network='iso'/><model type='virtio'/></interface>")
    env.ok("start", "gb")
    live = env.ok("dumpxml", "gb")
    assert "<target dev='tapgb0'/>" in live and "<source network='iso' bridge='vcbr-iso'/>" in live, live
    for tap, br in (("tapgb0", "testbr0"), ("vnet0", "vcbr-iso")):
        assert f"INTERFACE={br}" in env.sh("cat", f"/sys/class/net/{tap}/master/uevent").stdout
    data = _wait_serial(env, "gb", "VIRTCTL-GUEST-NET eth1 10.78.0.")
    assert "VIRTCTL-GUEST-NET eth1 10.78.0." in data
    env.ok("destroy", "gb")
    links = env.links()
    assert "tapgb0" not in links and "vnet0" not in links and "testbr0" in links  # not ours: kept
    env.ok("net-destroy", "iso")
    assert "vcbr-iso" not in env.links() and "virtctl-iso" not in env.tables()


@pytest.mark.parametrize("point", ["net-start:bridge", "net-start:nft", "net-start:dnsmasq"])
def test_kill9_during_net_start_is_cleaned_by_the_next_command(nenv, point):
    env = nenv
    env.ok("net-define", env.net("k", bridge="vcbr-k"))
    r = env.run("net-start", "k", env={**os.environ, "VIRTCTL_KILL_AT": point})
    assert r.returncode == -9 or r.returncode == 137, (r.returncode, r.stderr)
    assert "vcbr-k" in env.links()
    assert "inactive" in env.ok("net-list", "--all")
    if point == "net-start:dnsmasq":
        env.ok("net-destroy", "k")  # the leftovers, by the record
        assert "vcbr-k" not in env.links() and "virtctl-k" not in env.tables() and env.dnsmasqs() == []
    env.ok("net-start", "k")
    assert len(env.dnsmasqs()) == 1
    env.ok("net-destroy", "k")
    assert "vcbr-k" not in env.links() and "virtctl-k" not in env.tables() and env.dnsmasqs() == []


def test_collisions_and_bad_input_are_refused_and_create_nothing(nenv):
    env = nenv
    before = env.links()
    env.ok("net-define", env.net("a", bridge="vcbr-a"))
    env.ok("net-define", env.net("b", bridge="vcbr-b"))  # the same subnet: refused at start
    env.ok("net-start", "a")
    r = env.run("net-start", "b")
    assert r.returncode == 1 and "10.77.0.0/24 overlaps 10.77.0.0/24" in r.stderr, r.stderr
    assert "vcbr-b" not in env.links() and "virtctl-b" not in env.tables() and len(env.dnsmasqs()) == 1
    env.sh("ip", "link", "add", "taken0", "type", "bridge")
    env.ok("net-define", env.net("c", bridge="taken0", addr="10.79.0.1"))
    r = env.run("net-start", "c")
    assert r.returncode == 1 and "'taken0' is already taken" in r.stderr, r.stderr
    env.ok("net-destroy", "a")
    assert env.links() == before | {"taken0"}  # the bridge not ours survived every refusal
    cases = [(env.net("d", bridge="a" * 16), 5, "1 to 15 characters"),
             (env.net("e", bridge="vcbr-e", dhcp="<dhcp><range start='10.77.1.10' end='10.77.1.20'/></dhcp>"), 5,
              "not entirely within the network 10.77.0.0/24"),
             (env.net("f", bridge="vcbr-f", forward="<forward mode='vepa'/>"), 6, "forward mode='vepa'"),
             (env.net("g", bridge="vcbr-g", forward="<forward mode='bogus'/>"), 5, "")]
    for path, code, text in cases:
        r = env.run("net-define", path)
        assert r.returncode == code and text in r.stderr, (path, r.returncode, r.stderr)
    names = env.ok("net-list", "--all", "--name").split()
    assert sorted(names) == ["a", "b", "c"]
    assert env.tables().strip() == ""
