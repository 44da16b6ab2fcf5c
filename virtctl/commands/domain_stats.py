"""Display, input, monitor and statistics: domdisplay, screenshot, send-key,
qemu-monitor-command, dommemstat, domblkstat."""
from __future__ import annotations

import os

import click

from virtctl.cli.options import (Number, argument, check_live_config, command, domain_arg, live_config_current,
                                 option, positional)
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg


@command("domdisplay", help="""Print the URI of a running domain's graphical display.

\b
Example:
  virtctl domdisplay web1        # vnc://127.0.0.1:0""")
@domain_arg(completer="domain:running")
@option("--type", "type_", metavar="TYPE", help="select particular graphical display (vnc)", completer="enum:vnc",
        positional=True)
@click.option("--include-password", is_flag=True, help="includes the password into the connection URI if available")
@click.option("--all", "all_", is_flag=True, help="show all possible graphical displays")
@pass_session
def domdisplay(session, domain, type_, include_password, all_):
    dom = session.domain(domain)
    uri = dom.display(type=type_)
    # virsh prints the URI without a newline of its own: the command's closing line ends it
    session.emit({"domain": dom.name, "uri": uri}, uri)


@command("screenshot", help="""Save a screenshot of a running domain's screen (PPM, as QEMU writes it; PNG on the test driver).

Without FILE the name is DOMAIN-YYYY-MM-DD-HH:MM:SS.ppm (.png for a PNG) in the current directory.

\b
Example:
  virtctl screenshot web1 /tmp/web1.ppm""")
@domain_arg(completer="domain:running")
@positional("file", required=False, help="where to store the screenshot", completer="file")
@option("--screen", type=Number(minimum=0), default=0, metavar="N", help="ID of a screen to take screenshot of",
        completer="none", positional=True)
@pass_session
def screenshot(session, domain, file, screen):
    if screen < 0:
        raise InvalidArg(f"invalid screen ID '{screen}'")
    dom = session.domain(domain)
    named = bool(file)
    if not named:
        import time

        file = f"{dom.name}-{time.strftime('%Y-%m-%d-%H:%M:%S')}.ppm"
    mime = dom.screenshot(file, screen=screen)
    if not named and mime == "image/png":  # as virsh: the made-up name ends as the type says
        import os

        os.replace(file, file[:-len(".ppm")] + ".png")
        file = file[:-len(".ppm")] + ".png"
    # virsh's message has no newline of its own: the command's closing empty line ends it
    session.emit({"domain": dom.name, "file": file, "mime": mime},
                 f"Screenshot saved to {file}, with type of {mime}", extra=True)


_CODESETS = ("linux", "xt", "atset1", "xt_kbd", "usb", "win32", "rfb", "qnum")


@command("send-key", help="""Send keystrokes to a running domain (pressed together, then released).

Keys are names of the codeset (linux: KEY_A, KEY_ENTER, KEY_LEFTCTRL ...;
win32: VK_RETURN ...) or numbers (decimal or 0x hex).

\b
Examples:
  virtctl send-key web1 KEY_LEFTCTRL KEY_LEFTALT KEY_DELETE
  virtctl send-key web1 --codeset xt 0x1c""")
@domain_arg(completer="domain:running")
@option("--codeset", default="linux", metavar="CODESET", help=f"the codeset of keycodes ({', '.join(_CODESETS)})",
        completer="enum:" + "|".join(_CODESETS))
@option("--holdtime", type=Number(minimum=0), default=0, metavar="MS", help="the time (in milliseconds) how long the keys will be held",
        completer="none")
@argument("keycode", nargs=-1, required=True, completer="none")
@pass_session
def send_key(session, domain, codeset, holdtime, keycode):
    from virtctl import keycodes as kc

    if not keycode:
        raise click.UsageError("command 'send-key' requires <keycode> option")
    if holdtime < 0:
        raise InvalidArg(f"invalid value of --holdtime: '{holdtime}'")
    try:
        codes = [kc.parse(codeset, k) for k in keycode]
    except kc.KeycodeError as exc:
        raise InvalidArg(str(exc)) from None
    dom = session.domain(domain)
    dom.send_key(codes, codeset=codeset, holdtime=holdtime)
    session.done(dom, "", "send-key", keycodes=codes, codeset=codeset)  # virsh prints nothing


