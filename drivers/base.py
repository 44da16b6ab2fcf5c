"""The driver interface: one table of operations per object kind.

As in libvirt, a driver implements what it can; every operation it lacks
falls through to these defaults, which raise the one NOT_SUPPORTED error
naming the driver and the operation.  Handles cross this interface as UUID
strings; drivers never see API objects.

Every operation takes keyword-only options.  A driver that receives an option
it cannot honour raises ``not_supported`` rather than ignoring it.
"""
from __future__ import annotations

from virtctl.api.types import DomainRecord, NodeInfo, VcpuCount, Version
from virtctl.errors import not_supported


class DomainDriver:
    """Domain operations.  ``uuid`` arguments are canonical lower-case UUIDs."""

    driver_name = "unknown"

    def _ns(self, feature: str):
        """NOT_SUPPORTED for ``feature``, named as a user knows it: the command
        (and option) that needs it."""
        return not_supported(self.driver_name, feature)

    # --- looking at domains
    def list(self) -> list[DomainRecord]:
        """All domains, one consistent snapshot."""
        raise self._ns("list")

    def get(self, uuid: str) -> DomainRecord:
        raise self._ns("dominfo")

    def get_xml(self, uuid: str, *, inactive: bool = False, security_info: bool = False,
                update_cpu: bool = False, migratable: bool = False) -> str:
        """``update_cpu``/``migratable`` are passed only when set."""
        raise self._ns("dumpxml")

    def vcpu_count(self, uuid: str) -> VcpuCount:
        raise self._ns("vcpucount")

    def guest_vcpu_count(self, uuid: str) -> VcpuCount:
        """The guest's own count (needs a guest agent), in ``live_current``."""
        raise self._ns("vcpucount --guest")

    # --- definitions
    def define(self, xml: str, *, source: str = "<input>") -> DomainRecord:
        raise self._ns("define")

    def undefine(self, uuid: str, *, managed_save: bool = False, snapshots_metadata: bool = False,
                 nvram: bool = False) -> None:
        raise self._ns("undefine")

    def rename(self, uuid: str, new_name: str) -> DomainRecord:
        raise self._ns("domrename")

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        raise self._ns("autostart")

    # --- lifecycle
    def create_xml(self, xml: str, *, source: str = "<input>", paused: bool = False,
                   autodestroy: bool = False) -> DomainRecord:
        raise self._ns("create")

    def start(self, uuid: str, *, paused: bool = False, autodestroy: bool = False,
              bypass_cache: bool = False, force_boot: bool = False) -> None:
        raise self._ns("start")

    def shutdown(self, uuid: str, *, mode: str | None = None, wait: bool = False,
                 timeout: float | None = None) -> None:
        """Ask the guest to power off.  ``mode``: None or a comma list of known
        modes ("acpi,agent", see api.domain.shutdown_modes).  ``wait``/``timeout``:
        return only once it is shut off (OPERATION_TIMEOUT after ``timeout`` seconds)."""
        raise self._ns("shutdown")

    def reboot(self, uuid: str, *, mode: str | None = None) -> None:
        raise self._ns("reboot")

    def reset(self, uuid: str) -> None:
        raise self._ns("reset")

    def destroy(self, uuid: str, *, graceful: bool = False) -> None:
        raise self._ns("destroy")

    def suspend(self, uuid: str) -> None:
        raise self._ns("suspend")

    def resume(self, uuid: str) -> None:
        raise self._ns("resume")

    # --- resources
    def set_memory(self, uuid: str, kib: int, *, live: bool, config: bool) -> None:
        raise self._ns("setmem")

    def set_max_memory(self, uuid: str, kib: int, *, live: bool, config: bool) -> None:
        raise self._ns("setmaxmem")

    def set_vcpus(self, uuid: str, count: int, *, live: bool, config: bool, maximum: bool = False,
                  guest: bool = False, hotpluggable: bool = False) -> None:
        raise self._ns("setvcpus")

    # --- saving memory state (save.py of each driver; ``paused``: None = as it was,
    # True/False = --paused/--running; ``progress(done, total)`` may be None)
    def save(self, uuid: str, path: str, *, paused: bool | None = None, bypass_cache: bool = False,
             progress=None) -> None:
        raise self._ns("save")

    def restore(self, path: str, *, paused: bool | None = None, bypass_cache: bool = False,
                progress=None) -> str:
        """Start the domain saved in ``path``; returns its UUID."""
        raise self._ns("restore")

    def managed_save(self, uuid: str, *, paused: bool | None = None, bypass_cache: bool = False,
                     progress=None) -> None:
        raise self._ns("managedsave")

    def managed_save_remove(self, uuid: str) -> bool:
        """Remove the managed save image; False when there was none."""
        raise self._ns("managedsave-remove")

    # --- consoles, display, input, monitor, statistics
    def open_console(self, uuid: str, *, devname: str | None = None, force: bool = False,
                     safe: bool = False):
        """A connected stream socket to the domain's console."""
        raise self._ns("console")

    def display(self, uuid: str, *, type: str | None = None) -> str:
        raise self._ns("domdisplay")

    def screenshot(self, uuid: str, path: str, *, screen: int = 0) -> str:
        """Write a screenshot to ``path``; returns its MIME type."""
        raise self._ns("screenshot")

    def send_key(self, uuid: str, keycodes: list[int], *, codeset: str = "linux",
                 holdtime: int = 0) -> None:
        raise self._ns("send-key")

    def monitor_command(self, uuid: str, command: str, *, hmp: bool = False,
                        fds: list[int] | None = None) -> str:
        """``command``: a QMP JSON object (or HMP text); ``fds`` ride along."""
        raise self._ns("qemu-monitor-command")

    def memory_stats(self, uuid: str) -> dict[str, int]:
        """virsh dommemstat's tags, in its order, only those available."""
        raise self._ns("dommemstat")

    def set_interface_link(self, uuid: str, interface: str, state: str, *, config: bool) -> None:
        """<link state> of the interface named by MAC or target dev; ``config``: the
        persistent definition, else the live one (the persistent one when not running)."""
        raise self._ns("domif-setlink")

    def set_memory_stats_period(self, uuid: str, period: int, *, live: bool, config: bool) -> None:
        """The balloon's statistics period in seconds (0: off).  Neither flag: the current state."""
        raise self._ns("set_memory_stats_period")

    def block_stats(self, uuid: str, device: str | None = None) -> list[dict]:
        """One dict per disk (``device`` = target name, then the figures the
        driver has, in virsh's field names); ``device`` None: every disk."""
        raise self._ns("domblkstat")

    def interface_addresses(self, uuid: str, source: str = "lease") -> list[dict]:
        """domifaddr: one dict per interface, ``{"name", "hwaddr", "addrs":
        [{"type": "ipv4"|"ipv6", "addr", "prefix"}]}``; ``source`` lease, arp or agent."""
        raise self._ns("domifaddr")

    def interface_stats(self, uuid: str, device: str) -> dict:
        """domifstat: the guest's view (rx = what the guest received) of the
        interface named by target dev or MAC: rx_bytes, rx_packets, rx_errs,
        rx_drop, tx_bytes, tx_packets, tx_errs, tx_drop."""
        raise self._ns("domifstat")
    # --- block devices and block jobs (``disk``: a target name or a source path;
    # sizes and bandwidths in bytes, bytes/s; commands/blockjob.py waits on the jobs)
    def block_info(self, uuid: str, disk: str) -> dict:
        """``{"capacity", "allocation", "physical"}`` of one disk, in bytes (domblkinfo)."""
        raise self._ns("domblkinfo")

    def block_resize(self, uuid: str, disk: str, size: int) -> None:
        raise self._ns("blockresize")

    def block_commit(self, uuid: str, disk: str, *, base: str | None = None, top: str | None = None,
                     active: bool = False, shallow: bool = False, delete: bool = False,
                     keep_relative: bool = False, bandwidth: int = 0) -> None:
        """Start a commit job (returns at once)."""
        raise self._ns("blockcommit")

    def block_pull(self, uuid: str, disk: str, *, base: str | None = None, keep_relative: bool = False,
                   bandwidth: int = 0) -> None:
        raise self._ns("blockpull")

    def block_copy(self, uuid: str, disk: str, dest: str, *, format: str | None = None,
                   blockdev: bool = False, shallow: bool = False, reuse_external: bool = False,
                   bandwidth: int = 0, transient_job: bool = False, granularity: int = 0,
                   buf_size: int = 0, synchronous_writes: bool = False) -> None:
        """Start a copy (mirror) job to ``dest`` (a path)."""
        raise self._ns("blockcopy")

    def block_job_info(self, uuid: str, disk: str) -> dict | None:
        """The disk's job, None if it has none: ``{"type": pull|copy|commit|active-commit,
        "bandwidth", "cur", "end", "ready", "status", "error"}`` (bandwidth in bytes/s)."""
        raise self._ns("blockjob")

    def block_job_abort(self, uuid: str, disk: str, *, pivot: bool = False, async_: bool = False) -> None:
        raise self._ns("blockjob --abort")

    def block_job_set_speed(self, uuid: str, disk: str, bandwidth: int) -> None:
        raise self._ns("blockjob --bandwidth")
    # --- monitoring (domstats and friends) -------------------------------------------------------
    stats_groups: tuple[str, ...] = ("state",)  # the domstats groups domain_stats fills

    def domain_stats(self, uuid: str, groups: list[str], *, backing: bool = False,
                     nowait: bool = False) -> list[tuple[str, object]]:
        """domstats's (key, value) pairs of ``groups`` (each in stats_groups), in libvirt's order."""
        rec = self.get(uuid)
        return [("state.state", int(rec.state)), ("state.reason", int(rec.reason))] if "state" in groups else []

    def cpu_stats(self, uuid: str) -> dict:
        raise self._ns("cpu-stats")

    def vcpu_info(self, uuid: str) -> dict:
        raise self._ns("vcpuinfo")

    def disk_errors(self, uuid: str) -> list[tuple[str, str]]:
        raise self._ns("domblkerror")

    def control_info(self, uuid: str) -> dict:
        raise self._ns("domcontrol")

    def get_time(self, uuid: str) -> tuple[int, int]:
        raise self._ns("domtime")

    def set_time(self, uuid: str, seconds: int | None, *, sync: bool = False) -> None:
        raise self._ns("domtime --time")

    def job_info(self, uuid: str, *, completed: bool = False, keep_completed: bool = False) -> dict:
        raise self._ns("domjobinfo")

    def abort_job(self, uuid: str, *, postcopy: bool = False) -> None:
        raise self._ns("domjobabort")
    # --- metadata and small operations
    def get_metadata(self, uuid: str, kind: str, *, uri: str | None = None, live: bool = False,
                     config: bool = False) -> str:
        """``kind``: description, title or element (namespace ``uri``); see virtctl/xml/metadata.py."""
        raise self._ns("metadata")

    def set_metadata(self, uuid: str, kind: str, value: str | None, *, key: str | None = None,
                     uri: str | None = None, live: bool = False, config: bool = False) -> None:
        raise self._ns("metadata --set")

    def inject_nmi(self, uuid: str) -> None:
        raise self._ns("inject-nmi")

    def pm_suspend(self, uuid: str, target: str, *, duration: int = 0) -> None:
        raise self._ns("dompmsuspend")

    def pm_wakeup(self, uuid: str) -> None:
        raise self._ns("dompmwakeup")

    def send_process_signal(self, uuid: str, pid: int, signum: int) -> None:
        raise self._ns("send-process-signal")

    # --- the guest agent (qemu-ga on the ``org.qemu.guest_agent.0`` virtio channel).
    # ``timeout`` in seconds with virsh's guest-agent-timeout values: -2 block forever,
    # -1 the default (5 s), 0 do not wait, N > 0; None: the domain's current setting.
    # No agent channel: NotSupported; channel but no agent: AgentUnresponsive
    # (AGENT_UNRESPONSIVE, "Guest agent is not responding: ...").
    def agent_command(self, uuid: str, command: str, *, timeout: int | None = None) -> str:
        """qemu-agent-command: ``command`` a JSON object as text; the answer's
        ``return`` value as compact JSON text (virsh prints it, ``--pretty`` indents)."""
        raise self._ns("qemu-agent-command")

    def set_agent_timeout(self, uuid: str, timeout: int) -> None:
        """guest-agent-timeout: the timeout of every later agent call on this domain."""
        raise self._ns("guest-agent-timeout")

    def guest_info(self, uuid: str, types: tuple[str, ...] = ()) -> list[tuple[str, object]]:
        """guestinfo: libvirt's typed parameters, in its order and with its names
        (``user.count``, ``user.0.name``, ``os.id``, ``timezone.name``, ``hostname``,
        ``fs.count``, ``fs.0.mountpoint``, ``disk.count``, ``if.count``, ...); ``types`` a
        subset of GUEST_INFO_TYPES (empty: every type the agent can answer)."""
        raise self._ns("guestinfo")

    def fs_info(self, uuid: str) -> list[dict]:
        """domfsinfo: ``[{"mountpoint", "name", "fstype", "devaliases": [target, ...]}]``
        (devaliases: the domain's disk targets under that filesystem)."""
        raise self._ns("domfsinfo")

    def fs_freeze(self, uuid: str, mountpoints: tuple[str, ...] = ()) -> int:
        """domfsfreeze: the number of filesystems frozen (``mountpoints`` empty: all)."""
        raise self._ns("domfsfreeze")

    def fs_thaw(self, uuid: str, mountpoints: tuple[str, ...] = ()) -> int:
        """domfsthaw: the number of filesystems thawed."""
        raise self._ns("domfsthaw")

    def fs_trim(self, uuid: str, mountpoint: str | None = None, minimum: int = 0) -> None:
        """domfstrim (``minimum`` in bytes)."""
        raise self._ns("domfstrim")

    def guest_hostname(self, uuid: str, source: str | None = None) -> str:
        """domhostname; ``source`` None (the driver's choice), "agent" or "lease"."""
        raise self._ns("domhostname")

    def set_user_password(self, uuid: str, user: str, password: str, *, encrypted: bool = False) -> None:
        """set-user-password (``encrypted``: ``password`` is already crypt(3)ed)."""
        raise self._ns("set-user-password")

    def guest_vcpus(self, uuid: str) -> list[tuple[str, object]]:
        """guestvcpus: libvirt's typed parameters ``vcpus``, ``online``, ``offlinable``
        (cpu lists as text, "0-3")."""
        raise self._ns("guestvcpus")

    def set_guest_vcpus(self, uuid: str, cpulist: str, *, enable: bool) -> None:
        raise self._ns("guestvcpus --enable/--disable")

    # --- native configuration
    def native_argv(self, xml: str | None = None, *, uuid: str | None = None,
                    source: str = "<input>") -> list[str]:
        """The command line ``start`` would run for the definition ``xml`` or
        for the defined domain ``uuid`` (domxml-to-native)."""
        raise not_supported(self.driver_name, "domxml-to-native")

    # --- hotplug (virtctl.xml.devices edits the definitions; ``live``/``config``
    # both False: the current state; ``source`` names the XML in errors)
    def attach_device(self, uuid: str, xml: str, *, live: bool, config: bool,
                      source: str = "<device>") -> dict:
        """Add the device; returns ``{"alias": ...}`` (the live alias, when live)."""
        raise self._ns("attach-device")

    def detach_device(self, uuid: str, xml: str, *, live: bool, config: bool,
                      source: str = "<device>") -> dict:
        raise self._ns("detach-device")

    def detach_device_alias(self, uuid: str, alias: str, *, live: bool, config: bool) -> dict:
        raise self._ns("detach-device-alias")

    def update_device(self, uuid: str, xml: str, *, live: bool, config: bool, force: bool = False,
                      source: str = "<device>") -> dict:
        """Change a device in place (a cdrom's media, an interface's link)."""
        raise self._ns("update-device")


