"""The guest agent's commands: qemu-agent-command, guest-agent-timeout,
guestinfo, domfsinfo, domfsfreeze, domfsthaw, domfstrim, domhostname,
set-user-password, guestvcpus (virsh's options, output and words)."""
from __future__ import annotations

import click

from virtctl.cli import output
from virtctl.cli.options import (Number, argument, command, domain_arg, mutually_exclusive, option, positional,
                                 requires)
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg, UsageError

_BLANKS = " \t\n\v\f\r"


class _NumberText(Number):
    """A number option (virsh's parser says "expected syntax: --timeout <number>")
    whose text is converted by the command itself, after the domain is looked
    up, as virsh does (``_int``)."""

    def convert(self, value, param, ctx):
        return value


def _int(text: str, name: str, *, unsigned: bool = False, bits: int = 32) -> int:
    """virsh's integer option (virStrToLong_i / _ull): decimal, leading blanks
    and a sign allowed, nothing after; an unsigned one takes no '-' at all."""
    body = text.lstrip(_BLANKS)
    digits = body[1:] if body[:1] in "+-" else body
    ok = digits.isascii() and digits.isdigit() and not (unsigned and body.startswith("-"))
    value = int(body) if ok else None
    lo, hi = (0, 2**bits - 1) if unsigned else (-2**(bits - 1), 2**(bits - 1) - 1)
    if value is None or not lo <= value <= hi:
        raise InvalidArg(f"Numeric value '{text}' for <{name}> option is malformed or out of range",
                         detail={"option": name, "value": text})
    return value


def _param_text(v) -> str:
    """A typed parameter's value as virsh prints it (vshGetTypedParamValue)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.6f}"
    return str(v)


class _Number(str):
    """A JSON number kept as written (libvirt prints numbers as it parsed them)."""


def _libvirt_json(text: str, pretty: bool) -> str:
    """JSON text as libvirt's virJSONValueToString prints it: compact (no blanks),
    or pretty (two-space indents, "key": value, an empty object or array as "{",
    an empty line and "}", a newline at the end); UTF-8 and '/' as they are,
    numbers as written."""
    import json

    def fmt(v, depth: int) -> str:
        if isinstance(v, _Number):
            return str(v)
        if not isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, dict):
            items = [f"{json.dumps(k, ensure_ascii=False)}{': ' if pretty else ':'}{fmt(x, depth + 1)}"
                     for k, x in v.items()]
            opening, closing = "{", "}"
        else:
            items = [fmt(x, depth + 1) for x in v]
            opening, closing = "[", "]"
        if not pretty:
            return opening + ",".join(items) + closing
        inner, outer = "  " * (depth + 1), "  " * depth
        return opening + "\n" + ",\n".join(inner + i for i in items) + "\n" + outer + closing

    out = fmt(json.loads(text, parse_int=_Number, parse_float=_Number), 0)
    return out + "\n" if pretty else out


@command("qemu-agent-command", help="""Send a command to the guest agent (qemu-ga) of a running domain.

CMD is a JSON object, given whole or in words that are joined with
spaces; the agent's answer is printed as virsh prints it,
{"return":...} (--pretty: indented).  --timeout N waits N seconds for the
answer, --async does not wait, --block waits forever; without them the
domain's guest-agent-timeout applies.  For debugging: what is done this
way is not known to virtctl.

