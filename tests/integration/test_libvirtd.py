"""The libvirt driver against a real libvirtd (tests/integration/libvirtd_fixture.py:
a private libvirtd in its own namespaces, QEMU driver, the test guest under
TCG), through the installed ``virtctl`` entry point with
``-c qemu+unix:///system?socket=...``.

One domain for the module (booting is the slow part): define, start, the
console (a pipe, then a terminal with the escape key, then a takeover by
``console --force``), save and restore, an ACPI shutdown (the
test guest powers off), all watched by ``virtctl event --all --loop`` next to
``virsh event --all --loop`` on the same daemon, whose event lines must be
the same.  Networks, pools and snapshots through a real libvirtd are in
test_libvirtd_<area>.py beside this module.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from integration.libvirtd_fixture import LibvirtdEnv
from integration.test_qemu_driver import VIRTCTL

pytestmark = pytest.mark.qemu
VIRSH = shutil.which("virsh")
NAME = "lvd1"
BARRIER = "for domain 'lvd-barrier': Undefined Removed"


def _count(text: str) -> int:
    return len([ln for ln in text.splitlines() if ln.startswith("event '")])



class Watcher:
    """``event --all --loop`` of one program, its lines collected."""

    def __init__(self, argv: list[str], base: Path, tag: str):
        self.out = open(base / f"events-{tag}.txt", "w+")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def text(self) -> str:
        self.out.seek(0)
        return self.out.read()

    def lines(self) -> list[str]:
        """The event lines after the barrier (see ``watchers``): how many
        sentinel rounds each program saw before depends on its start-up."""
        lines = [ln for ln in self.text().splitlines() if ln.startswith("event '")]
        marks = [i for i, ln in enumerate(lines) if BARRIER in ln]
        return lines[marks[0] + 1:] if marks else lines

    def stop(self) -> str:
        if self.out.closed:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        text = self.text()
        self.out.close()
        return text


@pytest.fixture(scope="module")
def env(libvirtd, test_guest, tmp_path_factory):  # noqa: F811
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    e = LibvirtdEnv(libvirtd, tmp_path_factory.mktemp("lvd"), guest=test_guest, name=NAME)
    yield e
    libvirtd.clean()


@pytest.fixture(scope="module")
def watchers(env):
    """virtctl's and virsh's event streams from before the domain's definition."""
    import libvirt

    started = [Watcher([VIRTCTL, "-c", env.uri, "event", "--all", "--loop"], env.base, "virtctl")]
    if VIRSH is not None:  # line-buffered: its lines are looked at while it runs
        started.append(Watcher(["stdbuf", "-oL", VIRSH, "-c", env.uri, "event", "--all", "--loop"],
                               env.base, "virsh"))
    # both are listening once a sentinel domain's definition reaches them
    conn = libvirt.open(env.uri)
    try:
        deadline = time.monotonic() + 30
        sentinel = env.xml("lvd-sentinel")
        while True:
            dom = conn.defineXML(sentinel)
            dom.undefine()
            time.sleep(0.3)
            if all("for domain 'lvd-sentinel': Defined Added" in w.text() for w in started):
                break
            assert time.monotonic() < deadline, [w.text() for w in started]
        # one barrier domain, defined once both listen: what follows it is compared
        conn.defineXML(env.xml("lvd-barrier")).undefine()
        while not all(BARRIER in w.text() for w in started):
            assert time.monotonic() < deadline + 30, [w.text() for w in started]
            time.sleep(0.1)
    finally:
        conn.close()
    yield started
    for w in started:
        w.stop()


