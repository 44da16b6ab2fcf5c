"""net-start without CAP_NET_ADMIN (a user's qemu:///session or embed root):
a clear OPERATION_DENIED naming what is needed, before anything is made.

The command runs as ``nobody`` (setpriv drops root and every capability);
nothing is created either way, so no network namespace is needed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from integration.test_qemu_driver import VIRTCTL

SETPRIV = shutil.which("setpriv")
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None or VIRTCTL is None,
                                reason="needs root (to become nobody), setpriv and the virtctl entry point")

NET = "<network><name>{n}</name><bridge name='vcbr-{n}'/><ip address='10.81.0.1' prefix='24'/></network>"


def _as_nobody(root, *args):
    return subprocess.run([SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                           VIRTCTL, "-c", f"qemu:///embed?root={root}", *args],
                          capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"], "HOME": "/tmp"})


@pytest.fixture
def base():
    # not pytest's tmp_path: its parents are root's alone, and nobody must reach it
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="virtctl-nonroot-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_net_start_without_cap_net_admin_says_what_is_needed(base):
    tmp_path = base
    root = tmp_path / "root"
    root.mkdir()
    os.chown(root, 65534, 65534)
    xml = tmp_path / "n.xml"
    xml.write_text(NET.format(n="nr1"))
    xml.chmod(0o644)
    r = _as_nobody(root, "net-define", str(xml))
    assert r.returncode == 0, r.stderr
    r = _as_nobody(root, "net-start", "nr1")
    assert r.returncode == 8, (r.returncode, r.stderr)  # OPERATION_DENIED (README: exit codes)
    assert "cannot start network 'nr1'" in r.stderr and "CAP_NET_ADMIN" in r.stderr, r.stderr
    assert "qemu-bridge-helper" in r.stderr
    assert not os.path.exists("/sys/class/net/vcbr-nr1")
    info = _as_nobody(root, "--json", "net-info", "nr1")
    assert json.loads(info.stdout)["active"] is False, info.stdout
    r = _as_nobody(root, "--json", "net-start", "nr1")
    err = json.loads(r.stderr)
    assert err["error"]["code"] == "OPERATION_DENIED" and err["error"]["detail"]["needs"] == "CAP_NET_ADMIN", err
