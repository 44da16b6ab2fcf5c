"""Hotplug on the test driver: attach/detach/update a device in the live
and/or persistent definition (virtctl.xml.devices does the editing).

libvirt's test driver refuses these calls ("this function is not
supported by the connection driver"); virtctl's applies them to its
definitions, so the command tree can be tested without QEMU (README:
"differs on purpose")."""
from __future__ import annotations


class TestHotplugMixin:
    def _hotplug_defs(self, uuid: str, live: bool, config: bool):
        d = self._get(uuid)
        lv, cf = self._defs(d, live, config)
        return d, lv, cf

    def _store(self, d, lv_new, cf_new) -> None:
        for new in (lv_new, cf_new):
            if new is not None:
                new._normalized = False
                self._normalized(new)
        if lv_new is not None:
            d.live = lv_new
        if cf_new is not None:
            d.config = cf_new

    def attach_device(self, uuid: str, xml: str, *, live: bool, config: bool, source: str = "<device>") -> dict:
        from virtctl.xml import devices

        el = devices.parse_device(xml, source)
        d, lv, cf = self._hotplug_defs(uuid, live, config)
        devices.prepare_new(el)
        new_lv = devices.attached(lv, el, source=source) if lv is not None else None
        new_cf = devices.attached(cf, el, source=source) if cf is not None else None
        self._store(d, new_lv, new_cf)
        return {"alias": devices.alias_of(el), "mac": devices.mac_of(el)}

    def detach_device(self, uuid: str, xml: str, *, live: bool, config: bool, source: str = "<device>") -> dict:
        from virtctl.xml import devices

        el = devices.parse_device(xml, source)
        d, lv, cf = self._hotplug_defs(uuid, live, config)
        new_lv = devices.detached(lv, el) if lv is not None else None
        new_cf = devices.detached(cf, el) if cf is not None else None
        self._store(d, new_lv and new_lv[0], new_cf and new_cf[0])
        removed = (new_lv or new_cf)[1]
        return {"device": removed.tag, "alias": devices.alias_of(removed)}

    def detach_device_alias(self, uuid: str, alias: str, *, live: bool, config: bool) -> dict:
        from virtctl.xml import devices

        d, lv, cf = self._hotplug_defs(uuid, live, config)
        new_lv = devices.detached_alias(lv, alias) if lv is not None else None
        new_cf = devices.detached_alias(cf, alias) if cf is not None else None
        self._store(d, new_lv and new_lv[0], new_cf and new_cf[0])
        return {"device": (new_lv or new_cf)[1].tag, "alias": alias}

    def update_device(self, uuid: str, xml: str, *, live: bool, config: bool, force: bool = False,
                      source: str = "<device>") -> dict:
        from virtctl.xml import devices

        el = devices.parse_device(xml, source)
        d, lv, cf = self._hotplug_defs(uuid, live, config)
        new_lv = devices.updated(lv, el, source=source) if lv is not None else None
        new_cf = devices.updated(cf, el, source=source) if cf is not None else None
        self._store(d, new_lv and new_lv[0], new_cf and new_cf[0])
        return {"device": el.tag, "alias": devices.alias_of((new_lv or new_cf)[1])}
