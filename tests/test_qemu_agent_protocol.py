"""The guest agent protocol client (drivers/qemu/agent.py) and the QEMU
driver's agent methods (drivers/qemu/guest_agent.py), fast, without a guest:

* against the host's real qemu-ga in ``-m unix-listen`` mode, with every RPC
  that could change the host blocked (``-b``: all but a list of read-only
  ones, so a newer qemu-ga's new RPCs are blocked too): sync, answers, error
  answers, guestinfo's parameters from real answers, and the agent lock
  queueing two clients;
* against a fake agent (a socket server in the test) for what a real one
  does not do on demand: garbage, a reply in pieces, a late reply, stale
  replies an abandoned client left, no answer at all (AGENT_UNRESPONSIVE,
  exit 9), an answer that never ends.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from virtctl.drivers.qemu import agent
from virtctl.drivers.qemu import guest_agent as ga
from virtctl.errors import CODES, AgentUnresponsive, InvalidArg, NotSupported, OperationFailed, OperationTimeout

QEMU_GA = shutil.which("qemu-ga") or ("/usr/sbin/qemu-ga" if os.path.exists("/usr/sbin/qemu-ga") else None)
# what qemu-ga may run on the host: reads only
SAFE = {"guest-sync-delimited", "guest-sync", "guest-ping", "guest-get-time", "guest-info",
        "guest-fsfreeze-status", "guest-network-get-interfaces", "guest-get-vcpus", "guest-get-disks",
        "guest-get-fsinfo", "guest-get-host-name", "guest-get-users", "guest-get-timezone", "guest-get-osinfo"}
DANGEROUS = {"guest-shutdown", "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw",
             "guest-set-time", "guest-set-vcpus", "guest-set-user-password", "guest-set-memory-blocks",
             "guest-exec", "guest-exec-status", "guest-file-open", "guest-file-write", "guest-suspend-ram",
             "guest-suspend-disk", "guest-suspend-hybrid", "guest-fstrim", "guest-ssh-add-authorized-keys",
             "guest-ssh-remove-authorized-keys"}


# --- the real qemu-ga -------------------------------------------------------------------------
def _all_rpcs() -> list[str]:
    out = subprocess.run([QEMU_GA, "-b", "?"], capture_output=True, text=True, timeout=30)
    return [w for w in (out.stdout + out.stderr).split() if w.startswith("guest-")]


@pytest.fixture(scope="module")
def qga(tmp_path_factory):
    if QEMU_GA is None:
        pytest.skip("qemu-ga is not installed (Debian: qemu-guest-agent)")
    d = tmp_path_factory.mktemp("qga")
    rpcs = _all_rpcs()
    blocked = [r for r in rpcs if r not in SAFE]
    assert DANGEROUS <= set(blocked), "a dangerous RPC would run on the host"
    sock = d / "qga.sock"
    p = subprocess.Popen([QEMU_GA, "-m", "unix-listen", "-p", str(sock), "-t", str(d), "-f", str(d / "qga.pid"),
                          "-b", ",".join(blocked)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(d / "qga.log", "wb"))
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert p.poll() is None, (d / "qga.log").read_text()
        assert time.monotonic() < deadline, "qemu-ga did not make its socket"
        time.sleep(0.02)
    yield {"sock": str(sock), "lock": str(d / "agent.lock"), "blocked": blocked, "dir": d}
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def test_dangerous_rpcs_are_blocked(qga):
    assert DANGEROUS <= set(qga["blocked"])
    with agent.Session(qga["sock"], lock_path=qga["lock"]) as s:
        for rpc in ("guest-shutdown", "guest-fsfreeze-freeze", "guest-set-time", "guest-exec"):
            with pytest.raises(OperationFailed) as ei:
                s.call(rpc)
            assert f"unable to execute QEMU agent command '{rpc}'" in ei.value.message
            assert "disabled" in ei.value.message and agent.is_unsupported(ei.value)


def test_real_agent_answers(qga):
    with agent.Session(qga["sock"], lock_path=qga["lock"]) as s:
        assert s.call("guest-ping") == {}
        info = s.call("guest-info")
        assert info["version"].startswith("7.") or info["version"].split(".")[0].isdigit()
        enabled = {c["name"] for c in info["supported_commands"] if c["enabled"]}
        assert enabled <= SAFE and "guest-ping" in enabled
        ns = s.call("guest-get-time")
        assert abs(ns / 1e9 - time.time()) < 600
        assert s.call("guest-get-host-name") == {"host-name": socket.gethostname()}
        with pytest.raises(OperationFailed) as ei:
            s.call("guest-no-such-command")
        assert ei.value.detail["agent_class"] == "CommandNotFound"
        with pytest.raises(OperationFailed) as ei:
            s.call("guest-get-time", {"bogus": 1})
        assert "unable to execute QEMU agent command 'guest-get-time'" in ei.value.message
        assert not agent.is_unsupported(ei.value)
        assert s.call("guest-ping") == {}  # still in step after the errors


def test_left_over_half_command_is_flushed(qga):
    """A client that died half-way through a command leaves the agent's
    parser mid-object: the next sync's 0xFF resets it."""
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(qga["sock"])
        raw.sendall(b'{"execute": "guest-info", "argu')
    with agent.Session(qga["sock"], lock_path=qga["lock"]) as s:
        assert s.call("guest-ping") == {}


