"""virsh 9.0's command names (``virsh help``), to tell a command virtctl
does not have yet from a typo, and the error for either.

A virsh command virtctl lacks: ``'net-list' is a virsh command that virtctl
does not implement yet`` with code NOT_SUPPORTED (exit status 6: like an
operation a driver does not support, it exists, just not here).  Anything
else keeps virsh's ``unknown command: 'lst'`` (USAGE, exit status 2) and
names the nearest virtctl commands.  Imported only on that error path.
"""
from __future__ import annotations

from virtctl.errors import NotSupported, UsageError

# `virsh help | awk '/^    [a-z]/ {print $1}'` on virsh 9.0.0 (274 commands)
VIRSH_COMMANDS = frozenset("""
    allocpages attach-device attach-disk attach-interface autostart backup-begin backup-dumpxml
    blkdeviotune blkiotune blockcommit blockcopy blockjob blockpull blockresize capabilities cd
    change-media checkpoint-create checkpoint-create-as checkpoint-delete checkpoint-dumpxml
    checkpoint-edit checkpoint-info checkpoint-list checkpoint-parent connect console
    cpu-baseline cpu-compare cpu-models cpu-stats create define desc destroy detach-device
    detach-device-alias detach-disk detach-interface dom-fd-associate domblkerror domblkinfo
    domblklist domblkstat domblkthreshold domcapabilities domcontrol domdirtyrate-calc
    domdisplay domfsfreeze domfsinfo domfsthaw domfstrim domhostname domid domif-getlink
    domif-setlink domifaddr domiflist domifstat domiftune dominfo domjobabort domjobinfo
    domlaunchsecinfo dommemstat domname dompmsuspend dompmwakeup domrename domsetlaunchsecstate
    domstate domstats domtime domuuid domxml-from-native domxml-to-native dump dumpxml echo edit
    emulatorpin event exit find-storage-pool-sources find-storage-pool-sources-as freecell
    freepages get-user-sshkeys guest-agent-timeout guestinfo guestvcpus help hostname
    hypervisor-cpu-baseline hypervisor-cpu-compare iface-begin iface-bridge iface-commit
    iface-define iface-destroy iface-dumpxml iface-edit iface-list iface-mac iface-name
    iface-rollback iface-start iface-unbridge iface-undefine inject-nmi iothreadadd iothreaddel
    iothreadinfo iothreadpin iothreadset list lxc-enter-namespace managedsave managedsave-define
    managedsave-dumpxml managedsave-edit managedsave-remove maxvcpus memtune metadata migrate
    migrate-compcache migrate-getmaxdowntime migrate-getspeed migrate-postcopy
    migrate-setmaxdowntime migrate-setspeed net-autostart net-create net-define net-destroy
    net-dhcp-leases net-dumpxml net-edit net-event net-info net-list net-name net-port-create
    net-port-delete net-port-dumpxml net-port-list net-start net-undefine net-update net-uuid
    node-memory-tune nodecpumap nodecpustats nodedev-autostart nodedev-create nodedev-define
    nodedev-destroy nodedev-detach nodedev-dumpxml nodedev-event nodedev-info nodedev-list
    nodedev-reattach nodedev-reset nodedev-start nodedev-undefine nodeinfo nodememstats
    nodesevinfo nodesuspend numatune nwfilter-binding-create nwfilter-binding-delete
    nwfilter-binding-dumpxml nwfilter-binding-list nwfilter-define nwfilter-dumpxml
    nwfilter-edit nwfilter-list nwfilter-undefine perf pool-autostart pool-build
    pool-capabilities pool-create pool-create-as pool-define pool-define-as pool-delete
    pool-destroy pool-dumpxml pool-edit pool-event pool-info pool-list pool-name pool-refresh
    pool-start pool-undefine pool-uuid pwd qemu-agent-command qemu-attach qemu-monitor-command
    qemu-monitor-event quit reboot reset restore resume save save-image-define
    save-image-dumpxml save-image-edit schedinfo screenshot secret-define secret-dumpxml
    secret-event secret-get-value secret-list secret-set-value secret-undefine send-key
    send-process-signal set-lifecycle-action set-user-password set-user-sshkeys setmaxmem setmem
    setvcpu setvcpus shutdown snapshot-create snapshot-create-as snapshot-current
    snapshot-delete snapshot-dumpxml snapshot-edit snapshot-info snapshot-list snapshot-parent
    snapshot-revert start suspend sysinfo ttyconsole undefine update-device update-memory-device
    uri vcpucount vcpuinfo vcpupin version vncdisplay vol-clone vol-create vol-create-as
    vol-create-from vol-delete vol-download vol-dumpxml vol-info vol-key vol-list vol-name
    vol-path vol-pool vol-resize vol-upload vol-wipe
""".split())


def suggestions(name: str, limit: int = 3) -> list[str]:
    """virtctl's commands (and aliases) nearest to ``name``: the best match,
    and any as close as it (``dominf`` -> dominfo; ``domstat`` -> domstate)."""
    import difflib

    from virtctl.commands import ALIASES, COMMANDS

    scored = []
    for cand in [*COMMANDS, *ALIASES]:
        ratio = difflib.SequenceMatcher(None, name, cand).ratio()
        if ratio >= 0.6:
            scored.append((-ratio, cand))
    scored.sort()
    if not scored:
        return []
    best = -scored[0][0]
    return [c for r, c in scored if -r >= best - 0.05][:limit]


def unknown_command(name: str, *, what: str = "command"):
    """The error for a command name virtctl does not know.  ``what``:
    "command", or for ``help`` "command or command group"."""
    if name in VIRSH_COMMANDS:
        return NotSupported(f"'{name}' is a virsh command that virtctl does not implement yet",
                            detail={"command": name})
    message = f"unknown command: '{name}'" if what == "command" else f"{what} '{name}' doesn't exist"
    hints = suggestions(name)
    return UsageError(message, detail={"command": name, "suggestions": hints} if hints else {"command": name})
