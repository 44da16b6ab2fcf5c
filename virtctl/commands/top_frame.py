"""``top``'s figures and frames, apart from any screen: sampling (one
``domain_stats`` call per refresh), rates from two samples, sorting and the
plain-text / JSON frames.  The interactive screen (top.py) draws the same
rows.
"""
from __future__ import annotations

import time

# the stats groups top reads (those a driver cannot fill are skipped by domain_stats)
GROUPS = ["state", "cpu-total", "balloon", "vcpu", "interface", "block"]

# sort key -> (column title, value of a row; larger first unless "name")
SORT_KEYS = ("cpu", "mem", "name", "state", "disk", "net", "id")

COLUMNS = ("ID", "NAME", "STATE", "VCPU", "CPU%", "MEM-MiB", "DISK-RD/s", "DISK-WR/s", "NET-RX/s", "NET-TX/s")


class Sample:
    """Counters of every domain at one moment: ``time`` (monotonic s),
    ``doms``: uuid -> dict (name, id, state, vcpus, memory_kib, cpu_ns,
    rd, wr, rx, tx: bytes so far; None where the driver has no figure)."""

    __slots__ = ("time", "doms")

    def __init__(self, t: float, doms: dict):
        self.time, self.doms = t, doms


def _sum(stats: dict, prefix: str, count_key: str, leaf: str) -> int | None:
    n = stats.get(count_key)
    if not isinstance(n, int):
        return None
    vals = [stats.get(f"{prefix}.{i}.{leaf}") for i in range(n)]
    vals = [v for v in vals if isinstance(v, int)]
    return sum(vals) if vals else (0 if n == 0 else None)


def figures(rec, stats: dict) -> dict:
    """One domain's counters from its record and its domstats pairs."""
    cpu = stats.get("cpu.time")
    if not isinstance(cpu, int):
        cpu = rec.cpu_time_ns if rec.active else None
    mem = stats.get("balloon.current")
    if not isinstance(mem, int):
        mem = rec.memory_kib
    vcpus = stats.get("vcpu.current")
    if not isinstance(vcpus, int):
        vcpus = rec.vcpus
    return {"name": rec.name, "id": rec.id, "state": rec.state.text, "vcpus": vcpus, "memory_kib": mem,
            "cpu_ns": cpu,
            "rd": _sum(stats, "block", "block.count", "rd.bytes"),
            "wr": _sum(stats, "block", "block.count", "wr.bytes"),
            "rx": _sum(stats, "net", "net.count", "rx.bytes"),
            "tx": _sum(stats, "net", "net.count", "tx.bytes")}


def sample(conn) -> Sample:
    """Every domain's counters: one ``domain_stats`` call."""
    records = conn.domain_stats(None, groups=GROUPS)
    doms = {}
    for dom, stats in records:
        doms[dom.uuid] = figures(dom.snapshot, dict(stats))
    return Sample(time.monotonic(), doms)


def _rate(a, b, dt: float) -> float | None:
    if a is None or b is None or dt <= 0 or b < a:  # no figure, or the counter restarted
        return None
    return (b - a) / dt


def rows(prev: Sample | None, cur: Sample) -> list[dict]:
    """The rows of a frame: each domain of ``cur`` with its rates since
    ``prev`` (None where there is no earlier figure): cpu_percent (of one
    host CPU, as top's), bytes per second read/written/received/sent."""
    dt = cur.time - prev.time if prev is not None else 0.0
    out = []
    for uuid, f in cur.doms.items():
        p = prev.doms.get(uuid) if prev is not None else None
        if p is not None and p.get("id") != f.get("id"):
            p = None  # restarted in between: its counters start again
        g = (lambda k: _rate(p.get(k), f.get(k), dt)) if p is not None else (lambda k: None)
        cpu = g("cpu_ns")
        out.append({"name": f["name"], "uuid": uuid, "id": f["id"], "state": f["state"], "vcpus": f["vcpus"],
                    "memory_kib": f["memory_kib"],
                    "cpu_percent": None if cpu is None else round(cpu / 1e9 * 100, 1),
                    "disk_read_bps": g("rd"), "disk_write_bps": g("wr"),
                    "net_rx_bps": g("rx"), "net_tx_bps": g("tx")})
    return out


