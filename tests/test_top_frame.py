"""top's figures and frames (virtctl/commands/top_frame.py): rates from two
samples, sorting, the plain-text and JSON frames; no driver."""
from __future__ import annotations

from virtctl.api.types import DomainRecord, DomainState
from virtctl.commands import top_frame as tf


def _dom(name, id_, cpu, rd=0, wr=0, rx=0, tx=0, mem=1024 * 1024, state="running"):
    return {"name": name, "id": id_, "state": state, "vcpus": 1, "memory_kib": mem, "cpu_ns": cpu,
            "rd": rd, "wr": wr, "rx": rx, "tx": tx}


def test_rates_are_per_second_over_the_interval():
    a = tf.Sample(10.0, {"u1": _dom("a", 1, 1_000_000_000, rd=0, wr=4096, rx=100, tx=0)})
    b = tf.Sample(12.0, {"u1": _dom("a", 1, 2_000_000_000, rd=2048, wr=4096, rx=300, tx=1000)})
    (r,) = tf.rows(a, b)
    assert r["cpu_percent"] == 50.0  # 1 s of CPU in 2 s
    assert (r["disk_read_bps"], r["disk_write_bps"], r["net_rx_bps"], r["net_tx_bps"]) == (1024, 0, 100, 500)


def test_no_rate_without_an_earlier_figure_or_after_a_restart():
    b = tf.Sample(12.0, {"u1": _dom("a", 1, 5), "u2": _dom("b", 3, 9)})
    assert all(r["cpu_percent"] is None and r["net_rx_bps"] is None for r in tf.rows(None, b))
    a = tf.Sample(10.0, {"u1": _dom("a", 1, 10), "u2": _dom("b", 2, 1)})  # u1 counter went back, u2 new id
    rows = {r["name"]: r for r in tf.rows(a, b)}
    assert rows["a"]["cpu_percent"] is None and rows["b"]["cpu_percent"] is None
    assert tf.rows(a, tf.Sample(10.0, a.doms))[0]["cpu_percent"] is None  # no time passed


def test_figures_fall_back_to_the_record_and_sum_devices():
    rec = DomainRecord(uuid="u", name="web", id=4, state=DomainState.RUNNING, reason=1, persistent=True,
                       autostart=False, managed_save=False, title="", os_type="hvm", vcpus=2,
                       max_memory_kib=4096, memory_kib=2048, cpu_time_ns=77)
    f = tf.figures(rec, {"state.state": 1})
    assert (f["cpu_ns"], f["memory_kib"], f["vcpus"], f["rd"], f["rx"]) == (77, 2048, 2, None, None)
    f = tf.figures(rec, {"cpu.time": 5, "balloon.current": 1000, "vcpu.current": 1, "block.count": 2,
                         "block.0.rd.bytes": 10, "block.1.rd.bytes": 5, "block.0.wr.bytes": 1,
                         "block.1.wr.bytes": 2, "net.count": 1, "net.0.rx.bytes": 7, "net.0.tx.bytes": 8})
    assert (f["cpu_ns"], f["memory_kib"], f["vcpus"], f["rd"], f["wr"], f["rx"], f["tx"]) == (5, 1000, 1, 15, 3, 7, 8)


def _three():
    a = tf.Sample(0.0, {"1": _dom("web", 1, 0), "2": _dom("db", 2, 0), "3": _dom("off", None, None, rd=None, wr=None, rx=None, tx=None, state="shut off")})
    b = tf.Sample(1.0, {"1": _dom("web", 1, 200_000_000, rx=5000, mem=512 * 1024),
                        "2": _dom("db", 2, 900_000_000, rd=10, mem=4096 * 1024),
                        "3": _dom("off", None, None, rd=None, wr=None, rx=None, tx=None, state="shut off",
                                  mem=8192 * 1024)})
    return tf.rows(a, b)


def test_sorting():
    rows = _three()
    names = lambda key, **kw: [r["name"] for r in tf.sort_rows(rows, key, **kw)]  # noqa: E731
    assert names("cpu") == ["db", "web", "off"]
    assert names("mem") == ["off", "db", "web"]
    assert names("name") == ["db", "off", "web"]
    assert names("name", reverse=True) == ["web", "off", "db"]
    assert names("net") == ["web", "db", "off"]
    assert names("disk") == ["db", "web", "off"]
    assert names("id") == ["web", "db", "off"]
    assert names("state") == ["db", "web", "off"]


def test_text_frame():
    rows = tf.sort_rows(_three(), "cpu")
    text = tf.text_frame(rows, clock=0, sort="cpu", delay=1)
    lines = text.splitlines()
    assert lines[0].startswith("virtctl top - ") and "domains: 3 total, 2 running, 0 paused, 1 shut off" in lines[0]
    assert lines[1] == ""
    assert lines[2].split() == list(tf.COLUMNS)
    assert lines[3].split() == ["2", "db", "running", "1", "90.0", "4096", "10B", "0B", "0B", "0B"]
    assert lines[4].split() == ["1", "web", "running", "1", "20.0", "512", "0B", "0B", "4.9K", "0B"]
    assert lines[5].split() == ["-", "off", "shut", "off", "1", "-", "8192", "-", "-", "-", "-"]
    # columns line up: every row is as wide as the titles' line at most
    assert len({ln.index("running") for ln in lines[3:5]}) == 1


def test_human_rate():
    assert [tf.human_rate(v) for v in (None, 0, 1023, 1024, 1536 * 1024, 3 * 1024 ** 3)] == \
        ["-", "0B", "1023B", "1.0K", "1.5M", "3.0G"]


def test_json_frame():
    rows = _three()
    doc = tf.json_frame(rows, clock=5.0, interval=1.00049, sort="mem")
    assert doc["time"] == 5.0 and doc["interval"] == 1.0 and doc["sort"] == "mem"
    assert set(doc["domains"][0]) == {"name", "uuid", "id", "state", "vcpus", "memory_kib", "cpu_percent",
                                      "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps"}
