"""A private libvirtd for the tests of the libvirt driver (fixture ``libvirtd``).

A real ``libvirtd`` (Debian's libvirt-daemon-system 9.0: the monolithic
daemon, its QEMU, network and storage drivers) started once per session and
stopped after it, never touching a libvirtd of the machine:

* It runs in its own mount, network and PID namespaces
  (``unshare --mount --net --pid --fork --mount-proc``).  In the mount
  namespace a temporary directory is bind-mounted over each of the fixed
  paths a root libvirtd uses (``/etc/libvirt``, ``/run``,
  ``/var/lib/libvirt``, ``/var/cache/libvirt``, ``/var/log/libvirt``):
  its configuration, state, domains, networks and pools are the run's own,
  and the machine's (``/etc/libvirt/qemu/networks/default.xml``, ...) are
  not seen.  The network namespace holds the bridges of the networks the
  tests define (nothing appears on the host's interfaces, the iptables rules
  libvirt adds are the namespace's).  The PID namespace's first process is
  a small reaper (libvirtd daemonizes QEMU, whose parent then is PID 1; a
  zombie QEMU would make libvirt wait on a dead process): when it ends,
  the kernel kills everything left in the namespace, so nothing started by
  the tests outlives the session.
* Its sockets are in ``<tmp>/sock`` (libvirtd.conf ``unix_sock_dir``), a
  directory both namespaces see; the URI is
  ``qemu+unix:///system?socket=<tmp>/sock/libvirt-sock``.
* What the container needs, in ``qemu.conf``: ``user``/``group`` root (no
  ``libvirt-qemu`` user to drop to), ``security_driver = "none"`` (no
  AppArmor/SELinux), ``cgroup_controllers = []`` (no writable cgroup tree),
  ``namespaces = []`` (no per-domain /dev mount namespace),
  ``stdio_handler = "file"`` (QEMU's log goes to a file: no virtlogd to
  start), ``dynamic_ownership``/``remember_owner`` off (root owns the
  images already).  In ``libvirtd.conf``: ``auth_unix_rw = "none"`` (no
  polkit).  Guests are TCG: ``<domain type='qemu'>``.

Skipped (with the reason) only when libvirtd is not installed; a libvirtd
that is installed but does not come up is an error showing its log.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

LIBVIRTD = shutil.which("libvirtd") or ("/usr/sbin/libvirtd" if os.path.exists("/usr/sbin/libvirtd") else None)
VIRSH = shutil.which("virsh")
START_TIMEOUT = 60.0

QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
"""

LIBVIRTD_CONF = """\
unix_sock_dir = "{sock}"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:{log}"
"""

# PID 1 of the namespace: sets up the mounts, starts libvirtd, reaps every
# orphan, passes SIGTERM on, and ends when libvirtd does
_INIT = r"""
import os, signal, subprocess, sys
root, argv = sys.argv[1], sys.argv[2:]
for src, dst in (("etc", "/etc/libvirt"), ("run", "/run"), ("lib", "/var/lib/libvirt"),
                 ("cache", "/var/cache/libvirt"), ("log", "/var/log/libvirt")):
    os.makedirs(dst, exist_ok=True)
    subprocess.run(["mount", "--bind", os.path.join(root, src), dst], check=True)
os.makedirs("/run/lock", exist_ok=True)  # the console's LCK.. files (/var/lock -> /run/lock)
os.chmod("/run/lock", 0o1777)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
daemon = subprocess.Popen(argv)
signal.signal(signal.SIGTERM, lambda s, f: daemon.send_signal(signal.SIGTERM))
signal.signal(signal.SIGINT, signal.SIG_IGN)
rc = 1
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == daemon.pid:
        rc = os.waitstatus_to_exitcode(status)
        break
sys.exit(rc if rc >= 0 else 1)
"""


