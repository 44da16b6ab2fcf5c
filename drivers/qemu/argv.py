"""The QEMU command line of a domain: one pure function of the definition.

:func:`build_argv` turns a :class:`~virtctl.xml.domain.DomainDef` and the
:class:`~virtctl.drivers.qemu.paths.RuntimePaths` the driver chose into the
argv of ``qemu-system-x86_64`` (QEMU 7.2).  It does no I/O: it neither stats
files nor probes QEMU.  ``virtctl domxml-to-native qemu-argv`` prints it.

Rules (RELIABILITY.md rule 3):

* argv is a list; nothing goes through a shell;
* ``-blockdev``, ``-device``, ``-object``, ``-netdev`` and ``-audiodev`` are
  JSON, so any byte of a path or name reaches QEMU intact and cannot add an
  option;
* every other ``key=value`` option writes each comma of a value as ``,,``;
* every image has an explicit format driver (QEMU never probes);
* every element and attribute of the definition is either interpreted or
  refused with NOT_SUPPORTED naming it — never silently ignored.

What the driver must provide before exec: ``paths.chardev_dir`` must exist
(serial/console/channel sockets and logs go there: :func:`serial_socket`,
:func:`serial_log`, :func:`channel_socket`), and so must the directories of
``paths.qmp``, ``paths.qmp_monitor``, ``paths.pidfile`` and
``paths.vnc_socket``.  QEMU creates the sockets itself, or, for a confined
QEMU (``files`` in passed mode, argv_files.py), receives every file and
socket as a descriptor the driver opened.  QEMU is started paused (``-S``)
with ``-no-shutdown``; the driver issues ``cont``.
"""
from __future__ import annotations

import re

from virtctl.drivers.qemu.argv_common import Ctx, bad, esc, opt, unsupported
from virtctl.drivers.qemu.argv_files import HostFiles
from virtctl.drivers.qemu.argv_chardev import channel_socket, serial_log, serial_socket
from virtctl.drivers.qemu.argv_devices import build_devices
from virtctl.xml import xmlapi

__all__ = ["build_argv", "emulator_path", "serial_socket", "serial_log", "channel_socket",
           "DEFAULT_EMULATOR"]

DEFAULT_EMULATOR = "qemu-system-x86_64"
_EMULATOR_BY_ARCH = {"x86_64": "qemu-system-x86_64", "i686": "qemu-system-i386"}

# pc / q35 and their versioned names (QEMU 7.2 also accepts older versions).
_MACHINE_RE = re.compile(r"^(?:(pc)|(q35)|pc-(i440fx)-\d+\.\d+|pc-(q35)-\d+\.\d+)$")

# <os><boot dev=...> -> -boot order letters
_BOOT_DEV = {"fd": "a", "hd": "c", "cdrom": "d", "network": "n"}

# <features><hyperv> children -> QEMU CPU property.  Attribute state='on'
# turns the flag on; spinlocks and vendor_id carry a value.
_HYPERV = {
    "relaxed": "hv-relaxed", "vapic": "hv-vapic", "spinlocks": "hv-spinlocks",
    "vpindex": "hv-vpindex", "runtime": "hv-runtime", "synic": "hv-synic",
    "stimer": "hv-stimer", "reset": "hv-reset", "vendor_id": "hv-vendor-id",
    "frequencies": "hv-frequencies", "reenlightenment": "hv-reenlightenment",
    "tlbflush": "hv-tlbflush", "ipi": "hv-ipi", "evmcs": "hv-evmcs",
}


def emulator_path(definition) -> str:
    """The QEMU binary: ``<devices><emulator>`` if given, else the default name
    for the architecture (``qemu-system-x86_64``; ``qemu-system-i386`` for
    i686).  The caller resolves a bare name on PATH."""
    em = definition.root.findtext("devices/emulator")
    if em and em.strip():
        return em.strip()
    arch = definition.root.find("os/type")
    arch = arch.get("arch") if arch is not None else None
    return _EMULATOR_BY_ARCH.get(arch or "x86_64", DEFAULT_EMULATOR)