def test_guestinfo_parameters_from_real_answers(qga):
    with agent.Session(qga["sock"], lock_path=qga["lock"]) as s:
        users = ga.users_params(s.call("guest-get-users"))
        osp = ga.os_params(s.call("guest-get-osinfo"))
        tz = ga.timezone_params(s.call("guest-get-timezone"))
        fs = ga.fs_entries(s.call("guest-get-fsinfo"))
        ifaces = ga.interfaces(s.call("guest-network-get-interfaces"))
    assert users[0] == ("user.count", len(users) and users[0][1])
    os_release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    got = dict(osp)
    assert got["os.id"] == os_release["ID"].strip('"')
    assert got["os.kernel-release"] == os.uname().release and got["os.machine"] == os.uname().machine
    assert [k for k, _ in osp] == [f"os.{k}" for k in ga._OS_KEYS if f"os.{k}" in got]  # libvirt's order
    assert tz[-1][0] == "timezone.offset" and isinstance(tz[-1][1], int)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    assert all(e["mountpoint"] in mounts for e in fs)
    lo = next(i for i in ifaces if i["name"] == "lo")
    assert {"type": "ipv4", "addr": "127.0.0.1", "prefix": 8} in lo["addrs"]
    params = dict(ga.interface_params(ifaces))
    assert params["if.count"] == len(ifaces)


_QUEUED = """
import sys, time
from virtctl.drivers.qemu import agent
with agent.Session({sock!r}, lock_path={lock!r}) as s:
    open({mark!r}, "w").write("in")
    print(s.call("guest-ping"))
"""


