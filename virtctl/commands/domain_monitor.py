"""Domain statistics and monitoring: domstats, cpu-stats, vcpuinfo,
domblkerror, domcontrol, domtime, domjobinfo, domjobabort."""
from __future__ import annotations

import click

from virtctl.cli.options import argument, command, domain_arg, option, virsh_int
from virtctl.cli.session import pass_session
from virtctl.errors import InvalidArg

from virtctl.api.connection import STATS_GROUPS
_GROUP_HELP = {"state": "report domain state", "cpu-total": "report domain physical cpu usage",
               "balloon": "report domain balloon statistics", "vcpu": "report domain virtual cpu information",
               "interface": "report domain network interface information",
               "block": "report domain block device statistics", "perf": "report domain perf event statistics",
               "iothread": "report domain IOThread information", "memory": "report domain memory usage",
               "dirtyrate": "report domain dirty rate information", "vm": "report hypervisor-specific statistics"}
_LISTS = (("active", "list only active domains"), ("inactive", "list only inactive domains"),
          ("persistent", "list only persistent domains"), ("transient", "list only transient domains"),
          ("running", "list only running domains"), ("paused", "list only paused domains"),
          ("shutoff", "list only shutoff domains"), ("other", "list only domains in other states"))


def _stats_options(f):
    for name, _ in reversed(_LISTS):
        f = click.option(f"--list-{name}", f"list_{name}", is_flag=True, help=dict(_LISTS)[name])(f)
    for g in reversed(STATS_GROUPS):
        f = click.option(f"--{g}", "group_" + g.replace("-", "_"), is_flag=True, help=_GROUP_HELP[g])(f)
    return f


def _value_text(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.6f}"  # virsh prints a double's typed parameter as %f
    return str(v)


@command("domstats", help="""Print statistics of domains, one "key=value" line each.

Without a group option, every group the driver can fill.  Groups: --state,
--cpu-total, --balloon, --vcpu, --interface, --block (QEMU), --iothread
(test driver); --perf, --memory, --dirtyrate and --vm are accepted but
not filled.  --enforce makes a group the driver cannot fill an error.
The --list-* options keep the domains of the given kinds (options of one
kind are or-ed: active/inactive, persistent/transient,
running/paused/shutoff/other; kinds are and-ed), also of those named.

\b
Examples:
  virtctl domstats
  virtctl domstats web1 --cpu-total --block
  virtctl domstats --list-running --vcpu --json""")
@_stats_options
@click.option("--raw", is_flag=True, help="do not pretty-print the fields")
@click.option("--enforce", is_flag=True, help="enforce requested stats parameters")
@click.option("--backing", is_flag=True, help="add backing chain information to block stats")
@click.option("--nowait", is_flag=True, help="report only stats that are accessible instantly")
@argument("domain", nargs=-1, completer="domain:all")
@pass_session
def domstats(session, domain, raw, enforce, backing, nowait, **flags):
    groups = [g for g in STATS_GROUPS if flags.get("group_" + g.replace("-", "_"))]
    lists = {name for name, _ in _LISTS if flags.get(f"list_{name}")}
    doms = [session.domain(d) for d in domain] if domain else None
    records = session.conn.domain_stats(doms, groups=groups or None, lists=lists, enforce=enforce,
                                        backing=backing, nowait=nowait)
    if session.json:
        session.emit([{"domain": dom.name, "uuid": dom.uuid, "stats": dict(stats)} for dom, stats in records])
        return
    blocks = ["".join([f"Domain: '{dom.name}'\n", *(f"  {k}={_value_text(v)}\n" for k, v in stats)])
              for dom, stats in records]
    session.print("\n".join(blocks), end="")


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:.9f}"


@command("cpu-stats", help="""Show a domain's CPU time: per host CPU and in total.

--start N and --count M show M host CPUs from CPU N (no total unless
--total); --total alone, the total only.  Times are in seconds.

\b
Examples:
  virtctl cpu-stats web1
  virtctl cpu-stats web1 --total --json""")
