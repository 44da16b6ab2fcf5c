"""Build (and cache) a tiny bootable Linux test guest from Debian packages.

The guest is a Debian kernel plus a gzip'd newc initramfs holding a static
busybox, the :data:`MODULES`, the host's ``qemu-ga`` (with its shared
libraries) and an ``/init`` script.  At every boot ``/init`` prints
:data:`READY_LINE` on the serial console, then:

* a press of the ACPI power button (QMP ``system_powerdown``) makes it run
  ``poweroff -f`` (QEMU then emits ``SHUTDOWN`` with ``guest: true``);
* a line written to the serial console is a command: ``poweroff``,
  ``reboot`` (a guest reset: ``RESET`` with ``guest: true``, or a shutdown
  under ``-no-reboot``) or ``crash`` (a kernel panic; with ``panic=-1`` the
  kernel resets at once).  Each command is acknowledged with
  ``VIRTCTL-GUEST-CMD <name>`` before it is carried out;
* with a virtio-serial port named :data:`AGENT_PORT`, the QEMU guest agent
  runs on it (``VIRTCTL-GUEST-AGENT started /dev/vportNpM`` once it holds
  the port); ``guest-shutdown`` works through a ``/sbin/shutdown`` shim,
  ``guest-set-user-password`` through a ``chpasswd`` shim (see README).

Nothing is downloaded once the cache holds a build for the current package
versions.  Usage::

    from guest.build import build_guest   # tests/ is on sys.path under pytest
    g = build_guest()
    argv = ["qemu-system-x86_64", "-kernel", g.kernel, "-initrd", g.initrd,
            "-append", g.cmdline, ...]

Also runnable: ``python tests/guest/build.py [CACHE_DIR]`` prints the paths.
"""
from __future__ import annotations

import dataclasses
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

__all__ = ["Guest", "GuestBuildError", "build_guest", "READY_LINE", "CMDLINE",
           "default_cache_dir", "AGENT_PORT", "AGENT_LINE", "HOSTNAME", "OS_RELEASE"]

READY_LINE = "VIRTCTL-GUEST-READY"
CMD_ACK = "VIRTCTL-GUEST-CMD"
# panic=-1: a panic resets at once (and with -no-reboot QEMU exits).
CMDLINE = "console=ttyS0 quiet panic=-1"
# Modules the init loads, in order (dependencies are added before them).
# virtio_pci/virtio_blk/virtio_net: disks and NICs (snapshots, hotplug,
# networks); their dependencies are found from each module's modinfo.
# virtio_console: the virtio-serial port of the QEMU guest agent.  ext4 (and
# crc32c_generic, its checksum driver: only a soft dependency in modinfo) for
# a disk made with mkfs.ext4 on the host (guest-fsfreeze-*, guest-get-fsinfo).
MODULES = ("evdev", "button", "virtio_pci", "virtio_blk", "virtio_net",
           "virtio_console", "crc32c_generic", "ext4")
# Bump when the recipe (init script, layout) changes: it is part of the key.
RECIPE_VERSION = 5
NET_LINE = "VIRTCTL-GUEST-NET"
OUT_LINE = "VIRTCTL-GUEST-OUT"
DONE_LINE = "VIRTCTL-GUEST-DONE"
HTTP_PORT = 80
HTTP_BODY = "VIRTCTL-GUEST-HTTP"
# The QEMU guest agent (qemu-ga, from the host's qemu-guest-agent package)
# runs on the virtio-serial port of this name, when there is one.
AGENT_PORT = "org.qemu.guest_agent.0"
AGENT_LINE = "VIRTCTL-GUEST-AGENT"
HOSTNAME = "virtctl-guest"
# /etc/os-release (guest-get-osinfo).
OS_RELEASE = {"ID": "virtctl-guest", "NAME": "virtctl test guest",
              "VERSION_ID": "1", "VERSION": "1 (recipe %d)" % RECIPE_VERSION,
              "PRETTY_NAME": "virtctl test guest 1"}
# Initial /etc/shadow line of root: locked ("*") until guest-set-user-password.
ROOT_SHADOW = "root:*:19000:0:99999:7:::"

# Debian's busybox udhcpc runs this path (not upstream's
# /usr/share/udhcpc/default.script).  It configures the lease and says so on
# the console, so that tests can wait for the guest's address.
UDHCPC_SCRIPT = r"""#!/bin/busybox sh
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do ip route add default via "$r" dev "$interface"; break; done
        echo "@NET@ $interface $ip" > /dev/console ;;
esac
exit 0
"""

