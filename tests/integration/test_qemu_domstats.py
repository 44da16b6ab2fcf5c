"""domstats, cpu-stats, vcpuinfo, domcontrol, domblkerror, domtime, domjobinfo
and the host commands against real QEMU (TCG) and the test guest.

One domain for the module, with a balloon and a virtio disk: its figures
must come from QEMU and /proc and grow as the guest works (a busy loop for
CPU time, dd to the disk for write figures).  The save job is watched from
another process while it runs (jobs.py's file), then read back with
--completed.  capabilities and domcapabilities must validate against
libvirt 9.0's own schemas.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_qemu_driver import BOOT, VIRTCTL, Env
from vtest_paths import SHARED

pytestmark = pytest.mark.qemu
NAME = "ds"
SCHEMAS = SHARED / "reference" / "libvirt-9.0" / "schemas"


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_guest):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    base = tmp_path_factory.mktemp("domstats")
    e = Env(base / "root", test_guest)
    disk = base / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(4 << 20)
    text = e.xml(NAME, balloon=True).replace(
        "<memballoon model='virtio'/>",
        "<memballoon model='virtio'/>\n"
        "    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n"
        f"    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
        "<target dev='vda' bus='virtio'/></disk>")
    (base / "ds.xml").write_text(text)
    e.ok("define", str(base / "ds.xml"))
    e.ok("start", NAME)
    e.wait_ready(e.uuid(NAME), timeout=BOOT)
    e.disk = disk
    yield e
    e.cleanup()


def _stats(env, *opts) -> dict:
    recs = json.loads(env.ok("--json", "domstats", NAME, *opts))
    assert [r["domain"] for r in recs] == [NAME]
    return recs[0]["stats"]


def _guest_run(env, cmd: str, timeout: float = 60) -> None:
    log = env.serial_log(env.uuid(NAME))
    before = log.read_bytes().count(b"VIRTCTL-GUEST-DONE")
    env.send_serial(env.uuid(NAME), f"run {cmd}")
    deadline = time.monotonic() + timeout
    while log.read_bytes().count(b"VIRTCTL-GUEST-DONE") <= before:
        assert time.monotonic() < deadline, f"guest did not finish {cmd!r}: {log.read_bytes()[-500:]!r}"
        time.sleep(0.1)


def test_domstats_text_and_groups(env):
    out = env.ok("domstats", NAME)
    assert out.startswith(f"Domain: '{NAME}'\n  state.state=1\n  state.reason=1\n  cpu.time=")
    assert out.endswith("\n\n")
    s = _stats(env)
    assert s["state.state"] == 1 and s["cpu.time"] > 0 and s["cpu.user"] + s["cpu.system"] > 0
    assert s["balloon.current"] == 256 * 1024 and s["balloon.maximum"] == 256 * 1024 and s["balloon.rss"] > 0
    assert s["vcpu.current"] == 1 and s["vcpu.maximum"] == 1 and s["vcpu.0.state"] == 1 and s["vcpu.0.time"] > 0
    assert s["vcpu.0.time"] <= s["cpu.time"]
    assert s["block.count"] == 1 and s["block.0.name"] == "vda" and s["block.0.path"] == str(env.disk)
    assert s["block.0.capacity"] == 4 << 20
    assert s["net.count"] == 0
    only = _stats(env, "--vcpu")
    assert set(only) == {"vcpu.current", "vcpu.maximum", "vcpu.0.state", "vcpu.0.time", "vcpu.0.wait"}
    r = env.run("domstats", NAME, "--perf", "--enforce")
    assert r.returncode == 6 and "Stats types bits 0x40 are not supported" in r.stderr
    assert json.loads(env.ok("--json", "domstats", "--list-inactive")) == []


def test_figures_grow_as_the_guest_works(env):
    before = _stats(env, "--cpu-total", "--block", "--vcpu")
    _guest_run(env, "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; "
                    "dd if=/dev/zero of=/dev/vda bs=4096 count=64 conv=fsync 2>/dev/null; echo ok")
    after = _stats(env, "--cpu-total", "--block", "--vcpu")
    assert after["cpu.time"] > before["cpu.time"]
    assert after["vcpu.0.time"] > before["vcpu.0.time"]
    assert after["block.0.wr.bytes"] - before.get("block.0.wr.bytes", 0) >= 64 * 4096
    assert after["block.0.wr.reqs"] > before.get("block.0.wr.reqs", 0)
    assert after["block.0.fl.reqs"] > before.get("block.0.fl.reqs", 0)


def test_cpu_stats_vcpuinfo_control(env):
    out = env.ok("cpu-stats", NAME)
    assert out.startswith("Total:\n\tcpu_time    ") and "\tuser_time   " in out and out.endswith(" seconds\n\n")
    total = json.loads(env.ok("--json", "cpu-stats", NAME))["total"]
    pid = env.record(NAME)["pid"]
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert total["user_time"] <= int(fields[11]) * (10**9 // ticks)  # read before: never ahead of /proc
    r = env.run("cpu-stats", NAME, "--start", "0")
    assert r.returncode == 6 and "per host CPU" in r.stderr
    v = json.loads(env.ok("--json", "vcpuinfo", NAME))
    assert v["host_cpus"] == os.cpu_count() and len(v["vcpus"]) == 1
    assert v["vcpus"][0]["state"] == "running" and 0 <= v["vcpus"][0]["cpu"] < os.cpu_count()
    text = env.ok("vcpuinfo", NAME)
    assert text.startswith("VCPU:           0\nCPU:            ") and "State:          running\n" in text
    assert "CPU Affinity:   " + "y" * os.cpu_count() in text
    assert env.ok("domcontrol", NAME) == "ok\n\n"
    assert env.ok("domblkerror", NAME) == "No errors found\n\n"
    # the channel is there, but no qemu-ga has the guest's end open (the test guest's own, if it has one,
    # stopped): at once (QMP query-chardev says so), exit 9
    _guest_run(env, "kill $(pidof qemu-ga) 2>/dev/null; echo stopped")
    deadline = time.monotonic() + 30
    while True:  # the port closes a moment after qemu-ga exits
        r = env.run("domtime", NAME)
        if r.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.returncode == 9 and "Guest agent is not responding: QEMU guest agent is not connected" in r.stderr


def test_domjobabort_cancels_a_running_save(env, tmp_path):
    from virtctl.drivers.qemu import jobs

    uuid = env.uuid(NAME)
    image = tmp_path / "aborted.save"
    p = subprocess.Popen([VIRTCTL, "-c", env.uri, "save", NAME, str(image)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    asked = False
    while p.poll() is None and not asked:
        asked = jobs.request_abort(env.state, uuid)  # what `domjobabort` does, from this other process
    out, err = p.communicate(timeout=120)
    assert asked, "the save ended before its job could be seen"
    assert p.returncode == 1 and "failed" in err, (p.returncode, err)
    assert not image.exists() and list(tmp_path.iterdir()) == []
    assert env.domstate(NAME) == "running (save canceled)"
    done = json.loads(env.ok("--json", "domjobinfo", NAME, "--completed"))
    assert done["type"] == "cancelled" and done["operation"] == "save" and "error" in done


def test_domjobinfo_during_and_after_save(env, tmp_path):
    from virtctl.drivers.qemu import jobs

    uuid = env.uuid(NAME)
    assert json.loads(env.ok("--json", "domjobinfo", NAME))["type"] == "none"
    r = env.run("domjobabort", NAME)
    assert r.returncode == 4 and "no job is active" in r.stderr
    image = tmp_path / "ds.save"
    p = subprocess.Popen([VIRTCTL, "-c", env.uri, "save", NAME, str(image)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    seen = []
    while p.poll() is None:
        cur = jobs.current(env.state, uuid)  # what `domjobinfo` reads, from this other process
        if cur is not None:
            seen.append(cur)
    out, err = p.communicate()
    assert p.returncode == 0, err
    assert seen and all(j["type"] == "unbounded" and j["operation"] == "save" for j in seen)
    assert all(j["data_processed"] <= j["data_total"] or not j["data_total"] for j in seen)
    done = json.loads(env.ok("--json", "domjobinfo", NAME, "--completed", "--keep-completed"))
    assert done["type"] == "completed" and done["operation"] == "save"
    # the guest's RAM (256 MiB and QEMU's ROMs) as QEMU counts it, all of it processed
    assert 256 << 20 <= done["data_total"] < 300 << 20 and done["data_remaining"] == 0
    assert done["data_processed"] == done["data_total"]
    text = env.ok("domjobinfo", NAME, "--completed")
    assert text.startswith("Job type:         Completed   \nOperation:        Save\nTime elapsed:     ")
    assert json.loads(env.ok("--json", "domjobinfo", NAME, "--completed"))["type"] == "none"  # read once
    env.ok("restore", str(image), timeout=300)
    assert json.loads(env.ok("--json", "domjobinfo", NAME, "--completed"))["operation"] == "restore"
    assert env.domstate(NAME) == "running (restored)"


def _valid(xml: str, schema: str) -> None:
    from lxml import etree

    rng = etree.RelaxNG(etree.parse(str(SCHEMAS / schema)))
    assert rng.validate(etree.fromstring(xml.encode())), rng.error_log


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="libvirt's schemas are not available")
def test_capabilities_valid_and_cached(env):
    caps = env.ok("capabilities")
    _valid(caps, "capability.rng")
    assert "<machine maxCpus='255'>pc-i440fx-7.2</machine>" in caps
    assert "<machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>" in caps
    cache = list((Path(env.state.run) / "caps").iterdir())
    assert len(cache) == 1
    assert env.ok("capabilities") == caps  # from the cache now
    for args in ((), ("--virttype", "qemu", "--machine", "q35"), ("--arch", "x86_64", "--machine", "pc")):
        dc = env.ok("domcapabilities", *args)
        _valid(dc, "domaincaps.rng")
    assert "<machine>pc-q35-7.2</machine>" in env.ok("domcapabilities", "--virttype", "qemu", "--machine", "q35")
    r = env.run("domcapabilities", "--machine", "nosuch")
    assert r.returncode == 2 and "nosuch" in r.stderr
    assert env.ok("maxvcpus") == "255\n\n"


def test_node_stats(env):
    def proc_cpu() -> list[int]:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]

    ns = 10**9 // os.sysconf("SC_CLK_TCK")
    slack = 100 * ns * os.cpu_count()  # one second of every CPU (idle accounting may step back a little)
    before = proc_cpu()
    stats = json.loads(env.ok("--json", "nodecpustats"))
    after = proc_cpu()
    assert (before[0] + before[1]) * ns - slack <= stats["user"] <= (after[0] + after[1]) * ns + slack
    assert before[3] * ns - slack <= stats["idle"] <= after[3] * ns + slack
    mem = json.loads(env.ok("--json", "nodememstats"))
    total = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
    assert mem["total"] == total and 0 < mem["free"] <= total
    assert env.ok("nodecpustats", "--percent").startswith("usage:")
    assert json.loads(env.ok("--json", "freecell"))["free_kib"] > 0


def test_only_the_org_qemu_guest_agent_0_channel_is_the_agent():
    """A virtio channel of another name is not the agent's (domtime on such a
    domain is NOT_SUPPORTED: tests/integration/test_qemu_agent.py runs it)."""
    from virtctl.drivers.qemu.guest_agent import agent_channel
    from virtctl.xml.domain import DomainDef

    def parse(names):
        chans = "".join(f"<channel type='unix'><target type='virtio' name='{n}'/></channel>" for n in names)
        return DomainDef.parse("<domain type='qemu'><name>x</name><memory>65536</memory><os><type>hvm</type></os>"
                               f"<devices>{chans}</devices></domain>", validate=False)

    assert agent_channel(parse(["org.example.other"])) is None
    i, ch = agent_channel(parse(["org.example.other", "org.qemu.guest_agent.0"]))
    assert i == 1 and ch.find("target").get("name") == "org.qemu.guest_agent.0"
    assert agent_channel(None) is None


def test_domcontrol_names_another_process_s_job_as_virsh_does(env):
    """A job of another process (here: this test's, as a save's would be) is
    virsh's "background job" with the time spent in it; JSON says which job."""
    import re

    from virtctl.drivers.qemu import jobs

    with jobs.Job(env.state, env.uuid(NAME), "save"):
        time.sleep(0.05)
        text = env.ok("domcontrol", NAME)
        doc = json.loads(env.ok("--json", "domcontrol", NAME))
    assert re.fullmatch(r"background job \(\d+\.\d{3}s\)\n\n", text), text
    assert float(text.split("(")[1].split("s")[0]) >= 0.05
    assert doc["state"] == "job" and doc["details"] == "save" and doc["state_time_ms"] >= 50
    assert env.ok("domcontrol", NAME) == "ok\n\n"  # the job is over