def build_argv(definition, paths, *, emulator: str | None = None, files: HostFiles | None = None) -> list[str]:
    """The complete argv (argv[0] is the emulator) to start ``definition``.

    ``files`` says how host files are named (argv_files.py): by path (the
    default) or as descriptors a confined QEMU receives; afterwards
    ``files.requests`` lists what the starter must open.  Backing chains
    must be resolved before (``<backingStore>`` on every image that can have
    one: ``backing.py``, which ``command.prepare`` runs): a copy-on-write
    image without ``<backingStore>`` gets no ``backing`` option here.

    Raises NotSupported (NOT_SUPPORTED) naming the first element or value the
    qemu driver cannot honour, and XMLError for a definition that is
    inconsistent (e.g. both ``<os><boot>`` and per-device ``<boot order>``).
    """
    root = definition.root
    dom_type = root.get("type", "")
    if dom_type not in ("qemu", "kvm"):
        raise unsupported(root, f"<domain type='{dom_type}'>", "only 'qemu' (TCG) and 'kvm' are")
    accel = "kvm" if dom_type == "kvm" else "tcg"

    os_el = root.find("os")
    type_el = os_el.find("type") if os_el is not None else None
    os_type = (type_el.text or "").strip() if type_el is not None else "hvm"
    if os_type != "hvm":
        raise unsupported(type_el, f"<os><type>{os_type}</type>", "only 'hvm' is")
    arch = (type_el.get("arch") if type_el is not None else None) or "x86_64"
    if arch not in _EMULATOR_BY_ARCH:
        raise unsupported(type_el, f"<type arch='{arch}'>", "only x86_64 and i686 are")
    machine = (type_el.get("machine") if type_el is not None else None) or "pc"
    m = _MACHINE_RE.match(machine)
    if not m:
        raise unsupported(type_el, f"<type machine='{machine}'>", "only pc, q35 and their versioned names are")
    family = "pc" if (m.group(1) or m.group(3)) else "q35"

    ctx = Ctx(root, paths, machine_family=family, accel=accel, arch=arch)
    ctx.files = files if files is not None else HostFiles()
    ctx.use(root, "type", "id")
    ctx.use(os_el)
    ctx.use(type_el, "arch", "machine")

    argv: list[str] = [emulator or emulator_path(definition)]
    name = definition.name
    ctx.use(ctx.child(root, "name"))
    argv += ["-name", opt(guest=name, debug_threads=True)]
    argv += ["-S", "-no-user-config", "-nodefaults", "-no-shutdown", "-msg", "timestamp=on"]
    # seccomp (works with Debian's QEMU 7.2): no exec (so no exec: migration and no
    # helper programs), no setuid, no obsolete syscalls, no scheduler/affinity changes
    argv += ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]

    machine_opts, globals_ = _features_and_pm(ctx, root)
    clock_args = _clock(ctx, root)  # adds CPU flags (hv-time) and hpet
    if ctx.machine_hpet is not None:
        machine_opts["hpet"] = ctx.machine_hpet
    argv += ["-machine", opt(esc(machine), usb=False, dump_guest_core=False, **machine_opts)]
    argv += ["-accel", accel]
    cpu = _cpu(ctx, root)
    if cpu:
        argv += ["-cpu", cpu]
    argv += _memory(ctx, definition)
    argv += ["-smp", _smp(ctx, definition)]
    uuid_el = ctx.child(root, "uuid")
    if uuid_el is not None:
        argv += ["-uuid", definition.uuid]
    _metadata(ctx, root)
    argv += clock_args
    for g in globals_:
        argv += ["-global", g]
    argv += _lifecycle(ctx, root)

    argv += ctx.files.pidfile(paths.pidfile)
    argv += ["-display", "none"]
    for n, sock in (("", paths.qmp), ("2", paths.qmp_monitor)):
        argv += ["-chardev", opt("socket", id=f"charmonitor{n}", **ctx.files.socket(sock, listen=True),
                                 server=True, wait=False)]
        argv += ["-mon", f"chardev=charmonitor{n},id=monitor{n},mode=control"]

    boot_order, kernel_args = _os(ctx, os_el)
    dev_argv, per_device_boot = build_devices(ctx, definition)
    if boot_order and per_device_boot:
        raise bad(os_el, "per-device boot elements cannot be used together with <os><boot dev=...>")
    boot = opt(order=boot_order or None, **_bootmenu(ctx, os_el), strict=True)
    argv += kernel_args
    argv += ["-boot", boot]
    argv += dev_argv
    ctx.refuse_unconsumed()
    if ctx.files.add_fd_args:
        at = argv.index("-sandbox") + 2
        argv[at:at] = ctx.files.add_fd_args
    return argv