def qmp_wrap(words: tuple[str, ...] | list[str]) -> str:
    """virsh 9's rules for qemu-monitor-command's words: a JSON object is sent
    as it is; otherwise the first word is the command name and the others
    its arguments, either one JSON object (``'{"a":1}'``) or ``"key":value``
    members (``'"a":1' '"b":"x"'``).  Anything else is sent as given (QEMU
    answers that it is not JSON)."""
    import json

    full = " ".join(words)
    try:
        if isinstance(json.loads(full), dict):
            return full
    except ValueError:
        pass
    req: dict = {"execute": words[0]}
    if len(words) > 1:
        args = None
        for text in (" ".join(words[1:]), "{" + ",".join(words[1:]) + "}"):
            try:
                args = json.loads(text)
            except ValueError:
                continue
            break
        if not isinstance(args, dict):
            return full
        req["arguments"] = args
    return json.dumps(req, separators=(",", ":"))


def _pass_fds(text: str | None) -> list[int]:
    """virsh's --pass-fds N,M,...: descriptors of this process, sent along."""
    if text is None:
        return []
    fds = []
    for word in text.split(","):
        try:
            fd = int(word, 10)
        except ValueError:
            raise InvalidArg(f"Unable to parse FD number '{word}'") from None
        try:
            os.fstat(fd)
        except OSError:
            raise InvalidArg(f"invalid argument: file descriptor {fd} is not open") from None
        fds.append(fd)
    return fds


@command("qemu-monitor-command", help="""Send a command to QEMU's monitor (QMP, or HMP with --hmp).

CMD is a QMP JSON object, or (as in virsh 9) a command name followed by
its arguments, which are wrapped into one: either one JSON object or
"key":value members (see the examples).  --pass-fds N,M sends this
process's open descriptors N and M along (SCM_RIGHTS), for add-fd or getfd.
For debugging: what is done this way is not known
to virtctl's state.

\b
Examples:
  virtctl qemu-monitor-command web1 query-status --pretty
  virtctl qemu-monitor-command web1 '{"execute":"query-status"}' --return-value
  virtctl qemu-monitor-command web1 block-resize '"node-name":"n1"' '"size":1048576'
  virtctl qemu-monitor-command web1 --hmp info status
  virtctl qemu-monitor-command web1 --pass-fds 3 add-fd 3</tmp/f""")
@domain_arg(completer="domain:running")
@click.option("--hmp", is_flag=True, help="command is in human monitor protocol")
@click.option("--pretty", is_flag=True, help="pretty-print any qemu monitor protocol output")
@click.option("--return-value", is_flag=True, help="extract the value of the 'return' key from the returned string")
@option("--pass-fds", metavar="N,M,...", help="pass file descriptors N,M,... along with the command",
        completer="none")
@argument("cmd", nargs=-1, required=True, completer="none")
@pass_session
def qemu_monitor_command(session, domain, hmp, pretty, return_value, pass_fds, cmd):
    import json

    if not cmd:
        raise click.UsageError("command 'qemu-monitor-command' requires <cmd> option")
    if hmp and pretty:
        raise click.UsageError("Options --hmp and --pretty are mutually exclusive")
    if hmp and return_value:
        raise click.UsageError("Options --hmp and --return-value are mutually exclusive")
    dom = session.domain(domain)
    fds = _pass_fds(pass_fds)
    text = " ".join(cmd) if hmp else qmp_wrap(cmd)
    reply = dom.monitor_command(text, hmp=hmp, fds=fds)
    if hmp:
        session.emit({"domain": dom.name, "output": reply}, reply if reply.endswith("\n") else reply + "\n")
        return
    obj = json.loads(reply)
    if return_value:
        if not isinstance(obj, dict) or "return" not in obj:
            from virtctl.errors import OperationFailed

            raise OperationFailed("'return' member missing", detail={"reply": obj})
        obj = obj["return"]
    text = json.dumps(obj, indent=2) if pretty else json.dumps(obj, separators=(",", ":"))
    session.emit({"domain": dom.name, "reply": obj}, text + "\n")


