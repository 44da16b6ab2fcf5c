"""net-update's edits of a network definition (an lxml element), shared by
every driver that keeps network XML: the sections virtctl supports and
libvirt's matching rules for each, in libvirt's words.

``apply(root, command, section, xml, parent_index, name)`` changes ``root``
in place or raises (OPERATION_INVALID / INVALID_ARG / NOT_SUPPORTED / XML_ERROR)
without changing it.
"""
from __future__ import annotations

from virtctl.errors import InvalidArg, OperationInvalid, XMLError, not_supported

COMMANDS = ("add", "add-first", "add-last", "delete", "modify")
SECTIONS = ("ip-dhcp-host", "ip-dhcp-range", "dns-host")


def _invalid(message: str) -> OperationInvalid:
    return OperationInvalid("Requested operation is not valid: " + message)


def _parse_item(xml: str, tag: str):
    from virtctl.xml import xmlapi

    el = xmlapi.parse(xml, source="<net-update>")
    if el.tag != tag:
        raise XMLError(f"unexpected element <{el.tag}>, expecting <{tag}>, while updating network")
    return el


def _host_text(el) -> str:
    a = {k: el.get(k) or "(null)" for k in ("mac", "name", "ip")}
    return f"<host mac='{a['mac']}' name='{a['name']}' ip='{a['ip']}'/>"


def _ip(root, parent_index: int | None, name: str):
    ips = root.findall("ip")
    if parent_index is not None:
        if parent_index >= len(ips):
            raise InvalidArg(f"couldn't update dhcp host entry - no <ip> element found at index "
                       f"{parent_index} in network '{name}'")
        return ips[parent_index]
    for ip in ips:
        if ip.get("family", "ipv4") == "ipv4":
            return ip
    if ips:
        return ips[0]
    raise InvalidArg(f"can't update 'ip' section of network '{name}' - no <ip> element found")


def _insert(parent, el, command: str, before_tags: tuple[str, ...] = ()) -> None:
    """add-first: before the first sibling of its kind; add/add-last: after the last."""
    same = [c for c in parent if c.tag == el.tag]
    if command == "add-first" and same:
        same[0].addprevious(el)
    elif same:
        same[-1].addnext(el)
    else:
        nxt = next((c for c in parent if c.tag in before_tags), None)
        if nxt is not None:
            nxt.addprevious(el)
        else:
            parent.append(el)


def _same_host(h, new) -> bool:
    """libvirt's test for "the same DHCP host": any of mac, name, ip equal."""
    return any(new.get(k) and h.get(k) == new.get(k) for k in ("mac", "name", "ip"))


def _dhcp_host(root, command, xml, parent_index, name):
    from virtctl.xml import xmlapi

    new = _parse_item(xml, "host")
    ip = _ip(root, parent_index, name)
    dhcp = ip.find("dhcp")
    hosts = dhcp.findall("host") if dhcp is not None else []
    if command == "modify":
        match = [h for h in hosts if _same_host(h, new)]
        if not match:
            a = {k: new.get(k) or "(null)" for k in ("mac", "name", "ip")}
            raise _invalid(f"couldn't locate an existing dhcp host entry with \"mac='{a['mac']}'\" "
                           f"\"name='{a['name']}'\" \"ip='{a['ip']}'\" in network '{name}'")
        match[0].addprevious(new)
        dhcp.remove(match[0])
    elif command == "delete":
        def same(h):
            return all(h.get(k) == new.get(k) for k in ("mac", "name", "ip") if new.get(k))
        match = [h for h in hosts if same(h)]
        if not match:
            raise _invalid(f"couldn't locate a matching dhcp host entry in network '{name}'")
        dhcp.remove(match[0])
    else:
        for h in hosts:
            if _same_host(h, new):
                raise _invalid(f"there is an existing dhcp host entry in network '{name}' "
                               f"that matches \"{_host_text(new)}\"")
        if dhcp is None:
            dhcp = xmlapi.sub(ip, "dhcp")
        _insert(dhcp, new, command, before_tags=("bootp",))


def _dhcp_range(root, command, xml, parent_index, name):
    from virtctl.xml import xmlapi

    new = _parse_item(xml, "range")
    ip = _ip(root, parent_index, name)
    dhcp = ip.find("dhcp")
    ranges = dhcp.findall("range") if dhcp is not None else []
    match = [r for r in ranges if r.get("start") == new.get("start") and r.get("end") == new.get("end")]
    if command == "modify":
        raise not_supported("any", "net-update modify ip-dhcp-range")
    if command == "delete":
        if not match:
            raise _invalid(f"couldn't locate a matching dhcp range entry in network '{name}'")
        dhcp.remove(match[0])
        return
    if match:
        raise _invalid(f"there is an existing dhcp range entry in network '{name}' that matches "
                       f"\"<range start='{new.get('start')}' end='{new.get('end')}'/>\"")
    if dhcp is None:
        dhcp = xmlapi.sub(ip, "dhcp")
    _insert(dhcp, new, command, before_tags=("host", "bootp"))


def _dns_host(root, command, xml, parent_index, name):
    from virtctl.xml import xmlapi

    new = _parse_item(xml, "host")
    dns = root.find("dns")
    hosts = dns.findall("host") if dns is not None else []
    names = [h.text for h in new.findall("hostname")]
    if command != "delete" and not names:
        raise XMLError(f"Missing hostname in network '{name}' DNS HOST record")
    match = [h for h in hosts if h.get("ip") == new.get("ip")]
    if command == "modify":
        raise not_supported("any", "net-update modify dns-host")
    if command == "delete":
        if not match:
            raise _invalid(f"couldn't locate a matching DNS HOST record in network {name}")
        dns.remove(match[0])
        if not len(dns) and not dns.attrib:
            root.remove(dns)
        return
    if match:
        raise _invalid(f"there is already at least one DNS HOST record with a matching field "
                       f"in network {name}")
    if dns is None:
        dns = xmlapi.element("dns")
        nxt = root.find("ip")
        if nxt is not None:
            nxt.addprevious(dns)
        else:
            root.append(dns)
    _insert(dns, new, command, before_tags=("srv", "txt"))


_HANDLERS = {"ip-dhcp-host": _dhcp_host, "ip-dhcp-range": _dhcp_range, "dns-host": _dns_host}


def apply(root, command: str, section: str, xml: str, parent_index: int | None, name: str) -> None:
    if command not in COMMANDS:
        raise InvalidArg(f"unrecognized command name '{command}'")
    handler = _HANDLERS.get(section)
    if handler is None:
        raise not_supported("any", f"net-update {section}")
    handler(root, command, xml, parent_index, name)