\b
JSON: {"domain", "return": the answer's return value, parsed}

\b
Examples:
  virtctl qemu-agent-command web1 '{"execute":"guest-ping"}'
  virtctl qemu-agent-command web1 --pretty '{"execute":"guest-get-osinfo"}'
  virtctl qemu-agent-command web1 --timeout 10 '{"execute":"guest-fsfreeze-status"}'""")
@domain_arg(completer="domain:running")
@option("--timeout", type=_NumberText(), metavar="NUMBER", help="timeout seconds. must be positive.",
        completer="none")
@click.option("--async", "async_", is_flag=True, help="execute command without waiting for timeout")
@click.option("--block", is_flag=True, help="execute command without timeout")
@click.option("--pretty", is_flag=True, help="pretty-print the output")
@argument("cmd", nargs=-1, required=True, completer="none")
@pass_session
def qemu_agent_command(session, domain, timeout, async_, block, pretty, cmd):
    import json

    if not cmd:
        raise UsageError("command 'qemu-agent-command' requires <cmd> option")
    dom = session.domain(domain)
    seconds = None
    if timeout is not None:
        seconds = _int(timeout, "timeout")
        if seconds < 1:
            raise InvalidArg("timeout must be positive", detail={"timeout": seconds})
    if (timeout is not None) + async_ + block > 1:
        raise UsageError("timeout, async and block options are exclusive")
    if async_:
        seconds = 0  # VIR_DOMAIN_QEMU_AGENT_COMMAND_NOWAIT
    elif block:
        seconds = -2  # VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK
    value = dom.agent_command(" ".join(cmd), timeout=seconds)
    if not value.strip():  # --async: sent, no answer waited for
        session.emit({"domain": dom.name, "return": None})
        return
    parsed = json.loads(value)
    # a driver that gives the agent's whole answer ({"return": ...}) rather than its return value
    whole = isinstance(parsed, dict) and list(parsed) == ["return"]
    if whole:
        parsed = parsed["return"]
    if session.json:
        session.emit({"domain": dom.name, "return": parsed})
        return
    # virsh prints the agent's whole answer
    text = _libvirt_json(value if whole else '{"return":' + value + "}", pretty)
    session.print(text, end="" if pretty else "\n")


@command("guest-agent-timeout", help="""Set how long the guest agent's commands on a domain wait for an answer.

--timeout N: N seconds; -2 forever (the default when --timeout is not
given), -1 libvirt's default (5 seconds), 0 not at all.

\b
JSON: action document ("action": "agent-timeout", "timeout")

\b
Examples:
  virtctl guest-agent-timeout web1 --timeout 10
  virtctl guest-agent-timeout web1 --timeout -1""")
@domain_arg(completer="domain:running")
@option("--timeout", type=_NumberText(), metavar="NUMBER", help="timeout seconds.", completer="none")
@pass_session
def guest_agent_timeout(session, domain, timeout):
    dom = session.domain(domain)
    seconds = -2 if timeout is None else _int(timeout, "timeout")  # VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK
    dom.set_agent_timeout(seconds)
    session.done(dom, "", "agent-timeout", timeout=seconds)


# (option, GUEST_INFO_TYPES name, help), virsh's order
_INFO_TYPES = (("user", "users", "report active users"),
               ("os", "os", "report operating system information"),
               ("timezone", "timezone", "report timezone information"),
               ("hostname", "hostname", "report hostname"),
               ("filesystem", "filesystem", "report filesystem information"),
               ("disk", "disks", "report disk information"),
               ("interface", "interfaces", "report interface information"))


def _info_options(f):
    for opt, _name, text in reversed(_INFO_TYPES):
        f = click.option(f"--{opt}", f"type_{opt}", is_flag=True, help=text)(f)
    return f


@command("guestinfo", help="""Show what the guest agent reports about the guest: users, operating
system, timezone, hostname, filesystems, disks and interfaces.

Without an option, every kind the agent answers (those it cannot are left
out); a kind asked for that the agent cannot answer is an error.  One
"name : value" line per item, with libvirt's names (user.count,
os.pretty-name, fs.0.mountpoint, if.0.addr.0.addr, ...).

