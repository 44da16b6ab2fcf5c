"""Confinement of QEMU (``qemu:///embed?root=DIR&confine=yes``, what
``qemu:///system`` does by default) against real QEMU (TCG) and the test guest.

Needs root (only root can run QEMU as another user).  The QEMU user
``virtctl-qemu`` is created for this module when it does not exist (the
README's documented step) and removed afterwards.  One booted domain serves
the tests that need a running guest, in file order; the others start
``--paused`` (QEMU has opened everything by then).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from integration.test_qemu_driver import BOOT, VIRTCTL, Env

pytestmark = pytest.mark.qemu
NAME = "cg"
USER = "virtctl-qemu"  # the README's documented QEMU user
CREATE_USER = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER]
QEMU_IMG = shutil.which("qemu-img")


@pytest.fixture(scope="module")
def qemu_user():
    if os.geteuid() != 0:
        pytest.skip("confinement needs root")
    created = False
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(CREATE_USER, check=False, capture_output=True)
        pw = pwd.getpwnam(USER)  # made by us, or by someone at the same moment
        created = True
    yield pw
    if created:
        subprocess.run(["userdel", USER], check=False, capture_output=True)


def confined_env(root: Path, guest) -> Env:
    e = Env(root, guest)
    e.uri = f"qemu:///embed?root={root}&confine=yes"
    return e


def guest_xml(env: Env, name: str, devices: str = "", *, kernel: str | None = None, emulator: str = "") -> str:
    text = env.xml(name)
    if kernel:
        text = text.replace(f"<kernel>{env.guest.kernel}</kernel>", f"<kernel>{kernel}</kernel>")
    return text.replace("<devices>", "<devices>" + emulator + devices, 1)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def proc_fds(pid: int) -> dict[int, str]:
    d = f"/proc/{pid}/fd"
    out = {}
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(f"{d}/{n}")
        except OSError:
            pass
    return out


def as_qemu_user(*argv: str) -> subprocess.CompletedProcess:
    """Run ``argv`` as the QEMU user would (no groups, no capabilities)."""
    return subprocess.run(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "--inh-caps=-all",
                           "--bounding-set=-all", "--", *argv], capture_output=True, text=True)


def assert_confined(env: Env, name: str = NAME) -> int:
    """The pid of the domain's QEMU, which runs as the QEMU user."""
    pid = env.record(name)["pid"]
    assert proc_status(pid)["Uid"].split()[0] == str(pwd.getpwnam(USER).pw_uid)
    return pid


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest, qemu_user):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("confine")
    e = confined_env(base / "root", test_guest)
    disk = base / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(disk, 0o600)
    devices = (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
               "<target dev='vda' bus='virtio'/></disk><graphics type='vnc'/><video><model type='vga'/></video>"
               "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>")
    e.ok("define", write(base / "cg.xml", guest_xml(e, NAME, devices)))
    e.ok("start", NAME)
    e.wait_ready(e.uuid(NAME))
    yield e
    e.cleanup()


# --- the booted guest --------------------------------------------------------------------------
def test_qemu_runs_as_the_qemu_user_with_no_privileges(env, qemu_user):
    rec = env.record(NAME)
    st = proc_status(rec["pid"])
    assert st["Name"].startswith("qemu-system")
    assert st["Uid"].split() == [str(qemu_user.pw_uid)] * 4
    assert st["Gid"].split() == [str(qemu_user.pw_gid)] * 4
    assert st["Groups"] == ""
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    assert st["NoNewPrivs"] == "1"
    assert rec["qemu_user"] == {"user": USER, "uid": qemu_user.pw_uid, "gid": qemu_user.pw_gid, "groups": []}
    # the state it runs from is out of its reach: everything came as a descriptor
    argv = cmdline(rec["pid"])
    named = [a for i, a in enumerate(argv) if (str(env.root) in a or env.state.sock in a)
             and argv[i - 1] != "-add-fd"]  # (an -add-fd label names its file, for query-fdsets)
    assert not named
    r = as_qemu_user("/bin/cat", env.state.record_file(rec["uuid"]))
    assert r.returncode != 0 and "Permission denied" in r.stderr