# --- top-level elements -------------------------------------------------------------
def _metadata(ctx: Ctx, root) -> None:
    """Pure metadata: no effect on QEMU."""
    for tag in ("title", "description", "metadata"):
        el = root.find(tag)
        if el is not None:
            ctx.use_subtree(el)
    res = ctx.child(root, "resource")
    if res is not None:
        # the cgroup partition is a placement hint for a daemon; not ours
        ctx.use_subtree(res)
    for sec in root.findall("seclabel"):
        if sec.get("type") != "none" or len(sec):
            raise unsupported(sec, None, "only <seclabel type='none'/> is")
        ctx.use(sec, "type", "model", "relabel")


def _memory(ctx: Ctx, definition) -> list[str]:
    root = definition.root
    mem = ctx.child(root, "memory")
    if mem is None:
        raise bad(root, "missing <memory>")
    ctx.use(mem, "unit")
    # <currentMemory> is the balloon target: the driver sets it after start
    # with balloon (QMP); at boot the guest sees <memory>.
    ctx.use(ctx.child(root, "currentMemory"), "unit")
    kib = definition.max_memory_kib
    return ["-m", opt(size=f"{kib}k")]


def _smp(ctx: Ctx, definition) -> str:
    root = definition.root
    vcpu = ctx.child(root, "vcpu")
    if vcpu is not None:
        ctx.use(vcpu, "current")
        placement = ctx.attr(vcpu, "placement", "static")
        if placement != "static":
            raise unsupported(vcpu, f"<vcpu placement='{placement}'>")
    maxcpus, current = definition.max_vcpus, definition.vcpus
    topo = root.find("cpu/topology")
    if topo is not None:
        ctx.use(topo)
        sockets = int(ctx.attr(topo, "sockets", "1"))
        dies = int(ctx.attr(topo, "dies", "1"))
        cores = int(ctx.attr(topo, "cores", "1"))
        threads = int(ctx.attr(topo, "threads", "1"))
    else:
        sockets, dies, cores, threads = maxcpus, 1, 1, 1
    return opt(str(current), maxcpus=maxcpus, sockets=sockets,
               dies=dies if dies != 1 else None, cores=cores, threads=threads)


def _cpu(ctx: Ctx, root) -> str | None:
    """``-cpu``: model and flags (hyperv enlightenments, pmu, kvm hidden)."""
    cpu = ctx.child(root, "cpu")
    flags: list[str] = list(ctx.cpu_flags)
    base = None
    if cpu is not None:
        mode = ctx.attr(cpu, "mode", "custom")
        ctx.use(cpu, "match", "check", "migratable")
        if mode == "host-passthrough":
            if ctx.accel != "kvm":
                raise unsupported(cpu, "<cpu mode='host-passthrough'>",
                                  "it needs KVM (<domain type='kvm'>); use host-model or a named model under TCG")
            base = "host"
        elif mode == "host-model":
            base = "host" if ctx.accel == "kvm" else "max"
        elif mode == "maximum":
            base = "max"
        elif mode == "custom":
            model = ctx.child(cpu, "model")
            if model is not None:
                ctx.use(model, "fallback")
                vid = ctx.attr(model, "vendor_id")
                if vid is not None:
                    raise unsupported(model, f"<model vendor_id='{vid}'>")
                base = esc((model.text or "").strip())
        else:
            raise unsupported(cpu, f"<cpu mode='{mode}'>")
        if mode != "custom" and cpu.find("model") is not None:
            # libvirt allows <model fallback=...> under host-model; no name is used
            m = ctx.child(cpu, "model")
            ctx.use(m, "fallback")
            if (m.text or "").strip() and mode != "host-model":
                raise unsupported(m, f"<cpu mode='{mode}'><model>")
        for f in ctx.children(cpu, "feature"):
            policy = ctx.attr(f, "policy", "require")
            fname = ctx.attr(f, "name")
            if policy in ("require", "force", "optional"):
                # optional: TCG/KVM warn (not fail) about a flag they cannot provide
                flags.append(f"{esc(fname)}=on")
            elif policy in ("disable", "forbid"):
                flags.append(f"{esc(fname)}=off")
            else:
                raise bad(f, f"unknown feature policy '{policy}'")
        # <topology> is read by _smp; <cache>, <numa>, <vendor> are refused
    for tag in ("vendor",):
        if cpu is not None and cpu.find(tag) is not None:
            raise unsupported(cpu.find(tag))
    if not flags and base is None:
        return None
    if base is None:
        base = "qemu32" if ctx.arch == "i686" else "qemu64"
    return ",".join([base] + flags)