\b
JSON: {"domain", "info": {NAME: VALUE, ...}} (libvirt's names, in its order)

\b
Examples:
  virtctl guestinfo web1
  virtctl guestinfo web1 --os --hostname""")
@domain_arg(completer="domain:running")
@_info_options
@pass_session
def guestinfo(session, domain, **flags):
    types = tuple(name for opt, name, _ in _INFO_TYPES if flags.get(f"type_{opt}"))
    dom = session.domain(domain)
    params = dom.guest_info(types)
    if session.json:
        session.emit({"domain": dom.name, "info": dict(params)})
        return
    session.print("".join(f"{k:<20}: {_param_text(v)}\n" for k, v in params), end="")


@command("domfsinfo", help="""List the filesystems mounted in a running guest (via the guest agent):
mount point, device name in the guest, type, and the domain's disk targets
under it.

\b
JSON: {"domain", "filesystems": [{"mountpoint", "name", "fstype", "devaliases": [TARGET, ...]}]}

\b
Example:
  virtctl domfsinfo web1""")
@domain_arg(completer="domain:running")
@pass_session
def domfsinfo(session, domain):
    dom = session.domain(domain)
    with session.context("Unable to get filesystem information"):
        infos = dom.fs_info()
    if session.json:
        session.emit({"domain": dom.name, "filesystems": infos})
        return
    if not infos:
        # virsh's note, without a newline of its own: the command's closing line ends it
        session.extra("No filesystems are mounted in the domain", end="")
        return
    rows = [[i["mountpoint"], i["name"], i["fstype"], ",".join(i.get("devaliases") or [])] for i in infos]
    session.print(output.table(["Mountpoint", "Name", "Type", "Target"], rows, header=not session.quiet), end="")


@command("domfsfreeze", help="""Freeze the filesystems mounted in a running guest (via the guest agent),
e.g. before a snapshot of its disks made outside libvirt; domfsthaw
thaws them.  MOUNTPOINT (any number): only those; without: all.

\b
JSON: action document ("action": "fsfreeze", "filesystems": N frozen)

\b
Examples:
  virtctl domfsfreeze web1
  virtctl domfsfreeze web1 /var/lib/db --mountpoint /srv""")
@domain_arg(completer="domain:running")
@argument("mountpoint", nargs=-1, completer="none")
@pass_session
def domfsfreeze(session, domain, mountpoint):
    dom = session.domain(domain)
    with session.context("Unable to freeze filesystems"):
        n = dom.fs_freeze(mountpoint)
    session.done(dom, f"Froze {n} filesystem(s)", "fsfreeze", filesystems=n)


@command("domfsthaw", help="""Thaw the filesystems of a running guest that domfsfreeze froze
(via the guest agent).  MOUNTPOINT (any number): only those; without: all.

\b
JSON: action document ("action": "fsthaw", "filesystems": N thawed)

\b
Examples:
  virtctl domfsthaw web1
  virtctl domfsthaw web1 --mountpoint /srv""")
@domain_arg(completer="domain:running")
@argument("mountpoint", nargs=-1, completer="none")
@pass_session
def domfsthaw(session, domain, mountpoint):
    dom = session.domain(domain)
    with session.context("Unable to thaw filesystems"):
        n = dom.fs_thaw(mountpoint)
    session.done(dom, f"Thawed {n} filesystem(s)", "fsthaw", filesystems=n)


@command("domfstrim", help="""Discard the unused blocks of a running guest's filesystems (fstrim, via
the guest agent): all of them, or the one mounted at --mountpoint.
--minimum BYTES: free ranges shorter than this may be skipped (a hint).

\b
JSON: action document ("action": "fstrim", "mountpoint": PATH or null, "minimum")

\b
Examples:
  virtctl domfstrim web1
  virtctl domfstrim web1 --mountpoint / --minimum 1048576""")
@domain_arg(completer="domain:running")
@option("--minimum", type=_NumberText(), metavar="NUMBER", help="Just a hint to ignore contiguous free ranges smaller than this (Bytes)",
        completer="none", positional=True)
@option("--mountpoint", metavar="STRING", help="which mount point to trim", completer="none", positional=True)
@pass_session
def domfstrim(session, domain, minimum, mountpoint):
    dom = session.domain(domain)
    least = 0 if minimum is None else _int(minimum, "minimum", unsigned=True, bits=64)
    with session.context("Unable to invoke fstrim"):
        dom.fs_trim(mountpoint, minimum=least)
    session.done(dom, "", "fstrim", mountpoint=mountpoint, minimum=least)


_SOURCES = ("lease", "agent")


@command("domhostname", help="""Print a running domain's hostname.

