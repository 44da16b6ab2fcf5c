"""The guest agent through the QEMU driver, against real QEMU (TCG) and the
test guest's qemu-ga (tests/guest recipe 5: qemu-ga started at boot on the
org.qemu.guest_agent.0 port; stopped and started again here with ``run``
on the console).

One guest for the module, with the agent channel, a virtio disk holding an
ext4 filesystem made on the host (serial AGENTDISK) and a user-mode NIC.
Every figure checked comes from the guest: its console (``run ...``), its
/etc/shadow, its addresses.  Mostly through the commands
(virtctl/commands/domain_agent.py); a few checks call the driver the API
uses (``env.drv``) for what the CLI does not show (counts, exact parameters).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import virtctl
from integration.test_qemu_driver import BOOT, VIRTCTL, Env

pytestmark = pytest.mark.qemu
NAME = "ga"
MAC = "52:54:00:aa:bb:07"
KNOWN_HASH = "$6$virtctl$0O6vO2z0Rk1nS0cQH2Qfj2yZbYb6cQJrT3o8k6H5wE8dC0aVtYq7f9oK3xLz5m1sN2uP4rI6hJ8gF0eD7cB9a."


def _has_agent(guest) -> bool:
    try:
        meta = json.loads((Path(guest.initrd).parent / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(meta.get("qemu_guest_agent_version"))


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("agent")
    e = Env(base / "root", test_guest)
    disk = base / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "agentfs", str(disk)], check=True, capture_output=True)
    text = e.xml(NAME).replace(
        "<serial type='pty'/>",
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n"
        f"    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
        "<target dev='vda' bus='virtio'/><serial>AGENTDISK</serial></disk>\n"
        f"    <interface type='user'><mac address='{MAC}'/><model type='virtio'/></interface>\n"
        "    <serial type='pty'/>")
    (base / "ga.xml").write_text(text)
    e.ok("define", str(base / "ga.xml"))
    e.ok("start", NAME)
    e.wait_ready(e.uuid(NAME), timeout=BOOT)
    e.drv = e.conn._dom_driver  # the driver the API calls (the agent commands' API comes with the CLI)
    e.has_agent = _has_agent(test_guest)
    if e.has_agent:
        try:
            _wait_agent(e, 30)
        except virtctl.VirtError:  # the guest's own start of qemu-ga failed: these tests are the driver's
            _console(e, _START_AGENT)
    yield e
    e.cleanup()


def _need_agent(env) -> None:
    if not env.has_agent:
        pytest.skip("the test guest has no qemu-ga (tests/guest recipe 5)")


def _console(env, cmd: str, timeout: float = 60) -> list[str]:
    """``run CMD`` on the guest console: its output lines."""
    uuid = env.uuid(NAME)
    log = env.serial_log(uuid)
    before = log.read_bytes().decode(errors="replace").count("VIRTCTL-GUEST-DONE")
    env.send_serial(uuid, f"run {cmd}")
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_bytes().decode(errors="replace")
        if text.count("VIRTCTL-GUEST-DONE") > before:
            last = text.split("VIRTCTL-GUEST-CMD run")[-1]
            return re.findall(r"VIRTCTL-GUEST-OUT (.*?)\r?$", last, re.M)
        assert time.monotonic() < deadline, f"no answer to 'run {cmd}': {text[-800:]!r}"
        time.sleep(0.1)


_START_AGENT = ("for p in /sys/class/virtio-ports/*; do [ \"$(cat $p/name)\" = org.qemu.guest_agent.0 ] && "
                "$(command -v qemu-ga || echo /usr/sbin/qemu-ga) -d -m virtio-serial -p /dev/${p##*/} -t /run "
                "-f /run/qga-test.pid; done; echo started")


def _wait_agent(env, timeout: float = 60) -> None:
    """Until the guest's qemu-ga has the port open and answers."""
    uuid = env.uuid(NAME)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if env.drv.agent_command(uuid, '{"execute":"guest-ping"}') == "{}":
                return
        except virtctl.VirtError as exc:
            if exc.code != "AGENT_UNRESPONSIVE" or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_channel_without_an_agent_and_no_channel(env, tmp_path):
    uuid = env.uuid(NAME)
    if env.has_agent:
        _wait_agent(env)
        _console(env, "kill $(pidof qemu-ga)")
    # the channel is there, the guest side is closed: at once, exit 9, libvirt's words
    deadline = time.monotonic() + 30
    while True:
        r = env.run("domtime", NAME)
        if "not connected" in r.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # qemu-ga's exit closes the port a moment later
    assert r.returncode == 9, r.stderr
    assert "Guest agent is not responding: QEMU guest agent is not connected" in r.stderr
    with pytest.raises(virtctl.VirtError) as ei:
        env.drv.guest_info(uuid)
    assert ei.value.code == "AGENT_UNRESPONSIVE"
    r = env.run("shutdown", NAME, "--mode", "agent")
    assert r.returncode == 9 and "not connected" in r.stderr
    assert env.domstate(NAME) == "running (booted)"
    r = env.run("domifaddr", NAME, "--source", "agent")
    assert r.returncode == 9 and "not connected" in r.stderr
    if env.has_agent:
        _console(env, _START_AGENT)
        _wait_agent(env)
        assert env.run("domtime", NAME).returncode == 0
    # no channel at all: NOT_SUPPORTED (a domain with nothing to boot: SeaBIOS idles)
    (tmp_path / "bare.xml").write_text(
        "<domain type='qemu'><name>bare</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
        "<os><type machine='pc'>hvm</type></os><devices/></domain>")
    env.ok("create", str(tmp_path / "bare.xml"))
    try:
        r = env.run("domtime", "bare")
        assert r.returncode == 6 and "QEMU guest agent is not configured" in r.stderr
        with pytest.raises(virtctl.VirtError) as ei:
            env.drv.agent_command(env.uuid("bare"), '{"execute":"guest-ping"}')
        assert ei.value.code == "NOT_SUPPORTED"
        r = env.run("domifaddr", "bare", "--source", "agent")
        assert r.returncode == 6 and "not configured" in r.stderr
        env.ok("suspend", "bare")
        with pytest.raises(virtctl.VirtError) as ei:
            env.drv.guest_info(env.uuid("bare"))
        assert ei.value.code == "OPERATION_INVALID"  # libvirt checks the state first
    finally:
        env.ok("destroy", "bare")