class Driver:
    """A connection to one hypervisor.  ``open`` is the constructor."""

    name = "unknown"

    def __init__(self, uri, *, readonly: bool = False):
        self.uri = uri
        self.readonly = readonly
        self.domains: DomainDriver = DomainDriver()
        self.snapshots: SnapshotDriver = SnapshotDriver()
        self.snapshots.driver_name = self.name  # what it lacks is NOT_SUPPORTED by this driver
        self.pools: PoolDriver = PoolDriver()
        self.networks = NetworkDriver()  # a driver with networks replaces it

    def close(self) -> None:
        pass

    def hostname(self) -> str:
        raise not_supported(self.name, "hostname")

    def version(self) -> Version:
        raise not_supported(self.name, "version")

    def node_info(self) -> NodeInfo:
        raise not_supported(self.name, "nodeinfo")

    def canonical_uri(self) -> str:
        return self.uri.text

    def node_cpu_stats(self, cpu: int | None = None) -> dict:
        raise not_supported(self.name, "nodecpustats")

    def node_memory_stats(self, cell: int | None = None) -> dict:
        raise not_supported(self.name, "nodememstats")

    def capabilities(self) -> str:
        raise not_supported(self.name, "capabilities")

    def domain_capabilities(self, *, virttype=None, emulatorbin=None, arch=None, machine=None) -> str:
        raise not_supported(self.name, "domcapabilities")

    def max_vcpus(self, type: str | None = None) -> int:  # noqa: A002
        raise not_supported(self.name, "maxvcpus")

    def sysinfo(self) -> str:
        raise not_supported(self.name, "sysinfo")

    def free_memory(self) -> int:
        raise not_supported(self.name, "freecell")

    def cells_free_memory(self, start: int = 0, count: int | None = None) -> list[int]:
        raise not_supported(self.name, "freecell --all")
    def event_follower(self):
        """An object whose ``wait(timeout)`` returns the events (dicts, see
        drivers/qemu/events.py) that happened after it was made; ``close()``."""
        raise not_supported(self.name, "event")