def test_two_clients_queue_on_the_agent_lock(qga, tmp_path):
    mark = tmp_path / "second-in"
    with agent.Session(qga["sock"], lock_path=qga["lock"]) as s:
        p = subprocess.Popen([sys.executable, "-c", _QUEUED.format(sock=qga["sock"], lock=qga["lock"],
                                                                   mark=str(mark))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd="/")  # the installed virtctl, not the source tree's
        for _ in range(20):  # the second client waits for the lock, however long we take
            assert s.call("guest-ping") == {}
            assert not mark.exists()
        with pytest.raises(OperationTimeout) as ei:  # a third one that will not wait
            agent.Session(qga["sock"], lock_path=qga["lock"], lock_timeout=0.05).open()
        assert "guest agent lock" in ei.value.message
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.strip() == "{}" and mark.exists()


def test_missing_socket_is_unresponsive(tmp_path):
    with pytest.raises(AgentUnresponsive) as ei:
        agent.Session(str(tmp_path / "nothing.sock")).open()
    assert ei.value.message.startswith("Guest agent is not responding: cannot connect")


# --- a fake agent -----------------------------------------------------------------------------
class FakeAgent:
    """A unix socket server speaking just enough of the protocol; ``script``
    is called for each request after the sync (``None`` for the sync) with
    the connection and the parsed request, and does whatever it likes."""

    def __init__(self, path: Path, script, *, sync=None):
        self.path, self.script, self.sync_script = str(path), script, sync
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.requests: list[dict] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                buf = b""
                try:
                    while True:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                        while b"\n" in buf:
                            line, buf = buf.split(b"\n", 1)
                            line = line[line.rfind(b"\xff") + 1:]
                            req = json.loads(line)
                            self.requests.append(req)
                            if req.get("execute") == "guest-sync-delimited":
                                token = req["arguments"]["id"]
                                if self.sync_script is not None:
                                    self.sync_script(conn, token)
                                else:
                                    conn.sendall(b"\xff" + json.dumps({"return": token}).encode() + b"\n")
                            else:
                                self.script(conn, req)
                except OSError:
                    pass

    def close(self) -> None:
        self.srv.close()


@pytest.fixture
def fake(tmp_path):
    made = []

    def make(script=lambda conn, req: conn.sendall(b'{"return": {}}\n'), **kw):
        f = FakeAgent(tmp_path / f"fake{len(made)}.sock", script, **kw)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


def test_stale_replies_before_the_sync_answer_are_dropped(fake):
    def sync(conn, token):
        # what an abandoned client left: its command's reply, its own sync's answer, garbage, a lone 0xFF
        conn.sendall(b'{"error": {"class": "GenericError", "desc": "JSON parse error"}}\n')  # qemu-ga's, to the 0xFF
        conn.sendall(b'{"return": {"stale": true}}\n\xff{"return": 12345}\n')
        conn.sendall(b"garbage \xff")
        conn.sendall(b'{"return": 777}\n\xff' + json.dumps({"return": token}).encode() + b"\n")

    f = fake(lambda conn, req: conn.sendall(json.dumps({"return": {"asked": req["execute"]}}).encode() + b"\n"),
             sync=sync)
    with agent.Session(f.path) as s:
        assert s.call("guest-info") == {"asked": "guest-info"}
        assert s.call("guest-ping") == {"asked": "guest-ping"}
    assert [r["execute"] for r in f.requests] == ["guest-sync-delimited", "guest-info", "guest-ping"]


def test_reply_in_pieces_and_late(fake):
    def script(conn, req):
        data = json.dumps({"return": {"n": 1, "text": "x" * 5000}}).encode() + b"\n"
        for i in range(0, len(data), 700):
            conn.sendall(data[i:i + 700])
            time.sleep(0.01)

    f = fake(script)
    with agent.Session(f.path, timeout=30) as s:
        assert s.call("guest-info")["n"] == 1

    def late(conn, req):
        time.sleep(0.5)
        conn.sendall(b'{"return": 42}\n')

    f = fake(late)
    with agent.Session(f.path, timeout=agent.BLOCK) as s:  # -2: however long it takes
        assert s.call("guest-get-time") == 42


def test_no_answer_is_agent_unresponsive_exit_9(fake):
    f = fake(lambda conn, req: None)
    with agent.Session(f.path, timeout=1) as s:
        with pytest.raises(AgentUnresponsive) as ei:
            s.call("guest-info")
    assert ei.value.message == "Guest agent is not responding: Guest agent not available for now"
    assert ei.value.code == "AGENT_UNRESPONSIVE" and int(CODES[ei.value.code][0]) == 9
    f = fake(sync=lambda conn, token: None)  # not even the sync
    with pytest.raises(AgentUnresponsive):
        agent.Session(f.path, timeout=1).open()


def test_garbage_and_cut_off_answers(fake):
    f = fake(lambda conn, req: conn.sendall(b"this is not JSON\n"))
    with agent.Session(f.path) as s:
        with pytest.raises(OperationFailed) as ei:
            s.call("guest-info")
    assert "malformed reply of the guest agent to 'guest-info'" in ei.value.message

    def cut(conn, req):
        conn.sendall(b'{"return": {"version": "7')
        conn.close()

    f = fake(cut)
    with agent.Session(f.path) as s:
        with pytest.raises(AgentUnresponsive) as ei:
            s.call("guest-info")
    assert ei.value.message == agent.DISAPPEARED

    def endless(conn, req):
        try:
            conn.sendall(b'{"return": "' + b"y" * (agent.MAX_REPLY + 65536))
        except OSError:
            pass

    f = fake(endless)
    with agent.Session(f.path, timeout=60) as s:
        with pytest.raises(OperationFailed) as ei:
            s.call("guest-info")
    assert "No complete agent response" in ei.value.message


def test_error_answers_in_libvirt_words(fake):
    f = fake(lambda conn, req: conn.sendall(b'{"error": {"class": "CommandDisabled"}}\n'))
    with agent.Session(f.path) as s:
        with pytest.raises(OperationFailed) as ei:
            s.call("guest-fstrim")
    assert ei.value.message == ("internal error: unable to execute QEMU agent command 'guest-fstrim': "
                                "The command has been disabled for this instance")
    assert agent.is_unsupported(ei.value)


def test_timeouts_checked_and_no_wait(fake):
    for bad in (-3, "5", 1.5, True):
        with pytest.raises(InvalidArg):
            agent.check_timeout(bad)
    assert [agent.wait_seconds(t) for t in (-2, -1, 0, 7)] == [None, 5.0, 0.0, 7.0]
    assert [agent.sync_seconds(t) for t in (-2, -1, 0, 2, 30)] == [5.0, 5.0, 5.0, 2.0, 5.0]
    f = fake(lambda conn, req: None)
    with agent.Session(f.path, timeout=agent.NOWAIT) as s:
        s.send({"execute": "guest-shutdown"})
        assert s.reply("guest-shutdown") is None  # sent, not waited for


# --- the driver's methods over a fake agent ----------------------------------------------------
class _Driver(ga.QemuGuestAgentMixin):
    """The mixin with the running-domain part replaced: the target is the fake agent."""

    def __init__(self, path, live_xml: str | None = None, pci=None):
        from virtctl.xml.domain import DomainDef

        self.live = DomainDef.parse(live_xml or _LIVE, validate=False)
        self.path, self.pci = path, pci or {}

    def _agent_target(self, uuid):
        return ga._Target(self.path, None, -1, "run", self.live, "d")

    def _disk_matcher(self, uuid, live_def):
        return ga.DiskMatcher(live_def, self.pci)


_LIVE = """<domain type='qemu'><name>d</name><memory>65536</memory><os><type>hvm</type></os><devices>
<disk type='file' device='disk'><source file='/x.img'/><target dev='vda' bus='virtio'/>
  <alias name='virtio-disk0'/></disk>
<disk type='file' device='disk'><source file='/y.img'/><target dev='vdb' bus='virtio'/><serial>SER-B</serial>
  <alias name='virtio-disk1'/></disk>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
</devices></domain>"""

_ADDR_A = {"pci-controller": {"domain": 0, "bus": 0, "slot": 4, "function": 0}, "bus-type": "virtio", "bus": 0,
           "target": 0, "unit": 0, "dev": "/dev/vda"}
_ANSWERS = {
    "guest-get-users": [{"user": "root", "login-time": 1700000000.25}, {"user": "bob", "domain": "LAB",
                                                                          "login-time": 1.5}],
    "guest-get-osinfo": {"kernel-version": "#1", "id": "debian", "name": "Debian", "machine": "x86_64"},
    "guest-get-timezone": {"zone": "CET", "offset": 3600},
    "guest-get-host-name": {"host-name": "g1"},
    "guest-get-fsinfo": [  # newest mount first, as qemu-ga lists them
        {"name": "vdb", "mountpoint": "/data", "type": "xfs", "disk": [
            {**_ADDR_A, "pci-controller": {"domain": 0, "bus": 0, "slot": 9, "function": 0}, "serial": "SER-B",
             "dev": "/dev/vdb"}]},
        {"name": "vda", "mountpoint": "/", "type": "ext4", "total-bytes": 100, "used-bytes": 40,
         "disk": [_ADDR_A]}],
    "guest-get-disks": [{"name": "/dev/vda", "partition": False, "dependencies": [], "address": _ADDR_A},
                        {"name": "/dev/dm-0", "partition": False, "dependencies": ["/dev/vda"], "alias": "root"}],
    "guest-network-get-interfaces": [
        {"name": "lo", "hardware-address": "00:00:00:00:00:00",
         "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]},
        {"name": "eth0", "hardware-address": "52:54:00:00:00:01",
         "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.0.5", "prefix": 24}]},
        {"name": "eth0:1", "ip-addresses": [{"ip-address-type": "ipv6", "ip-address": "fe80::1", "prefix": 64}]}],
    "guest-get-vcpus": [{"logical-id": 0, "online": True, "can-offline": False},
                        {"logical-id": 1, "online": True, "can-offline": True},
                        {"logical-id": 2, "online": False, "can-offline": True},
                        {"logical-id": 3, "online": True, "can-offline": True}],
}