@domain_arg(completer="domain:running")
@click.option("--total", is_flag=True, help="Show total statistics only")
@option("--start", metavar="NUMBER", help="Show statistics from this CPU", completer="none")
@option("--count", metavar="NUMBER", help="Number of shown CPUs at most", completer="none")
@pass_session
def cpu_stats(session, domain, total, start, count):
    start_n, count_n = virsh_int(start, "start"), virsh_int(count, "count")
    percpu = False
    if start_n is not None:
        if start_n < 0:
            raise InvalidArg("Invalid value for start CPU")
        percpu = True
    if count_n is not None:
        if count_n < 0:
            raise InvalidArg("Invalid value for number of CPUs to show")
        percpu = True
    if not total and not percpu:
        total = percpu = True
    dom = session.domain(domain)
    lines: list[str] = []
    doc: dict = {"domain": dom.name}
    with session.context("Failed to retrieve CPU statistics for domain '{name}'", dom):
        stats = dom.cpu_stats()
    if percpu and not stats["cpus"] and start_n is None and count_n is None:
        percpu = False  # the driver has no per-host-CPU figures (QEMU without a cgroup): the total only
    if percpu:
        cpus = stats["cpus"]
        if not cpus:
            from virtctl.errors import NotSupported

            raise NotSupported("this function is not supported by the connection driver: cpu-stats per host CPU",
                               detail={"feature": "cpu-stats --start/--count"})
        first = start_n or 0
        if first >= len(cpus):
            raise InvalidArg(f"Start CPU {first} is out of range (min: 0, max: {len(cpus) - 1})")
        n = count_n
        if n is None or n > len(cpus):
            if n is not None and n > len(cpus) and not session.json:
                lines.append(f"Only {len(cpus)} CPUs available to show")
            n = len(cpus) - first
        shown = [(first + i, cpus[first + i]) for i in range(n) if first + i < len(cpus)]
        doc["cpus"] = [{"cpu": i, **c} for i, c in shown]
        for i, c in shown:
            lines.append(f"CPU{i}:")
            lines += [f"\t{k:<12}{_seconds(v):>20} seconds" for k, v in c.items()]
    if total:
        doc["total"] = stats["total"]
        lines.append("Total:")
        lines += [f"\t{k:<12}{_seconds(v):>20} seconds" for k, v in stats["total"].items()]
    session.emit(doc, "".join(line + "\n" for line in lines))


@command("vcpuinfo", help="""Show a domain's virtual CPUs: host CPU, state, CPU time, affinity.

An inactive domain shows the affinity of its definition only.

\b
Examples:
  virtctl vcpuinfo web1
  virtctl vcpuinfo web1 --pretty""")
@domain_arg()
@click.option("--pretty", is_flag=True, help="return human readable output")
@pass_session
def vcpuinfo(session, domain, pretty):
    dom = session.domain(domain)
    info = dom.vcpu_info()
    maxcpu = info["host_cpus"]
    if session.json:
        session.emit({"domain": dom.name, "host_cpus": maxcpu, "vcpus": info["vcpus"]})
        return
    out = []
    for v in info["vcpus"]:
        aff = v["affinity"]
        if pretty:
            affinity = f"{_ranges(aff)} (out of {maxcpu})"
        else:
            affinity = "".join("y" if i in aff else "-" for i in range(maxcpu))
        if v.get("state") is None:
            out.append(f"{'VCPU:':<15} {v['vcpu']}\n{'CPU:':<15} N/A\n{'State:':<15} N/A\n"
                       f"{'CPU time':<15} N/A\n{'CPU Affinity:':<15} {affinity}\n")
        else:
            out.append(f"{'VCPU:':<15} {v['vcpu']}\n{'CPU:':<15} {v['cpu']}\n{'State:':<15} {v['state']}\n"
                       f"{'CPU time:':<15} {v['cpu_time_ns'] / 1e9:.1f}s\n{'CPU Affinity:':<15} {affinity}\n")
    session.print("\n".join(out), end="")


def _ranges(cpus) -> str:
    """virBitmapFormat: "0-3,5"."""
    cpus = sorted(cpus)
    parts, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        parts.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(parts)


@command("domblkerror", help="""Show the disks of a running domain that hit an I/O error, and which.

\b
Example:
  virtctl domblkerror web1        # "No errors found" when none""")
@domain_arg(completer="domain:running")
@pass_session
def domblkerror(session, domain):
    dom = session.domain(domain)
    errors = dom.disk_errors()
    if session.json:
        session.emit({"domain": dom.name, "errors": [{"disk": d, "error": e} for d, e in errors]})
        return
    session.print("".join(f"{d}: {e}\n" for d, e in errors) if errors else "No errors found\n", end="")


@command("domcontrol", help="""Show the state of the control interface to a running domain (ok, job,
occupied, error), as libvirt words it.

\b
Example:
  virtctl domcontrol web1""")
@domain_arg(completer="domain:running")
@pass_session
def domcontrol(session, domain):
    dom = session.domain(domain)
    c = dom.control_info()
    if session.json:
        session.emit({"domain": dom.name, **c})
        return
    # virsh's words ("background job" for the API's job) and layout: the time
    # in the state for job and occupied, the reason of an error
    text = {"job": "background job"}.get(c["state"], c["state"])
    if c["state"] == "error":
        if c.get("details"):
            text += f": {c['details']}"
    elif c["state"] != "ok":
        text += f" ({(c.get('state_time_ms') or 0) / 1000:.3f}s)"
    session.print(text)