# qemu-ga's guest-shutdown (qga/commands-posix.c, QEMU 7.2, Linux) runs
#   /sbin/shutdown -h -P|-H|-r +0 "hypervisor initiated shutdown"
# (-P powerdown, -H halt, -r reboot) and waits for it to exit 0.  There is
# no init to ask: this does it itself, a moment after returning (as a real
# shutdown returns before the power goes).
SHUTDOWN_SCRIPT = r"""#!/bin/busybox sh
act=
for a in "$@"; do
    case "$a" in
        -P) act=poweroff ;;
        -r) act=reboot ;;
        -H) act=halt ;;
        -h) [ -n "$act" ] || act=poweroff ;;
        -*) echo "shutdown: unsupported option $a" >&2; exit 1 ;;
    esac
done
[ -n "$act" ] || { echo "usage: shutdown -h -P|-H|-r +0 [MESSAGE]" >&2; exit 1; }
echo "@ACK@ shutdown $act" > /dev/console
sync
( sleep 0.2; "$act" -f ) </dev/null >/dev/null 2>&1 &
exit 0
"""

# Debian's busybox has no chpasswd applet; qemu-ga's guest-set-user-password
# finds "chpasswd" in PATH and writes "user:password\n" to its stdin ("-e":
# the password is already crypted).
CHPASSWD_SCRIPT = r"""#!/bin/busybox sh
crypted=
[ "$1" = -e ] && crypted=1
rc=0
while IFS= read -r line; do
    u=${line%%:*}
    p=${line#*:}
    if [ -z "$crypted" ]; then
        p=$(printf '%s' "$p" | mkpasswd -m sha512 -P 0) || { rc=1; continue; }
    fi
    if ! U="$u" awk -F: '$1 == ENVIRON["U"] { f = 1 } END { exit !f }' /etc/shadow; then
        echo "chpasswd: unknown user '$u'" >&2; rc=1; continue
    fi
    U="$u" P="$p" D=$(($(date +%s) / 86400)) awk -F: -v OFS=: \
        '$1 == ENVIRON["U"] { $2 = ENVIRON["P"]; $3 = ENVIRON["D"] } 1' \
        /etc/shadow > /etc/shadow.new && chmod 600 /etc/shadow.new \
        && mv /etc/shadow.new /etc/shadow || rc=1
done
exit $rc
"""