def test_domxml_to_native_is_the_running_command_line(env):
    shown = json.loads(env.ok("--json", "domxml-to-native", "qemu-argv", "--domain", NAME))["argv"]
    assert shown == cmdline(env.record(NAME)["pid"])
    assert "-pidfile" not in shown and "-add-fd" in shown


def test_console_and_guest_reboot(env):
    pexpect = pytest.importorskip("pexpect")
    assert_confined(env)
    uuid = env.uuid(NAME)
    con = pexpect.spawn(VIRTCTL, ["-c", env.uri, "console", NAME], encoding="utf-8", timeout=BOOT)
    try:
        con.expect_exact("Escape character is ^] (Ctrl + ])")
        con.send("reboot\r")
        con.expect_exact("VIRTCTL-GUEST-CMD reboot")
        con.expect_exact(env.guest.ready_line)
        con.send("\x1d")
        con.expect(pexpect.EOF)
    finally:
        con.close(force=True)
    env.wait_ready(uuid, count=2)
    assert env.domstate(NAME) == "running (booted)"


def test_vnc_socket_and_screenshot(env, tmp_path):
    assert_confined(env)
    out = env.ok("domdisplay", NAME).strip()
    assert out.startswith("vnc+unix:///") and out.endswith("vnc.sock"), out
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(out[len("vnc+unix://"):])
        assert s.recv(12).startswith(b"RFB 003.")
    shot = tmp_path / "shot.ppm"
    env.ok("screenshot", NAME, str(shot))
    assert shot.read_bytes()[:2] == b"P6"
    assert not [n for n in os.listdir(env.record(NAME)["paths"]["chardev_dir"]) if "screendump" in n]


def test_save_and_restore_stay_confined(env, tmp_path, qemu_user):
    image = tmp_path / "cg.save"
    env.ok("save", NAME, str(image))
    assert env.domstate(NAME) == "shut off (saved)"
    env.ok("restore", str(image))
    assert env.domstate(NAME) == "running (restored)"
    st = proc_status(env.record(NAME)["pid"])
    assert st["Uid"].split()[0] == str(qemu_user.pw_uid) and int(st["CapBnd"], 16) == 0


def test_shutdown(env):
    assert_confined(env)
    env.ok("shutdown", NAME, "--wait", "--timeout", "120")
    assert env.domstate(NAME) == "shut off (shutdown)"
    assert not env.qemu_pids()


# --- files the definition names, and those it does not ------------------------------------------------
@pytest.fixture
def cenv(tmp_path, test_guest, qemu_user):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = confined_env(tmp_path / "root", test_guest)
    yield e
    e.cleanup()


def _images(tmp_path: Path, *, record_format: bool = True) -> tuple[Path, Path]:
    """base.raw (a marker at offset 0) and top.qcow2 on it; both 0600 in a 0700
    directory: the QEMU user can open neither by path."""
    d = tmp_path / "images"
    d.mkdir(mode=0o700)
    base, top = d / "base.raw", d / "top.qcow2"
    with open(base, "wb") as f:
        f.write(b"VIRTCTL-BASE-MARKER")
        f.truncate(1 << 20)
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(top)], check=True)
    if not record_format:
        # hide the backing-format header extension (QEMU ignores unknown ones)
        data = bytearray(top.read_bytes()[:65536])
        at = data.find(bytes.fromhex("E2792ACA"))
        assert at > 0
        with open(top, "r+b") as f:
            f.seek(at)
            f.write(bytes.fromhex("0BADF00D"))
    for p in (base, top):
        os.chmod(p, 0o600)
    return base, top


def _disk(top: Path, inner: str = "") -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{top}'/>{inner}"
            "<target dev='vda' bus='virtio'/></disk>")


@pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img is not installed")
def test_backing_file_is_resolved_and_handed_over(cenv, tmp_path):
    cenv.uri += "&backing=image"  # the images' headers decide (a confined connection's default is 'definition')
    base, top = _images(tmp_path)
    assert as_qemu_user("/bin/cat", str(base)).returncode != 0  # out of the QEMU user's reach
    cenv.ok("create", write(tmp_path / "b.xml", guest_xml(cenv, "bk", _disk(top))), "--paused")
    pid = cenv.record("bk")["pid"]
    live = cenv.ok("dumpxml", "bk")
    assert (f"<backingStore type='file'>\n        <format type='raw'/>\n        <source file='{base}'/>\n"
            "        <backingStore/>\n      </backingStore>") in live
    # QEMU holds both layers, received as descriptors: no -blockdev names a path
    assert {str(base), str(top)} <= set(proc_fds(pid).values())
    argv = cmdline(pid)
    nodes = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-blockdev"]
    assert [n["filename"] for n in nodes if "filename" in n] == ["/dev/fdset/1", "/dev/fdset/0"]
    top_node = [n for n in nodes if n.get("driver") == "qcow2"][0]
    assert top_node["backing"] == [n for n in nodes if n.get("driver") == "raw"][0]["node-name"]
    # and the guest's disk shows the base's data through the overlay (qemu-io prints to QEMU's log)
    cenv.ok("qemu-monitor-command", "bk", "--hmp", f"qemu-io {top_node['node-name']} \"read -v 0 32\"")
    log = Path(cenv.state.qemu_log(cenv.uuid("bk"))).read_text(errors="replace")
    assert "VIRTCTL.BASE.MAR" in log, log[-2000:]  # (qemu-io shows '-' as '.')


@pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img is not installed")
@pytest.mark.parametrize("confined", [True, False])
def test_backing_file_without_format_is_refused(cenv, tmp_path, confined):
    base, top = _images(tmp_path, record_format=False)
    if not confined:
        cenv.uri = f"qemu:///embed?root={cenv.root}"
    cenv.ok("define", write(tmp_path / "n.xml", guest_xml(cenv, "nf", _disk(top))))
    r = cenv.run("start", "nf")
    assert r.returncode == 1, r.stderr
    assert f"the image '{top}' names its backing file '{base}' but not that file's format" in r.stderr
    assert f"qemu-img rebase -u -F FORMAT -b {base} {top}" in r.stderr
    assert cenv.domstate("nf") == "shut off (unknown)" and not cenv.qemu_pids()
    # naming it, with its format, in the definition is the other fix
    inner = f"<backingStore type='file'><format type='raw'/><source file='{base}'/></backingStore>"
    cenv.ok("undefine", "nf")
    cenv.ok("define", write(tmp_path / "n2.xml", guest_xml(cenv, "nf", _disk(top, inner))))
    cenv.ok("start", "nf", "--paused")
    assert str(base) in proc_fds(cenv.record("nf")["pid"]).values()
    cenv.ok("destroy", "nf")


@pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img is not installed")
def test_backing_definition_lets_the_guest_read_only_named_files(cenv, tmp_path):
    """A confined connection's default (backing=definition): the image's header
    alone never makes virtctl open another file for QEMU."""
    base, top = _images(tmp_path)
    cenv.ok("define", write(tmp_path / "d.xml", guest_xml(cenv, "bd", _disk(top))))
    r = cenv.run("start", "bd")
    assert r.returncode == 1
    assert f"the image '{top}' names the backing file '{base}' (raw), which the definition does not" in r.stderr
    assert not cenv.qemu_pids()
    inner = f"<backingStore type='file'><format type='raw'/><source file='{base}'/></backingStore>"
    cenv.ok("undefine", "bd")
    cenv.ok("define", write(tmp_path / "d2.xml", guest_xml(cenv, "bd", _disk(top, inner))))
    cenv.ok("start", "bd", "--paused")
    assert str(base) in proc_fds(assert_confined(cenv, "bd")).values()
    cenv.ok("destroy", "bd")


@pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img is not installed")
def test_a_chain_the_images_do_not_have_is_refused(cenv, tmp_path):
    base, top = _images(tmp_path)
    other = tmp_path / "other.raw"
    other.write_bytes(b"\0" * 4096)
    inner = f"<backingStore type='file'><format type='raw'/><source file='{other}'/></backingStore>"
    cenv.ok("define", write(tmp_path / "w.xml", guest_xml(cenv, "wc", _disk(top, inner))))
    r = cenv.run("start", "wc")
    assert r.returncode == 1
    assert f"the definition names '{other}' as the backing file of '{top}', but the image names '{base}'" in r.stderr
    assert not cenv.qemu_pids()


def test_non_qemu_emulators_are_refused(cenv, tmp_path):
    public = Path(tempfile.mkdtemp(prefix="vt-confine-"))  # a directory the QEMU user may enter
    try:
        _non_qemu_emulators_are_refused(cenv, tmp_path, public)
    finally:
        shutil.rmtree(public)


def _non_qemu_emulators_are_refused(cenv, tmp_path, public):
    os.chmod(public, 0o755)
    script = public / "qemu-lookalike"
    script.write_text("#!/bin/sh\necho 'QEMU emulator version 7.2.0'\nexec sleep 1\n")
    script.chmod(0o755)
    hidden = tmp_path / "qemu-hidden"  # under 0700 directories: the QEMU user cannot even run it
    shutil.copyfile(script, hidden)
    hidden.chmod(0o755)
    cenv.ok("define", write(tmp_path / "h.xml", guest_xml(cenv, "hid", emulator=f"<emulator>{hidden}</emulator>")))
    r = cenv.run("start", "hid")
    assert r.returncode == 1
    assert f"the emulator '{hidden}' cannot be run as the QEMU user '{USER}': Permission denied" in r.stderr
    for i, binary in enumerate(("/bin/true", str(script))):
        name = f"em{i}"
        cenv.ok("define", write(tmp_path / f"{name}.xml",
                                guest_xml(cenv, name, emulator=f"<emulator>{binary}</emulator>")))
        r = cenv.run("start", name)
        assert r.returncode == 1
        assert f"the emulator '{binary}' is not a QEMU binary" in r.stderr, r.stderr
        r = cenv.run("domxml-to-native", "qemu-argv", "--domain", name)
        assert r.returncode == 1 and "is not a QEMU binary" in r.stderr
        assert cenv.domstate(name) == "shut off (unknown)"
    assert not cenv.qemu_pids()


def test_kernel_the_qemu_user_cannot_read_is_copied(cenv, tmp_path):
    kernel = tmp_path / "vmlinuz"
    shutil.copyfile(cenv.guest.kernel, kernel)
    os.chmod(kernel, 0o600)
    assert os.stat(cenv.guest.kernel).st_mode & stat.S_IROTH  # the cached one is world-readable
    cenv.ok("create", write(tmp_path / "k.xml", guest_xml(cenv, "kc", kernel=str(kernel))), "--paused")
    pid = cenv.record("kc")["pid"]
    argv = cmdline(pid)
    k, i = argv[argv.index("-kernel") + 1], argv[argv.index("-initrd") + 1]
    fds = proc_fds(pid)
    assert fds[int(k.rsplit("/", 1)[1])].startswith("/memfd:virtctl-kernel")  # a sealed copy
    assert fds[int(i.rsplit("/", 1)[1])] == str(cenv.guest.initrd)  # readable: the file itself
    cenv.ok("resume", "kc")
    cenv.wait_ready(cenv.uuid("kc"))
    cenv.ok("destroy", "kc")


def test_unknown_confine_value_and_user(tmp_path, test_guest, qemu_user):
    r = subprocess.run([VIRTCTL, "-c", f"qemu:///embed?root={tmp_path / 'r'}&confine=maybe", "list"],
                       capture_output=True, text=True)
    assert r.returncode == 7 and "confine=yes or confine=no" in r.stderr
    e = Env(tmp_path / "r2", test_guest)
    try:
        e.uri = f"qemu:///embed?root={e.root}&qemu_user=no-such-user-xyz"
        r = e.run("create", write(tmp_path / "u.xml", e.xml("nu")))
        assert r.returncode == 1 and "the QEMU user 'no-such-user-xyz' does not exist" in r.stderr
    finally:
        e.cleanup()