class PrivateLibvirtd:
    def __init__(self):
        # short: unix socket paths must stay under 108 bytes
        self.dir = Path(tempfile.mkdtemp(prefix="lvd-"))
        for sub in ("etc", "run", "lib", "cache", "log", "sock", "images"):
            (self.dir / sub).mkdir()
        (self.dir / "etc" / "qemu.conf").write_text(QEMU_CONF)
        self.log = self.dir / "log" / "libvirtd.log"
        (self.dir / "etc" / "libvirtd.conf").write_text(
            LIBVIRTD_CONF.format(sock=self.dir / "sock", log=self.log))
        self.socket = self.dir / "sock" / "libvirt-sock"
        self.uri = f"qemu+unix:///system?socket={self.socket}"
        self.images = self.dir / "images"
        argv = ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "--propagation", "private",
                sys.executable, "-c", _INIT, str(self.dir),
                LIBVIRTD, "--config", str(self.dir / "etc" / "libvirtd.conf"),
                "--pid-file", str(self.dir / "run" / "libvirtd.pid")]
        self.stderr = open(self.dir / "stderr", "w+b")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the daemon answers on its socket (the QEMU driver probes
        qemu-system-x86_64 at start: a few seconds under load)."""
        import libvirt

        libvirt.registerErrorHandler(lambda _c, _e: None, None)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"libvirtd exited ({self.proc.returncode}): {self.diagnostics()}")
            if self.socket.exists():
                try:
                    conn = libvirt.open(self.uri)
                    try:
                        conn.getCapabilities()
                        return
                    finally:
                        conn.close()
                except libvirt.libvirtError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd not answering after {timeout}s: {self.diagnostics()}")
            time.sleep(0.1)

    def diagnostics(self) -> str:
        self.stderr.seek(0)
        err = self.stderr.read().decode(errors="replace")
        try:
            log = self.log.read_text(errors="replace")[-3000:]
        except OSError:
            log = ""
        return f"stderr={err[-2000:]!r}\nlog={log!r}"

    def qemu_log(self, name: str) -> str:
        try:
            return (self.dir / "log" / "qemu" / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def clean(self) -> None:
        """Between tests: destroy and undefine every domain, network and pool."""
        import libvirt

        conn = libvirt.open(self.uri)
        try:
            for d in conn.listAllDomains(0):
                try:
                    if d.isActive():
                        d.destroy()
                    if d.isPersistent():
                        d.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                        | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
                except libvirt.libvirtError:
                    pass
            for n in conn.listAllNetworks(0):
                try:
                    if n.isActive():
                        n.destroy()
                    if n.isPersistent():
                        n.undefine()
                except libvirt.libvirtError:
                    pass
            for p in conn.listAllStoragePools(0):
                try:
                    if p.isActive():
                        p.destroy()
                    if p.isPersistent():
                        p.undefine()
                except libvirt.libvirtError:
                    pass
        finally:
            conn.close()

    def stop(self) -> None:
        try:
            self.clean()
        except Exception:
            pass
        # unshare, the reaper and libvirtd are one process group: SIGTERM to all
        # (libvirtd shuts down; the reaper ends with it), SIGKILL after 20 s; once
        # the reaper (PID 1) is gone the kernel kills whatever is left in the namespace
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            if not _group_alive(self.proc.pid):
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while _group_alive(self.proc.pid) and time.monotonic() < deadline:
                self.proc.poll()
                time.sleep(0.05)
        self.proc.wait()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


@pytest.fixture(scope="session")
def libvirtd():
    """A started :class:`PrivateLibvirtd`; ``.uri`` reaches it."""
    if LIBVIRTD is None:
        pytest.skip("libvirtd is not installed (Debian: libvirt-daemon-system)")
    pytest.importorskip("libvirt", reason="the libvirt binding is not installed (pip install '.[libvirt]')")
    d = PrivateLibvirtd()
    try:
        d.wait_ready()
    except BaseException as exc:
        d.stop()
        pytest.fail(f"the private libvirtd did not start: {exc}", pytrace=False)
    yield d
    d.stop()


def guest_xml(guest, name: str, log, devices: str = "") -> str:
    """A TCG domain of the test guest (``test_guest``) for the private libvirtd:
    its serial console logged to ``log`` (the tests read the guest's lines
    there), ``devices`` (disks, NICs, graphics) before it."""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type machine='pc'>hvm</type>
    <kernel>{guest.kernel}</kernel>
    <initrd>{guest.initrd}</initrd>
    <cmdline>{guest.cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    {devices}
    <serial type='pty'><log file='{log}' append='on'/></serial>
    <console type='pty'/>
  </devices>
</domain>
"""


