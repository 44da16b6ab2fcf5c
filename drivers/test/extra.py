"""Save/restore, managed save, console, display, input and statistics for the
test driver (a mixin of ``TestDomainDriver``), with the QEMU driver's error
codes.  Like libvirt's test driver, ``save`` writes a real file (the save
image header with the domain XML, no memory) that ``restore`` reads back.

The console is a socket pair whose far end echoes what it receives (the mock
guest has nothing to say), so ``virtctl console`` can be exercised too.
"""
from __future__ import annotations


from virtctl.api.types import DomainState
from virtctl.errors import InvalidArg, NotSupported, OperationFailed, OperationInvalid
from virtctl.lazy import lazy

savefile = lazy("virtctl.savefile")  # gzip: only for save and restore

# libvirt's test driver sends a PNG image as the screen; ours is a 2x1
# black/white 8-bit grayscale one (made by _png).
PNG_MIME = "image/png"


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 1, 8, 0, 0, 0, 0)  # 2x1, 8-bit grayscale
    rows = zlib.compress(b"\x00\x00\xff")  # filter byte 0, then black, white
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
# The guest clock of libvirt's test domains (627319920 s), which it also
# reports as the memory statistics' last update.
_TEST_CLOCK = 627319920


def _echo(sock) -> None:
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            sock.sendall(data)
    except OSError:
        pass
    finally:
        sock.close()


def _refuse_save_flags(command: str, function: str, paused: bool | None, bypass_cache: bool) -> None:
    """libvirt's test driver saves and restores with no flag (managed save takes them all)."""
    from virtctl.drivers.test.domains import refuse_flags

    refuse_flags(command, function, (bypass_cache, 0x1, "--bypass-cache"), (paused is False, 0x2, "--running"),
                 (paused is True, 0x4, "--paused"))


