"""Display, input, monitor and statistics: domdisplay, screenshot, send-key,
qemu-monitor-command, dommemstat, domblkstat."""
from __future__ import annotations

import click

from virtctl.cli.options import Number, argument, command, domain_arg, option, positional
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
    session.emit({"domain": dom.name, "uri": uri}, uri + "\n")


@command("screenshot", help="""Save a screenshot of a running domain's screen (PPM, as QEMU writes it).

Without FILE the name is DOMAIN-YYYY-MM-DD-HH:MM:SS.ppm in the current directory.

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
    if not file:
        import time

        file = f"{dom.name}-{time.strftime('%Y-%m-%d-%H:%M:%S')}.ppm"
    mime = dom.screenshot(file, screen=screen)
    session.emit({"domain": dom.name, "file": file, "mime": mime},
                 f"Screenshot saved to {file}, with type of {mime}\n", extra=True)


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


@command("qemu-monitor-command", help="""Send a command to QEMU's monitor (QMP JSON, or HMP with --hmp).

For debugging: what is done this way is not known to virtctl's state.

\b
Examples:
  virtctl qemu-monitor-command web1 '{"execute":"query-status"}' --pretty
  virtctl qemu-monitor-command web1 --hmp info status""")
@domain_arg(completer="domain:running")
@click.option("--hmp", is_flag=True, help="command is in human monitor protocol")
@click.option("--pretty", is_flag=True, help="pretty-print any qemu monitor protocol output")
@click.option("--return-value", is_flag=True, help="extract the value of the 'return' key from the returned string")
@argument("cmd", nargs=-1, required=True, completer="none")
@pass_session
def qemu_monitor_command(session, domain, hmp, pretty, return_value, cmd):
    import json

    if not cmd:
        raise click.UsageError("command 'qemu-monitor-command' requires <cmd> option")
    if hmp and (pretty or return_value):
        raise click.UsageError("Options --hmp and --pretty/--return-value are mutually exclusive")
    dom = session.domain(domain)
    reply = dom.monitor_command(" ".join(cmd), hmp=hmp)
    if hmp:
        session.emit({"domain": dom.name, "output": reply}, reply if reply.endswith("\n") else reply + "\n")
        return
    obj = json.loads(reply)
    if return_value:
        if "return" not in obj:
            from virtctl.errors import OperationFailed

            raise OperationFailed(f"'return' key not found in the reply: {reply}")
        obj = obj["return"]
    text = json.dumps(obj, indent=2) if pretty else json.dumps(obj, separators=(",", ":"))
    session.emit({"domain": dom.name, "reply": obj}, text + "\n")


@command("dommemstat", help="""Show memory statistics of a running domain (KiB, fault counts).

Guest figures need a balloon device with a driver in the guest; 'rss' is
the QEMU process's resident memory.

\b
Example:
  virtctl dommemstat web1""")
@domain_arg(completer="domain:running")
@option("--period", type=int, metavar="SECONDS", help="period in seconds to set collection (not supported yet)",
        completer="none")
@click.option("--config", is_flag=True, help="affect next boot (with --period)")
@click.option("--live", is_flag=True, help="affect running domain (with --period)")
@click.option("--current", is_flag=True, help="affect current domain (with --period)")
@pass_session
def dommemstat(session, domain, period, config, live, current):
    if period is not None:
        from virtctl.errors import not_supported

        raise not_supported(session.conn.driver_name, "dommemstat --period")
    dom = session.domain(domain)
    stats = dom.memory_stats()
    session.emit(stats, "".join(f"{k} {v}\n" for k, v in stats.items()))


_HUMAN = (("rd_req", "number of read operations:"), ("rd_bytes", "number of bytes read:"),
          ("wr_req", "number of write operations:"), ("wr_bytes", "number of bytes written:"),
          ("flush_operations", "number of flush operations:"),
          ("rd_total_times", "total duration of reads (ns):"),
          ("wr_total_times", "total duration of writes (ns):"),
          ("flush_total_times", "total duration of flushes (ns):"), ("errs", "error:"))
_KEYS = [k for k, _ in _HUMAN]


@command("domblkstat", help="""Show block device statistics of a running domain.

Without DEVICE, the sums over all its disks.

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
    if device:
        name, stats = disks[0]["device"], {k: disks[0][k] for k in _KEYS}
    else:
        name, stats = "", {k: sum(d[k] for d in disks) for k in _KEYS}
    if session.json:
        session.emit({"domain": dom.name, "device": name or None, **stats,
                      "disks": disks if not device else None})
        return
    if human:
        lines = [f"Device: {name}"] + [f" {label:<31} {stats[k]}" for k, label in _HUMAN]
    else:
        lines = [f"{name} {k} {stats[k]}" for k in _KEYS]
    session.print("\n".join(lines))