def test_agent_command_timeout_and_domtime(env):
    _need_agent(env)
    uuid = env.uuid(NAME)
    _wait_agent(env)
    info = json.loads(env.ok("qemu-agent-command", NAME, '{"execute": "guest-info"}'))  # virsh: the whole answer
    assert info["return"]["version"].startswith("7.2")
    assert {"guest-ping", "guest-get-fsinfo"} <= {c["name"] for c in info["return"]["supported_commands"]}
    assert env.ok("qemu-agent-command", NAME, '{"execute":"guest-ping"}').strip() == '{"return":{}}'
    r = env.run("qemu-agent-command", NAME, '{"execute": "guest-no-such"}')
    assert r.returncode == 1 and "unable to execute QEMU agent command 'guest-no-such'" in r.stderr
    env.ok("guest-agent-timeout", NAME, "--timeout", "7")
    assert env.record(NAME)["agent_timeout"] == 7
    env.ok("guest-agent-timeout", NAME)  # no --timeout: block (-2)
    assert env.record(NAME)["agent_timeout"] == -2
    r = env.run("guest-agent-timeout", NAME, "--timeout", "-3")
    assert r.returncode == 2 and "less than the minimum '-2'" in r.stderr
    assert env.drv.agent_command(uuid, '{"execute":"guest-ping"}', timeout=-1) == "{}"
    env.ok("guest-agent-timeout", NAME, "--timeout", "-1")
    # domtime through the same client: the guest's clock
    sec, _ns = env.drv.get_time(uuid)
    guest = int(_console(env, "date +%s")[0])
    assert abs(sec - guest) <= 5
    out = env.ok("domtime", NAME)
    assert out.startswith("Time: ")