def _answering(answers, missing=()):
    def script(conn, req):
        cmd = req["execute"]
        if cmd in missing:
            conn.sendall(json.dumps({"error": {"class": "CommandNotFound", "desc": f"{cmd} not found"}}).encode()
                         + b"\n")
        elif cmd == "guest-set-vcpus":
            conn.sendall(json.dumps({"return": 1}).encode() + b"\n")  # one at a time: the rest is sent again
        else:
            conn.sendall(json.dumps({"return": answers.get(cmd, {})}).encode() + b"\n")
    return script


def test_guest_info_names_and_order(fake):
    f = fake(_answering(_ANSWERS))
    drv = _Driver(f.path, pci={(0, 0, 4, 0): "virtio-disk0", (0, 0, 9, 0): "virtio-disk9"})
    params = drv.guest_info("u")
    assert params == [
        ("user.count", 2), ("user.0.name", "root"), ("user.0.login-time", 1700000000250),
        ("user.1.name", "bob"), ("user.1.domain", "LAB"), ("user.1.login-time", 1500),
        ("os.id", "debian"), ("os.name", "Debian"), ("os.machine", "x86_64"), ("os.kernel-version", "#1"),
        ("timezone.name", "CET"), ("timezone.offset", 3600),
        ("hostname", "g1"),
        ("fs.count", 2),
        ("fs.0.name", "vda"), ("fs.0.mountpoint", "/"), ("fs.0.fstype", "ext4"), ("fs.0.total-bytes", 100),
        ("fs.0.used-bytes", 40), ("fs.0.disk.count", 1), ("fs.0.disk.0.alias", "vda"),
        ("fs.0.disk.0.device", "/dev/vda"),
        ("fs.1.name", "vdb"), ("fs.1.mountpoint", "/data"), ("fs.1.fstype", "xfs"), ("fs.1.disk.count", 1),
        ("fs.1.disk.0.alias", "vdb"), ("fs.1.disk.0.serial", "SER-B"), ("fs.1.disk.0.device", "/dev/vdb"),
        ("disk.count", 2), ("disk.0.name", "/dev/vda"), ("disk.0.partition", False), ("disk.0.alias", "vda"),
        ("disk.1.name", "/dev/dm-0"), ("disk.1.partition", False), ("disk.1.dependency.count", 1),
        ("disk.1.dependency.0.name", "/dev/vda"), ("disk.1.guest_alias", "root"),
        ("if.count", 2), ("if.0.name", "lo"), ("if.0.hwaddr", "00:00:00:00:00:00"), ("if.0.addr.count", 1),
        ("if.0.addr.0.type", "ipv4"), ("if.0.addr.0.addr", "127.0.0.1"), ("if.0.addr.0.prefix", 8),
        ("if.1.name", "eth0"), ("if.1.hwaddr", "52:54:00:00:00:01"), ("if.1.addr.count", 2),
        ("if.1.addr.0.type", "ipv4"), ("if.1.addr.0.addr", "10.0.0.5"), ("if.1.addr.0.prefix", 24),
        ("if.1.addr.1.type", "ipv6"), ("if.1.addr.1.addr", "fe80::1"), ("if.1.addr.1.prefix", 64)]
    # one session: one sync for all seven commands
    assert [r["execute"] for r in f.requests].count("guest-sync-delimited") == 1
    assert drv.guest_info("u", ("hostname", "timezone")) == [("timezone.name", "CET"), ("timezone.offset", 3600),
                                                            ("hostname", "g1")]
    fs = drv.fs_info("u")
    assert fs == [{"mountpoint": "/", "name": "vda", "fstype": "ext4", "devaliases": ["vda"]},
                  {"mountpoint": "/data", "name": "vdb", "fstype": "xfs", "devaliases": ["vdb"]}]
    with pytest.raises(InvalidArg):
        drv.guest_info("u", ("load",))


