"""Metadata and small operations of the QEMU driver (a mixin of
QemuDomainDriver): desc, metadata (live.xml and domain.xml, under the
domain lock, written atomically), inject-nmi (QMP ``inject-nmi``),
dompmwakeup (QMP ``system_wakeup``); dompmsuspend needs a guest agent and
send-process-signal a container: NOT_SUPPORTED, saying so."""
from __future__ import annotations

from virtctl.drivers.qemu import events
from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import InvalidArg, OperationInvalid, not_supported


class QemuMetaMixin:
    def _meta_def(self, v, live: bool, config: bool):
        if live and config:
            raise InvalidArg("Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive",
                             detail={"driver": "qemu", "flags": ["live", "config"]})
        do_live, do_config = self._targets(v, live, config)
        return v.live if do_live else v.config

    def get_metadata(self, uuid: str, kind: str, *, uri: str | None = None, live: bool = False,
                     config: bool = False) -> str:
        from virtctl.xml import metadata

        v = self._checked_view(uuid)
        return metadata.get(self._meta_def(v, live, config), kind, uri)

    def set_metadata(self, uuid: str, kind: str, value: str | None, *, key: str | None = None,
                     uri: str | None = None, live: bool = False, config: bool = False) -> None:
        from virtctl.xml import metadata

        with rt.domain_lock(self.state, uuid):
            v = self._checked_view(uuid, locked=True)
            do_live, do_config = self._targets(v, live, config)
            targets = ([v.live] if do_live else []) + ([v.config] if do_config else [])
            for t in targets:  # every check (the parse included) before anything is written
                metadata.set_(t.copy(), kind, value, key=key, uri=uri)
            for t in targets:
                metadata.set_(t, kind, value, key=key, uri=uri)
                t.to_xml()  # XMLError (too large) before the first write
            if do_live:
                self._save_live(uuid, v.live)
            if do_config:
                self._write_config(v.config)
            name = (v.live if do_live else v.config).name
        events.emit(self.state, "domain", name, uuid, "metadata-change", type=kind,
                    uri=uri if kind == "element" else None)

    def inject_nmi(self, uuid: str) -> None:
        with self._running(uuid) as run:
            self._qmp(run, "inject-nmi", what="inject-nmi")

    def pm_suspend(self, uuid: str, target: str, *, duration: int = 0) -> None:
        self._checked_view(uuid)
        raise not_supported("qemu", f"dompmsuspend {target} (it needs the QEMU guest agent, which this "
                                    "driver does not talk to)")

    def pm_wakeup(self, uuid: str) -> None:
        with self._running(uuid) as run:
            status = (self._qmp(run, "query-status", what="dompmwakeup") or {}).get("status")
            if status != "suspended":
                raise OperationInvalid("Requested operation is not valid: domain is not in the "
                                       f"pmsuspended state (QEMU's run state is '{status}')")
            self._qmp(run, "system_wakeup", what="dompmwakeup")

    def send_process_signal(self, uuid: str, pid: int, signum: int) -> None:
        self._checked_view(uuid)
        raise not_supported("qemu", "send-process-signal (QEMU cannot signal a process inside the guest; "
                                    "libvirt does it for containers only)")