def test_guestinfo_hostname_vcpus_from_the_guest(env):
    _need_agent(env)
    uuid = env.uuid(NAME)
    _wait_agent(env)
    params = env.drv.guest_info(uuid)
    names = [k for k, _ in params]
    d = json.loads(env.ok("--json", "guestinfo", NAME))["info"]
    assert list(d) == names
    assert d["hostname"] == _console(env, "hostname")[0] == "virtctl-guest"
    assert d["os.kernel-release"] == _console(env, "uname -r")[0]
    osr = dict(line.split("=", 1) for line in _console(env, "cat /etc/os-release") if "=" in line)
    if "ID" in osr:
        assert d["os.id"] == osr["ID"].strip('"')
    assert d["user.count"] == 0
    assert "timezone.offset" in d
    # the order of libvirt's groups
    firsts = [names.index(k) for k in ("user.count", "os.kernel-release", "timezone.offset", "hostname",
                                       "if.count") if k in names]
    assert firsts == sorted(firsts)
    ifs = {d[f"if.{i}.name"]: i for i in range(d["if.count"])}
    assert d[f"if.{ifs['lo']}.addr.0.addr"] == "127.0.0.1"
    assert env.ok("guestinfo", NAME, "--hostname") == "hostname            : virtctl-guest\n\n"  # virsh: a blank line
    assert env.ok("domhostname", NAME).strip() == "virtctl-guest"
    assert env.ok("domhostname", NAME, "--source", "agent").strip() == "virtctl-guest"
    assert env.drv.guest_vcpus(uuid) == [("vcpus", "0"), ("online", "0"), ("offlinable", "")]
    assert json.loads(env.ok("--json", "guestvcpus", NAME)) == {"domain": NAME, "vcpus": "0", "online": "0",
                                                               "offlinable": ""}
    r = env.run("guestvcpus", NAME, "--cpulist", "0", "--disable")
    assert r.returncode == 6 and "vCPU '0' is not offlinable" in r.stderr


def test_fsinfo_freeze_thaw_trim_of_a_mounted_disk(env):
    _need_agent(env)
    uuid = env.uuid(NAME)
    _wait_agent(env)
    assert env.drv.fs_info(uuid) == []  # the initramfs is no block filesystem
    assert _console(env, "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo mounted") == ["mounted"]
    fs = json.loads(env.ok("--json", "domfsinfo", NAME))["filesystems"]
    assert fs == [{"mountpoint": "/mnt", "name": "vda", "fstype": "ext4", "devaliases": ["vda"]}]
    assert re.search(r"^ */mnt +vda +ext4 +vda *$", env.ok("domfsinfo", NAME), re.M)
    d = dict(env.drv.guest_info(uuid, ("filesystem", "disks")))
    assert d["fs.count"] == 1 and d["fs.0.mountpoint"] == "/mnt" and d["fs.0.disk.0.alias"] == "vda"
    assert d["fs.0.total-bytes"] > 10 << 20 and d["fs.0.disk.0.device"] == "/dev/vda"
    assert "Froze 1 filesystem(s)" in env.ok("domfsfreeze", NAME)
    assert env.drv.agent_command(uuid, '{"execute":"guest-fsfreeze-status"}') == '"frozen"'
    assert "Thawed 1 filesystem(s)" in env.ok("domfsthaw", NAME)
    assert env.drv.agent_command(uuid, '{"execute":"guest-fsfreeze-status"}') == '"thawed"'
    assert env.drv.fs_freeze(uuid, ("/mnt",)) == 1
    assert env.drv.fs_thaw(uuid) == 1
    assert _console(env, "echo data > /mnt/f && sync && cat /mnt/f") == ["data"]  # writable again
    env.ok("domfstrim", NAME)
    assert _console(env, "umount /mnt && echo gone") == ["gone"]


