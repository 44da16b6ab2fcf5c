"""Networks (and domif-setlink) through the libvirt driver against a real
libvirtd (tests/integration/libvirtd_fixture.py: a private libvirtd in its own
namespaces), through the installed ``virtctl`` entry point with
``-c qemu+unix:///system?socket=...``.  No guest: the networks' bridges and
dnsmasq live in the daemon's network namespace, never on the host."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from integration.libvirtd_fixture import LibvirtdEnv, guest_xml
from integration.test_qemu_driver import VIRTCTL

pytestmark = pytest.mark.qemu
VIRSH = shutil.which("virsh")

ISO = "<network><name>lvd-iso</name><bridge name='lvdbr0'/></network>"
DHCP = ("<network><name>lvd-dhcp</name><bridge name='lvdbr1'/>"
        "<ip address='10.77.0.1' netmask='255.255.255.0'><dhcp><range start='10.77.0.10' end='10.77.0.20'/>"
        "</dhcp></ip></network>")
NIC_DOMAIN = ("<domain type='qemu'><name>lvd-nic</name><memory unit='MiB'>64</memory>"
              "<os><type machine='pc'>hvm</type></os><devices>"
              "<interface type='network'><mac address='52:54:00:aa:00:01'/><source network='lvd-iso'/></interface>"
              "</devices></domain>")


@pytest.fixture(scope="module")
def env(libvirtd, tmp_path_factory):  # noqa: F811
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = LibvirtdEnv(libvirtd, tmp_path_factory.mktemp("lvdnet"))
    yield e
    libvirtd.clean()


def test_isolated_network(env):
    # the bridge is in the private libvirtd's network namespace, not the host's
    p = env.base / "iso.xml"
    p.write_text(ISO)
    env.ok("net-define", str(p))
    env.ok("net-start", "lvd-iso")
    assert re.search(r"^ lvd-iso\s+active\s+no\s+yes$", env.ok("net-list", "--all"), re.M)
    assert not os.path.exists("/sys/class/net/lvdbr0")  # not on the host
    env.ok("net-destroy", "lvd-iso")
    env.ok("net-undefine", "lvd-iso")
    assert "lvd-iso" not in env.ok("net-list", "--all")


def _follow(argv: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=open(out, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def test_net_event_and_pool_event_as_virsh_on_the_same_daemon(env):
    import signal
    import time

    cmds = {"net": ("net-event", "--event", "lifecycle", "--loop"),
            "pool": ("pool-event", "--event", "lifecycle", "--loop")}
    procs = {}
    for kind, cmd in cmds.items():
        procs[kind, "ours"] = _follow([VIRTCTL, "-c", env.uri, *cmd], env.base / f"{kind}-ours.txt")
        if VIRSH is not None:
            procs[kind, "theirs"] = _follow(["stdbuf", "-oL", VIRSH, "-c", env.uri, *cmd], env.base / f"{kind}-theirs.txt")
    time.sleep(3)  # both registered (a loaded machine: generous)
    env.ok("net-define", env.file("ev-iso.xml", ISO.replace("lvd-iso", "lvd-ev").replace("lvdbr0", "lvdbr9")))
    env.ok("net-start", "lvd-ev")
    env.ok("net-destroy", "lvd-ev")
    env.ok("net-undefine", "lvd-ev")
    d = env.base / "evpool"
    d.mkdir()
    env.ok("pool-define-as", "lvd-evp", "dir", "--target", str(d))
    env.ok("pool-start", "lvd-evp")
    env.ok("pool-destroy", "lvd-evp")
    env.ok("pool-undefine", "lvd-evp")
    want = {"net": [f"event 'lifecycle' for network lvd-ev: {w}" for w in ("Defined", "Started", "Stopped", "Undefined")],
            "pool": [f"event 'lifecycle' for storage pool lvd-evp: {w}"
                     for w in ("Defined", "Started", "Stopped", "Undefined")]}
    deadline = time.monotonic() + 30
    text = {}
    while time.monotonic() < deadline:
        text = {k: (env.base / f"{k[0]}-{k[1]}.txt").read_text() for k in procs}
        if all(all(line in text[k] for line in want[k[0]]) for k in procs):
            break
        time.sleep(0.3)
    for p in procs.values():
        p.send_signal(signal.SIGINT)
        p.wait(20)
    text = {k: (env.base / f"{k[0]}-{k[1]}.txt").read_text() for k in procs}
    for kind in cmds:
        lines = [ln for ln in text[kind, "ours"].splitlines() if ln.startswith("event '")]
        assert lines == want[kind], text[kind, "ours"]
        if (kind, "theirs") in text:
            assert text[kind, "ours"] == text[kind, "theirs"]


def test_info_dumpxml_json(env):
    env.ok("net-define", env.file("iso.xml", ISO))
    try:
        info = env.ok("net-info", "lvd-iso")
        assert re.search(r"^Active:\s+no$", info, re.M) and re.search(r"^Bridge:\s+lvdbr0$", info, re.M), info
        env.ok("net-start", "lvd-iso")
        env.ok("net-autostart", "lvd-iso")
        info = env.ok("net-info", "lvd-iso")
        for field, value in (("Name", "lvd-iso"), ("Active", "yes"), ("Persistent", "yes"), ("Autostart", "yes"),
                             ("Bridge", "lvdbr0")):
            assert re.search(rf"^{field}:\s+{value}$", info, re.M), (field, info)
        uuid = re.search(r"^UUID:\s+(\S+)$", info, re.M).group(1)
        assert env.ok("net-uuid", "lvd-iso").strip() == uuid
        # libvirt's formatter: a UUID added, the bridge's defaults filled in
        xml = env.ok("net-dumpxml", "lvd-iso")
        assert f"<uuid>{uuid}</uuid>" in xml and "<bridge name='lvdbr0' stp='on' delay='0'/>" in xml, xml
        assert "<name>lvd-iso</name>" in env.ok("net-dumpxml", "--inactive", "lvd-iso")
        js = json.loads(env.ok("--json", "net-info", "lvd-iso"))
        assert {k: js[k] for k in ("name", "uuid", "active", "persistent", "autostart", "bridge")} == {
            "name": "lvd-iso", "uuid": uuid, "active": True, "persistent": True, "autostart": True,
            "bridge": "lvdbr0"}, js
        listed = json.loads(env.ok("--json", "net-list", "--all"))
        assert "lvd-iso" in json.dumps(listed) and uuid in json.dumps(listed), listed
        env.ok("net-autostart", "lvd-iso", "--disable")
        assert re.search(r"^Autostart:\s+no$", env.ok("net-info", "lvd-iso"), re.M)
        # errors are libvirt's, with virtctl's codes and no traceback
        r = env.fails("net-start", "lvd-iso")
        assert "already active" in r.stderr or "already running" in r.stderr, r.stderr
        # undefining a running network leaves it running, transient
        env.ok("net-undefine", "lvd-iso")
        info = env.ok("net-info", "lvd-iso")
        assert re.search(r"^Active:\s+yes$", info, re.M) and re.search(r"^Persistent:\s+no$", info, re.M), info
    finally:
        env.run("net-destroy", "lvd-iso")
        env.run("net-undefine", "lvd-iso")
    r = env.fails("net-info", "lvd-iso")
    assert "lvd-iso" in r.stderr


def test_dhcp_network_leases_and_update(env):
    env.ok("net-define", env.file("dhcp.xml", DHCP))
    try:
        assert "10.77.0" not in env.ok("net-dhcp-leases", "lvd-dhcp")  # libvirt answers even when inactive
        env.ok("net-start", "lvd-dhcp")
        out = env.ok("net-dhcp-leases", "lvd-dhcp")
        assert out.split()[:4] == ["Expiry", "Time", "MAC", "address"], out  # no guest: the header only
        assert len([ln for ln in out.splitlines() if ln.strip()]) == 2, out
        assert json.loads(env.ok("--json", "net-dhcp-leases", "lvd-dhcp")) == {"network": "lvd-dhcp", "leases": []}
        assert json.loads(env.ok("--json", "net-dhcp-leases", "lvd-dhcp", "--mac", "52:54:00:00:00:09"))["leases"] == []
        # net-update onto virNetworkUpdate: live and config, add then delete
        host = "<host mac='52:54:00:00:00:05' name='h5' ip='10.77.0.5'/>"
        env.ok("net-update", "lvd-dhcp", "add", "ip-dhcp-host", host, "--live", "--config")
        assert "10.77.0.5" in env.ok("net-dumpxml", "lvd-dhcp")
        assert "10.77.0.5" in env.ok("net-dumpxml", "--inactive", "lvd-dhcp")
        r = env.fails("net-update", "lvd-dhcp", "add", "ip-dhcp-host", host, "--live")  # a duplicate
        assert "52:54:00:00:00:05" in r.stderr or "10.77.0.5" in r.stderr, r.stderr
        js = json.loads(env.ok("--json", "net-update", "lvd-dhcp", "delete", "ip-dhcp-host", host, "--config"))
        assert js["action"] == "updated" and js["config"] is True and js["live"] is False, js
        assert "10.77.0.5" not in env.ok("net-dumpxml", "--inactive", "lvd-dhcp")
        assert "10.77.0.5" in env.ok("net-dumpxml", "lvd-dhcp")  # the live one keeps it
        for args in (("net-list", "--all"), ("net-info", "lvd-dhcp"), ("net-dumpxml", "--inactive", "lvd-dhcp")):
            env.same_as_virsh(*args)
        r = env.fails("net-update", "lvd-dhcp", "add", "nosuch-section", host)
        assert "nosuch-section" in r.stderr, r.stderr
    finally:
        env.run("net-destroy", "lvd-dhcp")
        env.run("net-undefine", "lvd-dhcp")


def test_transient_network(env):
    env.ok("net-create", env.file("iso.xml", ISO))
    try:
        assert re.search(r"^ lvd-iso\s+active\s+no\s+no$", env.ok("net-list", "--all"), re.M)
        env.fails("net-autostart", "lvd-iso")  # a transient network has no autostart
    finally:
        env.run("net-destroy", "lvd-iso")
    assert "lvd-iso" not in env.ok("net-list", "--all")  # gone with its destroy


def test_setlink_config_on_a_defined_domain(env):
    env.ok("net-define", env.file("iso.xml", ISO))
    env.ok("define", env.file("nic.xml", NIC_DOMAIN))
    try:
        assert env.ok("domif-getlink", "lvd-nic", "52:54:00:aa:00:01", "--config").split()[-1] == "up"
        assert env.ok("domif-setlink", "lvd-nic", "52:54:00:aa:00:01", "down", "--config").strip() == \
            "Device updated successfully"
        assert env.ok("domif-getlink", "lvd-nic", "52:54:00:aa:00:01", "--config").split()[-1] == "down"
        assert "<link state='down'/>" in env.ok("dumpxml", "--inactive", "lvd-nic")
        env.ok("domif-setlink", "lvd-nic", "52:54:00:aa:00:01", "up")  # not running: the config
        assert env.ok("domif-getlink", "lvd-nic", "52:54:00:aa:00:01").split()[-1] == "up"
        env.fails("domif-setlink", "lvd-nic", "52:54:00:aa:00:99", "down")
        env.fails("domifaddr", "lvd-nic")  # not running
    finally:
        env.run("undefine", "lvd-nic")
        env.run("net-undefine", "lvd-iso")




def test_guest_lease_addresses_stats_and_link(env, test_guest):
    import time

    from integration.test_qemu_driver import BOOT

    g, log = test_guest, env.base / "lvd-g-serial.log"
    env.ok("net-define", env.file("dhcp.xml", DHCP))
    env.ok("net-start", "lvd-dhcp")
    nic = ("<interface type='network'><mac address='52:54:00:aa:00:02'/><source network='lvd-dhcp'/>"
           "<model type='virtio'/></interface>")
    env.ok("define", env.file("g.xml", guest_xml(g, "lvd-g", log, nic)))
    try:
        env.ok("start", "lvd-g")
        deadline = time.monotonic() + BOOT
        while "VIRTCTL-GUEST-NET eth0 10.77.0." not in (log.read_text(errors="replace") if log.exists() else ""):
            assert time.monotonic() < deadline, (log.read_text(errors="replace") if log.exists() else "")[-1500:]
            time.sleep(0.2)
        ip = log.read_text(errors="replace").split("VIRTCTL-GUEST-NET eth0 ", 1)[1].split()[0]
        # dnsmasq (in the daemon's namespace) wrote the lease: both virsh and virtctl see it
        leases = json.loads(env.ok("--json", "net-dhcp-leases", "lvd-dhcp"))["leases"]
        assert [(x["mac"], x["address"], x["prefix"], x["protocol"]) for x in leases] == [
            ("52:54:00:aa:00:02", ip.split("/")[0], 24, "ipv4")], leases
        assert ip.split("/")[0] in env.ok("net-dhcp-leases", "lvd-dhcp", "--mac", "52:54:00:aa:00:02")
        assert json.loads(env.ok("--json", "net-dhcp-leases", "lvd-dhcp", "--mac", "52:54:00:aa:00:09"))[
            "leases"] == []
        env.same_as_virsh("net-dhcp-leases", "lvd-dhcp")
        env.same_as_virsh("domifaddr", "lvd-g")
        ifaces = json.loads(env.ok("--json", "domifaddr", "lvd-g"))["interfaces"]
        assert [(i["hwaddr"], [(a["type"], a["addr"], a["prefix"]) for a in i["addrs"]]) for i in ifaces] == [
            ("52:54:00:aa:00:02", [("ipv4", ip.split("/")[0], 24)])], ifaces
        dev = ifaces[0]["name"]
        st = json.loads(env.ok("--json", "domifstat", "lvd-g", dev))
        assert st["tx_packets"] > 0 and st["rx_packets"] > 0, st  # the guest sent its DHCP request
        assert set(env.ok("domifstat", "lvd-g", "52:54:00:aa:00:02").split()[1::3]) >= {"rx_bytes", "tx_bytes"}
        env.fails("domifstat", "lvd-g", "nosuch0")
        # the live link state, through virDomainUpdateDeviceFlags
        env.ok("domif-setlink", "lvd-g", dev, "down")
        assert env.ok("domif-getlink", "lvd-g", dev).split()[-1] == "down"
        assert env.ok("domif-getlink", "lvd-g", "52:54:00:aa:00:02", "--config").split()[-1] == "up"
        env.ok("domif-setlink", "lvd-g", dev, "up")
        assert env.ok("domif-getlink", "lvd-g", dev).split()[-1] == "up"
    finally:
        env.run("destroy", "lvd-g")
        env.run("undefine", "lvd-g")
        env.run("net-destroy", "lvd-dhcp")
        env.run("net-undefine", "lvd-dhcp")
