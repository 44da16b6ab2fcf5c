"""Fixtures for tests that boot a real QEMU (marked ``qemu``).

``test_guest``  the tiny Linux guest of tests/guest/build.py (session scope;
                skipped when qemu-system-x86_64 is absent, an error when it is
                present but the build fails).
``bare_qemu``   a factory that starts a plain QEMU on that guest, with a QMP
                socket and a logged serial console, and kills it at teardown.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from guest.build import Guest, GuestBuildError, build_guest  # noqa: E402
from qmp_raw import QMP  # noqa: E402

QEMU = shutil.which("qemu-system-x86_64")
BOOT_TIMEOUT = float(os.environ.get("VIRTCTL_TEST_BOOT_TIMEOUT", "180"))
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.qemu)


@pytest.fixture(scope="session")
def test_guest() -> Guest:
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian: qemu-system-x86)")
    try:
        return build_guest()
    except GuestBuildError as e:
        pytest.fail(f"building the test guest failed: {e}", pytrace=False)


class BareQemu:
    """A plain qemu-system-x86_64 (TCG) running the test guest."""

    def __init__(self, guest: Guest, extra_args: list[str] = ()):
        # Short directory: unix socket paths must stay under 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="vq-"))
        self.qmp_path = self.dir / "qmp.sock"
        self.serial_path = self.dir / "serial.sock"
        self.serial_log = self.dir / "serial.log"
        self.argv = [
            QEMU, "-machine", "pc", "-accel", "tcg", "-m", "256",
            "-nodefaults", "-no-user-config", "-nographic", "-display", "none",
            "-chardev", f"socket,id=ser0,path={self.serial_path},server=on,wait=off,"
                        f"logfile={self.serial_log}",
            "-serial", "chardev:ser0",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            *guest.qemu_args(), *extra_args]
        self.ready_line = guest.ready_line
        self.stderr = open(self.dir / "stderr", "w+b")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr)

    def serial_text(self) -> str:
        try:
            return self.serial_log.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_serial(self, text: str, count: int = 1, timeout: float = BOOT_TIMEOUT) -> None:
        """Wait until ``text`` has appeared ``count`` times on the console."""
        deadline = time.monotonic() + timeout
        while self.serial_text().count(text) < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"QEMU exited ({self.proc.returncode}) before "
                                     f"{text!r}: {self.diagnostics()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout}s: {self.diagnostics()}")
            time.sleep(0.05)

    def wait_ready(self, count: int = 1, timeout: float = BOOT_TIMEOUT) -> None:
        self.wait_serial(self.ready_line, count, timeout)

    def qmp(self, timeout: float = 10.0) -> QMP:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return QMP(str(self.qmp_path), timeout=timeout)
            except (FileNotFoundError, ConnectionRefusedError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no QMP socket: {self.diagnostics()}")
                time.sleep(0.02)

    def send_serial(self, line: str) -> None:
        """Type a line on the guest's console (see tests/guest/build.py)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.serial_path))
            s.sendall(line.encode() + b"\n")
            time.sleep(0.2)  # let QEMU read it before we hang up

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"QEMU still running after {timeout}s: "
                                 f"{self.diagnostics()}") from None

    def diagnostics(self) -> str:
        self.stderr.seek(0)
        err = self.stderr.read().decode(errors="replace")
        return f"argv={self.argv!r}\nstderr={err!r}\nserial={self.serial_text()[-2000:]!r}"

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def bare_qemu(test_guest):
    """Factory: ``bare_qemu(extra_args=[...])`` -> a started BareQemu."""
    started: list[BareQemu] = []

    def start(extra_args: list[str] = ()) -> BareQemu:
        q = BareQemu(test_guest, list(extra_args))
        started.append(q)
        return q
    yield start
    for q in started:
        q.cleanup()


# the private libvirtd of the libvirt driver tests (one per session, for every module)
from integration.libvirtd_fixture import libvirtd  # noqa: E402,F401