def test_define_start_and_the_console_through_a_pipe(env, watchers):
    p = env.base / "g.xml"
    p.write_text(env.xml())
    assert env.ok("define", str(p)).strip() == f"Domain '{NAME}' defined from {p}"
    assert env.ok("domstate", NAME).strip() == "shut off"
    assert env.ok("start", NAME).strip() == f"Domain '{NAME}' started"
    env.wait_serial(env.guest.ready_line)
    assert env.ok("domstate", NAME).strip() == "running"
    assert NAME in env.ok("list", "--name").split()
    # the console: stdin sent, output copied until it is quiet
    r = env.run("console", NAME, "--idle", "3", input="run echo PIPED-$((6*7))\n", timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"Connected to domain '{NAME}'" in r.stdout
    assert "Escape character is ^] (Ctrl + ])" in r.stdout
    assert "VIRTCTL-GUEST-OUT PIPED-42" in r.stdout, r.stdout[-1500:]
    assert "VIRTCTL-GUEST-DONE 0" in r.stdout


def test_console_on_a_terminal_escape_key_and_force_takeover(env, watchers):
    pexpect = pytest.importorskip("pexpect")
    first = pexpect.spawn(VIRTCTL, ["-c", env.uri, "console", NAME], timeout=60, encoding="utf-8")
    try:
        first.expect_exact(f"Connected to domain '{NAME}'")
        first.expect_exact("Escape character is ^] (Ctrl + ])")
        first.send("run echo TTY-$((7*6))\r")
        first.expect_exact("VIRTCTL-GUEST-OUT TTY-42")
        # a second session is refused, by libvirt's words
        r = env.run("console", NAME, input="", timeout=60)
        assert r.returncode == 1 and "Active console session exists for this domain" in r.stderr, r.stderr
        # --force takes it over: the first session says so and fails
        second = pexpect.spawn(VIRTCTL, ["-c", env.uri, "console", NAME, "--force"], timeout=60,
                               encoding="utf-8")
        try:
            second.expect_exact(f"Connected to domain '{NAME}'")
            first.expect(pexpect.EOF)
            first.close()
            assert first.exitstatus == 1, first.before
            assert "was taken over by another session" in first.before, first.before
            second.send("run echo AGAIN-$((2*4))\r")
            second.expect_exact("VIRTCTL-GUEST-OUT AGAIN-8")
            second.send("\x1d")  # the escape key: leave, exit 0
            second.expect(pexpect.EOF)
            second.close()
            assert second.exitstatus == 0, second.before
        finally:
            second.close(force=True)
    finally:
        first.close(force=True)
    # the console is free again
    r = env.run("console", NAME, "--idle", "1", input="", timeout=60)
    assert r.returncode == 0, r.stderr


def test_save_and_restore(env, watchers):
    image = env.base / "lvd1.save"
    assert env.ok("save", NAME, str(image), timeout=180).strip() == f"Domain '{NAME}' saved to {image}"
    assert env.ok("domstate", NAME).strip() == "shut off"
    assert image.stat().st_size > 0
    assert env.ok("restore", str(image), timeout=180).strip() == f"Domain restored from {image}"
    assert env.ok("domstate", NAME).strip() == "running"
    # the same guest, still at its prompt
    r = env.run("console", NAME, "--idle", "3", input="run echo RESTORED-$((5+5))\n", timeout=60)
    assert "VIRTCTL-GUEST-OUT RESTORED-10" in r.stdout, (r.stdout[-1000:], r.stderr)


def test_shutdown_and_the_event_stream(env, watchers):
    assert env.ok("shutdown", NAME).strip() == f"Domain '{NAME}' is being shutdown"
    env.wait_state("shut off", timeout=120)
    expected = [f"event 'lifecycle' for domain '{NAME}': {e}" for e in (
        "Defined Added", "Started Booted", "Stopped Saved", "Started Restored",
        "Shutdown Finished after guest request", "Stopped Shutdown")]
    deadline = time.monotonic() + 30
    ours = watchers[0]
    while not all(line in ours.lines() for line in expected) and time.monotonic() < deadline:
        time.sleep(0.2)
    got = [ln for ln in ours.lines() if f"'{NAME}'" in ln]
    it = iter(got)
    assert all(line in it for line in expected), got  # in this order, others between
    if len(watchers) > 1:
        theirs = watchers[1]
        deadline = time.monotonic() + 10
        while len(theirs.lines()) < len(ours.lines()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ours.lines() == theirs.lines()
    # the end of the loop: Ctrl-C, then the count (as virsh)
    text = ours.stop()
    assert text.endswith(f"event loop interrupted\nevents received: {_count(text)}\n\n"), text[-300:]
    if len(watchers) > 1:
        theirs = watchers[1].stop()
        assert theirs.endswith(f"event loop interrupted\nevents received: {_count(theirs)}\n\n"), theirs[-300:]
        # the same bytes after the barrier, but for each one's own count of events
        assert text.split(BARRIER, 1)[1].rsplit("events received:", 1)[0] == \
            theirs.split(BARRIER, 1)[1].rsplit("events received:", 1)[0]


def test_event_waits_for_one_event_and_times_out(env):
    r = env.run("event", "--domain", NAME, "--event", "reboot", "--timeout", "1", timeout=60)
    # virsh's own blank line after a failed command's output included
    assert r.returncode == 1 and r.stdout == "event loop timed out\nevents received: 0\n\n", r
    r = env.run("event", "--list")
    assert r.stdout.splitlines()[0] == "lifecycle" and r.returncode == 0
