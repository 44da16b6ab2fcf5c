"""The test driver's metadata and small operations (a mixin of
TestDomainDriver): desc, metadata, inject-nmi, send-process-signal, as
libvirt's test driver answers them (dompmsuspend/dompmwakeup: it has none)."""
from __future__ import annotations

from virtctl.errors import InvalidArg, OperationInvalid


def _exclusive(live: bool, config: bool) -> None:
    if live and config:
        raise InvalidArg("Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive",
                         detail={"driver": "test", "flags": ["live", "config"]})


class TestMetaMixin:
    def get_metadata(self, uuid: str, kind: str, *, uri: str | None = None, live: bool = False,
                     config: bool = False) -> str:
        from virtctl.xml import metadata

        _exclusive(live, config)
        d = self._get(uuid)
        live_def, config_def = self._defs(d, live, config)
        return metadata.get(live_def or config_def, kind, uri)

    def set_metadata(self, uuid: str, kind: str, value: str | None, *, key: str | None = None,
                     uri: str | None = None, live: bool = False, config: bool = False) -> None:
        from virtctl.xml import metadata

        d = self._get(uuid)
        targets = self._targets(d, live, config)
        for t in targets:  # all checked (the parse included) before any is changed
            metadata.set_(t.copy(), kind, value, key=key, uri=uri)
        for t in targets:
            metadata.set_(t, kind, value, key=key, uri=uri)

    def inject_nmi(self, uuid: str) -> None:
        d = self._get(uuid)
        if d.id is None:
            raise OperationInvalid("Requested operation is not valid: domain is not running")

    def send_process_signal(self, uuid: str, pid: int, signum: int) -> None:
        self._get(uuid)
        if pid != 1:
            raise InvalidArg("invalid argument: only sending a signal to pid 1 is supported")
        if not 0 <= signum < 65:  # libvirt's VIR_DOMAIN_PROCESS_SIGNAL_LAST
            raise InvalidArg(f"invalid argument: signum value {signum} is out of range")