def test_set_user_password_reaches_etc_shadow(env):
    _need_agent(env)
    uuid = env.uuid(NAME)
    _wait_agent(env)
    env.ok("set-user-password", NAME, "root", KNOWN_HASH, "--encrypted")
    assert _console(env, "grep ^root: /etc/shadow")[0].split(":")[1] == KNOWN_HASH
    env.ok("set-user-password", NAME, "root", "s3cret pass")
    hashed = _console(env, "grep ^root: /etc/shadow")[0].split(":")[1]
    assert hashed.startswith("$") and hashed != KNOWN_HASH
    with pytest.raises(virtctl.VirtError) as ei:
        env.drv.set_user_password(uuid, "nosuchuser", "x")
    assert ei.value.code == "OPERATION_FAILED" and "guest-set-user-password" in ei.value.message


def test_domifaddr_source_agent(env):
    _need_agent(env)
    uuid = env.uuid(NAME)
    log = env.serial_log(uuid)
    deadline = time.monotonic() + 60
    while "VIRTCTL-GUEST-NET eth0 " not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "no DHCP lease in the guest"
        time.sleep(0.2)
    ip = log.read_text(errors="replace").split("VIRTCTL-GUEST-NET eth0 ", 1)[1].split()[0]
    _wait_agent(env)
    got = env.conn.lookup_domain(NAME).interface_addresses("agent")
    eth0 = next(i for i in got if i["name"] == "eth0")
    assert eth0["hwaddr"] == MAC and {"type": "ipv4", "addr": ip, "prefix": 24} in eth0["addrs"]
    out = env.ok("domifaddr", NAME, "--source", "agent")
    assert re.search(rf"eth0\s+{MAC}\s+ipv4\s+{re.escape(ip)}/24", out), out


_PINGER = """
import sys
import virtctl
conn = virtctl.open({uri!r})
for _ in range(5):
    assert conn._dom_driver.agent_command({uuid!r}, '{{"execute":"guest-ping"}}') == "{{}}"
print("ok")
"""


def test_concurrent_clients_queue(env):
    _need_agent(env)
    _wait_agent(env)
    code = _PINGER.format(uri=env.uri, uuid=env.uuid(NAME))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd="/") for _ in range(3)]  # cwd: the installed virtctl
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "ok", err


def test_reboot_then_shutdown_mode_agent(env):
    _need_agent(env)
    uuid = env.uuid(NAME)
    _wait_agent(env)
    # acpi,agent: libvirt tries the agent first; it returns once QEMU saw the guest's reset
    env.ok("reboot", NAME, "--mode", "acpi,agent")
    names = [json.loads(x).get("event") for x in Path(env.state.events_file(uuid)).read_text().splitlines()]
    assert "RESET" in names and "POWERDOWN" not in names  # the guest rebooted itself: no ACPI button
    env.wait_ready(uuid, count=2, timeout=BOOT)
    assert env.domstate(NAME).startswith("running")
    _wait_agent(env)
    env.ok("guest-agent-timeout", NAME, "--timeout", "9")
    env.ok("shutdown", NAME, "--mode", "agent")  # agent only: no ACPI to fall back on
    env.wait_state(NAME, "shut off (shutdown)", timeout=120)
    kept = Path(env.state.logs_dir) / f"{uuid}.serial0.log"  # the last run's console (runtime.py)
    text = kept.read_text(errors="replace")
    assert "VIRTCTL-GUEST-CMD powerbutton" not in text  # the guest was asked by its agent, not ACPI
    assert not os.path.exists(env.state.record_file(uuid))  # the run's agent timeout went with it
    r = env.run("shutdown", NAME, "--mode", "agent")
    assert r.returncode == 4 and "not running" in r.stderr
