"""Domain: an opaque handle on one domain, keyed by UUID.

Every method re-reads the domain from the driver (the handle is never a
cache of state, except ``snapshot``, the record seen when the handle was
made).  Options are keyword-only with defaults, so a new option is a new
keyword, never a new method.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from virtctl.api.types import DomainRecord, VcpuCount
from virtctl.errors import InvalidArg

if TYPE_CHECKING:
    from virtctl.api.connection import Connection

# Largest memory size libvirt accepts, in KiB (unsigned long long bytes / 1024).
MAX_MEMORY_KIB = (2**64 - 1) // 1024

# virsh's shutdown/reboot modes, in libvirt's flag order (acpi = 1, agent = 2, ...)
SHUTDOWN_MODES = ("acpi", "agent", "initctl", "signal", "paravirt")
# guestinfo's information types, virsh's option order (libvirt's flag order)
GUEST_INFO_TYPES = ("users", "os", "timezone", "hostname", "filesystem", "disks", "interfaces")


def shutdown_modes(mode, *, serial_comma: bool = False) -> tuple[str, ...] | None:
    """``mode`` (a name, a comma list "acpi,agent" or a sequence of names) as
    the one form drivers get: None, or a tuple of known names, in order, each once.
    (virsh's message for an unknown one has a serial comma for shutdown only.)"""
    if mode is None:
        return None
    parts = mode.split(",") if isinstance(mode, str) else list(mode)
    out: list[str] = []
    for m in parts:
        if not isinstance(m, str) or m not in SHUTDOWN_MODES:
            raise InvalidArg(f"Unknown mode {m} value, expecting 'acpi', 'agent', 'initctl', "
                             f"'signal'{',' if serial_comma else ''} or 'paravirt'", detail={"mode": m})
        if m not in out:
            out.append(m)
    return tuple(out) or None


class Domain:
    __slots__ = ("_conn", "_uuid", "snapshot")

    def __init__(self, conn: "Connection", record: DomainRecord):
        self._conn = conn
        self._uuid = record.uuid
        self.snapshot = record  # as seen when this handle was made

    def __repr__(self) -> str:
        return f"<Domain {self.snapshot.name} {self._uuid}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Domain) and other._uuid == self._uuid

    def __hash__(self) -> int:
        return hash(self._uuid)

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str:
        return self.snapshot.name

    @property
    def _drv(self):
        return self._conn._dom_driver

    def _write(self, what: str) -> None:
        self._conn._check_writable(what)

    # --- reading ----------------------------------------------------------------
    def info(self) -> DomainRecord:
        """A fresh record of the domain (state, memory, ...)."""
        self.snapshot = self._drv.get(self._uuid)
        return self.snapshot

    def xml(self, *, inactive: bool = False, security_info: bool = False, update_cpu: bool = False,
            migratable: bool = False) -> str:
        if security_info:
            self._write("reading security-sensitive XML")
        # (the two flags go to drivers only when set, so a driver that ignores them need not name them)
        flags = {k: True for k, v in (("update_cpu", update_cpu), ("migratable", migratable)) if v}
        return self._drv.get_xml(self._uuid, inactive=inactive, security_info=security_info, **flags)

    def vcpu_count(self, *, guest: bool = False) -> VcpuCount:
        """The vCPU counts; with ``guest``, as the guest sees them (only
        ``live_current`` is set), which needs a guest agent."""
        if guest:
            return self._drv.guest_vcpu_count(self._uuid)
        return self._drv.vcpu_count(self._uuid)

    # --- definition -------------------------------------------------------------
    def undefine(self, *, managed_save: bool = False, snapshots_metadata: bool = False,
                 nvram: bool = False) -> None:
        self._write("undefining a domain")
        self._drv.undefine(self._uuid, managed_save=managed_save,
                           snapshots_metadata=snapshots_metadata, nvram=nvram)

    def rename(self, new_name: str) -> None:
        self._write("renaming a domain")
        self.snapshot = self._drv.rename(self._uuid, new_name)

    def set_autostart(self, enabled: bool = True) -> None:
        self._write("changing autostart")
        self._drv.set_autostart(self._uuid, enabled=enabled)

    # --- lifecycle --------------------------------------------------------------
    def start(self, *, paused: bool = False, autodestroy: bool = False,
              bypass_cache: bool = False, force_boot: bool = False) -> None:
        self._write("starting a domain")
        self._drv.start(self._uuid, paused=paused, autodestroy=autodestroy,
                        bypass_cache=bypass_cache, force_boot=force_boot)

    def shutdown(self, *, mode: str | tuple[str, ...] | None = None, wait: bool = False,
                 timeout: float | None = None) -> None:
        """Ask the guest to power off (ACPI by default).  ``mode``: one of
        SHUTDOWN_MODES, a comma list of them or a sequence (the hypervisor may
        use any of them, as virsh's ``--mode acpi,agent``); drivers get a
        tuple or None.

        Returns at once, unless ``wait`` (or a ``timeout`` in seconds) is given:
        then it returns when the domain is shut off, or raises
        OPERATION_TIMEOUT when ``timeout`` passes first."""
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 \
                    or timeout != timeout or timeout == float("inf"):
                raise InvalidArg(f"invalid timeout {timeout!r}: must be a positive number of seconds")
        mode = shutdown_modes(mode, serial_comma=True)
        self._write("shutting down a domain")
        self._drv.shutdown(self._uuid, mode=mode, wait=wait, timeout=timeout)

    def reboot(self, *, mode: str | tuple[str, ...] | None = None) -> None:
        """Ask the guest to reboot; ``mode`` as for ``shutdown``."""
        mode = shutdown_modes(mode)
        self._write("rebooting a domain")
        self._drv.reboot(self._uuid, mode=mode)

    def reset(self) -> None:
        self._write("resetting a domain")
        self._drv.reset(self._uuid)

    def destroy(self, *, graceful: bool = False) -> None:
        """Power off at once (like pulling the plug); definition and disks are kept."""
        self._write("destroying a domain")
        self._drv.destroy(self._uuid, graceful=graceful)

    def suspend(self) -> None:
        self._write("suspending a domain")
        self._drv.suspend(self._uuid)

    def resume(self) -> None:
        self._write("resuming a domain")
        self._drv.resume(self._uuid)

    # --- resources ----------------------------------------------------------------
    @staticmethod
    def _check_kib(kib: int, what: str) -> None:
        if not isinstance(kib, int) or isinstance(kib, bool):
            raise InvalidArg(f"{what} must be an integer number of KiB")
        if kib <= 0 or kib > MAX_MEMORY_KIB:
            raise InvalidArg(f"invalid {what} {kib} KiB: must be between 1 and {MAX_MEMORY_KIB}")

    def set_memory(self, kib: int, *, live: bool = False, config: bool = False) -> None:
        """Change the current (balloon) memory.  Neither flag: the current state."""
        self._check_kib(kib, "memory size")
        self._write("changing memory")
        self._drv.set_memory(self._uuid, kib, live=live, config=config)

    def set_max_memory(self, kib: int, *, live: bool = False, config: bool = False) -> None:
        self._check_kib(kib, "maximum memory size")
        self._write("changing maximum memory")
        self._drv.set_max_memory(self._uuid, kib, live=live, config=config)

    def set_vcpus(self, count: int, *, live: bool = False, config: bool = False,
                  maximum: bool = False, guest: bool = False, hotpluggable: bool = False) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidArg(f"invalid vCPU count {count!r}: must be a positive integer")
        self._write("changing vCPUs")
        self._drv.set_vcpus(self._uuid, count, live=live, config=config, maximum=maximum,
                            guest=guest, hotpluggable=hotpluggable)

    # --- interface link state (domif-getlink / domif-setlink) -----------------------
    def interface_link(self, interface: str, *, config: bool = False) -> str:
        """'up' or 'down': the ``<link state>`` of the interface named by MAC or
        target dev, in the live definition (``config``: the persistent one)."""
        from virtctl.errors import InvalidArg
        from virtctl.xml import iflink, xmlapi

        found = iflink.find(xmlapi.parse(self.xml(inactive=config)), interface)
        if found is None:
            raise InvalidArg(iflink.not_found_get(interface), detail={"interface": interface})
        return iflink.state_of(found[1])

    def set_interface_link(self, interface: str, state: str, *, config: bool = False) -> None:
        """Set the link of the interface named by MAC or target dev up or down:
        live (the guest sees the carrier change) unless ``config`` or the
        domain is not running, where the persistent definition changes."""
        from virtctl.errors import InvalidArg

        if state not in ("up", "down"):
            raise InvalidArg(f"invalid link state '{state}'")
        self._write("changing an interface's link state")
        self.interface_xml(interface, state, config=config)  # virsh's own look-up first, in its words
        self._drv.set_interface_link(self._uuid, interface, state, config=config)

    def interface_xml(self, interface: str, state: str, *, config: bool = False) -> str:
        """The ``<interface>`` element with ``<link state>`` set, as virsh's
        ``domif-setlink --print-xml`` prints it."""
        from lxml import etree

        from virtctl.errors import InvalidArg
        from virtctl.xml import iflink

        # lxml's own parser: the whitespace stays, as in virsh's output
        found = iflink.find(etree.fromstring(self.xml(inactive=config).encode()), interface)
        if found is None:
            raise InvalidArg(f"interface '{interface}' not found", detail={"interface": interface})
        el = found[1]
        iflink.set_state(el, state)
        return etree.tostring(el, with_tail=False, encoding="unicode")

    # --- memory state (save/restore/managed save) ---------------------------------
    @staticmethod
    def _run_state(running: bool, paused: bool) -> bool | None:
        if running and paused:
            raise InvalidArg("running and paused are mutually exclusive")
        return True if paused else (False if running else None)

    def save(self, path: str, *, running: bool = False, paused: bool = False,
             bypass_cache: bool = False, progress=None) -> None:
        """Save the memory state to ``path`` and stop the domain (reason ``saved``).
        ``progress(done_bytes, total_bytes)`` is called while it runs."""
        state = self._run_state(running, paused)
        self._write("saving a domain")
        self._drv.save(self._uuid, path, paused=state, bypass_cache=bypass_cache, progress=progress)

    def managed_save(self, *, running: bool = False, paused: bool = False, bypass_cache: bool = False,
                     progress=None) -> None:
        """Save the memory state where the next ``start`` resumes it from."""
        state = self._run_state(running, paused)
        self._write("saving a domain")
        self._drv.managed_save(self._uuid, paused=state, bypass_cache=bypass_cache, progress=progress)

    def managed_save_remove(self) -> bool:
        """Discard the managed save image; False when there was none."""
        self._write("removing a managed save image")
        return self._drv.managed_save_remove(self._uuid)

    # --- console, display, input, monitor ---------------------------------------------
    def open_console(self, *, devname: str | None = None, force: bool = False, safe: bool = False):
        """A connected stream socket on the domain's serial console."""
        self._write("opening a console")
        return self._drv.open_console(self._uuid, devname=devname, force=force, safe=safe)

    def display(self, *, type: str | None = None) -> str:  # noqa: A002 - virsh's name
        return self._drv.display(self._uuid, type=type)

    def screenshot(self, path: str, *, screen: int = 0) -> str:
        """Write the screen to ``path``; returns the MIME type of what was written."""
        if not isinstance(screen, int) or isinstance(screen, bool) or screen < 0:
            raise InvalidArg(f"invalid screen {screen!r}")
        self._write("taking a screenshot")
        return self._drv.screenshot(self._uuid, path, screen=screen)

    def send_key(self, keycodes: list[int], *, codeset: str = "linux", holdtime: int = 0) -> None:
        from virtctl import keycodes as kc

        kc.check(codeset, keycodes, holdtime)
        self._write("sending keys")
        self._drv.send_key(self._uuid, list(keycodes), codeset=codeset, holdtime=holdtime)

    def monitor_command(self, command: str, *, hmp: bool = False, fds: list[int] | None = None) -> str:
        """Send a QMP JSON object (or HMP text); ``fds`` are passed along (SCM_RIGHTS)."""
        self._write("sending monitor commands")
        return self._drv.monitor_command(self._uuid, command, hmp=hmp, fds=list(fds) if fds else None)

    # --- statistics -------------------------------------------------------------------
    def memory_stats(self) -> dict[str, int]:
        """virsh dommemstat's tags (``actual``, ``rss``, ...) -> KiB (or counts)."""
        return self._drv.memory_stats(self._uuid)

    def set_memory_stats_period(self, period: int, *, live: bool = False, config: bool = False) -> None:
        """How often (seconds) the balloon collects guest statistics; 0 stops it."""
        if not isinstance(period, int) or isinstance(period, bool) or not 0 <= period <= 2**31 - 1:
            raise InvalidArg(f"Invalid collection period value '{period}'")
        self._write("changing the memory statistics period")
        self._drv.set_memory_stats_period(self._uuid, period, live=live, config=config)

    def block_stats(self, device: str | None = None) -> list[dict]:
        """One dict per disk (``device`` = target name, then the figures the
        driver reports: ``rd_req``, ``rd_bytes``, ...); None: every disk."""
        return self._drv.block_stats(self._uuid, device or None)

    def interface_addresses(self, source: str = "lease") -> list[dict]:
        """The interfaces' addresses (domifaddr): ``{"name", "hwaddr", "addrs":
        [{"type", "addr", "prefix"}]}`` each; ``source`` lease, arp or agent."""
        return self._drv.interface_addresses(self._uuid, source)

    def interface_stats(self, device: str) -> dict:
        """One interface's counters as the guest sees them (domifstat)."""
        return self._drv.interface_stats(self._uuid, device)
    # --- monitoring (domstats, cpu-stats, vcpuinfo, domblkerror, domcontrol, domtime, jobs) ------
    def cpu_stats(self) -> dict:
        """``{"cpus": [{"cpu_time": ns, "vcpu_time": ns}, ...] per host CPU,
        "total": {"cpu_time": ns, "user_time": ns, "system_time": ns}}``."""
        return self._drv.cpu_stats(self._uuid)

    def vcpu_info(self) -> dict:
        """``{"host_cpus": N, "vcpus": [{"vcpu", "cpu", "state", "cpu_time_ns",
        "affinity": [host CPU numbers]}]}``; an inactive domain's have
        ``cpu``/``state``/``cpu_time_ns`` None."""
        return self._drv.vcpu_info(self._uuid)

    def disk_errors(self) -> list[tuple[str, str]]:
        """(disk target, libvirt's error text) of the disks with an I/O error."""
        return self._drv.disk_errors(self._uuid)

    def control_info(self) -> dict:
        """``{"state": "ok"|"job"|"occupied"|"error", "details": str, "state_time_ms": int}``."""
        return self._drv.control_info(self._uuid)

    def get_time(self) -> tuple[int, int]:
        """The guest clock: (seconds since the epoch, nanoseconds)."""
        return self._drv.get_time(self._uuid)

    def set_time(self, seconds: int | None, *, sync: bool = False) -> None:
        self._write("setting the guest time")
        self._drv.set_time(self._uuid, seconds, sync=sync)

    def job_info(self, *, completed: bool = False, keep_completed: bool = False) -> dict:
        """``{"type": "none"|"unbounded"|"bounded"|"completed"|"failed"|"cancelled",
        "operation", "time_elapsed_ms", "data_total", "data_processed", "data_remaining"}``."""
        return self._drv.job_info(self._uuid, completed=completed, keep_completed=keep_completed)

    def abort_job(self, *, postcopy: bool = False) -> None:
        self._write("aborting a job")
        self._drv.abort_job(self._uuid, postcopy=postcopy)

    def native_argv(self) -> list[str]:
        """The command line ``start`` would run for this domain's definition."""
        return self._drv.native_argv(uuid=self._uuid)

    # --- block devices and block jobs (commands/blockjob.py) -------------------------
    # ``disk``: a target name (vda) or a source path; sizes in bytes, bandwidth in bytes/s
    @staticmethod
    def _check_disk(disk) -> str:
        if not isinstance(disk, str) or not disk:
            raise InvalidArg("a disk (target name or source path) is required")
        return disk

    @staticmethod
    def _check_bytes(n, what: str) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n >= 2**64:
            raise InvalidArg(f"invalid {what} {n!r}: must be a non-negative number of bytes")
        return n

    def block_info(self, disk: str) -> dict:
        """``{"capacity", "allocation", "physical"}`` in bytes, as libvirt reports them."""
        return self._drv.block_info(self._uuid, self._check_disk(disk))

    def block_resize(self, disk: str, size: int) -> None:
        """Grow the disk of a running domain to ``size`` bytes (the guest sees it)."""
        self._check_bytes(size, "size")
        self._write("resizing a block device")
        self._drv.block_resize(self._uuid, self._check_disk(disk), size)

    def block_commit(self, disk: str, *, base: str | None = None, top: str | None = None,
                     active: bool = False, shallow: bool = False, delete: bool = False,
                     keep_relative: bool = False, bandwidth: int = 0) -> None:
        """Start merging ``top`` (default: the active layer, which needs ``active``)
        down into ``base`` (default: the bottom of the chain; ``shallow``: top's backing file)."""
        self._check_bytes(bandwidth, "bandwidth")
        self._write("committing a block device")
        self._drv.block_commit(self._uuid, self._check_disk(disk), base=base or None, top=top or None,
                               active=active, shallow=shallow, delete=delete, keep_relative=keep_relative,
                               bandwidth=bandwidth)

    def block_pull(self, disk: str, *, base: str | None = None, keep_relative: bool = False,
                   bandwidth: int = 0) -> None:
        """Start pulling the backing chain (down to ``base``) into the active layer."""
        self._check_bytes(bandwidth, "bandwidth")
        self._write("pulling a block device")
        self._drv.block_pull(self._uuid, self._check_disk(disk), base=base or None,
                             keep_relative=keep_relative, bandwidth=bandwidth)

    def block_copy(self, disk: str, dest: str, *, format: str | None = None,  # noqa: A002 - virsh's name
                   blockdev: bool = False, shallow: bool = False, reuse_external: bool = False,
                   bandwidth: int = 0, transient_job: bool = False, granularity: int = 0, buf_size: int = 0,
                   synchronous_writes: bool = False) -> None:
        """Start mirroring the disk to the file (or block device) ``dest``."""
        self._check_bytes(bandwidth, "bandwidth")
        if not isinstance(dest, str) or not dest:
            raise InvalidArg("blockcopy needs a destination")
        self._write("copying a block device")
        self._drv.block_copy(self._uuid, self._check_disk(disk), dest, format=format or None,
                             blockdev=blockdev, shallow=shallow, reuse_external=reuse_external,
                             bandwidth=bandwidth, transient_job=transient_job, granularity=granularity,
                             buf_size=buf_size, synchronous_writes=synchronous_writes)

    def block_job_info(self, disk: str) -> dict | None:
        """The disk's block job (type, bandwidth, cur, end, ready, ...), None if it has none."""
        return self._drv.block_job_info(self._uuid, self._check_disk(disk))

    def block_job_abort(self, disk: str, *, pivot: bool = False, async_: bool = False) -> None:
        """End the disk's job: cancel it, or with ``pivot`` switch to its new image."""
        self._write("aborting a block job")
        self._drv.block_job_abort(self._uuid, self._check_disk(disk), pivot=pivot, async_=async_)

    def block_job_set_speed(self, disk: str, bandwidth: int) -> None:
        self._check_bytes(bandwidth, "bandwidth")
        self._write("changing a block job's bandwidth")
        self._drv.block_job_set_speed(self._uuid, self._check_disk(disk), bandwidth)

    # --- snapshots (virtctl.api.snapshot) ------------------------------------------
    def snapshots(self, **filters) -> list:
        """This domain's snapshots (DomainSnapshot handles, by name unless
        ``topological``) matching every filter: roots, leaves, no_leaves,
        current (the current one's children), from_ (a snapshot's children),
        descendants (with from_/current: all of them), internal, external,
        disk_only, active, inactive, metadata, no_metadata."""
        from virtctl.api.snapshot import select

        return select(self, **filters)

    def snapshot_lookup(self, name: str):
        """The snapshot ``name`` of this domain (NO_DOMAIN_SNAPSHOT if none)."""
        from virtctl.api.snapshot import DomainSnapshot

        return DomainSnapshot(self, self._conn._driver.snapshots.get(self._uuid, name))

    def current_snapshot(self):
        """The current snapshot, or None."""
        from virtctl.api.snapshot import DomainSnapshot

        for rec in self._conn._driver.snapshots.list(self._uuid):
            if rec.current:
                return DomainSnapshot(self, rec)
        return None

    def create_snapshot(self, xml: str, *, source: str = "<input>", **flags):
        """Create a snapshot from a <domainsnapshot> document (validated against
        libvirt's schema); ``flags``: see SnapshotDriver.create.  Returns its handle."""
        self._write("snapshot-create")
        name = self._conn._driver.snapshots.create(self._uuid, xml, source=source, **flags)
        if flags.get("no_metadata"):
            # made without metadata: nothing to look up (libvirt's handle names it alone)
            from virtctl.api.snapshot import UnlistedSnapshot

            return UnlistedSnapshot(self, name)
        return self.snapshot_lookup(name)

    # --- hotplug (virtctl.commands.domain_hotplug) ------------------------------------
    # ``live``/``config`` both False: the current state (live if running, else config).
    def attach_device(self, xml: str, *, live: bool = False, config: bool = False,
                      source: str = "<device>") -> dict:
        """Add a device (a <disk>, <interface>, ... document); ``{"alias": ...}``."""
        self._write("attaching a device")
        return self._drv.attach_device(self._uuid, xml, live=live, config=config, source=source)

    def detach_device(self, xml: str, *, live: bool = False, config: bool = False,
                      source: str = "<device>") -> dict:
        """Remove the device the XML designates (a disk by target, an interface by MAC, ...)."""
        self._write("detaching a device")
        return self._drv.detach_device(self._uuid, xml, live=live, config=config, source=source)

    def detach_device_alias(self, alias: str, *, live: bool = False, config: bool = False) -> dict:
        if not isinstance(alias, str) or not alias:
            raise InvalidArg("a device alias must be a non-empty string")
        self._write("detaching a device")
        return self._drv.detach_device_alias(self._uuid, alias, live=live, config=config)

    def update_device(self, xml: str, *, live: bool = False, config: bool = False, force: bool = False,
                      source: str = "<device>") -> dict:
        """Change a device in place: a cdrom/floppy's media, an interface's settings."""
        self._write("updating a device")
        return self._drv.update_device(self._uuid, xml, live=live, config=config, force=force, source=source)
    # --- metadata and small operations (desc, metadata, inject-nmi, dompm*, send-process-signal)
    def metadata(self, kind: str, *, uri: str | None = None, live: bool = False, config: bool = False) -> str:
        """The title, description or custom element (namespace ``uri``) of the
        live (``live``), persistent (``config``) or current definition;
        OPERATION_FAILED (detail reason "no metadata") when there is none."""
        from virtctl.xml.metadata import TYPES

        if kind not in TYPES:
            raise InvalidArg(f"unknown metadata type '{kind}'")
        return self._drv.get_metadata(self._uuid, kind, uri=uri, live=live, config=config)

    def set_metadata(self, kind: str, value: str | None, *, key: str | None = None, uri: str | None = None,
                     live: bool = False, config: bool = False) -> None:
        """Set (``value`` None or "": remove) the title, description or custom
        element of namespace ``uri`` under prefix ``key``."""
        from virtctl.xml.metadata import TYPES

        if kind not in TYPES:
            raise InvalidArg(f"unknown metadata type '{kind}'")
        self._write("changing metadata")
        self._drv.set_metadata(self._uuid, kind, value, key=key, uri=uri, live=live, config=config)

    def inject_nmi(self) -> None:
        self._write("injecting an NMI")
        self._drv.inject_nmi(self._uuid)

    def pm_suspend(self, target: str, *, duration: int = 0) -> None:
        """Suspend the guest's power state: ``target`` mem, disk or hybrid."""
        if target not in ("mem", "disk", "hybrid"):
            raise InvalidArg("Invalid target", detail={"target": target})
        self._write("suspending a domain")
        self._drv.pm_suspend(self._uuid, target, duration=duration)

    def pm_wakeup(self) -> None:
        self._write("waking up a domain")
        self._drv.pm_wakeup(self._uuid)

    def send_process_signal(self, pid: int, signum: int) -> None:
        self._write("sending a signal")
        self._drv.send_process_signal(self._uuid, pid, signum)

    # --- the guest agent (virtctl.commands.domain_agent) ------------------------------
    # Each talks to the guest agent (qemu-ga): libvirt refuses them all on a read-only
    # connection, and so does virtctl.  The drivers' contract: drivers/base.py.
    def agent_command(self, command: str, *, timeout: int | None = None) -> str:
        """Send one agent command (a JSON object as text); the ``return`` value of
        its answer as compact JSON text.  ``timeout`` (seconds): None the domain's
        setting (guest-agent-timeout), -2 wait forever, 0 do not wait, N > 0."""
        if not isinstance(command, str):
            raise InvalidArg("invalid argument: cmd must not be NULL")
        if timeout is not None:
            check_agent_timeout(timeout)
        self._write("sending guest agent commands")
        return self._drv.agent_command(self._uuid, command, timeout=timeout)

    def set_agent_timeout(self, timeout: int) -> None:
        """How long every later agent call on this domain waits: -2 forever,
        -1 libvirt's default (5 s), 0 not at all, N > 0 seconds."""
        check_agent_timeout(timeout)
        self._write("changing the guest agent timeout")
        self._drv.set_agent_timeout(self._uuid, timeout)

    def guest_info(self, types=()) -> list[tuple[str, object]]:
        """The guest's view (guestinfo): libvirt's typed parameters, in its order
        (``user.count``, ``os.id``, ``hostname``, ``fs.0.mountpoint``, ...);
        ``types``: some of GUEST_INFO_TYPES (none: all the agent answers)."""
        if isinstance(types, str):
            types = (types,)
        for t in types:
            if t not in GUEST_INFO_TYPES:
                raise InvalidArg(f"unknown guest information type '{t}', expecting one of "
                                 + ", ".join(GUEST_INFO_TYPES), detail={"type": t})
        self._write("querying the guest agent")
        return self._drv.guest_info(self._uuid, tuple(t for t in GUEST_INFO_TYPES if t in types))

    def fs_info(self) -> list[dict]:
        """The guest's mounted filesystems: ``{"mountpoint", "name", "fstype",
        "devaliases": [disk target, ...]}`` each."""
        self._write("querying the guest agent")
        return self._drv.fs_info(self._uuid)

    @staticmethod
    def _mountpoints(mountpoints) -> tuple[str, ...]:
        if isinstance(mountpoints, str):
            mountpoints = (mountpoints,)
        mountpoints = tuple(mountpoints or ())
        for m in mountpoints:
            if not isinstance(m, str):
                raise InvalidArg(f"invalid mount point {m!r}: must be a string")
        return mountpoints

    def fs_freeze(self, mountpoints=()) -> int:
        """Freeze the guest's filesystems (those mounted at ``mountpoints``;
        none: all); the number frozen (already frozen ones do not count)."""
        mountpoints = self._mountpoints(mountpoints)
        self._write("freezing filesystems")
        return self._drv.fs_freeze(self._uuid, mountpoints)

    def fs_thaw(self, mountpoints=()) -> int:
        """Thaw what fs_freeze froze; the number thawed."""
        mountpoints = self._mountpoints(mountpoints)
        self._write("thawing filesystems")
        return self._drv.fs_thaw(self._uuid, mountpoints)

    def fs_trim(self, mountpoint: str | None = None, *, minimum: int = 0) -> None:
        """fstrim in the guest (one mount point, or all); ``minimum``: bytes, the
        smallest free range worth discarding (a hint)."""
        if mountpoint is not None and not isinstance(mountpoint, str):
            raise InvalidArg(f"invalid mount point {mountpoint!r}: must be a string")
        if isinstance(minimum, bool) or not isinstance(minimum, int) or not 0 <= minimum < 2**64:
            raise InvalidArg(f"invalid minimum {minimum!r}: must be a number of bytes (0 to 2^64-1)")
        self._write("trimming filesystems")
        self._drv.fs_trim(self._uuid, mountpoint, minimum)

    def guest_hostname(self, *, source: str | None = None) -> str:
        """The guest's hostname; ``source`` None (the driver's choice), "agent"
        (the guest agent) or "lease" (the DHCP leases of its networks)."""
        if source not in HOSTNAME_SOURCES:
            raise InvalidArg(f"Unknown data source '{source}'", detail={"source": source})
        self._write("querying the guest's hostname")
        return self._drv.guest_hostname(self._uuid, source)

    def set_user_password(self, user: str, password: str, *, encrypted: bool = False) -> None:
        """Set ``user``'s password in the guest (``encrypted``: ``password`` is
        already crypt(3)ed as the guest expects)."""
        for what, v in (("user", user), ("password", password)):
            if not isinstance(v, str):
                raise InvalidArg(f"invalid argument: {what} must be a string")
        self._write("setting a guest user's password")
        self._drv.set_user_password(self._uuid, user, password, encrypted=encrypted)

    def guest_vcpus(self) -> list[tuple[str, object]]:
        """The guest's vCPUs as it sees them: ``[("vcpus", "0-3"), ("online",
        "0-3"), ("offlinable", "1-3")]`` (cpu lists as text)."""
        self._write("querying the guest agent")
        return self._drv.guest_vcpus(self._uuid)

    def set_guest_vcpus(self, cpulist: str, *, enable: bool) -> None:
        """Bring the guest's vCPUs of ``cpulist`` ("1-3,^2", libvirt's syntax)
        online (``enable``) or offline."""
        if not isinstance(cpulist, str):
            raise InvalidArg("invalid argument: cpumap must not be NULL")
        parse_cpulist(cpulist)
        self._write("changing the guest's vCPUs")
        self._drv.set_guest_vcpus(self._uuid, cpulist, enable=bool(enable))


# where domhostname may read the hostname from (None: the driver's choice)
HOSTNAME_SOURCES = (None, "agent", "lease")
AGENT_TIMEOUT_MIN = -2  # libvirt's VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK
GUEST_VCPU_MAX = 4096  # libvirt's QEMU_GUEST_VCPU_MAX_ID


def check_agent_timeout(timeout) -> int:
    """An agent timeout as libvirt takes it (an int >= -2), in libvirt's words."""
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not -2**31 <= timeout < 2**31:
        raise InvalidArg(f"invalid argument: guest agent timeout {timeout!r} is not an integer")
    if timeout < AGENT_TIMEOUT_MIN:
        raise InvalidArg(f"invalid argument: guest agent timeout '{timeout}' is less than the minimum "
                         f"'{AGENT_TIMEOUT_MIN}'", detail={"timeout": timeout})
    return timeout


def parse_cpulist(text: str, *, limit: int = GUEST_VCPU_MAX) -> list[int]:
    """libvirt's bitmap syntax (virBitmapParse): ``0-3,5,^2``, blanks around
    items allowed; the sorted CPU numbers, each below ``limit``.  Anything
    else: libvirt's "Failed to parse bitmap" (INVALID_ARG)."""
    def bad():
        return InvalidArg(f"invalid argument: Failed to parse bitmap '{text}'", detail={"cpulist": text})

    on: set[int] = set()
    off: set[int] = set()
    items = text.split(",")
    if not text.strip():
        raise bad()
    for item in items:
        item = item.strip(" \t\n\v\f\r")
        neg = item.startswith("^")
        if neg:
            item = item[1:]
        lo, sep, hi = item.partition("-")
        if not lo.isascii() or not lo.isdigit() or (sep and (not hi.isascii() or not hi.isdigit())):
            raise bad()
        a, b = int(lo), int(hi) if sep else int(lo)
        if a > b or b >= limit or (neg and sep):
            raise bad()
        (off if neg else on).update(range(a, b + 1))
    return sorted(on - off)
