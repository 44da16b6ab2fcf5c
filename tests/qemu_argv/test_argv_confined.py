"""A confined QEMU's command line (argv_files.py), the confinement settings of
a URI (confine.py), backing-chain resolution (backing.py) and the emulator
check (emulator.py): unit tests, QEMU needed only for the emulator probe."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
from types import SimpleNamespace

import pytest

from qemu_argv.helpers import QEMU, paths
from qemu_argv.test_argv import blockdevs, device, dom, opts
from virtctl.drivers.qemu import backing, confine, emulator
from virtctl.drivers.qemu.argv import build_argv
from virtctl.drivers.qemu.argv_files import HostFiles
from virtctl.errors import ConnectFailed, OperationFailed

P = paths()
ALL = """<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/top.qcow2'/>
          <backingStore type='file'><format type='raw'/><source file='/img/base.raw'/><backingStore/></backingStore>
          <target dev='vda' bus='virtio'/></disk>
        <disk type='file' device='cdrom'><source file='/img/cd.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
        <serial type='pty'/>
        <serial type='unix'><source mode='bind' path='/s/bind.sock'/><target port='1'/></serial>
        <serial type='unix'><source mode='connect' path='/s/out.sock'/><target port='2'/></serial>
        <serial type='file'><source path='/var/log/s3.log' append='on'/><target port='3'/><log file='/var/log/l3'/></serial>
        <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
        <graphics type='vnc'/>"""
KERNEL = "<kernel>/boot/vmlinuz</kernel><initrd>/boot/initrd.img</initrd><cmdline>console=ttyS0</cmdline>"
HOST_PATHS = ("/img/", "/s/", "/var/log/", "/boot/", "/dev/urandom", P.qmp, P.qmp_monitor, P.pidfile,
              P.chardev_dir, P.vnc_socket)


def confined(devices: str = ALL, os_extra: str = KERNEL):
    files = HostFiles(passed=True)
    return build_argv(dom(devices, os_extra=os_extra, machine="q35"), P, files=files), files


def test_direct_mode_is_the_default_argv():
    d = dom(ALL, os_extra=KERNEL)
    assert build_argv(d, P, files=HostFiles()) == build_argv(d, P)
    assert HostFiles().requests == []


def test_confined_argv_names_no_host_path_outside_add_fd_labels():
    a, files = confined()
    for i, arg in enumerate(a[1:], 1):
        if a[i - 1] == "-add-fd":
            continue  # opaque= labels name the file, for query-fdsets
        assert not any(p in arg for p in HOST_PATHS), arg
    assert "-pidfile" not in a
    assert opts(a, "-vnc") == ["none"]
    assert opts(a, "-kernel") == ["/proc/self/fd/6"] and opts(a, "-initrd") == ["/proc/self/fd/7"]


def test_descriptor_numbers_follow_the_requests():
    a, files = confined()
    kinds = [(r.kind, r.path, r.fds) for r in files.requests]
    assert kinds[:5] == [("pidfile", P.pidfile, (3,)), ("listen", P.qmp, (4,)), ("listen", P.qmp_monitor, (5,)),
                         ("kernel", "/boot/vmlinuz", (6,)), ("kernel", "/boot/initrd.img", (7,))]
    numbers = [n for r in files.requests for n in r.fds]
    assert numbers == list(range(3, 3 + len(numbers)))  # dense, from 3, each once
    assert [r for r in files.requests if r.kind == "vnc"][0].fds == ()
    # every descriptor of a set is announced with -add-fd, right after -sandbox
    add = opts(a, "-add-fd")
    sets = {r.fdset: r for r in files.requests if r.fdset is not None}
    assert len(add) == sum(len(r.fds) for r in sets.values())
    at = a.index("-sandbox") + 2
    assert a[at:at + 2 * len(add):2] == ["-add-fd"] * len(add)
    assert a == confined()[0]  # the same at every call: domxml-to-native shows start's argv


def test_images_sockets_and_outputs_by_descriptor():
    a, files = confined()
    req = {(r.kind, r.path): r for r in files.requests}
    top, base = req["image", "/img/top.qcow2"], req["image", "/img/base.raw"]
    assert len(top.fds) == 2 and not top.read_only  # a read-write and a read-only descriptor
    assert len(base.fds) == 1 and base.read_only
    assert req["image", "/img/cd.iso"].read_only
    nodes = {b["node-name"]: b for b in blockdevs(a)}
    fmt = nodes[device(a, "virtio-blk-pci")["drive"]]
    assert nodes[fmt["file"]]["filename"] == f"/dev/fdset/{top.fdset}"
    assert nodes[nodes[fmt["backing"]]["file"]]["filename"] == f"/dev/fdset/{base.fdset}"
    assert f"fd={top.fds[0]},set={top.fdset},opaque=image:/img/top.qcow2" in opts(a, "-add-fd")
    ch = opts(a, "-chardev")
    qmp = req["listen", P.qmp].fds[0]
    assert f"socket,id=charmonitor,fd={qmp},server=on,wait=off" in ch
    log0 = req["output", os.path.join(P.chardev_dir, "serial0.log")]
    assert f"socket,id=charserial0,fd={req['listen', os.path.join(P.chardev_dir, 'serial0.sock')].fds[0]}," \
           f"server=on,wait=off,logfile=/dev/fdset/{log0.fdset}" in ch
    assert f"socket,id=charserial1,fd={req['listen', '/s/bind.sock'].fds[0]},server=on,wait=off" in ch
    assert f"socket,id=charserial2,fd={req['connect', '/s/out.sock'].fds[0]},server=off" in ch
    s3, l3 = req["output", "/var/log/s3.log"], req["output", "/var/log/l3"]
    assert s3.append and not l3.append
    assert f"file,id=charserial3,path=/dev/fdset/{s3.fdset},append=on,logfile=/dev/fdset/{l3.fdset}" in ch
    rng = json.loads(opts(a, "-object")[0])
    assert rng["filename"] == f"/dev/fdset/{req['device', '/dev/urandom'].fdset}"


def test_vnc_socket_named_in_listen_is_handed_over():
    a, files = confined("<graphics type='vnc'><listen type='socket' socket='/s/v.sock'/></graphics>", "")
    assert opts(a, "-vnc") == ["none"]
    assert [(r.kind, r.path) for r in files.requests if r.kind == "vnc"] == [("vnc", "/s/v.sock")]
    a, files = confined("<graphics type='vnc' autoport='yes'/>", "")
    assert opts(a, "-vnc") == ["127.0.0.1:0,to=99"]  # TCP: no file involved


# --- URI settings ---------------------------------------------------------------------------------
def test_settings_defaults_and_errors(monkeypatch):
    assert confine.settings("system", {}) == confine.Confinement(None)
    assert confine.settings("system", {"confine": "no"}) is None
    assert confine.settings("embed", {}) is None and confine.settings("session", {}) is None
    assert confine.settings("embed", {"confine": "yes"}) == confine.Confinement(None)
    assert confine.settings("embed", {"qemu_user": "qq"}) == confine.Confinement("qq")
    for q, needle in (({"confine": "maybe"}, "confine=yes or confine=no"),
                      ({"confine": "no", "qemu_user": "x"}, "needs confine=yes"),
                      ({"confine": "yes", "qemu_user": "a/b"}, "not a user name"),
                      ({"qemu_user": ""}, "not a user name")):
        with pytest.raises(ConnectFailed, match=needle):
            confine.settings("embed", q)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ConnectFailed, match="needs root"):
        confine.settings("embed", {"confine": "yes"})


def _pw(table):
    def getpwnam(name):
        if name not in table:
            raise KeyError(name)
        uid, gid = table[name]
        return SimpleNamespace(pw_name=name, pw_uid=uid, pw_gid=gid)
    return getpwnam


def test_user_default_fallback_and_refusals(monkeypatch):
    import pwd

    monkeypatch.setattr(pwd, "getpwnam", _pw({"virtctl-qemu": (990, 990), "nobody": (65534, 65534)}))
    assert confine.Confinement(None).user() == confine.QemuUser("virtctl-qemu", 990, 990)
    monkeypatch.setattr(pwd, "getpwnam", _pw({"nobody": (65534, 65534), "root2": (0, 0)}))
    assert confine.Confinement(None).user() == confine.QemuUser("nobody", 65534, 65534, fallback=True)
    with pytest.raises(OperationFailed, match="'virtctl-qemu' does not exist"):
        confine.Confinement("virtctl-qemu").user()
    with pytest.raises(OperationFailed, match="is root"):
        confine.Confinement("root2").user()
    monkeypatch.setattr(pwd, "getpwnam", _pw({}))
    with pytest.raises(OperationFailed, match="useradd --system"):
        confine.Confinement(None).user()


@pytest.mark.parametrize("st,result", [
    ((0, 0, 0o600), "refused"), ((0, 0, 0o666), ()), ((0, 108, 0o660), (108,)), ((0, 990, 0o660), ()),
    ((0, 0, 0o660), "refused")])
def test_kvm_device_group(monkeypatch, st, result):
    uid, gid, mode = st
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: SimpleNamespace(st_uid=uid, st_gid=gid,
                                                                          st_mode=stat.S_IFCHR | mode)
                        if p == "/dev/kvm" else real_stat(p, *a, **k))
    if result == "refused":
        with pytest.raises(OperationFailed, match="needs /dev/kvm readable and writable"):
            confine._kvm_groups(990, 990, "virtctl-qemu")
    else:
        assert confine._kvm_groups(990, 990, "virtctl-qemu") == result


# --- backing chains -----------------------------------------------------------------------------------
def chain_dom(disk_inner: str, fmt: str = "qcow2", src: str = "/img/top.qcow2"):
    return dom(f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/><source file='{src}'/>"
               f"{disk_inner}<target dev='vda' bus='virtio'/></disk>")


class Images:
    """A fake ``qemu-img info``: path -> (backing, backing format)."""

    def __init__(self, table: dict):
        self.table, self.calls = table, []

    def __call__(self, path, fmt, *, user=None):
        self.calls.append((path, fmt))
        backing, bfmt, *extra = self.table[path]
        info = {"format": fmt}
        if backing:
            info["backing-filename"] = info["full-backing-filename"] = backing
        if bfmt:
            info["backing-filename-format"] = bfmt
        if extra:
            info["format-specific"] = {"type": "qcow2", "data": {"data-file": extra[0]}}
        return info


def layers(definition) -> list[tuple[str | None, str | None, str | None]]:
    out = []
    el = definition.root.find("devices/disk")
    while (el := el.find("backingStore")) is not None:
        f, s = el.find("format"), el.find("source")
        out.append((el.get("type"), f.get("type") if f is not None else None,
                    s.get("file") if s is not None else None))
    return out


def test_chain_is_resolved_into_backing_store():
    imgs = Images({"/img/top.qcow2": ("/img/mid.qcow2", "qcow2"), "/img/mid.qcow2": ("/img/base.raw", "raw")})
    d = chain_dom("")
    live = backing.annotate(d, inspect=imgs)
    assert layers(live) == [("file", "qcow2", "/img/mid.qcow2"), ("file", "raw", "/img/base.raw"),
                            (None, None, None)]
    assert imgs.calls == [("/img/top.qcow2", "qcow2"), ("/img/mid.qcow2", "qcow2")]  # raw: no inspection
    assert d.root.find("devices/disk/backingStore") is None  # the input is untouched
    # and the argv passes the whole chain, ending with the raw base
    a = build_argv(live, P)
    nodes = {b["node-name"]: b for b in blockdevs(a)}
    top = nodes[device(a, "virtio-blk-pci")["drive"]]
    mid = nodes[top["backing"]]
    base = nodes[mid["backing"]]
    assert [nodes[n["file"]]["filename"] for n in (top, mid, base)] == [
        "/img/top.qcow2", "/img/mid.qcow2", "/img/base.raw"]
    assert "backing" not in base and mid["read-only"] and base["read-only"]


def test_chain_end_is_explicit():
    live = backing.annotate(chain_dom(""), inspect=Images({"/img/top.qcow2": (None, None)}))
    assert layers(live) == [(None, None, None)]
    assert blockdevs(build_argv(live, P))[1]["backing"] is None
    raw = backing.annotate(chain_dom("", fmt="raw", src="/img/d.raw"), inspect=Images({}))
    assert layers(raw) == [(None, None, None)]


def test_backing_file_without_format_is_refused_with_the_fix():
    imgs = Images({"/img/top.qcow2": ("/img/base.img", None)})
    with pytest.raises(OperationFailed) as ei:
        backing.annotate(chain_dom(""), inspect=imgs)
    msg = str(ei.value)
    assert "disk 'vda'" in msg and "'/img/top.qcow2'" in msg and "'/img/base.img'" in msg
    assert "qemu-img rebase -u -F FORMAT -b /img/base.img /img/top.qcow2" in msg
    assert "<backingStore type='file'><format type='FORMAT'/><source file='/img/base.img'/>" in msg
    # the definition naming it with its format is enough
    live = backing.annotate(chain_dom("<backingStore type='file'><format type='raw'/>"
                                      "<source file='/img/base.img'/></backingStore>"), inspect=imgs)
    assert layers(live) == [("file", "raw", "/img/base.img"), (None, None, None)]


def test_chain_given_must_be_the_images():
    imgs = Images({"/img/top.qcow2": ("/img/base.qcow2", "qcow2"), "/img/base.qcow2": (None, None),
                   "/img/plain.qcow2": (None, None)})
    cases = [
        ("<backingStore type='file'><format type='qcow2'/><source file='/img/other.qcow2'/></backingStore>",
         "names '/img/base.qcow2'"),
        ("<backingStore type='file'><format type='raw'/><source file='/img/base.qcow2'/></backingStore>",
         "records 'qcow2'"),
        ("<backingStore/>", "no backing file (<backingStore/>)"),
        ("<backingStore type='file'><format type='qcow2'/><source file='/img/base.qcow2'/>"
         "<backingStore type='file'><format type='raw'/><source file='/img/x'/></backingStore></backingStore>",
         "but that image has no backing file"),
    ]
    for inner, needle in cases:
        with pytest.raises(OperationFailed, match=r".*" + needle.replace("(", r"\(").replace(")", r"\)")):
            backing.annotate(chain_dom(inner), inspect=imgs)
    # a chain given in part is completed (libvirt's schema wants each layer's <format>)
    live = backing.annotate(chain_dom("<backingStore type='file'><format type='qcow2'/>"
                                      "<source file='/img/base.qcow2'/></backingStore>"), inspect=imgs)
    assert layers(live) == [("file", "qcow2", "/img/base.qcow2"), (None, None, None)]
    with pytest.raises(OperationFailed, match="has no backing file"):
        backing.annotate(chain_dom("<backingStore type='file'><format type='raw'/><source file='/img/b'/>"
                                   "</backingStore>", src="/img/plain.qcow2"), inspect=imgs)


def test_backing_definition_policy_follows_only_named_files():
    assert backing.settings({}) is False and backing.settings({"backing": "image"}) is False
    assert backing.settings({"backing": "definition"}) is True
    assert backing.settings({}, confined=True) is True  # a confined connection's default
    assert backing.settings({"backing": "image"}, confined=True) is False
    with pytest.raises(ConnectFailed, match="backing=image or backing=definition"):
        backing.settings({"backing": "all"})
    imgs = Images({"/img/top.qcow2": ("/img/base.qcow2", "qcow2"), "/img/base.qcow2": ("/img/root.raw", "raw")})
    with pytest.raises(OperationFailed) as ei:
        backing.annotate(chain_dom(""), inspect=imgs, named_only=True)
    assert "names the backing file '/img/base.qcow2' (qcow2), which the definition does not" in str(ei.value)
    assert "<backingStore type='file'><format type='qcow2'/><source file='/img/base.qcow2'/>" in str(ei.value)
    named = "<backingStore type='file'><format type='qcow2'/><source file='/img/base.qcow2'/>{}</backingStore>"
    with pytest.raises(OperationFailed, match="'/img/root.raw' \\(raw\\), which the definition does not"):
        backing.annotate(chain_dom(named.format("")), inspect=imgs, named_only=True)
    full = named.format("<backingStore type='file'><format type='raw'/><source file='/img/root.raw'/>"
                        "</backingStore>")
    live = backing.annotate(chain_dom(full), inspect=imgs, named_only=True)
    assert layers(live) == [("file", "qcow2", "/img/base.qcow2"), ("file", "raw", "/img/root.raw"),
                            (None, None, None)]


def test_hostile_chains_are_refused(tmp_path):
    for table, needle in (
            ({"/img/top.qcow2": ("json:{\"driver\":\"nbd\"}", "raw")}, "not a local file"),
            ({"/img/top.qcow2": ("nbd://h/x", "raw")}, "not a local file"),
            ({"/img/top.qcow2": ("/img/b", "host_device")}, "format 'host_device'"),
            ({"/img/top.qcow2": (None, None, "/etc/shadow")}, "external file '/etc/shadow'")):
        with pytest.raises(OperationFailed, match=needle):
            backing.annotate(chain_dom(""), inspect=Images(table))
    a, b = tmp_path / "a.qcow2", tmp_path / "b.qcow2"
    a.write_bytes(b"")
    b.write_bytes(b"")
    loop = Images({str(a): (str(b), "qcow2"), str(b): (str(a), "qcow2")})
    with pytest.raises(OperationFailed, match="loops back"):
        backing.annotate(chain_dom("", src=str(a)), inspect=loop)
    deep = Images({f"/d/{i}": (f"/d/{i + 1}", "qcow2") for i in range(100)})
    with pytest.raises(OperationFailed, match="deeper than 32"):
        backing.annotate(chain_dom("", src="/d/0"), inspect=deep)


# --- the emulator check -----------------------------------------------------------------------------
def test_non_qemu_binaries_are_refused(tmp_path):
    script = tmp_path / "fake-qemu"
    script.write_text("#!/bin/sh\necho 'QEMU emulator version 7.2.0'\n")
    script.chmod(0o755)
    for binary in ("/bin/true", str(script), "/bin/cat"):
        with pytest.raises(OperationFailed, match=f"the emulator '{binary}' is not a QEMU binary"):
            emulator.probe(binary)
    with pytest.raises(OperationFailed, match="cannot find the QEMU binary 'no-such-qemu'"):
        emulator.resolve("no-such-qemu")


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")
def test_qemu_is_probed_once_and_its_architecture_checked(tmp_path, monkeypatch):
    calls = []
    real = emulator.probe
    monkeypatch.setattr(emulator, "probe", lambda p, user=None: calls.append(p) or real(p, user=user))
    got = emulator.check(QEMU, "x86_64", cache_dir=str(tmp_path))
    assert got["arch"] == "x86_64" and got["version"].count(".") == 2
    assert emulator.check(QEMU, "i686", cache_dir=str(tmp_path)) == got
    assert calls == [QEMU]  # cached: path, inode, size, times, user
    assert json.loads((tmp_path / "emulators.json").read_text())
    i386 = shutil.which("qemu-system-i386")
    if i386:
        with pytest.raises(OperationFailed, match="is a QEMU for i386, which cannot run an x86_64 domain"):
            emulator.check(i386, "x86_64", cache_dir=str(tmp_path))
    # a corrupt cache is probed again, never trusted
    (tmp_path / "emulators.json").write_text("{garbage")
    assert emulator.check(QEMU, "x86_64", cache_dir=str(tmp_path)) == got and len(calls) == 2 + bool(i386)


# --- opening what a confined QEMU gets (handover.py) ---------------------------------------------------
def _req(kind, path, **kw):
    from virtctl.drivers.qemu.argv_files import Request

    return Request(kind, str(path), kw.pop("fds", (3,)), **kw)


def test_handover_checks_what_it_opens_and_never_blocks(tmp_path):
    from virtctl.drivers.qemu.handover import Handover

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    regular = tmp_path / "file"
    regular.write_text("keep me")
    for req, needle in ((_req("image", fifo, fdset=0), "is not a regular file"),
                        (_req("image", regular, fdset=0, block=True), "is not a block device"),
                        (_req("device", regular, fdset=0), "is not a character device"),
                        (_req("output", fifo, fdset=0, read_only=False), "is not a regular file"),
                        (_req("kernel", tmp_path / "missing"), "No such file or directory"),
                        (_req("listen", regular), "exists and is not a socket")):
        with pytest.raises(OperationFailed, match=needle):
            Handover(None).open([req])
    assert regular.read_text() == "keep me"  # a listening path never replaces a file


def test_handover_descriptors(tmp_path):
    from virtctl.drivers.qemu.handover import Handover

    img = tmp_path / "d.img"
    img.write_bytes(b"\0" * 512)
    sock = tmp_path / "s.sock"
    h = Handover(None).open([_req("image", img, fds=(3, 4), fdset=0, read_only=False),
                             _req("listen", sock, fds=(5,)), _req("vnc", tmp_path / "v.sock", fds=())])
    try:
        assert sorted(h.fds) == [3, 4, 5]
        assert os.O_ACCMODE & fcntl.fcntl(h.fds[3], fcntl.F_GETFL) == os.O_RDWR
        assert os.O_ACCMODE & fcntl.fcntl(h.fds[4], fcntl.F_GETFL) == os.O_RDONLY
        assert stat.S_ISSOCK(os.stat(sock).st_mode) and len(h.vnc) == 1
        h.release()  # QEMU has them now: ours are closed, the VNC socket is kept for after_start
        assert h.fds == {} and len(h.vnc) == 1
    finally:
        h.close()
    assert h.vnc == []


def test_kernel_unreadable_by_the_qemu_user_becomes_a_sealed_copy(tmp_path):
    from virtctl.drivers.qemu.handover import Handover

    k = tmp_path / "vmlinuz"
    k.write_bytes(b"kernel bytes")
    user = confine.QemuUser("q", 4242, 4242)
    for mode, copied in ((0o600, True), (0o644, False)):
        os.chmod(k, mode)
        h = Handover(user).open([_req("kernel", k)])
        try:
            fd = h.fds[3]
            assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:virtctl-kernel") == copied
            assert os.pread(fd, 100, 0) == b"kernel bytes"
            if copied:
                assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE
                with pytest.raises(PermissionError):
                    os.pwrite(os.open(f"/proc/self/fd/{fd}", os.O_RDWR), b"x", 0)
        finally:
            h.close()


@pytest.mark.skipif(QEMU is None or os.geteuid() != 0, reason="needs root and qemu-system-x86_64")
def test_prepare_says_when_qemu_falls_back_to_nobody(tmp_path, monkeypatch):
    import pwd

    from virtctl.drivers.qemu import command

    real = pwd.getpwnam
    monkeypatch.setattr(pwd, "getpwnam", lambda n: (_ for _ in ()).throw(KeyError(n)) if n == confine.DEFAULT_USER
                        else real(n))
    state = SimpleNamespace(confine=confine.Confinement(None), backing_named=False, run=str(tmp_path))
    said: list[str] = []
    cmd = command.prepare(state, dom("<serial type='pty'/>"), P, warn=said.append)
    assert said == [f"QEMU runs as 'nobody': the QEMU user '{confine.DEFAULT_USER}' does not exist "
                    f"(create it: {confine.CREATE_USER})"]
    assert cmd.user.name == "nobody" and cmd.user.fallback and "-pidfile" not in cmd.argv
    assert cmd.argv[0] == QEMU and cmd.definition.root.find("devices/serial") is not None
