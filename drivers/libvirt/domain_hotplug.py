"""Device hotplug on a libvirt connection (attach-device, detach-device,
detach-device-alias, update-device and the commands built on them): a mixin
of domains.LibvirtDomainDriver (``self.lv``, ``self.conn``, ``self._dom``).

libvirt does the change and answers with its own errors (the device XML is
passed as given: libvirt parses it).  virtctl only reads the domain's XML
around the call for what the commands report (the alias, the MAC).

Flags: --live alone (and virsh's no-option default, which the commands turn
into live) is libvirt's legacy call (virDomainAttachDevice /
virDomainDetachDevice, which libvirt defines as AFFECT_LIVE), as virsh calls
it; otherwise the *Flags call with AFFECT_LIVE / AFFECT_CONFIG, or
AFFECT_CURRENT for neither.
"""
from __future__ import annotations

from virtctl.drivers.libvirt.errors import mapped
from virtctl.errors import VirtError


def _affect(lv, live: bool, config: bool) -> int:
    flags = lv.VIR_DOMAIN_AFFECT_CURRENT
    if live:
        flags |= lv.VIR_DOMAIN_AFFECT_LIVE
    if config:
        flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def _device(xml: str, source: str):
    """The device element of ``xml``, or None when virtctl cannot read it
    (libvirt then has said what is wrong, or has accepted what virtctl can't parse)."""
    from virtctl.xml import devices

    try:
        return devices.parse_device(xml, source)
    except VirtError:
        return None


class HotplugMixin:
    def _hotplug_root(self, d, live: bool, config: bool):
        """The definition the change is seen in: the running one unless only
        the persistent one changes (or the domain is not running)."""
        from virtctl.xml import xmlapi

        lv = self.lv
        with mapped(lv):
            inactive = (config and not live) or not d.isActive()
            return xmlapi.parse(d.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0))

    def _same_tag(self, root, tag: str) -> list:
        from virtctl.xml import xmlapi

        devs = root.find("devices")
        return [x for x in (devs if devs is not None else []) if xmlapi.is_element(x) and x.tag == tag]

    def attach_device(self, uuid: str, xml: str, *, live: bool, config: bool, source: str = "<device>") -> dict:
        from virtctl.xml import devices, xmlapi

        lv, d = self.lv, self._dom(uuid)
        el = _device(xml, source)
        before = None
        if el is not None:
            try:
                before = {xmlapi.tostring(x) for x in self._same_tag(self._hotplug_root(d, live, config), el.tag)}
            except VirtError:  # only for the report: the call below decides
                before = None
        with mapped(lv):
            if live and not config:
                d.attachDevice(xml)
            else:
                d.attachDeviceFlags(xml, _affect(lv, live, config))
        out = {"alias": None, "mac": devices.mac_of(el) if el is not None else None}
        if before is not None:
            try:
                new = [x for x in self._same_tag(self._hotplug_root(d, live, config), el.tag)
                       if xmlapi.tostring(x) not in before]
            except VirtError:
                new = []
            if len(new) == 1:
                out = {"alias": devices.alias_of(new[0]) if live else None,
                       "mac": devices.mac_of(new[0]) or out["mac"]}
        return out

    def _removed(self, d, live: bool, config: bool, find):
        try:
            return find(self._hotplug_root(d, live, config))
        except VirtError:  # only for the report: libvirt decides what is there
            return None

    def detach_device(self, uuid: str, xml: str, *, live: bool, config: bool, source: str = "<device>") -> dict:
        from virtctl.xml import devices

        lv, d = self.lv, self._dom(uuid)
        el = _device(xml, source)
        found = self._removed(d, live, config, lambda r: devices.find_match(r, el)) if el is not None else None
        with mapped(lv):
            if live and not config:
                d.detachDevice(xml)
            else:
                d.detachDeviceFlags(xml, _affect(lv, live, config))
        tag = found.tag if found is not None else el.tag if el is not None else None
        return {"device": tag, "alias": devices.alias_of(found) if found is not None else None}

    def detach_device_alias(self, uuid: str, alias: str, *, live: bool, config: bool) -> dict:
        from virtctl.xml import devices

        lv, d = self.lv, self._dom(uuid)
        found = self._removed(d, live, config, lambda r: devices.find_alias(r, alias))
        with mapped(lv):
            d.detachDeviceAlias(alias, _affect(lv, live, config))
        return {"device": found.tag if found is not None else None, "alias": alias}

    def update_device(self, uuid: str, xml: str, *, live: bool, config: bool, force: bool = False,
                      source: str = "<device>") -> dict:
        from virtctl.xml import devices

        lv, d = self.lv, self._dom(uuid)
        flags = _affect(lv, live, config) | (lv.VIR_DOMAIN_DEVICE_MODIFY_FORCE if force else 0)
        with mapped(lv):
            d.updateDeviceFlags(xml, flags)
        el = _device(xml, source)
        alias = None
        if el is not None:
            try:
                found = devices.find_match(self._hotplug_root(d, live, config), el)
                alias = devices.alias_of(found) if found is not None else None
            except VirtError:
                alias = None
        return {"device": el.tag if el is not None else None, "alias": alias}