def _period(text: str) -> int:
    """virsh's int option: a decimal that fits in 32 bits, then >= 0."""
    try:
        value = int(text, 10)
    except ValueError:
        value = None
    if value is None or not -2**31 <= value < 2**31 or text.strip() != text or "_" in text:
        raise InvalidArg(f"Numeric value '{text}' for <period> option is malformed or out of range")
    if value < 0:
        raise InvalidArg(f"Invalid collection period value '{value}'")
    return value


@command("dommemstat", help="""Show memory statistics of a running domain (KiB, fault counts).

With --period N, set instead how often (seconds) the guest updates them
(0: never): on the running domain (--live), on the definition for the
next boot (--config), or on the current one (the default).  Guest
figures need a balloon device with a driver in the guest and a period
(<memballoon><stats period='N'/>); figures the guest has not given are
not shown; 'rss' is the QEMU process's resident memory.

\b
Examples:
  virtctl dommemstat web1
  virtctl dommemstat web1 --period 5 --live --config""")
@domain_arg(completer="domain:running")
@option("--period", metavar="SECONDS", help="period in seconds to set collection", completer="none")
@live_config_current
@pass_session
def dommemstat(session, domain, period, config, live, current):
    live, config = check_live_config(current, live, config)
    dom = session.domain(domain)
    if period is not None:
        seconds = _period(period)
        dom.set_memory_stats_period(seconds, live=live, config=config)
        session.done(dom, "", "memory-stats-period", period=seconds)  # virsh prints nothing
        return
    stats = dom.memory_stats()
    session.emit(stats, "".join(f"{k} {v}\n" for k, v in stats.items()))


# virsh's fields in its order, each with its --human label
_FIELDS = (("rd_req", "number of read operations:"), ("rd_bytes", "number of bytes read:"),
           ("wr_req", "number of write operations:"), ("wr_bytes", "number of bytes written:"),
           ("errs", "error count:"), ("flush_operations", "number of flush operations:"),
           ("rd_total_times", "total duration of reads (ns):"),
           ("wr_total_times", "total duration of writes (ns):"),
           ("flush_total_times", "total duration of flushes (ns):"))


@command("domblkstat", help="""Show block device statistics of a running domain.

DEVICE is a disk's target (vda) or source path, printed as given.
Without DEVICE, the sums over all its disks (the QEMU driver; libvirt's
test driver, and so virtctl's, has none).  Fields are those the driver
reports: the test driver's rd_req, rd_bytes, wr_req, wr_bytes, errs;
QEMU's rd/wr requests and bytes, flushes and total times in ns.

\b
Example:
  virtctl domblkstat web1 vda --human""")
@domain_arg(completer="domain:running")
@positional("device", required=False, help="block device (target name like vda, or source path)",
            completer="none")
@click.option("--human", is_flag=True, help="print a more human readable output")
@pass_session
def domblkstat(session, domain, device, human):
    dom = session.domain(domain)
    disks = dom.block_stats(device or None)
    keys = [k for k, _ in _FIELDS if all(k in d for d in disks)] if disks else []
    stats = {k: sum(d[k] for d in disks) for k in keys}
    name = device or ""
    if session.json:
        session.emit({"domain": dom.name, "device": device or None, **stats,
                      "disks": disks if not device else None})
        return
    # virsh: "DEVICE FIELD VALUE", or "Device: DEVICE" then " LABEL VALUE" (the
    # device is the empty string without DEVICE, so the lines start with a space)
    if human:
        lines = [f"Device: {name}"] + [f" {label:<31} {stats[k]}" for k, label in _FIELDS if k in stats]
    else:
        lines = [f"{name} {k} {stats[k]}" for k, _ in _FIELDS if k in stats]
    session.print("\n".join(lines))
