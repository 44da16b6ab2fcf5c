"""The native QEMU driver against real QEMU (TCG) and the test guest.

CLI-level tests run the installed ``virtctl`` entry point; the others use
the API.  Everything runs under ``qemu:///embed?root=<tmp_path>``; every test
kills what it started (and anything left under its root) at teardown.
Generous timeouts, no timing assertions.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import virtctl
from virtctl.drivers.qemu.state import StateRoot

pytestmark = pytest.mark.qemu

VIRTCTL = shutil.which("virtctl")
BOOT = float(os.environ.get("VIRTCTL_TEST_BOOT_TIMEOUT", "180"))

GUEST_XML = """<domain type='qemu'>
  <name>{name}</name>{uuid}
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>{lifecycle}
  <devices>
    <serial type='pty'/>
    <console type='pty'/>
  </devices>
</domain>
"""


def _procs_under(markers: list[str]) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{d}/stat", "rb") as f:
                st = f.read().decode(errors="replace")
        except OSError:
            continue
        if st[st.rfind(")") + 2:].startswith("Z"):
            continue
        if any(m in cmd for m in markers):
            out.append(int(d))
    return out


class Env:
    """One embed root, its URI, and helpers to drive virtctl over it."""

    def __init__(self, root: Path, guest):
        self.root, self.guest = root, guest
        self.uri = f"qemu:///embed?root={root}"
        self.state = StateRoot.for_uri("/embed", {"root": str(root)})
        self.conn = virtctl.open(self.uri)
        self.env = None  # environment of the virtctl processes (None: ours)

    def xml(self, name: str, *, uuid: str | None = None, on_poweroff: str | None = None,
            balloon: bool = False) -> str:
        g = self.guest
        text = GUEST_XML.format(
            name=name, uuid=f"\n  <uuid>{uuid}</uuid>" if uuid else "", kernel=g.kernel,
            initrd=g.initrd, cmdline=g.cmdline,
            lifecycle=f"\n  <on_poweroff>{on_poweroff}</on_poweroff>" if on_poweroff else "")
        if balloon:
            text = text.replace("</devices>", "  <memballoon model='virtio'/>\n  </devices>")
        return text

    def xml_file(self, name: str, **kw) -> str:
        p = self.root.parent / f"{self.root.name}-{name}.xml"
        p.write_text(self.xml(name, **kw))
        return str(p)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([VIRTCTL, "-c", self.uri, *args], capture_output=True, text=True,
                              timeout=timeout, env=self.env)

    def ok(self, *args: str, timeout: float = 120) -> str:
        r = self.run(*args, timeout=timeout)
        assert r.returncode == 0, f"virtctl {' '.join(args)} -> {r.returncode}: {r.stderr}"
        return r.stdout

    def domstate(self, name: str) -> str:
        return self.ok("domstate", name, "--reason").strip()

    def wait_state(self, name: str, want: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            got = self.domstate(name)
            if got == want:
                return
            assert time.monotonic() < deadline, f"{name}: still {got!r}, wanted {want!r}"
            time.sleep(0.1)

    def uuid(self, name: str) -> str:
        return self.conn.lookup_domain(name).uuid

    def record(self, name: str) -> dict:
        return json.loads(Path(self.state.record_file(self.uuid(name))).read_text())

    def serial_log(self, uuid: str) -> Path:
        return Path(self.state.sock_dir(uuid)) / "chardev" / "serial0.log"

    def wait_ready(self, uuid: str, count: int = 1, timeout: float = BOOT) -> None:
        log = self.serial_log(uuid)
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = log.read_bytes().decode(errors="replace")
            except FileNotFoundError:
                text = ""
            if text.count(self.guest.ready_line) >= count:
                return
            assert time.monotonic() < deadline, f"no ready line x{count} after {timeout}s: {text[-1500:]!r}"
            time.sleep(0.05)

    def send_serial(self, uuid: str, line: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(Path(self.state.sock_dir(uuid)) / "chardev" / "serial0.sock"))
            s.sendall(line.encode() + b"\n")
            time.sleep(0.3)

    def qemu_pids(self) -> list[int]:
        return [p for p in _procs_under([str(self.root), self.state.sock])
                if "qemu-system" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]

    def cleanup(self) -> None:
        try:
            for dom in self.conn.domains(active=True):
                try:
                    dom.destroy()
                except virtctl.VirtError:
                    pass
        finally:
            self.conn.close()
            for pid in _procs_under([str(self.root), self.state.sock]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self.state.sock.startswith("/tmp/virtctl-"):
                shutil.rmtree(self.state.sock, ignore_errors=True)


@pytest.fixture
def env(tmp_path, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = Env(tmp_path / "root", test_guest)
    yield e
    e.cleanup()


# --- the CLI, end to end -----------------------------------------------------------------
def test_define_start_ready_shutdown_wait(env, tmp_path):
    # other programs use /tmp too: watch virtctl-named entries there, and give
    # the virtctl processes (and the QEMU and monitor they start) their own TMPDIR
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    env.env = {**os.environ, "TMPDIR": str(private_tmp)}
    tmp_before = {n for n in os.listdir("/tmp") if "virtctl" in n}
    home_before = set(os.listdir(os.path.expanduser("~")))
    env.ok("define", env.xml_file("g1"))
    assert env.domstate("g1") == "shut off (unknown)"
    env.ok("start", "g1")
    assert env.domstate("g1") == "running (booted)"
    uuid = env.uuid("g1")
    env.wait_ready(uuid)
    assert len(env.qemu_pids()) == 1
    out = env.ok("dumpxml", "g1")
    assert f"<domain type='qemu' id='{env.record('g1')['id']}'>" in out and "<alias name='serial0'/>" in out
    assert "id=" not in env.ok("dumpxml", "g1", "--inactive").splitlines()[0]
    env.ok("shutdown", "g1", "--wait", "--timeout", "120")
    assert env.domstate("g1") == "shut off (shutdown)"
    assert env.ok("list", "--name").strip() == ""
    assert not env.qemu_pids()
    # nothing written outside the embed root and its short socket directory
    new_tmp = {n for n in os.listdir("/tmp") if "virtctl" in n} - tmp_before
    assert new_tmp <= {os.path.basename(env.state.sock)}, new_tmp
    assert not os.listdir(private_tmp)
    assert set(os.listdir(os.path.expanduser("~"))) == home_before
    assert not os.path.exists(env.state.record_file(uuid))


def test_lifecycle_reasons(env):
    env.ok("define", env.xml_file("g2"))
    uuid = env.uuid("g2")
    env.ok("start", "g2", "--paused")
    assert env.domstate("g2") == "paused (user)"
    env.ok("resume", "g2")
    assert env.domstate("g2") == "running (unpaused)"
    env.wait_ready(uuid)
    env.ok("suspend", "g2")
    assert env.domstate("g2") == "paused (user)"
    assert env.run("suspend", "g2").returncode == 4
    env.ok("resume", "g2")
    env.ok("reboot", "g2")  # ACPI power button, turned into a reset by the monitor
    env.wait_ready(uuid, count=2)
    assert env.domstate("g2") == "running (unpaused)"
    env.ok("reset", "g2")
    env.wait_ready(uuid, count=3)
    assert env.domstate("g2") == "running (unpaused)"
    env.ok("destroy", "g2")
    assert env.domstate("g2") == "shut off (destroyed)"
    for cmd in ("destroy", "suspend", "resume", "reset", "reboot", "shutdown"):
        r = env.run(cmd, "g2")
        assert r.returncode == 4 and "not running" in r.stderr, (cmd, r.stderr)
    assert not env.qemu_pids()


def test_shutdown_wait_timeout_is_operation_timeout(env):
    env.ok("define", env.xml_file("g3"))
    env.ok("start", "g3", "--paused")  # a paused guest cannot obey the power button
    r = env.run("shutdown", "g3", "--wait", "--timeout", "1")
    assert r.returncode == 9 and "did not shut off" in r.stderr
    assert env.domstate("g3") == "paused (user)"
    env.ok("destroy", "g3")


def test_kill9_qemu_is_crashed(env):
    env.ok("define", env.xml_file("k1"))
    env.ok("start", "k1")
    pid = env.record("k1")["pid"]
    os.kill(pid, signal.SIGKILL)
    env.wait_state("k1", "shut off (crashed)")
    env.ok("start", "k1")  # and it starts again
    assert env.domstate("k1") == "running (booted)"


def test_reused_pid_is_not_the_vm(env):
    env.ok("define", env.xml_file("p1"))
    env.ok("start", "p1", "--paused")
    rec = env.record("p1")
    uuid = rec["uuid"]
    os.kill(rec["monitor_pid"], signal.SIGKILL)  # nobody cleans up behind our back
    os.kill(rec["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while rec["pid"] in env.qemu_pids():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sleeper = subprocess.Popen(["sleep", "1000"])
    try:
        from virtctl.drivers.qemu.process import start_time

        rec.update(pid=sleeper.pid, start_time=start_time(sleeper.pid))  # a perfect reuse
        Path(env.state.record_file(uuid)).write_text(json.dumps(rec))
        Path(env.state.pidfile(uuid)).write_text(f"{sleeper.pid}\n")
        assert env.domstate("p1") == "shut off (crashed)"
        assert sleeper.poll() is None  # never signalled
        env.ok("start", "p1", "--paused")
        assert env.domstate("p1") == "paused (user)"
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_ten_concurrent_starts_one_qemu(env):
    env.ok("define", env.xml_file("c1"))
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: env.run("start", "c1", "--paused", timeout=300), range(10)))
    codes = sorted(r.returncode for r in results)
    assert codes == [0] + [4] * 9, [(r.returncode, r.stderr) for r in results]
    # virsh's own check ("Domain is already active") or the driver's, whichever sees it first
    assert all("already running" in r.stderr or "already active" in r.stderr for r in results if r.returncode)
    assert len(env.qemu_pids()) == 1
    assert env.domstate("c1") == "paused (user)"


def test_twenty_concurrent_defines(env):
    files = [env.xml_file(f"d{i:02d}") for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda f: env.run("define", f), files))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    names = env.ok("list", "--all", "--name").split()
    assert sorted(names) == [f"d{i:02d}" for i in range(20)]
    assert not [n for n in os.listdir(env.state.config_domains) if n.startswith(".")]


def test_transient_domain_disappears_after_guest_poweroff(env):
    out = env.ok("create", env.xml_file("t1"))
    assert "created" in out
    uuid = env.uuid("t1")
    assert env.ok("dominfo", "t1").count("Persistent:     no") == 1
    env.wait_ready(uuid)
    env.send_serial(uuid, "poweroff")
    deadline = time.monotonic() + 60
    while env.run("dominfo", "t1").returncode != 3:
        assert time.monotonic() < deadline, "transient domain still there"
        time.sleep(0.1)
    assert "t1" not in env.ok("list", "--all", "--name").split()
    assert not os.path.exists(env.state.run_dir(uuid))
    assert not env.qemu_pids()


def test_on_poweroff_preserve_keeps_qemu(env):
    env.ok("define", env.xml_file("pr", on_poweroff="preserve"))
    env.ok("start", "pr")
    uuid = env.uuid("pr")
    env.wait_ready(uuid)
    env.ok("shutdown", "pr")
    env.wait_state("pr", "paused (shutting down)")
    assert len(env.qemu_pids()) == 1
    env.ok("destroy", "pr")
    assert env.domstate("pr") == "shut off (destroyed)"


def test_corrupt_definition_does_not_break_list(env):
    env.ok("define", env.xml_file("good"))
    env.ok("define", env.xml_file("bad"))
    bad = env.uuid("bad")
    Path(env.state.domain_xml(bad)).write_text("<domain><name>bad</nam")
    r = env.run("list", "--all", "--name")
    # the corrupt one is still listed (its name kept in its 'name' file), with a warning
    assert r.returncode == 0 and r.stdout.split() == ["bad", "good"]
    assert "warning" in r.stderr and bad in r.stderr and env.uuid("good") not in r.stderr
    assert env.domstate("good") == "shut off (unknown)"
    assert env.run("domstate", bad).stdout.strip() == "no state"


def test_kill9_of_virtctl_during_start_leaves_no_stray_qemu(env, tmp_path):
    """virtctl dies after spawning QEMU (-S) and before committing the start."""
    env.ok("define", env.xml_file("s1"))
    script = textwrap.dedent(f"""
        import os, virtctl
        from virtctl.drivers.qemu import launch
        def die(*a, **k):
            os.kill(os.getpid(), 9)
        launch._spawn_monitor = die
        virtctl.open({env.uri!r}).lookup_domain("s1").start()
    """)
    r = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, timeout=120,
                       cwd=str(tmp_path))  # -P, cwd: import the installed virtctl, not the source tree
    assert r.returncode == -9, r.stderr
    assert len(env.qemu_pids()) == 1  # the half-started QEMU, frozen by -S
    assert env.domstate("s1") == "shut off (unknown)"
    env.ok("start", "s1", "--paused")  # the next start kills the stray first
    assert len(env.qemu_pids()) == 1
    assert env.domstate("s1") == "paused (user)"


def test_autodestroy_when_owner_exits(env):
    env.ok("define", env.xml_file("a1"))
    env.ok("start", "a1", "--paused", "--autodestroy")  # this virtctl exits at once
    env.wait_state("a1", "shut off (destroyed)", timeout=60)
    assert not env.qemu_pids()


def test_setmem_setvcpus_and_autostart(env):
    env.ok("define", env.xml_file("m1", balloon=True))
    env.ok("setmem", "m1", "200M", "--config")
    env.ok("setmaxmem", "m1", "300M", "--config")
    env.ok("setvcpus", "m1", "1", "--config")
    env.ok("autostart", "m1")
    env.ok("define", env.xml_file("m2"))
    env.ok("start", "--all-autostart")
    assert env.domstate("m1") == "running (booted)" and env.domstate("m2") == "shut off (unknown)"
    assert "Used memory:    204800 KiB" in env.ok("dominfo", "m1")
    env.ok("setmem", "m1", "150M", "--live")
    assert "Used memory:    153600 KiB" in env.ok("dominfo", "m1")
    assert "<currentMemory unit='KiB'>204800</currentMemory>" in env.ok("dumpxml", "m1", "--inactive")
    assert "<alias name='balloon0'/>" in env.ok("dumpxml", "m1")
    r = env.run("setvcpus", "m1", "1", "--live")
    assert r.returncode == 6
    r = env.run("setmaxmem", "m1", "100M", "--live")
    assert r.returncode == 4
    env.ok("domrename", "m2", "m3")
    assert env.run("domrename", "m1", "m4").returncode == 4
    assert "serial" not in env.ok("domblklist", "m1")


def test_long_embed_root_keeps_sockets_short(tmp_path, test_guest):
    root = tmp_path / ("x" * 60) / ("y" * 60) / "root"
    e = Env(root, test_guest)
    try:
        e.ok("define", e.xml_file("long"))
        e.ok("start", "long", "--paused")
        rec = e.record("long")
        for key in ("qmp", "qmp_monitor", "vnc_socket"):
            assert len(rec["paths"][key].encode()) < 108
        assert len(os.path.join(rec["paths"]["chardev_dir"], "serial0.sock").encode()) < 108
        assert e.domstate("long") == "paused (user)"
    finally:
        e.cleanup()


@pytest.mark.parametrize("mode", [0o777, "foreign"])
def test_unsafe_state_dir_is_refused(tmp_path, mode):
    root = tmp_path / "root"
    root.mkdir()
    if mode == "foreign":
        if os.geteuid() != 0:
            pytest.skip("needs root to chown")
        os.chown(root, 12345, 12345)
    else:
        root.chmod(mode)
    with pytest.raises(virtctl.VirtError) as e:
        virtctl.open(f"qemu:///embed?root={root}")
    assert e.value.code == "CONNECT_FAILED"


def test_stopped_qemu_times_out_and_releases_the_lock(env):
    """A SIGSTOPped QEMU: commands that need it time out (OPERATION_TIMEOUT),
    release the domain lock, and reads (list) are not blocked."""
    env.ok("define", env.xml_file("z1"))
    env.ok("start", "z1", "--paused")
    pid = env.record("z1")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        r = env.run("resume", "z1", timeout=120)
        assert r.returncode == 9 and "error:" in r.stderr, r.stderr
        assert "z1" in env.ok("list", "--all")  # not blocked by the stuck domain
    finally:
        os.kill(pid, signal.SIGCONT)
    env.ok("resume", "z1")  # the lock was released: the next command works
    assert env.domstate("z1") == "running (unpaused)"


def test_deleted_monitor_socket_is_a_clear_error_and_destroy_still_works(env):
    env.ok("define", env.xml_file("q1"))
    env.ok("start", "q1", "--paused")
    os.unlink(env.record("q1")["paths"]["qmp"])
    r = env.run("resume", "q1")
    assert r.returncode == 1 and "monitor socket" in r.stderr and "Traceback" not in r.stderr
    env.ok("destroy", "q1")
    assert env.domstate("q1") == "shut off (destroyed)"
    assert env.qemu_pids() == []
