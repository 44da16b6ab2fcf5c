"""``<devices>`` -> QEMU arguments (part of the pure argv builder, ``argv.py``).

Device ids follow libvirt's aliases where one exists (``virtio-disk0``,
``sata0-0-0``, ``net0``, ``serial0``, ``channel0``, ``usb``, ``pci.N``, ...),
so QMP commands the driver sends can name devices the way libvirt users expect.

PCI addresses: ``<address type='pci'>`` is honoured where given (bus 0 is the
root bus ``pci.0`` on pc / ``pcie.0`` on q35, bus N is the controller with
index N, named ``pci.N``); a device without one is placed by QEMU (first free
slot).  To keep QEMU's automatic placement from taking a slot an explicit
address wants, devices with an explicit address are emitted before the ones
without (controllers first in both cases).  virt-install writes no addresses
at all, so its devices all land on the root bus, which is fine for QEMU
(pcie-root-ports stay free for hotplug).
"""
from __future__ import annotations


from virtctl.drivers.qemu.argv_common import Ctx, bad, esc, js, unsupported
from virtctl.xml import xmlapi
from virtctl.drivers.qemu.argv_chardev import CharDeviceMixin
from virtctl.drivers.qemu.argv_storage import StorageMixin

_NIC_MODELS = {"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e",
               "rtl8139": "rtl8139", "ne2k_pci": "ne2k_pci", "pcnet": "pcnet"}
_USB_MODELS = {"qemu-xhci": "qemu-xhci", "nec-xhci": "nec-usb-xhci", "ich9-ehci1": "ich9-usb-ehci1",
               "ich9-uhci1": "ich9-usb-uhci1", "ich9-uhci2": "ich9-usb-uhci2",
               "ich9-uhci3": "ich9-usb-uhci3", "piix3-uhci": "piix3-usb-uhci",
               "piix4-uhci": "piix4-usb-uhci"}
_INPUT = {("tablet", "usb"): "usb-tablet", ("mouse", "usb"): "usb-mouse", ("keyboard", "usb"): "usb-kbd",
          ("tablet", "virtio"): "virtio-tablet-pci", ("mouse", "virtio"): "virtio-mouse-pci",
          ("keyboard", "virtio"): "virtio-keyboard-pci"}
# <video><model type> -> (primary device, secondary device)
_VIDEO = {"virtio": ("virtio-vga", "virtio-gpu-pci"), "qxl": ("qxl-vga", "qxl"),
          "vga": ("VGA", None), "cirrus": ("cirrus-vga", None), "bochs": ("bochs-display", "bochs-display")}



class _Out:
    """Arguments in emission buckets.

    Order of -device: PCI controllers (buses) first, then everything with an
    explicit PCI address, then what QEMU places itself — so automatic
    placement cannot take a slot an explicit address wants."""

    def __init__(self):
        self.controllers: list[tuple[bool, list[str], bool]] = []  # (explicit address, args, is a PCI bus)
        self.blockdevs: list[str] = []
        self.devices: list[tuple[bool, list[str]]] = []
        self.pre: list[str] = []  # -chardev, -netdev, -object, -audiodev (before devices)
        self.post: list[str] = []  # -vnc

    def argv(self) -> list[str]:
        ctl, dev = self.controllers, self.devices
        groups = ([a for e, a, bus in ctl if bus and e], [a for e, a, bus in ctl if bus and not e],
                  [a for e, a, bus in ctl if not bus and e], [a for e, a in dev if e],
                  [a for e, a, bus in ctl if not bus and not e], [a for e, a in dev if not e])
        out: list[str] = self.blockdevs + self.pre
        for g in groups:
            for a in g:
                out += a
        return out + self.post


def build_devices(ctx: Ctx, definition) -> tuple[list[str], bool]:
    """Arguments for ``<devices>``; also whether any device has ``<boot order>``."""
    b = _Devices(ctx, definition)
    return b.build(), b.per_device_boot