class PoolDriver:
    """Storage pool operations (pools by canonical UUID) and the volume part
    (volumes by key).  Records are virtctl.api.storage's PoolRecord and
    VolumeRecord; capacities in bytes."""

    driver_name = "unknown"

    def _ns(self, feature: str):
        return not_supported(self.driver_name, feature)

    # --- pools
    def list(self) -> list:
        return []

    def get(self, uuid: str):
        raise self._ns("pool-info")

    def get_xml(self, uuid: str, *, inactive: bool = False) -> str:
        raise self._ns("pool-dumpxml")

    def define(self, xml: str, *, source: str = "<input>"):
        raise self._ns("pool-define")

    def create_xml(self, xml: str, *, source: str = "<input>", build: bool = False):
        raise self._ns("pool-create")

    def start(self, uuid: str, *, build: bool = False, overwrite: bool = False,
              no_overwrite: bool = False) -> None:
        raise self._ns("pool-start")

    def build(self, uuid: str, *, overwrite: bool = False, no_overwrite: bool = False) -> None:
        raise self._ns("pool-build")

    def destroy(self, uuid: str) -> None:
        raise self._ns("pool-destroy")

    def delete(self, uuid: str) -> None:
        raise self._ns("pool-delete")

    def undefine(self, uuid: str) -> None:
        raise self._ns("pool-undefine")

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        raise self._ns("pool-autostart")

    def refresh(self, uuid: str) -> None:
        raise self._ns("pool-refresh")

    def capabilities(self) -> str:
        """``<storagepoolCapabilities>``: the pool types and volume formats supported."""
        raise self._ns("pool-capabilities")

    # --- volumes
    def volumes(self, uuid: str) -> list:
        """The volumes of an active pool (OPERATION_INVALID when inactive)."""
        raise self._ns("vol-list")

    def find_volume(self, *, name: str | None = None, pool_uuid: str | None = None,
                    key: str | None = None, path: str | None = None):
        """The record of the volume so named (``name`` with ``pool_uuid``), or None."""
        return None

    def volume_by_key(self, key: str):
        raise self._ns("vol-info")

    def volume_by_name(self, uuid: str, name: str):
        raise self._ns("vol-info")

    def volume_xml(self, key: str) -> str:
        raise self._ns("vol-dumpxml")

    def create_volume(self, uuid: str, xml: str, *, source: str = "<input>",
                      prealloc_metadata: bool = False, clone_key: str | None = None):
        raise self._ns("vol-create")

    def delete_volume(self, key: str, *, wipe: bool = False) -> None:
        raise self._ns("vol-delete")

    def wipe_volume(self, key: str, *, algorithm: str = "zero") -> None:
        raise self._ns("vol-wipe" if algorithm == "zero" else f"vol-wipe --algorithm {algorithm}")

    def resize_volume(self, key: str, capacity: int, *, delta: bool = False, shrink: bool = False,
                      allocate: bool = False) -> None:
        raise self._ns("vol-resize")

    def upload_volume(self, key: str, src, *, offset: int = 0, length: int = 0,
                      sparse: bool = False, progress=None) -> None:
        raise self._ns("vol-upload")

    def download_volume(self, key: str, dst, *, offset: int = 0, length: int = 0,
                        sparse: bool = False, progress=None) -> None:
        raise self._ns("vol-download")