INIT_SCRIPT = r"""#!/bin/busybox sh
# virtctl test guest init (generated by tests/guest/build.py)
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo 0 > /proc/sys/kernel/printk
for m in @MODULES@; do insmod /lib/modules/$m.ko; done
stty -echo 2>/dev/null
hostname @HOSTNAME@
ip link set lo up
# The QEMU guest agent, in the background, on the virtio port named
# @AGENT_PORT@; with no virtio console device (no channel) nothing is done.
agent() {
    if [ -s /run/qemu-ga.pid ] && kill -0 "$(cat /run/qemu-ga.pid)" 2>/dev/null; then
        echo "@AGENT@ running" > /dev/console; return 0
    fi
    has_console=
    for d in /sys/bus/virtio/devices/*; do
        [ "$(cat "$d/device" 2>/dev/null)" = 0x0003 ] && has_console=1
    done
    [ -n "$has_console" ] || return 0
    # The port's name arrives in a control message after the probe: poll.
    i=0
    while :; do
        for p in /sys/class/virtio-ports/*; do
            [ "$(cat "$p/name" 2>/dev/null)" = @AGENT_PORT@ ] || continue
            port=${p##*/}
            [ -c "/dev/$port" ] || mknod "/dev/$port" c $(sed 's/:/ /' "$p/dev")
            mkdir -p /dev/virtio-ports
            ln -sf "../$port" /dev/virtio-ports/@AGENT_PORT@
            mkdir -p /run/qemu-ga
            # (qemu-ga writes no pidfile unless it daemonizes: this does.)
            /usr/sbin/qemu-ga -m virtio-serial -p "/dev/$port" -t /run/qemu-ga \
                -l /tmp/qemu-ga.log </dev/null >/dev/null 2>&1 &
            pid=$!
            echo $pid > /run/qemu-ga.pid
            # Announce it once it holds the port open (or say why not).
            j=0
            while kill -0 $pid 2>/dev/null && [ $j -lt 300 ]; do
                for fd in /proc/$pid/fd/*; do
                    [ "$(readlink "$fd")" = "/dev/$port" ] && {
                        echo "@AGENT@ started /dev/$port" > /dev/console; return 0; }
                done
                j=$((j + 1)); sleep 0.1
            done
            echo "@AGENT@ failed" > /dev/console
            sed "s/^/@AGENT@ log: /" /tmp/qemu-ga.log > /dev/console 2>&1
            return 1
        done
        i=$((i + 1))
        [ $i -gt 300 ] && { echo "@AGENT@ no port @AGENT_PORT@" > /dev/console; return 1; }
        sleep 0.1
    done
}
agent &
# Every NIC asks for a lease in the background (never delays the ready line);
# a NIC hotplugged later is picked up by the console command "dhcp".
dhcp() {
    for n in /sys/class/net/*; do
        n=${n##*/}
        [ "$n" = lo ] && continue
        [ -e "/tmp/dhcp.$n" ] && continue
        : > "/tmp/dhcp.$n"
        udhcpc -i "$n" -b -S -x hostname:virtctl-guest -s /etc/udhcpc/default.script \
            >/dev/null 2>&1
    done
}
dhcp
httpd -p @HTTP_PORT@ -h /www

# The ACPI power button is the input device named "Power Button" (LNXPWRBN).
find_button() {
    for d in /sys/class/input/event*; do
        [ -e "$d/device/name" ] || continue
        case "$(cat "$d/device/name")" in
            "Power Button")
                [ -c "/dev/input/${d##*/}" ] || return 1
                echo "/dev/input/${d##*/}"; return 0 ;;
        esac
    done
    return 1
}
i=0
until dev=$(find_button); do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "VIRTCTL-GUEST-ERROR no power button"; dev=; break; }
    sleep 0.1
done
# Open the button *before* announcing readiness: evdev queues events only for
# open clients, so a press right after the ready line must not be lost.
[ -n "$dev" ] && exec 3<"$dev"

# Serial console commands, one per line.
(
    exec 3<&-
    while read -r cmd; do
        case "$cmd" in
            poweroff) echo "@ACK@ poweroff"; poweroff -f ;;
            reboot) echo "@ACK@ reboot"; reboot -f ;;
            crash) echo "@ACK@ crash"; echo 1 > /proc/sys/kernel/sysrq;
                   echo c > /proc/sysrq-trigger ;;
            dhcp) echo "@ACK@ dhcp"; dhcp ;;
            # (Re)start the guest agent (a channel hotplugged after boot, or
            # after "run kill $(cat /run/qemu-ga.pid)").
            agent) echo "@ACK@ agent"; agent & ;;
            # "run CMD": a shell command in this (long-lived) shell, so that
            # variables set by one run are seen by the next (memory state for
            # snapshot tests); each output line is prefixed, then the status.
            run\ *) echo "@ACK@ run"; eval "${cmd#run }" > /tmp/run.out 2>&1 </dev/null
                    rc=$?; sed "s/^/@OUT@ /" /tmp/run.out; echo "@DONE@ $rc" ;;
        esac
    done
) < /dev/console > /dev/console 2>&1 &

echo "@READY@"
if [ -n "$dev" ]; then
    # Blocks until the first input event (the press); 24 bytes = one event.
    until dd of=/dev/null bs=24 count=1 <&3 2>/dev/null; do sleep 1; done
    echo "@ACK@ powerbutton"
    poweroff -f
fi
# Never let PID 1 exit (that is a panic).
while :; do sleep 3600; done
"""


@dataclasses.dataclass(frozen=True)
class Guest:
    kernel: Path
    initrd: Path
    cmdline: str
    ready_line: str
    # The package's own compressed bzImage.  ``kernel`` is the uncompressed
    # ELF vmlinux taken out of it when that has a PVH entry note: QEMU then
    # boots it directly (no SeaBIOS linuxboot, no xz decompression under TCG,
    # ~5 s less per boot); otherwise ``kernel`` is the bzImage itself.
    bzimage: Path | None = None

    def qemu_args(self) -> list[str]:
        """``-kernel/-initrd/-append`` arguments for this guest."""
        return ["-kernel", str(self.kernel), "-initrd", str(self.initrd),
                "-append", self.cmdline]