class _Devices(StorageMixin, CharDeviceMixin):
    def __init__(self, ctx: Ctx, definition):
        self.ctx = ctx
        self.root = definition.root
        self.devs = definition.root.find("devices")
        self.out = _Out()
        self.per_device_boot = False
        self.pci_buses: dict[int, str] = {}  # controller index -> bus id
        self.usb: dict[int, str] = {}  # usb controller index -> id
        self.scsi: dict[int, str] = {}
        self.sata: dict[int, str] = {}
        self.vserial: dict[int, str] = {}
        self.serial_ports: set[int] = set()
        self.node = 0

    # --- helpers ------------------------------------------------------------------------
    def root_bus(self) -> str:
        return "pci.0" if self.ctx.family == "pc" else "pcie.0"

    def common(self, el, dev: dict, *, pci: bool | str = True) -> bool:
        """Alias (ignored: ids are ours), address, boot order.

        ``pci``: True honours a PCI address, "ignore" accepts one without effect
        (built-in devices at fixed addresses: q35's AHCI, pc's IDE, the root bus),
        False refuses one.  Returns True when an explicit PCI address was applied."""
        c = self.ctx
        alias = c.child(el, "alias")
        if alias is not None:
            c.use(alias, "name")  # a user alias names the device in libvirt's API; ids here are ours
        explicit = False
        addr = c.child(el, "address")
        if addr is not None:
            atype = c.attr(addr, "type")
            if atype == "pci" and pci == "ignore":
                c.use_subtree(addr)
            elif atype == "pci" and pci:
                explicit = self.pci_address(addr, dev)
            elif atype not in ("drive", "virtio-serial", "usb") or dev.get("_addr_kind") != atype:
                raise unsupported(addr, f"<address type='{atype}'>", f"not for <{el.tag}>")
        boot = c.child(el, "boot")
        if boot is not None:
            dev["bootindex"] = int(c.attr(boot, "order"))
            self.per_device_boot = True
        dev.pop("_addr_kind", None)
        return explicit

    def pci_address(self, addr, dev: dict) -> bool:
        c = self.ctx
        domain = int(c.attr(addr, "domain", "0"), 0)
        bus = int(c.attr(addr, "bus", "0"), 0)
        slot = int(c.attr(addr, "slot", "0"), 0)
        func = int(c.attr(addr, "function", "0"), 0)
        multi = c.flag(addr, "multifunction")
        if domain != 0:
            raise unsupported(addr, f"<address type='pci' domain='{addr.get('domain')}'>")
        if bus == 0:
            dev["bus"] = self.root_bus()
        elif bus in self.pci_buses:
            dev["bus"] = self.pci_buses[bus]
        else:
            raise bad(addr, f"PCI bus {bus:#04x} has no <controller type='pci' index='{bus}'>")
        dev["addr"] = f"{slot:#x}.{func:#x}"
        if multi:
            dev["multifunction"] = True
        return True

    def add_device(self, dev: dict, explicit: bool, *, controller: bool = False, pci_bus: bool = False) -> None:
        if controller:
            self.out.controllers.append((explicit, ["-device", js(dev)], pci_bus))
        else:
            self.out.devices.append((explicit, ["-device", js(dev)]))

    def usb_bus(self, el, dev: dict) -> None:
        """USB devices go on the controller with index 0 (or the one their address names)."""
        c = self.ctx
        addr = el.find("address")
        index = 0
        if addr is not None and addr.get("type") == "usb":
            index = int(c.attr(addr, "bus", "0"))
            port = c.attr(addr, "port")
            if port:
                dev["port"] = port
            dev["_addr_kind"] = "usb"
        if index not in self.usb:
            raise bad(el, f"a USB device needs <controller type='usb' index='{index}'> (not model 'none')")
        dev["bus"] = f"{self.usb[index]}.0"

    # --- the walk -----------------------------------------------------------------------
    def build(self) -> list[str]:
        c = self.ctx
        if self.devs is None:
            return []
        c.use(self.devs)
        handlers = {
            "emulator": lambda el: c.use(el), "disk": None, "controller": None,
            "interface": self.interface, "serial": self.serial, "console": None,
            "channel": self.channel, "input": self.input, "graphics": self.graphics,
            "video": self.video, "memballoon": self.memballoon, "rng": self.rng,
            "audio": self.audio,
        }
        for el in self.devs:
            if not xmlapi.is_element(el):
                continue
            if el.tag not in handlers:
                raise unsupported(el)
        self.controllers()
        disks = self.devs.findall("disk")
        for el in disks:
            self.disk(el)
        for tag in ("interface", "serial", "channel", "input", "graphics", "video", "audio",
                    "memballoon", "rng", "emulator"):
            for el in self.devs.findall(tag):
                c.use(el)
                handlers[tag](el)
        for el in self.devs.findall("console"):
            self.console(el)
        return self.out.argv()

    # --- controllers --------------------------------------------------------------------
    def controllers(self) -> None:
        c = self.ctx
        ctrls = self.devs.findall("controller")
        # libvirt gives a controller without index the next free one of its type
        used: dict[str, set[int]] = {}
        for el in ctrls:
            if el.get("index") is not None:
                used.setdefault(el.get("type"), set()).add(int(el.get("index")))
        indexed = []
        for el in ctrls:
            c.use(el, "type", "index")
            t = el.get("type")
            if el.get("index") is not None:
                idx = int(el.get("index"))
            else:
                taken = used.setdefault(t, set())
                idx = 0
                # usb companions share the index of their EHCI master
                if t == "usb" and el.get("model", "").startswith("ich9-uhci"):
                    idx = max(taken) if taken else 0
                else:
                    while idx in taken:
                        idx += 1
                taken.add(idx)
            indexed.append((t, idx, el))
        # PCI bus ids first, so addresses can refer to them in any order
        for t, idx, el in indexed:
            if t == "pci" and idx > 0:
                self.pci_buses[idx] = f"pci.{idx}"
        # (EHCI masters before their UHCI companions, which share their index)
        for t, idx, el in sorted(indexed, key=lambda x: (x[0] != "pci", x[1], x[2].find("master") is not None)):
            model = c.attr(el, "model")
            if t == "pci":
                self.pci_controller(el, idx, model)
            elif t == "usb":
                self.usb_controller(el, idx, model)
            elif t == "sata":
                if self.ctx.family == "q35" and idx == 0:
                    self.sata[0] = "ide"  # ICH9's built-in AHCI
                    self.common(el, {}, pci="ignore")
                else:
                    name = f"sata{idx}"
                    dev = {"driver": "ich9-ahci", "id": name}
                    self.add_device(dev, self.common(el, dev), controller=True)
                    self.sata[idx] = name
            elif t == "ide":
                if self.ctx.family != "pc" or idx != 0:
                    raise unsupported(el, "<controller type='ide'>", "only the pc machine's built-in one is")
                self.common(el, {}, pci="ignore")
            elif t == "scsi":
                model = model or "virtio-scsi"  # libvirt's default differs (lsilogic); we only have virtio-scsi
                if model != "virtio-scsi":
                    raise unsupported(el, f"<controller type='scsi' model='{model}'>", "only virtio-scsi is")
                dev = {"driver": "virtio-scsi-pci", "id": f"scsi{idx}"}
                self.add_device(dev, self.common(el, dev), controller=True)
                self.scsi[idx] = f"scsi{idx}"
            elif t == "virtio-serial":
                dev = {"driver": "virtio-serial-pci", "id": f"virtio-serial{idx}"}
                ports, vectors = c.attr(el, "ports"), c.attr(el, "vectors")
                if ports is not None:
                    dev["max_ports"] = int(ports)
                if vectors is not None:
                    dev["vectors"] = int(vectors)
                self.add_device(dev, self.common(el, dev), controller=True)
                self.vserial[idx] = f"virtio-serial{idx}"
            else:
                raise unsupported(el, f"<controller type='{t}'>")
        # controllers libvirt adds implicitly when a device needs one
        if 0 not in self.usb and not any(t == "usb" for t, _, _ in indexed) and self._needs_usb():
            model = "qemu-xhci" if self.ctx.family == "q35" else "piix3-uhci"
            self.add_device({"driver": _USB_MODELS[model], "id": "usb"}, False, controller=True)
            self.usb[0] = "usb"
        if not self.scsi and any(d.get("bus") == "scsi" for d in self.root.findall("devices/disk/target")):
            self.add_device({"driver": "virtio-scsi-pci", "id": "scsi0"}, False, controller=True)
            self.scsi[0] = "scsi0"
        if 0 not in self.sata and any(d.get("bus") == "sata" for d in self.root.findall("devices/disk/target")):
            if self.ctx.family == "q35":
                self.sata[0] = "ide"
            else:
                self.add_device({"driver": "ich9-ahci", "id": "sata0"}, False, controller=True)
                self.sata[0] = "sata0"
        if not self.vserial and self._needs_virtio_serial():
            self.add_device({"driver": "virtio-serial-pci", "id": "virtio-serial0"}, False, controller=True)
            self.vserial[0] = "virtio-serial0"

    def _needs_usb(self) -> bool:
        for i in self.root.findall("devices/input"):
            bus = i.get("bus") or ("usb" if i.get("type") == "tablet" else "ps2")
            if bus == "usb":
                return True
        return False

    def _needs_virtio_serial(self) -> bool:
        return any(t.get("type") == "virtio" for t in self.root.findall("devices/channel/target"))

    def pci_controller(self, el, idx: int, model: str | None) -> None:
        c = self.ctx
        root_model = "pci-root" if self.ctx.family == "pc" else "pcie-root"
        if idx == 0:
            if model not in (None, root_model):
                raise unsupported(el, f"<controller type='pci' index='0' model='{model}'>",
                                  f"the {self.ctx.family} machine's root bus is {root_model}")
            self.common(el, {}, pci="ignore")
            c.use_subtree(el)  # <model name=...> / <target> of the root: nothing to pass
            return
        if model == "pcie-root-port" and self.ctx.family == "q35":
            dev = {"driver": "pcie-root-port", "id": f"pci.{idx}"}
            mname = c.child(el, "model")
            if mname is not None and c.attr(mname, "name", "pcie-root-port") != "pcie-root-port":
                raise unsupported(mname, f"<model name='{mname.get('name')}'>")
            tgt = c.child(el, "target")
            # chassis must be unique per root port: default to the index, as libvirt does
            dev["chassis"] = int(c.attr(tgt, "chassis", str(idx)), 0)
            dev["port"] = int(c.attr(tgt, "port", str(0x10 + (idx - 1) % 0xf0)), 0)
        elif model == "pci-bridge":
            dev = {"driver": "pci-bridge", "id": f"pci.{idx}"}
            mname = c.child(el, "model")
            if mname is not None and c.attr(mname, "name", "pci-bridge") != "pci-bridge":
                raise unsupported(mname, f"<model name='{mname.get('name')}'>")
            tgt = c.child(el, "target")
            dev["chassis_nr"] = int(c.attr(tgt, "chassisNr", str(idx)), 0)
        else:
            raise unsupported(el, f"<controller type='pci' model='{model}'>",
                              "only pcie-root-port (q35) and pci-bridge are")
        self.add_device(dev, self.common(el, dev), controller=True, pci_bus=True)

    def usb_controller(self, el, idx: int, model: str | None) -> None:
        c = self.ctx
        if model == "none":
            return
        model = model or ("qemu-xhci" if self.ctx.family == "q35" else "piix3-uhci")
        if model not in _USB_MODELS:
            raise unsupported(el, f"<controller type='usb' model='{model}'>")
        name = "usb" if idx == 0 else f"usb{idx}"
        dev = {"driver": _USB_MODELS[model], "id": name}
        master = c.child(el, "master")
        if master is not None:
            dev["id"] = f"{name}-{model}"
            dev["masterbus"] = f"{name}.0"
            dev["firstport"] = int(c.attr(master, "startport", "0"))
        ports = c.attr(el, "ports")
        if ports is not None:
            if "xhci" not in model:
                raise unsupported(el, f"<controller type='usb' model='{model}' ports='{ports}'>")
            dev["p2"] = dev["p3"] = int(ports)
        self.add_device(dev, self.common(el, dev), controller=True)
        if master is None:
            self.usb[idx] = name

    # --- disks --------------------------------------------------------------------------
    def interface(self, el) -> None:
        c = self.ctx
        itype = c.attr(el, "type")
        if itype not in ("user", "bridge", "network"):
            raise unsupported(el, f"<interface type='{itype}'>", "only types 'user', 'network' and 'bridge' are")
        i = len([x for x in self.out.pre if x == "-netdev"]) // 1
        netdev = f"hostnet{i}"
        if itype == "user":
            from virtctl.drivers.qemu.argv_net_user import netdev as user_netdev

            self.out.pre += ["-netdev", js(user_netdev(c, el, netdev, i))]
        else:  # a tap on a bridge (drivers/qemu/network: resolve.py filled source bridge and target dev)
            from virtctl.drivers.qemu.network.taps import netdev as tap_netdev

            src = c.child(el, "source")
            if src is not None:
                c.use(src, "network", "bridge", "portgroup")
            self.out.pre += ["-netdev", js(tap_netdev(el, netdev))]
        m = c.child(el, "model")
        # no <model>: libvirt's default NIC for x86 (rtl8139)
        model = c.attr(m, "type", "rtl8139")
        if model not in _NIC_MODELS:
            raise unsupported(m, f"<model type='{model}'>")
        dev = {"driver": _NIC_MODELS[model], "netdev": netdev, "id": f"net{i}"}
        mac = c.child(el, "mac")
        if mac is not None:
            dev["mac"] = c.attr(mac, "address")
        c.attr(c.child(el, "link"), "state")  # <link state='down'/>: set_link after QEMU is up (launch)
        tgt = c.child(el, "target")
        if tgt is not None:
            c.use(tgt, "dev", "managed")  # a tap name: meaningless for user networking
        self.add_device(dev, self.common(el, dev))

    # --- character devices ------------------------------------------------------------------
    def input(self, el) -> None:
        c = self.ctx
        itype = c.attr(el, "type")
        bus = c.attr(el, "bus") or ("usb" if itype == "tablet" else "ps2")
        if bus == "ps2" and itype in ("mouse", "keyboard"):
            self.common(el, {}, pci=False)  # the i8042 of pc/q35 is always there
            return
        driver = _INPUT.get((itype, bus))
        if driver is None:
            raise unsupported(el, f"<input type='{itype}' bus='{bus}'>")
        dev = {"driver": driver, "id": f"input{self.root.findall('devices/input').index(el)}"}
        if bus == "usb":
            self.usb_bus(el, dev)
            self.add_device(dev, self.common(el, dev, pci=False))
        else:
            self.add_device(dev, self.common(el, dev))

    def graphics(self, el) -> None:
        """VNC only.  No port and no listen address (or <listen type='socket'>): a
        unix socket (``paths.vnc_socket`` unless the listen names one), reachable
        only by the owner (0700 runtime directory).  autoport / port='-1': QEMU
        picks the first free display from 5900 on the listen address (default
        127.0.0.1) — the driver reads the port with query-vnc.  A fixed port P:
        display P-5900.  Passwords are refused (they would sit in argv or need a
        secret file the driver writes)."""
        c = self.ctx
        gtype = c.attr(el, "type")
        if gtype != "vnc":
            raise unsupported(el, f"<graphics type='{gtype}'>", "only VNC is")
        if el.get("passwd") is not None:
            raise unsupported(el, "<graphics passwd=...>", "VNC passwords are not supported by the qemu driver yet")
        port = c.attr(el, "port")
        autoport = c.flag(el, "autoport")
        address = c.attr(el, "listen")
        socket_path = None
        listen_none = False
        for lst in c.children(el, "listen"):
            ltype = c.attr(lst, "type", "address")
            if ltype == "address":
                address = c.attr(lst, "address") or address
            elif ltype == "socket":
                socket_path = c.attr(lst, "socket") or self.ctx.paths.vnc_socket
            elif ltype == "none":
                listen_none = True
            else:
                raise unsupported(lst, f"<listen type='{ltype}'>")
            break
        for lst in el.findall("listen")[1:]:
            raise unsupported(lst, "a second <listen>")
        if listen_none:
            display = "none"
        elif socket_path:
            display = self.ctx.files.vnc_unix(socket_path)
        elif autoport or port == "-1":
            display = f"{_vnc_host(address or '127.0.0.1')}:0,to=99"
        elif port is not None:
            p = int(port)
            if p < 5900:
                raise bad(el, f"VNC port {p} is below 5900")
            display = f"{_vnc_host(address or '127.0.0.1')}:{p - 5900}"
        elif address:
            display = f"{_vnc_host(address)}:0,to=99"
        else:
            display = self.ctx.files.vnc_unix(self.ctx.paths.vnc_socket)
        if self.out.post:
            raise unsupported(el, "a second <graphics>")
        self.out.post += ["-vnc", display]

    def video(self, el) -> None:
        c = self.ctx
        model = c.child(el, "model")
        mtype = c.attr(model, "type", "vga" if model is None else None)
        if mtype == "none":
            c.use(model, "primary")
            self.common(el, {}, pci=False)
            return
        if mtype not in _VIDEO:
            raise unsupported(model, f"<video><model type='{mtype}'>")
        index = self.root.findall("devices/video").index(el)
        primary = c.flag(model, "primary") or (index == 0)
        driver = _VIDEO[mtype][0 if primary else 1]
        if driver is None:
            raise unsupported(model, f"a secondary <video><model type='{mtype}'>")
        dev = {"driver": driver, "id": f"video{index}"}
        heads = c.attr(model, "heads")
        if heads is not None and mtype in ("virtio", "qxl"):
            dev["max_outputs"] = int(heads)
        elif heads not in (None, "1"):
            raise unsupported(model, f"<model type='{mtype}' heads='{heads}'>")
        vram, ram, vgamem = c.attr(model, "vram"), c.attr(model, "ram"), c.attr(model, "vgamem")
        if mtype == "qxl":
            if ram is not None:
                dev["ram_size"] = int(ram) * 1024
            if vram is not None:
                dev["vram_size"] = int(vram) * 1024
            if vgamem is not None:
                dev["vgamem_mb"] = int(vgamem) // 1024
        elif mtype in ("vga", "cirrus"):
            if vram is not None:
                dev["vgamem_mb"] = max(1, int(vram) // 1024)
        for name, v in (("ram", ram), ("vgamem", vgamem)):
            if v is not None and mtype != "qxl":
                raise unsupported(model, f"<model type='{mtype}' {name}='{v}'>")
        if vram is not None and mtype not in ("qxl", "vga", "cirrus"):
            raise unsupported(model, f"<model type='{mtype}' vram='{vram}'>")
        accel = c.child(model, "acceleration") if model is not None else None
        if accel is not None:
            for a in ("accel3d", "accel2d"):
                if c.flag(accel, a):
                    raise unsupported(accel, f"<acceleration {a}='yes'>")
        self.add_device(dev, self.common(el, dev))

    def audio(self, el) -> None:
        c = self.ctx
        atype = c.attr(el, "type")
        aid = c.attr(el, "id", "1")
        if atype != "none":
            raise unsupported(el, f"<audio type='{atype}'>", "only type 'none' is")
        self.out.pre += ["-audiodev", js({"id": f"audio{aid}", "driver": "none"})]

    # --- balloon, rng ------------------------------------------------------------------------
    def memballoon(self, el) -> None:
        c = self.ctx
        model = c.attr(el, "model")
        if model == "none":
            return
        if model != "virtio":
            raise unsupported(el, f"<memballoon model='{model}'>")
        dev = {"driver": "virtio-balloon-pci", "id": "balloon0"}
        for attr, prop in (("autodeflate", "deflate-on-oom"), ("freePageReporting", "free-page-reporting")):
            v = c.flag(el, attr)
            if v is not None:
                dev[prop] = v
        stats = c.child(el, "stats")
        if stats is not None:
            # <stats period='N'/>: the guest updates its memory figures every N s (0: never)
            period = int(c.attr(stats, "period", "0"))
            if period:
                dev["guest-stats-polling-interval"] = period
        self.add_device(dev, self.common(el, dev))

    def rng(self, el) -> None:
        c = self.ctx
        model = c.attr(el, "model")
        if model != "virtio":
            raise unsupported(el, f"<rng model='{model}'>")
        i = self.root.findall("devices/rng").index(el)
        backend = c.child(el, "backend")
        bmodel = c.attr(backend, "model")
        obj = {"id": f"objrng{i}"}
        if bmodel == "random":
            obj.update({"qom-type": "rng-random",
                        "filename": self.ctx.files.device((backend.text or "").strip() or "/dev/urandom")})
        elif bmodel == "builtin":
            obj["qom-type"] = "rng-builtin"
        else:
            raise unsupported(backend, f"<backend model='{bmodel}'>", "only random and builtin are")
        self.out.pre += ["-object", js(obj)]
        dev = {"driver": "virtio-rng-pci", "rng": obj["id"], "id": f"rng{i}"}
        rate = c.child(el, "rate")
        if rate is not None:
            dev["max-bytes"] = int(c.attr(rate, "bytes"))
            dev["period"] = int(c.attr(rate, "period", "1000"))
        self.add_device(dev, self.common(el, dev))



def _vnc_host(address: str) -> str:
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"
    return esc(address)