def _num(v) -> float:
    return -1.0 if v is None else float(v)


def sort_rows(rows_: list[dict], key: str, *, reverse: bool = False) -> list[dict]:
    """Rows by ``key`` (SORT_KEYS): figures largest first, name and id
    ascending (ties by name); ``reverse`` flips it."""
    if key == "name":
        out = sorted(rows_, key=lambda r: r["name"])
    elif key == "id":
        out = sorted(rows_, key=lambda r: (r["id"] is None, r["id"] or 0, r["name"]))
    else:
        val = {"cpu": lambda r: _num(r["cpu_percent"]), "mem": lambda r: _num(r["memory_kib"]),
               "state": lambda r: 0 if r["state"] == "running" else 1 if r["id"] is not None else 2,
               "disk": lambda r: _num(r["disk_read_bps"]) + _num(r["disk_write_bps"]),
               "net": lambda r: _num(r["net_rx_bps"]) + _num(r["net_tx_bps"])}[key]
        if key == "state":
            out = sorted(rows_, key=lambda r: (val(r), r["name"]))
        else:
            out = sorted(rows_, key=lambda r: (-val(r), r["name"]))
    return out[::-1] if reverse else out


def human_rate(bps: float | None) -> str:
    """Bytes per second in the largest binary unit below the value ("-": unknown)."""
    if bps is None:
        return "-"
    v, unit = float(bps), "B"
    for u in ("K", "M", "G", "T"):
        if v < 1024:
            break
        v, unit = v / 1024, u
    return f"{v:.0f}{unit}" if unit == "B" else f"{v:.1f}{unit}"


def header(rows_: list[dict], *, clock: float | None = None, sort: str = "cpu", delay: float = 1.0) -> str:
    t = time.strftime("%H:%M:%S", time.localtime(clock if clock is not None else time.time()))
    running = sum(1 for r in rows_ if r["state"] == "running")
    paused = sum(1 for r in rows_ if r["state"] == "paused")
    off = sum(1 for r in rows_ if r["id"] is None)
    return (f"virtctl top - {t}  domains: {len(rows_)} total, {running} running, {paused} paused, "
            f"{off} shut off  (sort: {sort}, every {delay:g}s)")


def table_lines(rows_: list[dict]) -> list[str]:
    """The column titles and one line per row."""
    cells = [COLUMNS]
    for r in rows_:
        cells.append((str(r["id"]) if r["id"] is not None else "-", r["name"], r["state"],
                      str(r["vcpus"]) if r["vcpus"] is not None else "-",
                      f"{r['cpu_percent']:.1f}" if r["cpu_percent"] is not None else "-",
                      f"{r['memory_kib'] / 1024:.0f}" if r["memory_kib"] is not None else "-",
                      human_rate(r["disk_read_bps"]), human_rate(r["disk_write_bps"]),
                      human_rate(r["net_rx_bps"]), human_rate(r["net_tx_bps"])))
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    left = {1, 2}  # name and state are left-aligned
    return ["  ".join(c[i].ljust(widths[i]) if i in left else c[i].rjust(widths[i])
                      for i in range(len(COLUMNS))).rstrip() for c in cells]


def text_frame(rows_: list[dict], **kw) -> str:
    """A plain-text frame (``top -b``): the header, a blank line, the table."""
    return "\n".join([header(rows_, **kw), "", *table_lines(rows_)]) + "\n"


def json_frame(rows_: list[dict], *, clock: float, interval: float | None, sort: str) -> dict:
    """A frame as one JSON Lines object (README: the top shape)."""
    return {"time": clock, "interval": None if interval is None else round(interval, 3), "sort": sort,
            "domains": rows_}