def _features_and_pm(ctx: Ctx, root) -> tuple[dict, list[str]]:
    """<features> and <pm>: machine options, -global lines; CPU flags go to ctx.cpu_flags."""
    machine: dict = {}
    globals_: list[str] = []
    ctx.cpu_flags = []
    feats = ctx.child(root, "features")
    acpi = feats is not None and feats.find("acpi") is not None
    if not acpi:
        machine["acpi"] = False
    if feats is not None:
        for el in feats:
            if not xmlapi.is_element(el):
                continue
            tag = el.tag
            if tag in ("acpi", "pae"):
                ctx.use(el)  # acpi handled above; pae is implied on x86_64
            elif tag == "apic":
                ctx.use(el)
                if el.get("eoi") is not None:
                    raise unsupported(el, f"<apic eoi='{el.get('eoi')}'>")
            elif tag == "vmport":
                machine["vmport"] = _state(ctx, el)
            elif tag == "smm":
                machine["smm"] = _state(ctx, el)
                if len(el):
                    raise unsupported(el[0])
            elif tag == "pmu":
                ctx.cpu_flags.append(f"pmu={'on' if _state(ctx, el) else 'off'}")
            elif tag == "kvm":
                ctx.use(el)
                for k in el:
                    if k.tag == "hidden":
                        ctx.cpu_flags.append(f"kvm={'off' if _state(ctx, k) else 'on'}")
                    else:
                        raise unsupported(k, f"<kvm><{k.tag}>")
            elif tag == "hyperv":
                ctx.use(el)
                mode = ctx.attr(el, "mode", "custom")
                if mode != "custom":
                    raise unsupported(el, f"<hyperv mode='{mode}'>")
                for hv in el:
                    prop = _HYPERV.get(hv.tag)
                    if prop is None:
                        raise unsupported(hv, f"<hyperv><{hv.tag}>")
                    on = _state(ctx, hv)
                    if hv.tag == "spinlocks" and on:
                        retries = int(ctx.attr(hv, "retries", "8191"))
                        ctx.cpu_flags.append(f"{prop}={hex(retries)}")
                    elif hv.tag == "vendor_id" and on:
                        ctx.cpu_flags.append(f"{prop}={esc(ctx.attr(hv, 'value', ''))}")
                    elif hv.tag == "stimer":
                        ctx.cpu_flags.append(f"{prop}={'on' if on else 'off'}")
                        direct = ctx.child(hv, "direct")
                        if direct is not None:
                            ctx.cpu_flags.append(f"hv-stimer-direct={'on' if _state(ctx, direct) else 'off'}")
                    elif hv.tag in ("spinlocks", "vendor_id"):
                        pass  # state='off': nothing to pass
                    else:
                        ctx.cpu_flags.append(f"{prop}={'on' if on else 'off'}")
            else:
                raise unsupported(el, f"<features><{xmlapi.qname_of(el)}>")
    pm = ctx.child(root, "pm")
    if pm is not None:
        lpc = "PIIX4_PM" if ctx.family == "pc" else "ICH9-LPC"
        for tag, prop in (("suspend-to-mem", "disable_s3"), ("suspend-to-disk", "disable_s4")):
            el = ctx.child(pm, tag)
            if el is not None and el.get("enabled") is not None:
                enabled = ctx.flag(el, "enabled")
                globals_.append(f"{lpc}.{prop}={0 if enabled else 1}")
    return machine, globals_


def _state(ctx: Ctx, el) -> bool:
    ctx.use(el)
    v = ctx.flag(el, "state")
    return True if v is None else v