class SnapshotDriver:
    """Domain snapshot operations (api/snapshot.py).  ``uuid`` is the domain's
    canonical UUID, ``name`` a snapshot's name; records are
    :class:`virtctl.api.snapshot.SnapshotRecord`.  A missing snapshot raises
    NO_DOMAIN_SNAPSHOT."""

    driver_name = "unknown"

    def _ns(self, feature: str):
        return not_supported(self.driver_name, feature)

    def list(self, uuid: str) -> list:
        """Every snapshot of the domain, parents before children (topological)."""
        raise self._ns("snapshot-list")

    def get(self, uuid: str, name: str):
        raise self._ns("snapshot-info")

    def get_xml(self, uuid: str, name: str, *, security_info: bool = False) -> str:
        raise self._ns("snapshot-dumpxml")

    def create(self, uuid: str, xml: str, *, source: str = "<input>", redefine: bool = False,
               current: bool = False, no_metadata: bool = False, halt: bool = False,
               disk_only: bool = False, reuse_external: bool = False, quiesce: bool = False,
               atomic: bool = False, live: bool = False, validate: bool = False) -> str:
        """Create from a <domainsnapshot> document; returns the new name."""
        raise self._ns("snapshot-create")

    def set_current(self, uuid: str, name: str) -> None:
        raise self._ns("snapshot-current")

    def revert(self, uuid: str, name: str, *, running: bool = False, paused: bool = False,
               force: bool = False, reset_nvram: bool = False) -> None:
        raise self._ns("snapshot-revert")

    def delete(self, uuid: str, name: str, *, children: bool = False, children_only: bool = False,
               metadata_only: bool = False) -> None:
        raise self._ns("snapshot-delete")


