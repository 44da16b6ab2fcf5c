"""The driver's hotplug operations: one domain lock around everything; the
persistent definition checked (validated and built by the argv builder)
before QEMU is touched, the live change made over QMP, then both written
(the live one as QEMU now has it, with aliases; the persistent one with
the atomic write)."""
from __future__ import annotations

from virtctl.drivers.qemu import runtime as rt
from virtctl.errors import NotSupported
from virtctl.lazy import lazy

devices = lazy("virtctl.xml.devices")  # lxml: not for list/dominfo
xmlapi = lazy("virtctl.xml.xmlapi")

# what a running domain takes and gives back (the rest: --config only)
LIVE_KINDS = ("disk", "interface", "rng", "channel")

def _check_buildable(state, uuid: str, definition) -> None:
    """The persistent definition must still start: the argv builder's refusals now."""
    from virtctl.drivers.qemu.argv import build_argv

    build_argv(definition, state.runtime_paths(uuid))


class QemuHotplugMixin:
    def _hotplug_view(self, uuid: str, live: bool, config: bool):
        v = self._checked_view(uuid, locked=True)
        do_live, do_config = self._targets(v, live, config)
        return v, do_live, do_config

    def _run_of(self, uuid: str, v):
        return rt.RunningDomain(self.state, uuid, v.probe.record)

    def attach_device(self, uuid: str, xml: str, *, live: bool, config: bool, source: str = "<device>") -> dict:
        from virtctl.drivers.qemu.hotplug import config as persistent

        el = devices.parse_device(xml, source)
        devices.prepare_new(el)
        with rt.domain_lock(self.state, uuid):
            v, do_live, do_config = self._hotplug_view(uuid, live, config)
            if do_live and el.tag not in LIVE_KINDS:
                raise NotSupported(f"unsupported configuration: hotplug of <{el.tag}> is not supported "
                                   f"(only {', '.join(LIVE_KINDS[:-1])} and {LIVE_KINDS[-1]} are; "
                                   "--config changes the persistent definition)",
                                   detail={"driver": "qemu", "feature": f"attach-device {el.tag}"})
            new_cfg = None
            if do_config:
                cfg_el = xmlapi.copy(el)
                persistent.check_attach(v.config, cfg_el)
                new_cfg = devices.attached(v.config, cfg_el, source=source)
                _check_buildable(self.state, uuid, new_cfg)
            alias = None
            if do_live:
                from virtctl.drivers.qemu.hotplug import disk

                new_live = devices.attached(v.live, el, source=source)
                run = self._run_of(uuid, v)
                if el.tag in ("rng", "channel"):
                    from virtctl.drivers.qemu.hotplug import chardev

                    persistent.check_attach(v.live, xmlapi.copy(el))
                    alias = chardev.attach(self.state, run, new_live, el)
                else:
                    (disk.attach_disk if el.tag == "disk" else disk.attach_interface)(self.state, run, new_live, el)
                self._save_live(uuid, new_live)
                run.update(hotplug=None)
                if alias is None:
                    found = devices.find_match(new_live.root, el)
                    alias = devices.alias_of(found if found is not None else el)
            if new_cfg is not None:
                self._write_config(new_cfg)
        return {"alias": alias, "mac": devices.mac_of(el)}

    def _detach(self, uuid: str, live: bool, config: bool, find, tag: str | None = None) -> dict:
        with rt.domain_lock(self.state, uuid):
            v, do_live, do_config = self._hotplug_view(uuid, live, config)
            if do_live and tag is not None and tag not in LIVE_KINDS:
                raise NotSupported(f"this function is not supported by the connection driver: live detach of <{tag}>",
                                   detail={"driver": "qemu", "feature": f"detach-device {tag}"})
            new_cfg = find(v.config) if do_config else None
            removed = None
            if do_live:
                from virtctl.drivers.qemu.hotplug import disk

                new_live, removed = find(v.live)
                disk.detach(self.state, self._run_of(uuid, v), removed)  # (rng, channel: chardev.py's backends)
                self._save_live(uuid, new_live)
            if new_cfg is not None:
                self._write_config(new_cfg[0])
                removed = removed if removed is not None else new_cfg[1]
        return {"device": removed.tag, "alias": devices.alias_of(removed)}

    def detach_device(self, uuid: str, xml: str, *, live: bool, config: bool, source: str = "<device>") -> dict:
        from virtctl.drivers.qemu.hotplug import config as persistent

        el = devices.parse_device(xml, source)
        return self._detach(uuid, live, config, lambda d: persistent.detached(d, el), tag=el.tag)

    def detach_device_alias(self, uuid: str, alias: str, *, live: bool, config: bool) -> dict:
        return self._detach(uuid, live, config, lambda d: devices.detached_alias(d, alias))

    def update_device(self, uuid: str, xml: str, *, live: bool, config: bool, force: bool = False,
                      source: str = "<device>") -> dict:
        el = devices.parse_device(xml, source)
        with rt.domain_lock(self.state, uuid):
            v, do_live, do_config = self._hotplug_view(uuid, live, config)
            new_cfg = devices.updated(v.config, el, source=source) if do_config else None
            if new_cfg is not None:
                _check_buildable(self.state, uuid, new_cfg[0])
            alias = None
            if do_live:
                new_live, old = devices.updated(v.live, el, source=source)
                if el.tag == "interface":
                    # the live definition keeps what QEMU has (alias, target, the
                    # resolved bridge): only the link state changes in it
                    _interface_link(self, self._run_of(uuid, v), old, el)
                    from virtctl.xml import iflink

                    new_live = v.live
                    iflink.set_state(devices.find_match(new_live.root, el), iflink.state_of(el))
                else:
                    from virtctl.drivers.qemu.hotplug import media

                    media.change(self.state, self._run_of(uuid, v), new_live, old, force=force)
                self._save_live(uuid, new_live)
                alias = devices.alias_of(old)
            if new_cfg is not None:
                self._write_config(new_cfg[0])
        return {"device": el.tag, "alias": alias}


