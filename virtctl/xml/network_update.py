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
SECTIONS = ("ip-dhcp-host", "ip-dhcp-range", "dns-host", "portgroup", "forward-interface")


def _invalid(message: str) -> OperationInvalid:
    return OperationInvalid("Requested operation is not valid: " + message)


def _parse_item(xml: str, tag: str, network: str | None = None):
    from virtctl.xml import xmlapi

    el = xmlapi.parse(xml, source="<net-update>")
    if el.tag != tag:
        where = f" '{network}'" if network is not None else ""
        raise XMLError(f"unexpected element <{el.tag}>, expecting <{tag}>, while updating network{where}")
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


def _portgroup(root, command, xml, parent_index, name):
    """Matched by name; at most one default='yes' (libvirt's words)."""
    new = _parse_item(xml, "portgroup", name)
    pname = new.get("name")
    if not pname:
        raise XMLError("Missing required name attribute in portgroup")
    groups = root.findall("portgroup")
    match = [g for g in groups if g.get("name") == pname]
    if command in ("modify", "delete") and not match:
        raise _invalid(f"couldn't find a portgroup entry in network '{name}' matching <portgroup name='{pname}'>")
    if command not in ("modify", "delete") and match:
        raise _invalid(f"there is an existing portgroup entry in network '{name}' that matches "
                       f"\"<portgroup name='{pname}'>\"")
    if command != "delete" and new.get("default") == "yes":
        if any(g.get("default") == "yes" and g.get("name") != pname for g in groups):
            raise _invalid(f"a different portgroup entry in network '{name}' is already set as the default. "
                           "Only one default is allowed.")
    if command == "delete":
        root.remove(match[0])
    elif command == "modify":
        match[0].addprevious(new)
        root.remove(match[0])
    else:
        _insert(root, new, command, before_tags=("virtualport", "bandwidth", "vlan", "port"))


def _forward_interface(root, command, xml, parent_index, name):
    """<forward><interface dev=.../>: added or deleted (matched by dev), never
    modified; <forward dev> follows the first one, as libvirt formats it."""
    from virtctl.xml import xmlapi

    new = _parse_item(xml, "interface", name)
    dev = new.get("dev")
    if not dev:
        raise XMLError("missing dev attribute in <interface> element")
    if command == "modify":
        from virtctl.errors import NotSupported

        raise NotSupported("Operation not supported: forward interface entries cannot be modified, "
                           "only added or deleted", detail={"feature": "net-update modify forward-interface"})
    fwd = root.find("forward")
    ifaces = fwd.findall("interface") if fwd is not None else []
    match = [i for i in ifaces if i.get("dev") == dev]
    if command == "delete":
        if not match:
            raise _invalid(f"couldn't find an interface entry in network '{name}' matching <interface dev='{dev}'>")
        fwd.remove(match[0])
    else:
        if match:
            raise _invalid(f"there is an existing interface entry in network '{name}' that matches "
                           f"\"<interface dev='{dev}'>\"")
        if fwd is None:
            fwd = xmlapi.element("forward", {"mode": "nat"})  # (libvirt: a network without <forward> is isolated)
            root.insert(0, fwd)
        for k in list(new.attrib):
            if k != "dev":
                del new.attrib[k]  # connections: run-time state, not kept
        _insert(fwd, new, command, before_tags=("pf", "address"))
        if fwd.get("mode", "nat") in ("nat", "route") and len(fwd.findall("interface")) > 1:
            raise XMLError(f"multiple forwarding interfaces specified for network '{name}', only one is supported")
    first = fwd.find("interface")
    attrs = [(k, v) for k, v in fwd.attrib.items() if k != "dev"]
    fwd.attrib.clear()
    if first is not None:
        fwd.set("dev", first.get("dev"))
    for k, v in attrs:
        fwd.set(k, v)


_HANDLERS = {"ip-dhcp-host": _dhcp_host, "ip-dhcp-range": _dhcp_range, "dns-host": _dns_host,
             "portgroup": _portgroup, "forward-interface": _forward_interface}


def apply(root, command: str, section: str, xml: str, parent_index: int | None, name: str) -> None:
    if command not in COMMANDS:
        raise InvalidArg(f"unrecognized command name '{command}'")
    handler = _HANDLERS.get(section)
    if handler is None:
        raise not_supported("any", f"net-update {section}")
    handler(root, command, xml, parent_index, name)
