"""Host figures and capabilities of the QEMU driver.

* nodecpustats: /proc/stat (``cpu`` or ``cpuN``), libvirt's sums: user =
  user + nice, system = system + irq + softirq, idle, iowait (ns);
* nodememstats: /proc/meminfo (total, free, buffers, cached), or a NUMA
  cell's /sys/devices/system/node/nodeN/meminfo (total, free);
* freecell: MemFree per NUMA cell (one cell when /sys has none);
* sysinfo: /sys/class/dmi/id, as libvirt's <sysinfo type='smbios'>;
* capabilities and domcapabilities: the host from /proc and /sys, the
  guests from the emulator itself: a short-lived ``EMULATOR -machine none
  -qmp stdio`` answers query-machines, query-cpu-definitions and
  query-kvm.  Its answers are cached in ``RUN/caps/<key>.json``, the key a
  digest of the binary's path, size, mtime and inode, so a changed or
  replaced QEMU is probed again (the cache is only a cache: unreadable, it
  is ignored).
"""
from __future__ import annotations

import os

from virtctl.errors import InvalidArg, NotSupported, OperationFailed

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_NODE_DIR = "/sys/devices/system/node"


def node_cpu_stats(cpu: int | None) -> dict:
    want = "cpu" if cpu is None else f"cpu{cpu}"
    try:
        with open("/proc/stat") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] == want:
                    v = [int(x) * (10**9 // _CLK_TCK) for x in parts[1:8]]
                    user, nice, system, idle, iowait, irq, softirq = (v + [0] * 7)[:7]
                    return {"user": user + nice, "system": system + irq + softirq, "idle": idle,
                            "iowait": iowait}
    except OSError as exc:
        raise OperationFailed(f"cannot read /proc/stat: {exc.strerror}") from None
    raise InvalidArg(f"invalid argument: Invalid cpuNum in virHostCPUGetStatsLinux: {cpu}")


def _meminfo(path: str, prefix: str = "") -> dict[str, int]:
    out = {}
    try:
        with open(path) as f:
            for line in f:
                words = line[len(prefix):].split() if line.startswith(prefix) else []
                if len(words) >= 2 and words[0].endswith(":"):
                    out[words[0][:-1]] = int(words[1])
    except (OSError, ValueError):
        pass
    return out


def _cells() -> list[int]:
    try:
        return sorted(int(n[4:]) for n in os.listdir(_NODE_DIR) if n.startswith("node") and n[4:].isdigit())
    except OSError:
        return []


def node_memory_stats(cell: int | None) -> dict:
    if cell is None:
        m = _meminfo("/proc/meminfo")
        return {"total": m.get("MemTotal", 0), "free": m.get("MemFree", 0), "buffers": m.get("Buffers", 0),
                "cached": m.get("Cached", 0)}
    if cell not in (_cells() or [0]):
        raise InvalidArg(f"invalid argument: cell number {cell} is out of range")
    if not _cells():
        m = _meminfo("/proc/meminfo")
        return {"total": m.get("MemTotal", 0), "free": m.get("MemFree", 0)}
    m = _meminfo(f"{_NODE_DIR}/node{cell}/meminfo", f"Node {cell} ")
    return {"total": m.get("MemTotal", 0), "free": m.get("MemFree", 0)}


def free_memory() -> int:
    return _meminfo("/proc/meminfo").get("MemFree", 0) * 1024


def cells_free_memory(start: int, count: int | None) -> list[int]:
    cells = _cells() or [0]
    if start > cells[-1]:
        raise InvalidArg(f"invalid argument: start cell {start} out of range (0-{cells[-1]})")
    end = cells[-1] + 1 if count is None else start + count
    if end > cells[-1] + 1:
        raise InvalidArg(f"invalid argument: start cell {start} out of range (0-{cells[-1]})")
    out = []
    for c in range(start, end):
        if _cells():
            out.append(_meminfo(f"{_NODE_DIR}/node{c}/meminfo", f"Node {c} ").get("MemFree", 0) * 1024)
        else:
            out.append(free_memory())
    return out


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")


def _dmi(name: str) -> str | None:
    try:
        with open(f"/sys/class/dmi/id/{name}") as f:
            v = f.read().strip()
        return v or None
    except OSError:
        return None


def sysinfo() -> str:
    groups = (("bios", (("vendor", "bios_vendor"), ("version", "bios_version"), ("date", "bios_date"),
                        ("release", "bios_release"))),
              ("system", (("manufacturer", "sys_vendor"), ("product", "product_name"),
                          ("version", "product_version"), ("serial", "product_serial"),
                          ("uuid", "product_uuid"), ("sku", "product_sku"), ("family", "product_family"))),
              ("baseBoard", (("manufacturer", "board_vendor"), ("product", "board_name"),
                             ("version", "board_version"), ("serial", "board_serial"),
                             ("asset", "board_asset_tag"))))
    lines = ["<sysinfo type='smbios'>"]
    if not any(_dmi(f) for _, entries in groups for _, f in entries):
        raise OperationFailed("internal error: no SMBIOS information on this host (/sys/class/dmi/id is missing)")
    for tag, entries in groups:
        found = [(n, _dmi(f)) for n, f in entries]
        found = [(n, v) for n, v in found if v]
        if not found:
            continue
        lines.append(f"  <{tag}>")
        lines += [f"    <entry name='{n}'>{_esc(v)}</entry>" for n, v in found]
        lines.append(f"  </{tag}>")
    lines.append("</sysinfo>")
    return "\n".join(lines) + "\n"


# --- the emulator's own answers, cached by binary ------------------------------------------------
def emulator_path(emulatorbin: str | None = None) -> str:
    import shutil

    from virtctl.drivers.qemu.argv import DEFAULT_EMULATOR

    path = shutil.which(emulatorbin or DEFAULT_EMULATOR)
    if not path:
        raise OperationFailed(f"cannot find the emulator '{emulatorbin or DEFAULT_EMULATOR}'",
                              detail={"emulator": emulatorbin or DEFAULT_EMULATOR})
    return os.path.realpath(path)


def _probe(path: str) -> dict:
    import json
    import subprocess

    cmds = ["qmp_capabilities", "query-machines", "query-cpu-definitions", "query-kvm", "query-version", "quit"]
    text = "".join(json.dumps({"execute": c}) + "\n" for c in cmds)
    try:
        p = subprocess.run([path, "-machine", "none", "-nodefaults", "-nographic", "-display", "none",
                            "-S", "-qmp", "stdio"], input=text, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise OperationFailed(f"cannot probe the emulator '{path}': {exc}") from None
    replies = []
    for line in p.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if "return" in obj or "error" in obj:
            replies.append(obj.get("return"))
    if len(replies) < 5:
        raise OperationFailed(f"the emulator '{path}' did not answer its probe: {p.stderr.strip()[-300:]}")
    _, machines, cpus, kvm, version = replies[:5]
    return {"machines": machines or [], "cpus": cpus or [], "kvm": kvm or {}, "version": version or {}}


def probe(state, emulatorbin: str | None = None) -> tuple[str, dict, bool]:
    """(binary path, probe answers, whether they came from the cache)."""
    import json

    from virtctl.drivers.qemu.state import ensure_dir, read_json, write_json
    from virtctl.drivers.qemu.summary import key_of

    path = emulator_path(emulatorbin)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise OperationFailed(f"cannot stat the emulator '{path}': {exc.strerror}") from None
    key = key_of(json.dumps([path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]).encode())
    cache_dir = os.path.join(state.run, "caps")
    cache = os.path.join(cache_dir, f"{key}.json")
    try:
        doc = read_json(cache)
    except Exception:  # noqa: BLE001 - a cache: anything wrong is a miss
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("machines"), list):
        return path, doc, True
    doc = _probe(path)
    try:
        ensure_dir(cache_dir, check=False)
        write_json(cache, doc, sync=False)
    except Exception:  # noqa: BLE001
        pass
    return path, doc, False


def _arch_of(path: str) -> str:
    base = os.path.basename(path)
    return base[len("qemu-system-"):] if base.startswith("qemu-system-") else os.uname().machine


def _kvm_usable(doc: dict) -> bool:
    return bool(doc.get("kvm", {}).get("present")) and os.access("/dev/kvm", os.R_OK | os.W_OK)


def _default_machine(doc: dict) -> dict:
    for m in doc["machines"]:
        if m.get("is-default"):
            return m
    return doc["machines"][0] if doc["machines"] else {"name": "none", "cpu-max": 1}


def _find_machine(doc: dict, name: str | None) -> dict:
    if name is None:
        return _default_machine(doc)
    for m in doc["machines"]:
        if name in (m.get("name"), m.get("alias")):
            return m
    raise InvalidArg(f"invalid argument: the machine '{name}' is not supported by the emulator")


def _host_topology() -> tuple[str, list[str]]:
    """(the <cpu> topology line, the <cells> lines) from /sys."""
    cpus = os.cpu_count() or 1
    lines = []
    cells = _cells()
    mem = _meminfo("/proc/meminfo").get("MemTotal", 0)
    if not cells:
        cells_info = [(0, mem, list(range(cpus)))]
    else:
        cells_info = []
        for c in cells:
            m = _meminfo(f"{_NODE_DIR}/node{c}/meminfo", f"Node {c} ").get("MemTotal", 0)
            try:
                with open(f"{_NODE_DIR}/node{c}/cpulist") as f:
                    spec = f.read().strip()
            except OSError:
                spec = ""
            ids = []
            for part in filter(None, spec.split(",")):
                lo, _, hi = part.partition("-")
                ids += list(range(int(lo), int(hi or lo) + 1))
            cells_info.append((c, m, ids))
    lines.append(f"      <cells num='{len(cells_info)}'>")
    for c, m, ids in cells_info:
        lines += [f"        <cell id='{c}'>", f"          <memory unit='KiB'>{m}</memory>",
                  f"          <cpus num='{len(ids)}'>"]
        for i in ids:
            topo = f"/sys/devices/system/cpu/cpu{i}/topology"

            def read(name: str, default: str = "0") -> str:
                try:
                    with open(f"{topo}/{name}") as f:
                        return f.read().strip() or default
                except OSError:
                    return default
            lines.append(f"            <cpu id='{i}' socket_id='{read('physical_package_id')}' "
                         f"die_id='{read('die_id')}' core_id='{read('core_id')}' "
                         f"siblings='{read('thread_siblings_list', str(i))}'/>")
        lines += ["          </cpus>", "        </cell>"]
    lines.append("      </cells>")
    sockets = len({read_topo(i, "physical_package_id") for i in range(cpus)}) or 1
    threads = max(len(_expand(read_topo(0, "thread_siblings_list") or "0")), 1)
    cores = max(cpus // (sockets * threads), 1)
    return (f"      <topology sockets='{sockets}' dies='1' cores='{cores}' threads='{threads}'/>", lines)


def read_topo(i: int, name: str) -> str:
    try:
        with open(f"/sys/devices/system/cpu/cpu{i}/topology/{name}") as f:
            return f.read().strip()
    except OSError:
        return ""


def _expand(spec: str) -> list[int]:
    out = []
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        try:
            out += list(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            pass
    return out


def _wordsize(arch: str) -> int:
    return 32 if arch in ("i686", "i386", "arm", "ppc", "mips", "mipsel") else 64


def capabilities(state) -> str:
    import uuid as uuidlib

    path, doc, _ = probe(state)
    arch = _arch_of(path)
    host_arch = os.uname().machine
    topo, cells = _host_topology()
    host_uuid = _dmi("product_uuid")
    try:
        host_uuid = str(uuidlib.UUID(host_uuid)) if host_uuid else None
    except ValueError:
        host_uuid = None
    out = ["<capabilities>", "", "  <host>"]
    if host_uuid:
        out.append(f"    <uuid>{host_uuid}</uuid>")
    out += ["    <cpu>", f"      <arch>{host_arch}</arch>", topo, "      <pages unit='KiB' size='4'/>",
            "    </cpu>", "    <power_management/>", "    <iommu support='no'/>", "    <topology>", *cells,
            "    </topology>", "  </host>", "", "  <guest>", "    <os_type>hvm</os_type>",
            f"    <arch name='{arch}'>", f"      <wordsize>{_wordsize(arch)}</wordsize>",
            f"      <emulator>{_esc(path)}</emulator>"]
    for m in sorted(doc["machines"], key=lambda m: m.get("name", "")):
        if m.get("name") == "none":
            continue
        dep = " deprecated='yes'" if m.get("deprecated") else ""
        out.append(f"      <machine maxCpus='{m.get('cpu-max', 1)}'{dep}>{_esc(m['name'])}</machine>")
        if m.get("alias"):
            out.append(f"      <machine canonical='{_esc(m['name'])}' maxCpus='{m.get('cpu-max', 1)}'{dep}>"
                       f"{_esc(m['alias'])}</machine>")
    out.append("      <domain type='qemu'/>")
    if _kvm_usable(doc) and arch == host_arch:
        out.append("      <domain type='kvm'/>")
    out += ["    </arch>", "    <features>", "      <acpi default='on' toggle='yes'/>",
            "      <apic default='on' toggle='no'/>", "      <cpuselection/>", "      <deviceboot/>",
            "      <disksnapshot default='on' toggle='no'/>", "    </features>", "  </guest>", "", "</capabilities>"]
    return "\n".join(out) + "\n"


_DEVICE_ENUMS = (
    ("disk", (("diskDevice", ("disk", "cdrom", "floppy", "lun")),
              ("bus", ("ide", "fdc", "scsi", "virtio", "usb", "sata")),
              ("model", ("virtio", "virtio-transitional", "virtio-non-transitional")))),
    ("graphics", (("type", ("vnc",)),)),
    ("video", (("modelType", ("vga", "cirrus", "virtio", "none", "bochs", "ramfb")),)),
    ("hostdev", (("mode", ()), ("startupPolicy", ()), ("subsysType", ()), ("capsType", ()), ("pciBackend", ()))),
    ("rng", (("model", ("virtio", "virtio-transitional", "virtio-non-transitional")),
             ("backendModel", ("random", "egd", "builtin")))),
)


def domain_capabilities(state, *, virttype=None, emulatorbin=None, arch=None, machine=None) -> str:
    path, doc, _ = probe(state, emulatorbin)
    emu_arch = _arch_of(path)
    if arch is not None and arch != emu_arch:
        raise InvalidArg(f"invalid argument: the emulator '{path}' does not support arch '{arch}'")
    vt = virttype or ("kvm" if _kvm_usable(doc) else "qemu")
    if vt not in ("qemu", "kvm"):
        raise InvalidArg(f"invalid argument: unknown virttype: {vt}")
    if vt == "kvm" and not _kvm_usable(doc):
        raise NotSupported("unsupported configuration: KVM is not available on this host "
                           "(use --virttype qemu)", detail={"driver": "qemu", "feature": "domcapabilities --virttype kvm"})
    m = _find_machine(doc, machine)
    out = ["<domainCapabilities>", f"  <path>{_esc(path)}</path>", f"  <domain>{vt}</domain>",
           f"  <machine>{_esc(m['name'])}</machine>", f"  <arch>{emu_arch}</arch>",
           f"  <vcpu max='{m.get('cpu-max', 1)}'/>", "  <iothreads supported='yes'/>",
           "  <os supported='yes'>", "    <enum name='firmware'/>", "    <loader supported='yes'>",
           "      <enum name='type'>", "        <value>rom</value>", "        <value>pflash</value>",
           "      </enum>", "      <enum name='readonly'>", "        <value>yes</value>",
           "        <value>no</value>", "      </enum>", "      <enum name='secure'>", "        <value>no</value>",
           "      </enum>", "    </loader>", "  </os>", "  <cpu>",
           f"    <mode name='host-passthrough' supported='{'yes' if vt == 'kvm' else 'no'}'/>",
           "    <mode name='maximum' supported='yes'>", "      <enum name='maximumMigratable'>",
           "        <value>on</value>", "        <value>off</value>", "      </enum>", "    </mode>",
           "    <mode name='host-model' supported='no'/>", "    <mode name='custom' supported='yes'>"]
    for c in sorted(doc["cpus"], key=lambda c: c.get("name", "")):
        name = c.get("name", "")
        if name in ("max", "host", "base") or not name:
            continue
        usable = "no" if c.get("unavailable-features") else "yes"
        dep = " deprecated='yes'" if c.get("deprecated") else ""
        out.append(f"      <model usable='{usable}'{dep} vendor='{_vendor(name)}'>{_esc(name)}</model>")
    out += ["    </mode>", "  </cpu>", "  <memoryBacking supported='yes'>", "    <enum name='sourceType'>",
            "      <value>file</value>", "      <value>anonymous</value>", "      <value>memfd</value>",
            "    </enum>", "  </memoryBacking>", "  <devices>"]
    for dev, enums in _DEVICE_ENUMS:
        out.append(f"    <{dev} supported='yes'>")
        for ename, values in enums:
            if values:
                out.append(f"      <enum name='{ename}'>")
                out += [f"        <value>{v}</value>" for v in values]
                out.append("      </enum>")
            else:
                out.append(f"      <enum name='{ename}'/>")
        out.append(f"    </{dev}>")
    out += ["  </devices>", "  <features>", "    <gic supported='no'/>", "    <vmcoreinfo supported='yes'/>",
            "    <genid supported='yes'/>", "    <backingStoreInput supported='yes'/>",
            "    <backup supported='no'/>", "    <sev supported='no'/>", "  </features>", "</domainCapabilities>"]
    return "\n".join(out) + "\n"


_AMD = ("EPYC", "Opteron", "phenom", "athlon")
_INTEL = ("Broadwell", "Cascadelake", "Cooperlake", "Conroe", "Haswell", "Icelake", "IvyBridge", "Nehalem",
          "Penryn", "SandyBridge", "SapphireRapids", "Skylake", "Snowridge", "Westmere", "Denverton",
          "KnightsMill", "pentium", "coreduo", "core2duo", "n270", "486")


def _vendor(model: str) -> str:
    if model.startswith(_AMD):
        return "AMD"
    if model.startswith(_INTEL):
        return "Intel"
    if model.startswith("Dhyana"):
        return "Hygon"
    return "unknown"


def max_vcpus(state, type_: str | None) -> int:
    path, doc, _ = probe(state)
    if type_ not in (None, "qemu", "kvm", "tcg"):
        raise InvalidArg(f"invalid argument: unknown type '{type_}'")
    return int(_default_machine(doc).get("cpu-max", 1))