--source agent asks the guest agent, --source lease looks in the DHCP
leases of the domain's networks; without it the driver chooses.

\b
JSON: {"domain", "hostname"}

\b
Examples:
  virtctl domhostname web1
  virtctl domhostname web1 --source agent""")
@domain_arg(completer="domain:running")
@option("--source", metavar="STRING", help="address source: 'lease' or 'agent'", completer="enum:lease|agent",
        positional=True)
@pass_session
def domhostname(session, domain, source):
    dom = session.domain(domain)
    if source is not None and source not in _SOURCES:
        raise InvalidArg(f"Unknown data source '{source}'", detail={"source": source})
    with session.context("failed to get hostname"):
        name = dom.guest_hostname(source=source)
    session.emit({"domain": dom.name, "hostname": name}, name + "\n")


@command("set-user-password", help="""Set the password of a user account in a running guest (via the guest
agent).  --encrypted: PASSWORD is already encrypted as the guest's
system expects (crypt(3), e.g. from `openssl passwd -6`).

\b
JSON: action document ("action": "password-set", "user", "encrypted"; never the password)

\b
Examples:
  virtctl set-user-password web1 root 's3cret'
  virtctl set-user-password web1 alice "$(openssl passwd -6 s3cret)" --encrypted""")
@domain_arg(completer="domain:running")
@positional("user", help="the username", completer="none")
@positional("password", help="the new password", completer="none")
@click.option("--encrypted", is_flag=True, help="the password is already encrypted")
@pass_session
def set_user_password(session, domain, user, password, encrypted):
    dom = session.domain(domain)
    dom.set_user_password(user, password, encrypted=encrypted)
    # virsh's message has no newline of its own: the command's closing line ends it
    session.done(dom, "Password set successfully for {user} in {domain}", "password-set", end="",
                 user=user, encrypted=encrypted)


@command("guestvcpus", help="""Show or change the guest's vCPUs as the guest sees them (via the guest
agent).  Without options: the vCPUs, those online and those that can be
taken offline.  --cpulist LIST with --enable or --disable brings those
online or offline (LIST as "1-3,^2").

\b
JSON: {"domain", "vcpus", "online", "offlinable"} (cpu lists as text);
      changing: action document ("action": "guestvcpus", "cpulist", "enable")

\b
Examples:
  virtctl guestvcpus web1
  virtctl guestvcpus web1 --cpulist 1-3 --disable""")
@domain_arg(completer="domain:running")
@option("--cpulist", metavar="STRING", help="list of cpus to enable or disable", completer="none",
        positional=True)
@click.option("--enable", is_flag=True, help="enable cpus specified by cpulist")
@click.option("--disable", is_flag=True, help="disable cpus specified by cpulist")
@mutually_exclusive("enable", "disable")
@requires("enable", "cpulist")
@requires("disable", "cpulist")
@pass_session
def guestvcpus(session, domain, cpulist, enable, disable):
    if cpulist is not None and not (enable or disable):
        raise UsageError("One of options --enable or --disable is required by option --cpulist")
    dom = session.domain(domain)
    if cpulist is not None:
        dom.set_guest_vcpus(cpulist, enable=enable)
        session.done(dom, "", "guestvcpus", cpulist=cpulist, enable=enable)
        return
    params = dom.guest_vcpus()
    if session.json:
        session.emit({"domain": dom.name, **dict(params)})
        return
    session.print("".join(f"{k:<15}: {_param_text(v)}\n" for k, v in params), end="")