class NetworkDriver:
    """Network operations.  ``uuid`` arguments are canonical lower-case UUIDs;
    records are :class:`virtctl.api.network.NetworkRecord`.  A driver without
    networks keeps these defaults: every operation is NOT_SUPPORTED, named by
    the command that needs it."""

    driver_name = "unknown"

    def _ns(self, feature: str):
        return not_supported(self.driver_name, feature)

    def list(self) -> list:
        """All networks, one consistent snapshot."""
        raise self._ns("net-list")

    def get(self, uuid: str):
        raise self._ns("net-info")

    def get_xml(self, uuid: str, *, inactive: bool = False) -> str:
        raise self._ns("net-dumpxml")

    def define(self, xml: str, *, source: str = "<input>"):
        raise self._ns("net-define")

    def create_xml(self, xml: str, *, source: str = "<input>"):
        raise self._ns("net-create")

    def undefine(self, uuid: str) -> None:
        raise self._ns("net-undefine")

    def start(self, uuid: str) -> None:
        raise self._ns("net-start")

    def destroy(self, uuid: str, *, force: bool = False) -> None:
        """``force``: even with running domains attached (else a driver may refuse)."""
        raise self._ns("net-destroy")

    def set_autostart(self, uuid: str, *, enabled: bool) -> None:
        raise self._ns("net-autostart")

    def dhcp_leases(self, uuid: str, *, mac: str | None = None) -> list[dict]:
        raise self._ns("net-dhcp-leases")

    def update(self, uuid: str, command: str, section: str, xml: str, *, parent_index: int | None = None,
               live: bool = False, config: bool = False) -> None:
        """net-update; neither ``live`` nor ``config``: --current."""
        raise self._ns("net-update")