@command("domtime", help="""Show or set a domain's guest clock.

Without options, print the guest time (seconds since the epoch; --pretty:
as a UTC date).  --now sets it to this host's time, --time N to N
seconds, --sync makes the guest read it from its RTC.  On QEMU this needs
the guest agent.

\b
Examples:
  virtctl domtime web1 --pretty
  virtctl domtime web1 --now""")
@domain_arg(completer="domain:running")
@click.option("--now", is_flag=True, help="set to the time of the host running virsh")
@click.option("--pretty", is_flag=True, help="print domain's time in human readable form")
@click.option("--sync", is_flag=True, help="instead of setting given time, synchronize from domain's RTC")
@option("--time", "time_", metavar="NUMBER", help="time to set", completer="none")
@pass_session
def domtime(session, domain, now, pretty, sync, time_):
    if time_ is not None and sync:
        raise click.UsageError("Options --time and --sync are mutually exclusive")
    if time_ is not None and now:
        raise click.UsageError("Options --time and --now are mutually exclusive")
    seconds = None
    if time_ is not None:
        try:
            seconds = int(time_, 10)
        except ValueError:
            raise InvalidArg(f"Numeric value '{time_}' for <time> option is malformed or out of range") from None
    dom = session.domain(domain)
    if now or sync or seconds is not None:
        import time

        if now:
            seconds = int(time.time())
        dom.set_time(seconds, sync=sync)
        session.done(dom, "", "domtime", seconds=seconds, sync=sync)
        return
    secs, nsecs = dom.get_time()
    if pretty:
        import time

        text = "Time: " + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs))
    else:
        text = f"Time: {secs}"
    session.emit({"domain": dom.name, "seconds": secs, "nseconds": nsecs}, text)


@command("domjobinfo", help="""Show the job running on a domain (save, managedsave, restore), or the
last one that finished (--completed; --keep-completed keeps it for another read).

Another virtctl process can read the progress of a job while it runs.

\b
Examples:
  virtctl domjobinfo web1
  virtctl domjobinfo web1 --completed --json""")
@domain_arg()
@click.option("--completed", is_flag=True, help="return statistics of a recently completed job")
@click.option("--keep-completed", is_flag=True, help="don't destroy statistics of a recently completed job when reading")
@click.option("--anystats", is_flag=True, help="print statistics for any kind of job (even failed ones)")
@click.option("--rawstats", is_flag=True, help="print the raw data returned by libvirt")
@pass_session
def domjobinfo(session, domain, completed, keep_completed, anystats, rawstats):
    if keep_completed and not completed:
        raise click.UsageError("Option --completed is required by option --keep-completed")
    dom = session.domain(domain)
    job = dom.job_info(completed=completed, keep_completed=keep_completed)
    if session.json:
        session.emit({"domain": dom.name, **job})
        return
    if rawstats:
        session.print("".join(f"{k}: {v}\n" for k, v in job.items() if k != "type"), end="")
        return
    lines = [("Job type:", f"{job['type'].capitalize():<12}")]
    if job["type"] != "none" or anystats:
        if job.get("operation"):
            lines.append(("Operation:", job["operation"].capitalize()))
        if "time_elapsed_ms" in job:
            lines.append(("Time elapsed:", f"{job['time_elapsed_ms']:<12} ms"))
        if "data_total" in job:
            lines.append(("Data processed:", _scaled(job.get("data_processed", 0))))
            lines.append(("Data remaining:", _scaled(job.get("data_remaining", 0))))
            lines.append(("Data total:", _scaled(job["data_total"])))
        if job.get("error"):
            lines.append(("Error message:", job["error"]))
    session.print("".join(f"{k:<17} {v}\n" for k, v in lines), end="")


def _scaled(n: int) -> str:
    """virsh's vshPrettyCapacity: B, KiB, MiB, GiB, TiB with 3 decimals."""
    for unit, div in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.3f} {unit}"
    return f"{n:.3f} B"


@command("domjobabort", help="""Abort the job running on a domain (a save or managedsave in progress).

\b
Example:
  virtctl domjobabort web1""")
@domain_arg(completer="domain:running")
@click.option("--postcopy", is_flag=True, help="interrupt post-copy migration")
@pass_session
def domjobabort(session, domain, postcopy):
    dom = session.domain(domain)
    dom.abort_job(postcopy=postcopy)
    session.done(dom, "", "domjobabort")

