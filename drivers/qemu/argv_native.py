"""domxml-to-native for the QEMU driver (a mixin of QemuDomainDriver): the
command line ``start`` would run, built by the same pieces ``start`` uses
(``command.prepare`` on this connection's ``runtime_paths``), so the
socket, pid-file and log paths are the real ones of this state root, the
backing chains those of the images, and a confined QEMU's descriptors
numbered as ``start`` numbers them.

* ``uuid``: the persistent definition, which ``start`` runs (a transient
  domain has none: its running definition is shown);
* ``xml``: the definition as ``define`` would store it (validated and
  normalised).  Without ``<uuid>`` it is the domain of that name if one is
  defined (its paths), else a new UUID, hence new paths at each call.
"""
from __future__ import annotations


class QemuNativeMixin:
    def native_argv(self, xml: str | None = None, *, uuid: str | None = None,
                    source: str = "<input>") -> list[str]:
        from virtctl.drivers.qemu import command

        if (xml is None) == (uuid is None):
            raise ValueError("native_argv: give exactly one of xml and uuid")
        if uuid is not None:
            v = self._checked_view(uuid)
            definition = (v.config if v.config is not None else v.live).copy()
        else:
            definition = self._prepare(xml, source)
            from virtctl.xml import xmlapi

            if xmlapi.parse(xml, source=source).find("uuid") is None:
                for known, name in self._names().items():
                    if name == definition.name and "/" not in known:
                        definition.uuid = known
                        break
            uuid = definition.uuid
        # start's own preparation (command.py): the emulator check, backing chains
        # resolved from the images, descriptors for a confined QEMU; a QEMU binary
        # that is not installed here is shown by its name (start would fail)
        return command.prepare(self.state, definition, self.state.runtime_paths(uuid), show=True).argv