class GuestBuildError(RuntimeError):
    pass


def default_cache_dir() -> Path:
    env = os.environ.get("VIRTCTL_TEST_CACHE")
    if env:
        return Path(env) / "guest"
    return Path.home() / ".cache" / "virtctl-tests" / "guest"


def _run(argv: list[str], **kw) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, **kw)
    except FileNotFoundError as e:
        raise GuestBuildError(f"{argv[0]} not found: {e}") from None
    if p.returncode != 0:
        raise GuestBuildError(
            f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def _kernel_package() -> tuple[str, str]:
    """The current linux-image-6.1.0-*-amd64 package and its candidate version.

    One apt-cache call (each costs ~1 s here: Debian images keep no pkgcache):
    the metapackage linux-image-amd64 depends on ``linux-image-X-amd64 (= V)``.
    """
    name = os.environ.get("VIRTCTL_TEST_KERNEL_PKG")
    if name:
        return name, _candidate_version(name)
    out = _run(["apt-cache", "show", "--no-all-versions", "linux-image-amd64"])
    m = re.search(r"^Depends:.*?\b(linux-image-[0-9][\w.+-]*-amd64)\b(?:\s*\(=\s*([^)\s]+)\))?",
                  out, re.M)
    if not m:
        raise GuestBuildError(
            "cannot find the kernel package linux-image-amd64 depends on "
            "(run 'apt-get update'?)")
    return m.group(1), m.group(2) or _candidate_version(m.group(1))


def _candidate_version(pkg: str) -> str:
    out = _run(["apt-cache", "policy", pkg])
    m = re.search(r"Candidate:\s*(\S+)", out)
    if not m or m.group(1) == "(none)":
        raise GuestBuildError(f"no installable version of {pkg} (run 'apt-get update'?)")
    return m.group(1)


def _busybox_source() -> tuple[str, Path | None]:
    """(version, path) of an installed busybox-static, else (candidate, None)."""
    try:
        out = _run(["dpkg-query", "-W", "-f", "${Status}\t${Version}", "busybox-static"])
        status, version = out.split("\t")
        if status.endswith(" installed"):
            for p in ("/bin/busybox", "/usr/bin/busybox"):
                if Path(p).exists() and _is_static(Path(p)):
                    return version, Path(p)
    except (GuestBuildError, ValueError):
        pass
    return _candidate_version("busybox-static"), None


def _is_static(path: Path) -> bool:
    with path.open("rb") as f:
        data = f.read(1 << 20)
    return data[:4] == b"\x7fELF" and b"/ld-linux" not in data


def _apt_download(pkg: str, version: str, dest: Path) -> Path:
    _run(["apt-get", "download", "-q", f"{pkg}={version}"], cwd=dest)
    debs = sorted(dest.glob(f"{pkg}_*.deb"))
    if not debs:
        raise GuestBuildError(f"apt-get download {pkg} produced no .deb")
    return debs[0]


def _deb_members(deb: Path, want) -> dict[str, bytes]:
    """Stream the data tarball of ``deb``; keep members for which want(name)."""
    found: dict[str, bytes] = {}
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=p.stdout, mode="r|") as tf:
            for ti in tf:
                name = ti.name[2:] if ti.name.startswith("./") else ti.name
                if ti.isfile() and want(name):
                    found[name] = tf.extractfile(ti).read()
    finally:
        p.stdout.close()
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        if p.wait() != 0:
            raise GuestBuildError(f"dpkg-deb --fsys-tarfile {deb} failed: {err}")
    return found


_KO_RE = re.compile(r"lib/modules/[^/]+/kernel/.*/([^/]+)\.ko(\.xz)?$")


def _modname(n: str) -> str:
    return n.replace("-", "_")


def _modinfo(ko: bytes, key: str) -> str:
    m = re.search(rb"(?:^|\0)" + key.encode() + rb"=([^\0]*)\0", ko)
    return m.group(1).decode() if m else ""