def _clock(ctx: Ctx, root) -> list[str]:
    clock = ctx.child(root, "clock")
    out: list[str] = []
    offset = ctx.attr(clock, "offset", "utc")
    if offset not in ("utc", "localtime"):
        raise unsupported(clock, f"<clock offset='{offset}'>", "only utc and localtime are")
    if clock is not None and clock.get("adjustment") not in (None, "0", "reset"):
        raise unsupported(clock, f"<clock adjustment='{clock.get('adjustment')}'>")
    ctx.attr(clock, "adjustment")
    rtc = {"base": offset}
    for t in ctx.children(clock, "timer"):
        name = ctx.attr(t, "name")
        present = ctx.flag(t, "present")
        policy = ctx.attr(t, "tickpolicy")
        if name == "rtc":
            track = ctx.attr(t, "track", "guest")
            if track != "guest" or present is False:
                raise unsupported(t, f"<timer name='rtc' track='{track}'>" if track != "guest"
                                  else "<timer name='rtc' present='no'>")
            if policy == "catchup":
                rtc["driftfix"] = "slew"
            elif policy not in (None, "delay"):
                raise unsupported(t, f"<timer name='rtc' tickpolicy='{policy}'>")
        elif name == "pit":
            if present is False:
                raise unsupported(t, "<timer name='pit' present='no'>")
            lost = {None: None, "delay": "delay", "catchup": "slew", "discard": "discard"}
            if policy not in lost:
                raise unsupported(t, f"<timer name='pit' tickpolicy='{policy}'>")
            # kvm-pit exists only under KVM; TCG's i8254 has no tick policy
            if lost[policy] and ctx.accel == "kvm":
                out += ["-global", f"kvm-pit.lost_tick_policy={lost[policy]}"]
        elif name == "hpet":
            if present is not None:
                ctx.machine_hpet = present
        elif name == "hypervclock":
            if present is not False:
                ctx.cpu_flags.append("hv-time=on")
        elif name == "kvmclock":
            if present is not None:
                ctx.cpu_flags.append(f"kvmclock={'on' if present else 'off'}")
        else:
            raise unsupported(t, f"<timer name='{name}'>")
        if name not in ("rtc", "pit") and policy is not None:
            raise unsupported(t, f"<timer name='{name}' tickpolicy='{policy}'>")
    out = ["-rtc", opt(**rtc)] + out
    return out


def _lifecycle(ctx: Ctx, root) -> list[str]:
    """on_poweroff/on_crash are the monitor process's job (it sees SHUTDOWN
    then STOP because of -no-shutdown); on_reboot=destroy needs -no-reboot."""
    out = []
    for tag in ("on_poweroff", "on_reboot", "on_crash"):
        el = ctx.child(root, tag)
        if tag == "on_reboot" and el is not None and (el.text or "").strip() == "destroy":
            out.append("-no-reboot")
    return out


def _os(ctx: Ctx, os_el) -> tuple[str, list[str]]:
    """-boot order letters, and -kernel/-initrd/-append (plain arguments: the
    whole argument is the value, so nothing needs escaping)."""
    order = ""
    args: list[str] = []
    if os_el is None:
        return order, args
    for b in ctx.children(os_el, "boot"):
        dev = ctx.attr(b, "dev")
        if dev not in _BOOT_DEV:
            raise bad(b, f"unknown boot device '{dev}'")
        order += _BOOT_DEV[dev]
    kernel = ctx.text(os_el, "kernel")
    initrd = ctx.text(os_el, "initrd")
    cmdline = ctx.text(os_el, "cmdline")
    if kernel:
        args += ["-kernel", ctx.files.kernel(kernel)]
        if initrd:
            args += ["-initrd", ctx.files.kernel(initrd)]
        if cmdline:
            args += ["-append", cmdline]
    elif initrd or cmdline:
        raise bad(os_el, "<initrd> and <cmdline> need a <kernel>")
    fw = ctx.attr(os_el, "firmware")
    if fw not in (None, "bios"):
        raise unsupported(os_el, f"<os firmware='{fw}'>", "only BIOS (SeaBIOS) boot is")
    for tag in ("loader", "nvram", "dtb", "smbios", "bios", "acpi", "init", "firmware"):
        el = os_el.find(tag)
        if el is not None:
            raise unsupported(el, f"<os><{tag}>")
    return order, args


def _bootmenu(ctx: Ctx, os_el) -> dict:
    if os_el is None:
        return {}
    bm = ctx.child(os_el, "bootmenu")
    if bm is None:
        return {}
    enable = ctx.flag(bm, "enable")
    out: dict = {"menu": bool(enable)}
    timeout = ctx.attr(bm, "timeout")
    if timeout is not None and enable:
        out["splash_time"] = int(timeout)
    return out