class LibvirtdEnv:
    """One test module's view of the private daemon: ``virtctl`` (the installed
    entry point) and virsh on its URI, and the serial log of the module's guest
    ``name`` when it has one.  Each test_libvirtd_<area>.py uses this one class
    (subclassed only for what is the area's own)."""

    def __init__(self, daemon, base, *, guest=None, name: str | None = None):
        from integration.test_qemu_driver import VIRTCTL

        self.daemon, self.base, self.uri, self.guest, self.name = daemon, base, daemon.uri, guest, name
        self.virtctl = VIRTCTL
        self.log = base / f"{name}-serial.log" if name else None

    def xml(self, name: str | None = None, devices: str = "") -> str:
        """The test guest's domain (``name``: the module's guest by default)."""
        return guest_xml(self.guest, name or self.name, self.log, devices)

    def file(self, name: str, text: str) -> str:
        p = self.base / name
        p.write_text(text)
        return str(p)

    def run(self, *args: str, timeout: float = 120, input: str | None = None,
            prog: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([prog or self.virtctl, "-c", self.uri, *args], capture_output=True, text=True,
                              timeout=timeout, input=input)

    def ok(self, *args: str, **kw) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"virtctl {' '.join(args)} -> {r.returncode}: {r.stderr}"
        assert "Traceback" not in r.stderr, r.stderr
        return r.stdout

    def fails(self, *args: str) -> subprocess.CompletedProcess:
        r = self.run(*args)
        assert r.returncode != 0, f"virtctl {' '.join(args)} succeeded: {r.stdout}"
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def both(self, *args: str) -> tuple[str, str]:
        """(virtctl's stdout, virsh's stdout) of the same command; both must succeed."""
        ours = self.ok(*args)
        theirs = self.run(*args, prog=VIRSH)
        assert theirs.returncode == 0, f"virsh {' '.join(args)}: {theirs.stderr}"
        return ours, theirs.stdout

    def same_as_virsh(self, *args: str, must_succeed: bool = True) -> None:
        """The same stdout and the same success as virsh on the same daemon (when
        virsh is installed); ``must_succeed``: and virsh succeeds."""
        if VIRSH is None:
            return
        theirs = self.run(*args, prog=VIRSH)
        assert theirs.returncode == 0 or not must_succeed, theirs.stderr
        ours = self.run(*args)
        assert "Traceback" not in ours.stderr, ours.stderr
        assert (ours.stdout, ours.returncode == 0) == (theirs.stdout, theirs.returncode == 0), (
            f"{args!r}: virsh {theirs.returncode} {theirs.stdout!r} {theirs.stderr!r} / "
            f"virtctl {ours.returncode} {ours.stdout!r} {ours.stderr!r}")

    # --- the module's guest
    def serial(self) -> str:
        try:
            return self.log.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_serial(self, text: str, count: int = 1, timeout: float | None = None) -> None:
        from integration.test_qemu_driver import BOOT

        deadline = time.monotonic() + (BOOT if timeout is None else timeout)
        while self.serial().count(text) < count:
            assert time.monotonic() < deadline, (
                f"no {text!r} x{count}: {self.serial()[-1500:]!r}\n{self.daemon.qemu_log(self.name)[-1500:]}")
            time.sleep(0.05)

    def wait_state(self, want: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            got = self.ok("domstate", self.name).strip()
            if got == want:
                return
            assert time.monotonic() < deadline, f"still {got!r}, wanted {want!r}"
            time.sleep(0.2)

    def guest_run(self, cmd: str) -> list[str]:
        """``run CMD`` on the guest's console (a pipe): its output lines."""
        r = self.run("console", self.name, "--idle", "3", input=f"run {cmd}\n", timeout=90)
        assert r.returncode == 0, r.stderr
        return [ln.split(" ", 1)[1].strip() if " " in ln else "" for ln in r.stdout.splitlines()
                if ln.startswith("VIRTCTL-GUEST-OUT")]

    def guest_until(self, cmd: str, ok, timeout: float = 90) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            out = self.guest_run(cmd)
            if ok(out):
                return out
            assert time.monotonic() < deadline, f"{cmd!r} still gives {out!r}"
            time.sleep(1)