def _kernel_files(deb: Path) -> tuple[bytes, list[tuple[str, bytes]]]:
    """vmlinuz and the MODULES (with their dependencies, deps first)."""
    wanted = {_modname(m) for m in MODULES}
    mods: dict[str, bytes] = {}
    vmlinuz: bytes | None = None
    while True:
        def want(name: str) -> bool:
            if vmlinuz is None and re.fullmatch(r"boot/vmlinuz-.*", name):
                return True
            m = _KO_RE.fullmatch(name)
            return bool(m) and _modname(m.group(1)) in wanted - mods.keys()
        for name, data in _deb_members(deb, want).items():
            if name.startswith("boot/"):
                vmlinuz = data
                continue
            m = _KO_RE.fullmatch(name)
            if m.group(2):
                data = lzma.decompress(data)
            mods[_modname(m.group(1))] = data
        missing = wanted - mods.keys()
        if missing:
            raise GuestBuildError(f"modules {sorted(missing)} not in {deb.name}")
        deps = {_modname(d) for ko in mods.values()
                for d in _modinfo(ko, "depends").split(",") if d}
        if deps <= mods.keys():
            break
        wanted |= deps
    if vmlinuz is None:
        raise GuestBuildError(f"no boot/vmlinuz-* in {deb.name}")
    order: list[str] = []

    def visit(n: str) -> None:
        if n in order:
            return
        for d in _modinfo(mods[n], "depends").split(","):
            if d:
                visit(_modname(d))
        order.append(n)
    for m in MODULES:
        visit(_modname(m))
    return vmlinuz, [(n, mods[n]) for n in order]


# An ELF note "Xen" of type XEN_ELFNOTE_PHYS32_ENTRY (18), 4- or 8-byte desc.
_XEN_PVH_NOTE = re.compile(re.escape(struct.pack("<I", 4)) + b"[\x04\x08]\0\0\0"
                           + re.escape(struct.pack("<I", 18) + b"Xen\0"))


def _pvh_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF vmlinux inside a bzImage if it is PVH-bootable, else None."""
    try:
        if bzimage[0x202:0x206] != b"HdrS":
            return None
        setup = ((bzimage[0x1F1] or 4) + 1) * 512
        off, length = struct.unpack_from("<II", bzimage, 0x248)
        payload = bzimage[setup + off:setup + off + length]
        if payload.startswith(b"\xfd7zXZ\0"):
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
        elif payload.startswith(b"\x1f\x8b"):
            elf = gzip.GzipFile(fileobj=io.BytesIO(payload)).read()  # ignores the size trailer
        else:
            return None  # zstd, lz4...: keep the bzImage
    except (struct.error, lzma.LZMAError, OSError, EOFError, IndexError):
        return None
    if elf[:4] != b"\x7fELF" or not _XEN_PVH_NOTE.search(elf):
        return None
    return elf


def _newc(entries: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """A newc cpio archive; entries are (name, mode, data, rdevmajor, rdevminor)."""
    out = io.BytesIO()

    def pad(n: int) -> None:
        out.write(b"\0" * (-n % 4))
    for ino, (name, mode, data, rmaj, rmin) in enumerate(
            entries + [("TRAILER!!!", 0, b"", 0, 0)], start=1):
        nameb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rmaj, rmin, len(nameb), 0]
        if name == "TRAILER!!!":
            fields[0] = 0
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        out.write(hdr + nameb)
        pad(len(hdr) + len(nameb))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def _qga_source() -> tuple[str, Path | None]:
    """(version, path) of the installed qemu-guest-agent's qemu-ga, else (candidate, None)."""
    try:
        out = _run(["dpkg-query", "-W", "-f", "${Status}\t${Version}", "qemu-guest-agent"])
        status, version = out.split("\t")
        if status.endswith(" installed") and Path("/usr/sbin/qemu-ga").is_file():
            return version, Path("/usr/sbin/qemu-ga")
    except (GuestBuildError, ValueError):
        pass
    return _candidate_version("qemu-guest-agent"), None