def test_guest_info_skips_what_the_agent_lacks_unless_asked(fake):
    f = fake(_answering(_ANSWERS, missing=("guest-get-users", "guest-get-disks")))
    drv = _Driver(f.path)
    names = [k for k, _ in drv.guest_info("u")]
    assert not any(n.startswith(("user.", "disk.")) for n in names) and "hostname" in names
    with pytest.raises(OperationFailed) as ei:
        drv.guest_info("u", ("users",))
    assert "unable to execute QEMU agent command 'guest-get-users'" in ei.value.message


def test_vcpus_hostname_password_and_commands(fake):
    f = fake(_answering(_ANSWERS))
    drv = _Driver(f.path)
    assert drv.guest_vcpus("u") == [("vcpus", "0-3"), ("online", "0-1,3"), ("offlinable", "1-3")]
    drv.set_guest_vcpus("u", "1,3", enable=False)
    sets = [r["arguments"]["vcpus"] for r in f.requests if r["execute"] == "guest-set-vcpus"]
    assert sets == [[{"logical-id": 1, "online": False}, {"logical-id": 3, "online": False}],
                    [{"logical-id": 3, "online": False}]]  # the agent did one: the other is sent again
    with pytest.raises(NotSupported) as ei:
        drv.set_guest_vcpus("u", "0", enable=False)
    assert ei.value.message == "Operation not supported: vCPU '0' is not offlinable"
    with pytest.raises(InvalidArg) as ei:
        drv.set_guest_vcpus("u", "2-5", enable=True)
    assert "guest is missing vCPUs '4-5'" in ei.value.message
    assert drv.guest_hostname("u") == "g1" and drv.guest_hostname("u", "agent") == "g1"
    drv.set_user_password("u", "root", "s3cret:é")
    req = [r for r in f.requests if r["execute"] == "guest-set-user-password"][-1]
    import base64

    assert req["arguments"] == {"crypted": False, "username": "root",
                                "password": base64.b64encode("s3cret:é".encode()).decode()}
    # the answer's return value, compact (libvirt's whole reply is {"return": that})
    assert drv.agent_command("u", '{"execute": "guest-get-host-name"}') == '{"host-name":"g1"}'
    assert drv.agent_command("u", '{"execute":"guest-get-timezone","arguments":{}}', timeout=10) == \
        '{"zone":"CET","offset":3600}'
    for bad in ("not json", "[1]", '{"arguments": {}}'):
        with pytest.raises(InvalidArg):
            drv.agent_command("u", bad)
    assert drv.interface_addresses("u", "agent")[1] == {
        "name": "eth0", "hwaddr": "52:54:00:00:00:01",
        "addrs": [{"type": "ipv4", "addr": "10.0.0.5", "prefix": 24}, {"type": "ipv6", "addr": "fe80::1",
                                                                       "prefix": 64}]}
    with pytest.raises(OperationFailed) as ei:  # this agent answers {}: not a count
        drv.fs_freeze("u")
    assert "malformed" in ei.value.message
    with pytest.raises(NotSupported):
        drv.fs_thaw("u", ("/",))
    with pytest.raises(NotSupported):
        drv.fs_trim("u", "/")


