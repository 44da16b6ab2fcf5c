"""Statistics and host commands of the libvirt driver against a real libvirtd
(tests/integration/libvirtd_fixture.py: a private libvirtd, QEMU driver, the
test guest under TCG), through ``virtctl -c qemu+unix:///system?socket=...``
beside ``virsh`` on the same daemon.

One running guest for the module: domstats, cpu-stats, dominfo, vcpuinfo,
domcontrol, domjobinfo, and the host's nodecpustats, capabilities, maxvcpus,
sysinfo.  The figures move between two runs (CPU time, counters), so stats are
compared by their keys and layout, fixed answers by their text.
"""
from __future__ import annotations

import re
import shutil

import pytest

from integration.libvirtd_fixture import LibvirtdEnv
from integration.test_qemu_driver import VIRTCTL

pytestmark = pytest.mark.qemu
VIRSH = shutil.which("virsh")
NAME = "lvstats1"



@pytest.fixture(scope="module")
def env(libvirtd, test_guest, tmp_path_factory):  # noqa: F811
    if VIRTCTL is None or VIRSH is None:
        pytest.skip("needs the virtctl entry point and virsh")
    e = LibvirtdEnv(libvirtd, tmp_path_factory.mktemp("lvs"), guest=test_guest, name=NAME)
    p = e.base / "g.xml"
    g = test_guest
    p.write_text(e.xml(devices="<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>"
                               "<memballoon model='virtio'><stats period='1'/></memballoon>"))
    e.ok("define", str(p))
    e.ok("start", NAME)
    e.wait_serial(g.ready_line)
    yield e
    libvirtd.clean()


def _keys(text: str) -> list[str]:
    return [ln.split("=", 1)[0] for ln in text.splitlines()]


def test_domstats_keys_and_values_as_virsh(env):
    ours, theirs = env.both("domstats", NAME, "--state", "--cpu-total", "--vcpu", "--balloon")
    assert _keys(ours) == _keys(theirs)
    stats = dict(ln.strip().split("=", 1) for ln in ours.splitlines() if "=" in ln)
    assert stats["state.state"] == "1"  # running
    assert int(stats["cpu.time"]) > 0 and stats["vcpu.current"] == "1"
    assert int(stats["balloon.current"]) == 256 * 1024
    # every group libvirtd fills, and one of them only
    ours, theirs = env.both("domstats", NAME)
    assert _keys(ours) == _keys(theirs) and "  block.count=0" in ours
    ours, theirs = env.both("domstats", "--state", "--list-running")
    assert ours == theirs == f"Domain: '{NAME}'\n  state.state=1\n  state.reason=1\n\n"


def test_cpu_stats_dominfo_vcpuinfo_as_virsh(env):
    # cpu-stats needs libvirtd's cgroups (a private libvirtd may have none):
    # the same success as virsh, the same layout when it succeeds
    label = re.compile(r"^\s*(\S+)\s+[\d.]+ seconds$")
    for cmd in (["cpu-stats", NAME, "--total"], ["cpu-stats", NAME]):
        ours, theirs = env.run(*cmd), env.run(*cmd, prog=VIRSH)
        assert "Traceback" not in ours.stderr, ours.stderr
        assert (ours.returncode == 0) == (theirs.returncode == 0), (cmd, ours.stderr, theirs.stderr)
        assert [label.sub(r"\1", ln) for ln in ours.stdout.splitlines()] == \
            [label.sub(r"\1", ln) for ln in theirs.stdout.splitlines()]
        if theirs.returncode:
            assert ours.stderr.splitlines()[-1] == theirs.stderr.strip().splitlines()[-1]
    ours, theirs = env.both("dominfo", NAME)
    # CPU time moves; the rest, virsh 9's "Messages:" (virDomainGetMessages: the
    # taint of a root QEMU) included, is the same
    moving = re.compile(r"^CPU time:.*\n", re.M)
    assert moving.sub("", ours) == moving.sub("", theirs)
    assert "Messages:" in theirs
    ours, theirs = env.both("vcpuinfo", NAME)
    assert re.sub(r"CPU time:.*|CPU:.*", "", ours) == re.sub(r"CPU time:.*|CPU:.*", "", theirs)
    assert "State:          running" in ours


def test_control_job_and_host_as_virsh(env):
    for cmd in (["domcontrol", NAME], ["domjobinfo", NAME], ["capabilities"], ["maxvcpus"],
                ["maxvcpus", "--type", "qemu"], ["sysinfo"], ["domdisplay", NAME], ["domdisplay", NAME, "--type", "vnc"],
                ["domdisplay", NAME, "--type", "spice"], ["vncdisplay", NAME]):
        r = env.run(*cmd, prog=VIRSH)
        ours = env.run(*cmd)
        assert "Traceback" not in ours.stderr, ours.stderr
        assert (ours.stdout, ours.returncode == 0) == (r.stdout, r.returncode == 0), (cmd, ours.stderr, r.stderr)
    assert env.ok("domcontrol", NAME) == "ok\n\n"
    assert env.ok("domjobinfo", NAME).startswith("Job type:         None")
    ours, theirs = env.both("nodecpustats")
    assert [ln.split(":")[0] for ln in ours.splitlines()] == [ln.split(":")[0] for ln in theirs.splitlines()]
    assert int(env.ok("maxvcpus").strip()) > 1
    assert re.fullmatch(r"vnc://127\.0\.0\.1:\d+\n", env.ok("domdisplay", NAME))
    assert "<capabilities>" in env.ok("capabilities")


def test_metadata_and_small_commands_as_virsh(env):
    # set through virtctl, read by both
    env.ok("desc", NAME, "--live", "--new-desc", "from virtctl")
    env.ok("metadata", NAME, "http://example.org/lv", "--live", "--key", "lv", "--set", "<a>1</a>")
    for cmd in (["desc", NAME], ["desc", NAME, "--title"], ["metadata", NAME, "http://example.org/lv"],
                ["metadata", NAME, "http://example.org/none"], ["inject-nmi", NAME], ["domtime", NAME],
                ["dompmsuspend", NAME, "mem"], ["dompmwakeup", NAME], ["domjobabort", NAME],
                ["domblkerror", NAME], ["send-process-signal", NAME, "1", "0"],
                ["domstats", NAME, "--state", "--perf", "--enforce"]):
        r = env.run(*cmd, prog=VIRSH)
        ours = env.run(*cmd)
        assert "Traceback" not in ours.stderr, ours.stderr
        assert (ours.stdout, ours.returncode == 0) == (r.stdout, r.returncode == 0), (cmd, ours.stderr, r.stderr)
    assert env.ok("metadata", NAME, "http://example.org/lv") == "<a>1</a>\n\n"
    assert env.ok("desc", NAME) == "from virtctl\n"