def _elf_interp(data: bytes) -> str | None:
    """The PT_INTERP path of a 64-bit little-endian ELF file, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        o = phoff + i * phentsize
        p_type, = struct.unpack_from("<I", data, o)
        if p_type == 3:  # PT_INTERP
            off, = struct.unpack_from("<Q", data, o + 8)
            size, = struct.unpack_from("<Q", data, o + 32)
            return data[off:off + size].rstrip(b"\0").decode()
    return None


def _qga_files(binary: Path) -> list[tuple[str, bytes]]:
    """qemu-ga and every shared library it needs, at the paths ldd names."""
    data = binary.read_bytes()
    interp = _elf_interp(data)
    if not interp:
        raise GuestBuildError(f"{binary} is not a dynamically linked x86-64 ELF binary")
    out = _run(["ldd", str(binary)])
    libs: dict[str, Path] = {}
    missing = []
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$", line)
        if m:
            if m.group(2) == "not found" or not m.group(2).startswith("/"):
                missing.append(m.group(1))
            else:
                libs[m.group(2)] = Path(m.group(2))
            continue
        m = re.match(r"(/\S+) \(0x[0-9a-f]+\)$", line)
        if m:
            libs[m.group(1)] = Path(m.group(1))
    if missing:
        raise GuestBuildError(
            f"qemu-ga needs {', '.join(missing)}, not found on this host "
            "(apt-get install qemu-guest-agent)")
    libs[interp] = Path(interp)
    files = [("usr/sbin/qemu-ga", data)]
    for guest_path, host_path in sorted(libs.items()):
        files.append((guest_path.lstrip("/"), host_path.resolve().read_bytes()))
    return files


def _etc_files() -> list[tuple[str, int, bytes]]:
    osr = "".join(f'{k}="{v}"\n' for k, v in OS_RELEASE.items())
    return [("etc/passwd", 0o100644, b"root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/shadow", 0o100600, (ROOT_SHADOW + "\n").encode()),
            ("etc/group", 0o100644, b"root:x:0:\n"),
            ("etc/hostname", 0o100644, (HOSTNAME + "\n").encode()),
            ("etc/os-release", 0o100644, osr.encode())]


def _initramfs(busybox: bytes, modules: list[tuple[str, bytes]],
               qga: list[tuple[str, bytes]] = ()) -> bytes:
    init = (INIT_SCRIPT.replace("@MODULES@", " ".join(n for n, _ in modules))
            .replace("@READY@", READY_LINE).replace("@ACK@", CMD_ACK)
            .replace("@OUT@", OUT_LINE).replace("@DONE@", DONE_LINE)
            .replace("@HTTP_PORT@", str(HTTP_PORT))
            .replace("@AGENT_PORT@", AGENT_PORT).replace("@AGENT@", AGENT_LINE)
            .replace("@HOSTNAME@", HOSTNAME))
    d, f, c = 0o040755, 0o100755, 0o020600
    dirs = ["bin", "sbin", "dev", "proc", "sys", "tmp", "run", "mnt", "root", "var",
            "lib", "lib/modules", "etc", "etc/udhcpc", "www"]
    for name, _ in qga:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            if "/".join(parts[:i]) not in dirs:
                dirs.append("/".join(parts[:i]))
    entries = [(p, d, b"", 0, 0) for p in dirs]
    entries += [("var/run", 0o120777, b"../run", 0, 0),
                ("sbin/shutdown", f, SHUTDOWN_SCRIPT.replace("@ACK@", CMD_ACK).encode(), 0, 0),
                ("sbin/hwclock", 0o120777, b"../bin/busybox", 0, 0),
                ("bin/chpasswd", f, CHPASSWD_SCRIPT.encode(), 0, 0)]
    entries += [(n, m, data, 0, 0) for n, m, data in _etc_files()]
    entries += [(n, f, data, 0, 0) for n, data in qga]
    entries += [("dev/console", c, b"", 5, 1), ("dev/null", 0o020666, b"", 1, 3),
                ("bin/busybox", f, busybox, 0, 0), ("bin/sh", 0o120777, b"busybox", 0, 0),
                ("init", f, init.encode(), 0, 0),
                ("etc/udhcpc/default.script", f,
                 UDHCPC_SCRIPT.replace("@NET@", NET_LINE).encode(), 0, 0),
                ("www/index.html", 0o100644, (HTTP_BODY + "\n").encode(), 0, 0)]
    entries += [(f"lib/modules/{n}.ko", 0o100644, data, 0, 0) for n, data in modules]
    return gzip.compress(_newc(entries), compresslevel=6, mtime=0)


def _cache_key(kpkg: str, kver: str, bbver: str, qgaver: str) -> str:
    h = hashlib.sha256(json.dumps(
        [RECIPE_VERSION, INIT_SCRIPT, UDHCPC_SCRIPT, SHUTDOWN_SCRIPT, CHPASSWD_SCRIPT,
         MODULES, CMDLINE, READY_LINE, AGENT_PORT, HOSTNAME, OS_RELEASE, ROOT_SHADOW,
         qgaver]).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9.+-]", "_", f"{kpkg}_{kver}_bb{bbver}")
    return f"{safe}_{h}"


def _guest(d: Path) -> Guest:
    pvh = d / "vmlinux"
    return Guest(kernel=pvh if pvh.is_file() else d / "vmlinuz",
                 initrd=d / "initrd.gz", cmdline=CMDLINE, ready_line=READY_LINE,
                 bzimage=d / "vmlinuz")


def _complete(d: Path) -> bool:
    return (d / "meta.json").is_file() and (d / "vmlinuz").is_file() \
        and (d / "initrd.gz").is_file()


def build_guest(cache_dir: Path | None = None) -> Guest:
    """Return the cached test guest, building it first if needed.

    Safe for concurrent callers: an flock on ``cache_dir/.lock`` serialises
    builds; a build happens in a temporary directory renamed into place.
    Raises :class:`GuestBuildError` with a readable reason on failure.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        kpkg, kver = _kernel_package()
        bbver, bbpath = _busybox_source()
        qgaver, qgapath = _qga_source()
    except GuestBuildError:
        # No apt lists (offline, never updated): fall back to the newest
        # complete build in the cache, if there is one.
        cached = sorted((d for d in cache_dir.glob("linux-image-*") if _complete(d)),
                        key=lambda d: (d / "meta.json").stat().st_mtime)
        if cached:
            return _guest(cached[-1])
        raise
    final = cache_dir / _cache_key(kpkg, kver, bbver, qgaver)
    if _complete(final):
        return _guest(final)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "a+b") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if _complete(final):
            return _guest(final)
        # We hold the lock: any .build-* left is from a build that was killed.
        for stale in cache_dir.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
        try:
            dl = tmp / "dl"
            dl.mkdir()
            os.chmod(tmp, 0o755)
            os.chmod(dl, 0o777)  # apt's _apt sandbox user writes here
            deb = _apt_download(kpkg, kver, dl)
            vmlinuz, modules = _kernel_files(deb)
            if bbpath is None:
                bbdeb = _apt_download("busybox-static", bbver, dl)
                got = _deb_members(bbdeb, lambda n: n in ("bin/busybox", "usr/bin/busybox"))
                if not got:
                    raise GuestBuildError(f"no busybox binary in {bbdeb.name}")
                busybox = next(iter(got.values()))
            else:
                busybox = bbpath.read_bytes()
            if qgapath is None:
                qgadeb = _apt_download("qemu-guest-agent", qgaver, dl)
                got = _deb_members(qgadeb, lambda n: n == "usr/sbin/qemu-ga")
                if not got:
                    raise GuestBuildError(f"no usr/sbin/qemu-ga in {qgadeb.name}")
                qgapath = dl / "qemu-ga"
                qgapath.write_bytes(got["usr/sbin/qemu-ga"])
                qgapath.chmod(0o755)
            qga = _qga_files(qgapath)
            shutil.rmtree(dl)
            (tmp / "vmlinuz").write_bytes(vmlinuz)
            elf = _pvh_vmlinux(vmlinuz)
            if elf is not None:
                (tmp / "vmlinux").write_bytes(elf)
            (tmp / "initrd.gz").write_bytes(_initramfs(busybox, modules, qga))
            (tmp / "meta.json").write_text(json.dumps({
                "kernel_package": kpkg, "kernel_version": kver,
                "busybox_static_version": bbver, "modules": [n for n, _ in modules],
                "qemu_guest_agent_version": qgaver,
                "qemu_ga_files": [n for n, _ in qga],
                "cmdline": CMDLINE, "ready_line": READY_LINE,
                "pvh_vmlinux": elf is not None,
                "recipe_version": RECIPE_VERSION}, indent=1) + "\n")
            for p in tmp.iterdir():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
            if final.exists():  # an incomplete leftover from a crashed build
                shutil.rmtree(final)
            os.rename(tmp, final)
            dfd = os.open(cache_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            # Keep this build and the one before it (another checkout may
            # still use that); drop older ones (~70 MB each).
            others = sorted((d for d in cache_dir.glob("linux-image-*")
                             if d != final and d.is_dir()),
                            key=lambda d: d.stat().st_mtime)
            for old in others[:-1]:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return _guest(final)


if __name__ == "__main__":
    g = build_guest(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(json.dumps({k: str(v) for k, v in dataclasses.asdict(g).items()}, indent=1))