# what a live <interface> update may leave out or carry as QEMU has it: the
# live definition's own additions (alias, PCI address, tap name, the bridge a
# network resolved to); anything else given must be what is running
_LIVE_ONLY = {"alias", "address", "target", "link"}


def _differs(old, new) -> str | None:
    """The first element of ``new`` (an <interface>) that is not what ``old``
    has, or None: only <link state> changes live (QEMU's set_link), as in libvirt."""
    from virtctl.xml import xmlapi

    for child in new:
        if not xmlapi.is_element(child) or child.tag in _LIVE_ONLY:
            continue
        have = old.find(child.tag)
        if have is None:
            return child.tag
        a, b = dict(have.attrib), dict(child.attrib)
        if child.tag == "source" and old.get("type") == "network":
            a.pop("bridge", None)
            b.pop("bridge", None)
        if a != b or len(have) != len(child) or \
                [xmlapi.tostring(x) for x in have] != [xmlapi.tostring(x) for x in child]:
            return child.tag
    return None


def _interface_link(drv, run, old, el) -> None:
    """update-device of a running guest's interface: its link state over QMP
    ``set_link`` (device id: its alias); any other change is NOT_SUPPORTED,
    naming the element (detach and attach it instead)."""
    from virtctl.xml import iflink

    what = _differs(old, el)
    if what is not None:
        raise NotSupported(f"Operation not supported: cannot modify network device <{what}> of a running "
                           "domain (only <link state> changes live; detach and attach the interface instead)",
                           detail={"driver": "qemu", "feature": f"update-device interface <{what}>"})
    want = iflink.state_of(el)
    if want != iflink.state_of(old):
        alias = old.find("alias")
        if alias is None or not alias.get("name"):
            raise NotSupported("Operation not supported: the interface has no alias to address it by",
                               detail={"driver": "qemu", "feature": "update-device interface"})
        drv._qmp(run, "set_link", {"name": alias.get("name"), "up": want == "up"}, "update-device")