class TestExtraMixin:
    # --- save / restore ------------------------------------------------------------------
    def _save_state(self, uuid: str, paused: bool | None):
        d = self._get(uuid)
        self._require_active(d)
        running = d.state != DomainState.PAUSED if paused is None else not paused
        return d, running

    def save(self, uuid: str, path: str, *, paused: bool | None = None, bypass_cache: bool = False,
             progress=None) -> None:
        _refuse_save_flags("save", "testDomainSaveFlags", paused, bypass_cache)
        d, running = self._save_state(uuid, paused)
        data = savefile.Header("test", self.get_xml(uuid, security_info=True), running).to_bytes()
        savefile.write_file(path, data)
        n = len(data)
        if progress is not None:
            progress(n, n)
        self._shutoff_state(uuid, d, "saved")

    def restore(self, path: str, *, paused: bool | None = None, bypass_cache: bool = False,
                progress=None) -> str:
        from virtctl.drivers.test.domains import TestDomain, _reason

        _refuse_save_flags("restore", "testDomainRestoreFlags", paused, bypass_cache)
        header = savefile.load_header(path, "test")
        definition = self._prepare(header.xml, f"{path} (saved domain XML)")
        existing = self._check_unique(definition)
        if existing is not None:
            if existing.id is not None:
                raise OperationInvalid(
                    f"Requested operation is not valid: domain '{definition.name}' is already active")
            d = existing
        else:
            d = TestDomain(config=definition, persistent=False)
            self._add(d)
        self._start_state(d, "restored")
        if existing is not None:
            d.live = definition
        if not (header.running if paused is None else not paused):
            d.state, d.reason = DomainState.PAUSED, _reason(DomainState.PAUSED, "user")
        if progress is not None:
            progress(1, 1)
        return definition.uuid

    def managed_save(self, uuid: str, *, paused: bool | None = None, bypass_cache: bool = False,
                     progress=None) -> None:
        d, _running = self._save_state(uuid, paused)
        if not d.persistent:
            raise OperationInvalid("Requested operation is not valid: cannot do managed save for transient domain")
        d.managed_save = True
        if progress is not None:
            progress(1, 1)
        self._shutoff_state(uuid, d, "saved")

    def managed_save_remove(self, uuid: str) -> bool:
        d = self._get(uuid)
        had, d.managed_save = d.managed_save, False
        return had

    # --- console, display, input ----------------------------------------------------------
    def open_console(self, uuid: str, *, devname: str | None = None, force: bool = False,
                     safe: bool = False):
        d = self._get(uuid)
        self._require_active(d)
        if devname not in (None, "serial0", "console0"):
            raise InvalidArg(f"invalid argument: cannot find character device {devname}",
                             detail={"devname": devname})
        import socket
        import threading

        ours, theirs = socket.socketpair()
        threading.Thread(target=_echo, args=(theirs,), daemon=True).start()
        return ours

    def display(self, uuid: str, *, type: str | None = None) -> str:  # noqa: A002
        d = self._get(uuid)
        self._require_active(d)
        for g in self._live(d).root.findall("devices/graphics") if self._live(d) is not None \
                else d.config.root.findall("devices/graphics"):
            gtype = g.get("type")
            if type is not None and gtype != type:
                continue
            if gtype in ("vnc", "spice"):
                port = g.get("port")
                listen = g.get("listen") or "127.0.0.1"
                if listen in ("0.0.0.0", "::"):
                    listen = "localhost"
                if port and port != "-1":
                    return f"{gtype}://{listen}:{port}"
        raise OperationFailed("No graphical display found")

    def screenshot(self, uuid: str, path: str, *, screen: int = 0) -> str:
        d = self._get(uuid)
        self._require_active(d)
        if screen != 0:
            raise InvalidArg(f"invalid argument: no screen with ID {screen}")
        savefile.write_file(path, _png())
        return PNG_MIME

    def send_key(self, uuid: str, keycodes: list[int], *, codeset: str = "linux",
                 holdtime: int = 0) -> None:
        self._require_active(self._get(uuid))

    # --- statistics (libvirt's test driver: testDomainMemoryStats, testDomainBlockStats) --------
    def memory_stats(self, uuid: str) -> dict[str, int]:
        """Figures made from the current memory, as libvirt's test driver
        makes them; none at all without a balloon."""
        from virtctl.xml import memballoon

        d = self._get(uuid)
        self._require_active(d)
        cur_def = self._live(d) or d.current
        if memballoon.balloon(cur_def) is None:
            return {}
        cur = cur_def.memory_kib
        return {"actual": cur, "swap_in": 0, "swap_out": 0, "major_fault": 0, "minor_fault": 0,
                "unused": cur // 2, "available": cur, "usable": cur // 2,
                "last_update": _TEST_CLOCK, "disk_caches": cur // 8, "hugetlb_pgalloc": 0,
                "hugetlb_pgfail": 0, "rss": cur // 2}

    def set_memory_stats_period(self, uuid: str, period: int, *, live: bool, config: bool) -> None:
        """libvirt's test driver changes one definition: --live and --config
        together are refused, as it refuses them."""
        from virtctl.xml import memballoon

        d = self._get(uuid)
        if live and config:
            raise InvalidArg("Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' "
                             "are mutually exclusive")
        if not live and not config:
            live = d.id is not None
        if live:
            self._require_active(d)
        elif not d.persistent:
            raise OperationInvalid("Requested operation is not valid: transient domains do not have "
                                   "any persistent config")
        target = self._live(d) if live else d.config
        if memballoon.balloon(target) is None:
            raise OperationInvalid("internal error: No memory balloon device configured, "
                                   "can not set the collection period")
        memballoon.set_stats_period(target, period)

    def block_stats(self, uuid: str, device: str | None = None) -> list[dict]:
        """libvirt's test driver: one disk at a time, figures from the clock
        (microseconds since the epoch / 10, 20, 30, 40; errors from seconds / 2)."""
        import time

        if not device:
            raise NotSupported("Operation not supported: summary statistics are not supported yet",
                               detail={"driver": "test", "feature": "domblkstat without DEVICE"})
        d = self._get(uuid)
        self._require_active(d)
        for el in d.current.root.findall("devices/disk"):
            tgt, src = el.find("target"), el.find("source")
            dev = tgt.get("dev") if tgt is not None else None
            path = (src.get("file") or src.get("dev")) if src is not None else None
            if device in (dev, path):
                break
        else:
            raise InvalidArg(f"invalid argument: invalid path: {device}")
        base = time.time_ns() // 1000
        return [{"device": dev, "rd_req": base // 10, "rd_bytes": base // 20, "wr_req": base // 30,
                 "wr_bytes": base // 40, "errs": base // 2_000_000}]

    def set_interface_link(self, uuid: str, interface: str, state: str, *, config: bool) -> None:
        """libvirt's test driver has no virDomainUpdateDeviceFlags (what virsh's domif-setlink calls)."""
        from virtctl.errors import not_supported

        self._get(uuid)
        raise not_supported("test", "virDomainUpdateDeviceFlags")
    def interface_addresses(self, uuid: str, source: str = "lease") -> list[dict]:
        """libvirt's test driver, whatever the source: a network interface
        has 192.168.122.(3 + 20 * (id - 1) + i)/24, any other 192.168.0.(1 + i)/24
        (i: the interface's index)."""
        d = self._get(uuid)
        self._require_active(d)
        out = []
        cur = self._live(d) or d.config
        for i, el in enumerate(cur.root.findall("devices/interface")):
            tgt, mac = el.find("target"), el.find("mac")
            if el.get("type") == "network":
                addr = f"192.168.122.{3 + 20 * (d.id - 1) + i}"
            else:
                addr = f"192.168.0.{1 + i}"
            out.append({"name": tgt.get("dev") if tgt is not None else None,
                        "hwaddr": mac.get("address") if mac is not None else None,
                        "addrs": [{"type": "ipv4", "addr": addr, "prefix": 24}]})
        return out

    def interface_stats(self, uuid: str, device: str) -> dict:
        """libvirt's test driver: figures from the clock (microseconds since
        the epoch / 10, 100, 10^6, 2*10^6; / 20, 110, 3*10^6, 4*10^6)."""
        import time

        d = self._get(uuid)
        self._require_active(d)
        cur = self._live(d) or d.config
        for el in cur.root.findall("devices/interface"):
            tgt, mac = el.find("target"), el.find("mac")
            if device in ((tgt.get("dev") if tgt is not None else None),
                          (mac.get("address", "").lower() if mac is not None else None)):
                break
        else:
            raise InvalidArg(f"invalid argument: '{device}' is not a known interface", detail={"device": device})
        base = time.time_ns() // 1000
        return {"rx_bytes": base // 10, "rx_packets": base // 100, "rx_errs": base // 1_000_000,
                "rx_drop": base // 2_000_000, "tx_bytes": base // 20, "tx_packets": base // 110,
                "tx_errs": base // 3_000_000, "tx_drop": base // 4_000_000}
