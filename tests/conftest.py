"""Shared test fixtures.  Tests run against the *installed* virtctl package."""
from __future__ import annotations

import os
import sys

import pytest

# Subprocesses must run the virtctl installed beside this interpreter (the
# venv's), never another one found first on PATH.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

# A suite started in the background of a non-interactive shell (`.ci/run &`, nohup)
# inherits SIGINT ignored, and so would every virtctl it runs: the Ctrl-C tests would
# then see a command that cannot be interrupted. A Python handler here is reset to the
# default in each child at exec, so children get the SIGINT an operator's terminal gives.
import signal  # noqa: E402

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The suite tests the installed package: virtctl.drivers exists only there
# (the source tree keeps drivers/ at the top level).
import virtctl.drivers  # noqa: F401,E402

# the `sshd` fixture (an sshd of the run's own on 127.0.0.1): tests/sshd_fixture.py
pytest_plugins = ["sshd_fixture"]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test reads the developer's config or writes to their home."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg-run"))
    monkeypatch.delenv("VIRTCTL_DEFAULT_URI", raising=False)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("VIRSH_DEFAULT_CONNECT_URI", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
