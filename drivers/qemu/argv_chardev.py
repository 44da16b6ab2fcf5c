"""Serial ports, consoles and channels -> ``-chardev`` and devices (part of
the pure argv builder; a mixin of ``argv_devices._Devices``)."""
from __future__ import annotations

import os

from virtctl.drivers.qemu.argv_common import bad, opt, unsupported
from virtctl.xml import xmlapi


# --- runtime file names (the driver and the console command use these too) --------------
def serial_socket(paths, port: int) -> str:
    """The unix socket a ``<serial>``/``<console>`` of type pty (or default) becomes."""
    return os.path.join(paths.chardev_dir, f"serial{port}.sock")


def serial_log(paths, port: int) -> str:
    """Everything the guest wrote on that serial port (QEMU's chardev ``logfile=``)."""
    return os.path.join(paths.chardev_dir, f"serial{port}.log")


def channel_socket(paths, index: int) -> str:
    """The unix socket of the index-th ``<channel>`` when it names no path
    (the guest agent's socket for virt-install's ``org.qemu.guest_agent.0``)."""
    return os.path.join(paths.chardev_dir, f"channel{index}.sock")


class CharDeviceMixin:
    def chardev(self, el, cid: str, default_socket: str, default_log: str | None) -> str:
        """-chardev for a serial/console/channel; pty (and no type) become a unix
        socket that ``virtctl console`` connects to, logged to ``default_log``."""
        c = self.ctx
        ctype = c.attr(el, "type", "pty")
        src = c.child(el, "source")
        log = c.child(el, "log")
        logfile = c.attr(log, "file") if log is not None else None
        logappend = c.flag(log, "append") if log is not None else None
        files = c.files

        def log_arg() -> str | None:
            return files.output(logfile, append=logappend) if logfile else None

        if ctype == "pty":
            if src is not None:
                c.use(src, "path")  # a live XML's /dev/pts/N: we use a socket instead
            log_path = logfile or default_log
            arg = opt("socket", id=cid, **files.socket(default_socket, listen=True), server=True, wait=False,
                      logfile=files.output(log_path, append=logappend) if log_path else None,
                      logappend=logappend)
        elif ctype == "unix":
            mode = c.attr(src, "mode", "bind")
            path = c.attr(src, "path") or default_socket
            if mode not in ("bind", "connect"):
                raise bad(src, f"unknown mode '{mode}'")
            arg = opt("socket", id=cid, **files.socket(path, listen=(mode == "bind")), server=(mode == "bind"),
                      wait=False if mode == "bind" else None, logfile=log_arg(), logappend=logappend)
        elif ctype == "file":
            path = c.attr(src, "path")
            if not path:
                raise bad(el, "a file character device needs <source path=...>")
            append = c.flag(src, "append")
            arg = opt("file", id=cid, path=files.output(path, append=append), append=append, logfile=log_arg(),
                      logappend=logappend)
        elif ctype == "null":
            arg = opt("null", id=cid, logfile=log_arg(), logappend=logappend)
        else:
            raise unsupported(el, f"<{el.tag} type='{ctype}'>", "only pty (as a unix socket), unix, file and null are")
        if src is not None:
            for sub in src:
                raise unsupported(sub, f"<source><{sub.tag}>")
        self.out.pre += ["-chardev", arg]
        return cid

    def serial(self, el) -> None:
        c = self.ctx
        tgt = c.child(el, "target")
        port = int(c.attr(tgt, "port", str(len(self.serial_ports))))
        self._serial_device(el, tgt, port)

    def _serial_device(self, el, tgt, port: int) -> None:
        c = self.ctx
        if port in self.serial_ports:
            raise bad(el, f"serial port {port} is used twice")
        self.serial_ports.add(port)
        ttype = c.attr(tgt, "type", "isa-serial")
        model = c.child(tgt, "model")
        mname = c.attr(model, "name", "isa-serial" if ttype == "isa-serial" else "pci-serial")
        driver = {("isa-serial", "isa-serial"): "isa-serial", ("pci-serial", "pci-serial"): "pci-serial"}.get(
            (ttype, mname))
        if driver is None:
            raise unsupported(tgt if model is None else model, f"<target type='{ttype}'> (model '{mname}')")
        cid = self.chardev(el, f"charserial{port}", serial_socket(self.ctx.paths, port),
                           serial_log(self.ctx.paths, port))
        dev = {"driver": driver, "chardev": cid, "id": f"serial{port}"}
        if driver == "isa-serial":
            dev["index"] = port
        explicit = self.common(el, dev, pci=(driver == "pci-serial"))
        self.add_device(dev, explicit)

    def console(self, el) -> None:
        """libvirt's <console> of target type serial is serial port N itself: the same
        device when that <serial> exists, else it stands for it."""
        c = self.ctx
        c.use(el)
        tgt = c.child(el, "target")
        ttype = c.attr(tgt, "type", "serial")
        if ttype != "serial":
            raise unsupported(tgt, f"<console><target type='{ttype}'>", "only serial consoles are")
        port = int(c.attr(tgt, "port", "0"))
        if port in self.serial_ports:
            c.use_subtree(el)  # the duplicate of <serial> port N
            return
        fake = xmlapi.element("target", {"type": "isa-serial", "port": str(port)})
        self._serial_device(el, fake, port)

    def channel(self, el) -> None:
        c = self.ctx
        i = self.root.findall("devices/channel").index(el)
        tgt = c.child(el, "target")
        ttype = c.attr(tgt, "type")
        ctype = el.get("type", "pty")
        if ctype in ("spicevmc", "spiceport", "qemu-vdagent", "dbus"):
            raise unsupported(el, f"<channel type='{ctype}'>", "SPICE and vdagent channels need SPICE graphics")
        if ttype != "virtio":
            raise unsupported(tgt, f"<channel><target type='{ttype}'>", "only virtio channels are")
        name = c.attr(tgt, "name")
        c.attr(tgt, "state")  # live XML: agent connected or not
        cid = self.chardev(el, f"charchannel{i}", channel_socket(self.ctx.paths, i), None)
        dev = {"driver": "virtserialport", "chardev": cid, "id": f"channel{i}"}
        if name:
            dev["name"] = name
        ctrl = 0
        addr = el.find("address")
        if addr is not None and addr.get("type") == "virtio-serial":
            ctrl = int(c.attr(addr, "controller", "0"))
            if int(c.attr(addr, "bus", "0")) != 0:
                raise unsupported(addr, f"<address type='virtio-serial' bus='{addr.get('bus')}'>")
            port = c.attr(addr, "port")
            if port is not None:
                dev["nr"] = int(port)
            dev["_addr_kind"] = "virtio-serial"
        if ctrl not in self.vserial:
            raise bad(el, f"no <controller type='virtio-serial' index='{ctrl}'>")
        dev["bus"] = f"{self.vserial[ctrl]}.0"
        self.common(el, dev, pci=False)
        self.add_device(dev, False)

    # --- input, graphics, video, audio ----------------------------------------------------
