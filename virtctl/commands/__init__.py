"""The command table: every command's name, module, function and help group.

Commands are imported lazily (a one-shot command imports one module), and
this table is the single list of commands: the click tree, ``help``, the
shell, completion scripts and the man page are all built from it.
"""
from __future__ import annotations

# group titles, in virsh's order
DOMAIN_MGMT = "Domain Management"
DOMAIN_MON = "Domain Monitoring"
HOST = "Host and Hypervisor"
XML_GROUP = "XML"
SNAPSHOT = "Snapshot"
POOL = "Storage Pool"
VOLUME = "Storage Volume"
SELF = "Virtctl itself"
NETWORK = "Networking"
DOMAIN_EVENTS = "Domain Events"

# name -> (module under virtctl.commands, attribute, group)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "autostart": ("domain_config", "autostart", DOMAIN_MGMT),
    "create": ("domain_lifecycle", "create", DOMAIN_MGMT),
    "define": ("domain_config", "define", DOMAIN_MGMT),
    "destroy": ("domain_lifecycle", "destroy", DOMAIN_MGMT),
    "domrename": ("domain_config", "domrename", DOMAIN_MGMT),
    "dumpxml": ("domain_info", "dumpxml", DOMAIN_MGMT),
    "domxml-to-native": ("domain_native", "domxml_to_native", DOMAIN_MGMT),
    "reboot": ("domain_lifecycle", "reboot", DOMAIN_MGMT),
    "reset": ("domain_lifecycle", "reset", DOMAIN_MGMT),
    "resume": ("domain_lifecycle", "resume", DOMAIN_MGMT),
    "setmaxmem": ("domain_config", "setmaxmem", DOMAIN_MGMT),
    "setmem": ("domain_config", "setmem", DOMAIN_MGMT),
    "setvcpus": ("domain_config", "setvcpus", DOMAIN_MGMT),
    "shutdown": ("domain_lifecycle", "shutdown", DOMAIN_MGMT),
    "start": ("domain_lifecycle", "start", DOMAIN_MGMT),
    "suspend": ("domain_lifecycle", "suspend", DOMAIN_MGMT),
    "undefine": ("domain_config", "undefine", DOMAIN_MGMT),
    "vcpucount": ("domain_info", "vcpucount", DOMAIN_MGMT),
    "save": ("domain_save", "save", DOMAIN_MGMT),
    "restore": ("domain_save", "restore", DOMAIN_MGMT),
    "managedsave": ("domain_save", "managedsave", DOMAIN_MGMT),
    "managedsave-remove": ("domain_save", "managedsave_remove", DOMAIN_MGMT),
    "console": ("domain_console", "console", DOMAIN_MGMT),
    "domdisplay": ("domain_stats", "domdisplay", DOMAIN_MGMT),
    "screenshot": ("domain_stats", "screenshot", DOMAIN_MGMT),
    "send-key": ("domain_stats", "send_key", DOMAIN_MGMT),
    "qemu-monitor-command": ("domain_stats", "qemu_monitor_command", DOMAIN_MGMT),
    "dommemstat": ("domain_stats", "dommemstat", DOMAIN_MON),
    "domblkstat": ("domain_stats", "domblkstat", DOMAIN_MON),
    "domblklist": ("domain_info", "domblklist", DOMAIN_MON),
    "domid": ("domain_info", "domid", DOMAIN_MON),
    "domiflist": ("domain_info", "domiflist", DOMAIN_MON),
    "dominfo": ("domain_info", "dominfo", DOMAIN_MON),
    "domname": ("domain_info", "domname", DOMAIN_MON),
    "domstate": ("domain_info", "domstate", DOMAIN_MON),
    "domuuid": ("domain_info", "domuuid", DOMAIN_MON),
    "list": ("domain_list", "list_domains", DOMAIN_MON),
    "hostname": ("host", "hostname", HOST),
    "nodeinfo": ("host", "nodeinfo", HOST),
    "uri": ("host", "uri", HOST),
    "version": ("host", "version", HOST),
    "edit": ("xml_tools", "edit", DOMAIN_MGMT),
    "validate": ("xml_tools", "validate_cmd", XML_GROUP),
    "snapshot-create": ("snapshot", "snapshot_create", SNAPSHOT),
    "snapshot-create-as": ("snapshot", "snapshot_create_as", SNAPSHOT),
    "snapshot-current": ("snapshot", "snapshot_current", SNAPSHOT),
    "snapshot-delete": ("snapshot", "snapshot_delete", SNAPSHOT),
    "snapshot-dumpxml": ("snapshot", "snapshot_dumpxml", SNAPSHOT),
    "snapshot-edit": ("snapshot", "snapshot_edit", SNAPSHOT),
    "snapshot-info": ("snapshot", "snapshot_info", SNAPSHOT),
    "snapshot-list": ("snapshot", "snapshot_list", SNAPSHOT),
    "snapshot-parent": ("snapshot", "snapshot_parent", SNAPSHOT),
    "snapshot-revert": ("snapshot", "snapshot_revert", SNAPSHOT),
    "pool-list": ("pool", "pool_list", POOL),
    "pool-info": ("pool", "pool_info", POOL),
    "pool-dumpxml": ("pool", "pool_dumpxml", POOL),
    "pool-define": ("pool", "pool_define", POOL),
    "pool-define-as": ("pool", "pool_define_as", POOL),
    "pool-create": ("pool", "pool_create", POOL),
    "pool-create-as": ("pool", "pool_create_as", POOL),
    "pool-build": ("pool", "pool_build", POOL),
    "pool-start": ("pool", "pool_start", POOL),
    "pool-destroy": ("pool", "pool_destroy", POOL),
    "pool-delete": ("pool", "pool_delete", POOL),
    "pool-undefine": ("pool", "pool_undefine", POOL),
    "pool-autostart": ("pool", "pool_autostart", POOL),
    "pool-refresh": ("pool", "pool_refresh", POOL),
    "pool-uuid": ("pool", "pool_uuid", POOL),
    "pool-name": ("pool", "pool_name", POOL),
    "pool-capabilities": ("pool", "pool_capabilities", POOL),
    "pool-edit": ("pool", "pool_edit", POOL),
    "vol-list": ("volume", "vol_list", VOLUME),
    "vol-info": ("volume", "vol_info", VOLUME),
    "vol-dumpxml": ("volume", "vol_dumpxml", VOLUME),
    "vol-create": ("volume", "vol_create", VOLUME),
    "vol-create-as": ("volume", "vol_create_as", VOLUME),
    "vol-clone": ("volume", "vol_clone", VOLUME),
    "vol-delete": ("volume", "vol_delete", VOLUME),
    "vol-resize": ("volume", "vol_resize", VOLUME),
    "vol-path": ("volume", "vol_path", VOLUME),
    "vol-key": ("volume", "vol_key", VOLUME),
    "vol-name": ("volume", "vol_name", VOLUME),
    "vol-pool": ("volume", "vol_pool", VOLUME),
    "vol-upload": ("volume", "vol_upload", VOLUME),
    "vol-download": ("volume", "vol_download", VOLUME),
    "vol-wipe": ("volume", "vol_wipe", VOLUME),
    "vol-create-from": ("volume", "vol_create_from", VOLUME),
    "net-list": ("network", "net_list", NETWORK),
    "net-info": ("network", "net_info", NETWORK),
    "net-dumpxml": ("network", "net_dumpxml", NETWORK),
    "net-define": ("network", "net_define", NETWORK),
    "net-create": ("network", "net_create", NETWORK),
    "net-undefine": ("network", "net_undefine", NETWORK),
    "net-start": ("network", "net_start", NETWORK),
    "net-destroy": ("network", "net_destroy", NETWORK),
    "net-autostart": ("network", "net_autostart", NETWORK),
    "net-uuid": ("network", "net_uuid", NETWORK),
    "net-name": ("network", "net_name", NETWORK),
    "net-dhcp-leases": ("network", "net_dhcp_leases", NETWORK),
    "net-update": ("network", "net_update", NETWORK),
    "net-create-as": ("network", "net_create_as", NETWORK),
    "net-edit": ("network", "net_edit", NETWORK),
    "echo": ("builtin", "echo", SELF),
    "help": ("builtin", "help_cmd", SELF),
    "connect": ("builtin", "connect", SELF),
    "shell": ("builtin", "shell", SELF),
    "quit": ("builtin", "quit_cmd", SELF),
    "event": ("domain_event", "event", DOMAIN_EVENTS),
    "desc": ("domain_meta", "desc", DOMAIN_MGMT),
    "metadata": ("domain_meta", "metadata", DOMAIN_MGMT),
    "vncdisplay": ("domain_meta", "vncdisplay", DOMAIN_MGMT),
    "ttyconsole": ("domain_meta", "ttyconsole", DOMAIN_MGMT),
    "inject-nmi": ("domain_meta", "inject_nmi", DOMAIN_MGMT),
    "dompmsuspend": ("domain_meta", "dompmsuspend", DOMAIN_MGMT),
    "dompmwakeup": ("domain_meta", "dompmwakeup", DOMAIN_MGMT),
    "send-process-signal": ("domain_meta", "send_process_signal", DOMAIN_MGMT),
}

# alias -> command; aliases are listed in help beside their command
ALIASES: dict[str, str] = {
    "poweroff": "destroy",
    "exit": "quit",
}

# virsh's order: ... Networking, ..., Snapshot, ..., Storage Pool, Storage Volume
GROUP_ORDER = [DOMAIN_MGMT, DOMAIN_MON, DOMAIN_EVENTS, HOST, NETWORK, SNAPSHOT, POOL, VOLUME, XML_GROUP, SELF]

# commands that run without a connection (virsh's VSH_CMD_FLAG_NOCONNECT, plus
# validate): a command string of only these never opens one
NO_CONNECTION = frozenset({"echo", "help", "connect", "shell", "quit", "validate"})