def test_freeze_thaw_counts(fake):
    counts = {"guest-fsfreeze-freeze": 2, "guest-fsfreeze-freeze-list": 1, "guest-fsfreeze-thaw": 2}
    f = fake(_answering(counts))
    drv = _Driver(f.path)
    assert drv.fs_freeze("u") == 2
    assert drv.fs_freeze("u", ("/data",)) == 1
    assert [r.get("arguments") for r in f.requests if r["execute"] == "guest-fsfreeze-freeze-list"] == \
        [{"mountpoints": ["/data"]}]
    assert drv.fs_thaw("u") == 2
    drv.fs_trim("u", None, 4096)
    assert [r["arguments"] for r in f.requests if r["execute"] == "guest-fstrim"] == [{"minimum": 4096}]
    f2 = fake(_answering({"guest-fsfreeze-thaw": {"bogus": 1}}))
    with pytest.raises(OperationFailed) as ei:
        _Driver(f2.path).fs_thaw("u")
    assert "malformed" in ei.value.message


def test_cpulists_and_disk_matching():
    assert ga.format_cpulist([]) == "" and ga.format_cpulist([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert ga.parse_cpulist("0-3,^2,5") == {0, 1, 3, 5}
    for bad in ("", "a", "3-1", "1-", "^1-2", "4096"):
        with pytest.raises(InvalidArg):
            ga.parse_cpulist(bad)
    from virtctl.xml.domain import DomainDef

    m = ga.DiskMatcher(DomainDef.parse(_LIVE, validate=False), {(0, 0, 4, 0): "virtio-disk0"})
    assert m.target(_ADDR_A) == "vda"
    assert m.target({**_ADDR_A, "pci-controller": {"domain": 0, "bus": 0, "slot": 5, "function": 0}}) is None
    assert m.target({"serial": "SER-B"}) == "vdb" and m.target(None) is None


# --- shutdown/reboot: libvirt's choice of agent or ACPI ---------------------------------------------
class _PowerDriver(ga.QemuGuestAgentMixin):
    def __init__(self, tmp_path, *, channel=True, target_error=None, agent_error=None, lifecycle=""):
        from types import SimpleNamespace

        from virtctl.xml.domain import DomainDef

        xml = _LIVE if channel else _LIVE.replace("org.qemu.guest_agent.0", "org.example.other")
        xml = xml.replace("</os>", "</os>" + lifecycle)
        (tmp_path / "live.xml").write_text(xml)
        self.state = SimpleNamespace(live_xml=lambda uuid: str(tmp_path / "live.xml"))
        self.live = DomainDef.parse(xml, validate=False)
        self.target_error, self.agent_error, self.calls = target_error, agent_error, []

    def _agent_target(self, uuid):
        self.calls.append("target")
        if self.target_error is not None:
            raise self.target_error
        return ga._Target("/nowhere", None, -1, "run-1", self.live, "d")

    def _agent_shutdown(self, uuid, target, mode):
        self.calls.append(mode)
        if self.agent_error is not None:
            raise self.agent_error

    def _run_ended(self, uuid, run_id):
        return False


def test_shutdown_modes_choose_agent_or_acpi(tmp_path):
    unresponsive = AgentUnresponsive(agent.NOT_CONNECTED)
    failed = OperationFailed("internal error: unable to execute QEMU agent command 'guest-shutdown': no")
    # no mode: the agent when it is connected, else (or when it fails) ACPI
    d = _PowerDriver(tmp_path)
    assert d._agent_power("u", (), reboot=False) == "run-1" and d.calls == ["target", "powerdown"]
    d = _PowerDriver(tmp_path, channel=False)
    assert d._agent_power("u", (), reboot=False) is None and d.calls == []  # not even a look
    assert _PowerDriver(tmp_path, target_error=unresponsive)._agent_power("u", (), reboot=False) is None
    assert _PowerDriver(tmp_path, agent_error=failed)._agent_power("u", (), reboot=False) is None
    # acpi alone: never the agent
    d = _PowerDriver(tmp_path)
    assert d._agent_power("u", ("acpi",), reboot=False) is None and d.calls == []
    # agent alone: its failure is the command's
    with pytest.raises(AgentUnresponsive):
        _PowerDriver(tmp_path, target_error=unresponsive)._agent_power("u", ("agent",), reboot=False)
    with pytest.raises(OperationFailed):
        _PowerDriver(tmp_path, agent_error=failed)._agent_power("u", ("agent",), reboot=False)
    with pytest.raises(NotSupported):
        _PowerDriver(tmp_path, target_error=ga._not_configured())._agent_power("u", ("agent",), reboot=True)
    # acpi,agent: the agent first, ACPI when it fails
    d = _PowerDriver(tmp_path, agent_error=failed)
    assert d._agent_power("u", ("acpi", "agent"), reboot=False) is None and d.calls == ["target", "powerdown"]
    d = _PowerDriver(tmp_path)
    assert d._agent_power("u", ("acpi", "agent"), reboot=True) == "run-1" and d.calls == ["target", "reboot"]
    # the lifecycle turns one into the other, as libvirt's isReboot
    d = _PowerDriver(tmp_path, lifecycle="<on_poweroff>restart</on_poweroff>")
    d._agent_power("u", ("agent",), reboot=False)
    assert d.calls[-1] == "reboot"
    d = _PowerDriver(tmp_path, lifecycle="<on_reboot>destroy</on_reboot>")
    d._agent_power("u", ("agent",), reboot=True)
    assert d.calls[-1] == "powerdown"
