"""qemu+ssh:// through the libvirt driver to the private libvirtd
(libvirtd_fixture.py), over the run's own sshd on 127.0.0.1 (sshd_fixture.py,
a key made for the run): the same answers as the local socket URI, virsh
agreeing on the same URI, and clear CONNECT_FAILED errors for a refused
port and a wrong key, with no ssh left running.

libvirt's ssh transport runs the system's ``ssh`` with the URI's
``keyfile`` (and the run's ssh config, see _ssh_wrapper) and, on the far side, ``nc -U`` to the socket
named by ``socket=`` (``proxy=netcat``: virt-ssh-helper would go to the
machine's own libvirtd socket instead of the private one)."""
from __future__ import annotations

import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from integration.test_qemu_driver import VIRTCTL
from sshd_fixture import free_port

pytestmark = pytest.mark.qemu
VIRSH = shutil.which("virsh")
NET = "<network><name>lvs-iso</name><bridge name='lvsbr0'/></network>"
DOM = ("<domain type='qemu'><name>lvs1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
       "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>")


def _ssh_wrapper(sshd, *, key=None, port=None) -> str:
    """libvirt's plain ssh transport has no known_hosts parameter (only its
    libssh ones do) and ssh reads ~/.ssh of the passwd entry, not $HOME: the
    URI's ``command=`` names this wrapper, which gives ssh the run's config
    (its known_hosts holds the run's host key; nothing of the machine's is
    read or written)."""
    kw = {k: v for k, v in (("key", key), ("port", port)) if v}
    command = sshd.ssh_command_with(**kw) if kw else sshd.ssh_command  # "ssh -F CONFIG"
    path = sshd.dir / ("ssh-for-libvirt" + "".join(f"-{k}{Path(str(v)).name}" for k, v in sorted(kw.items())))
    path.write_text(f"#!/bin/sh\nexec {command} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def ssh_uri(libvirtd, sshd, *, key=None, port=None) -> str:
    q = urllib.parse.urlencode({"socket": str(libvirtd.socket), "keyfile": str(key or sshd.client_key),
                                "command": _ssh_wrapper(sshd, key=key, port=port), "proxy": "netcat",
                                "no_tty": "1"})
    return f"qemu+ssh://{sshd.user}@127.0.0.1:{port or sshd.port}/system?{q}"


def run(uri: str, *args: str, prog: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([prog or VIRTCTL, "-c", uri, *args], capture_output=True, text=True, timeout=timeout)


def _ssh_left(marker: str) -> list[str]:
    r = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True)
    return [ln for ln in r.stdout.splitlines() if "pgrep" not in ln]


@pytest.fixture(scope="module")
def made(libvirtd, tmp_path_factory):
    if VIRTCTL is None:
        pytest.skip("the virtctl entry point is not installed (pip install -e .)")
    d = tmp_path_factory.mktemp("lvssh")
    (d / "dom.xml").write_text(DOM)
    (d / "net.xml").write_text(NET)
    for args in (("define", str(d / "dom.xml")), ("net-define", str(d / "net.xml"))):
        r = run(libvirtd.uri, *args)
        assert r.returncode == 0, r.stderr
    yield d
    for args in (("undefine", "lvs1"), ("net-undefine", "lvs-iso")):
        run(libvirtd.uri, *args)


@pytest.mark.parametrize("args", [("list", "--all"), ("dominfo", "lvs1"), ("domstate", "lvs1"),
                                  ("net-list", "--all"), ("dumpxml", "lvs1"), ("--json", "list", "--all"),
                                  ("uri",), ("hostname",)])
def test_qemu_ssh_gives_the_answers_of_the_local_socket(libvirtd, sshd, made, args):
    uri = ssh_uri(libvirtd, sshd)
    remote, local = run(uri, *args), run(libvirtd.uri, *args)
    assert remote.returncode == 0, remote.stderr
    if args == ("uri",):  # each names the URI it was given
        assert remote.stdout.strip() == uri and local.stdout.strip() == libvirtd.uri
        return
    assert remote.stdout == local.stdout
    if VIRSH is not None and args[0] != "--json":
        theirs = run(uri, *args, prog=VIRSH)
        assert theirs.returncode == 0, theirs.stderr
        assert remote.stdout == theirs.stdout


def test_a_refused_port_and_a_wrong_key_are_connect_failed(libvirtd, sshd, made):
    for uri, words in ((ssh_uri(libvirtd, sshd, port=free_port()), "Connection refused"),
                       (ssh_uri(libvirtd, sshd, key=sshd.other_key), "Permission denied")):
        t0 = time.monotonic()
        r = run(uri, "list", "--all", timeout=120)
        assert r.returncode == 7, (r.returncode, r.stderr)  # CONNECT_FAILED (README: exit codes)
        assert r.stderr.startswith("error: failed to connect to the hypervisor"), r.stderr
        assert words in r.stderr, r.stderr
        assert time.monotonic() - t0 < 110  # it returned: no hang (the run's own timeout is larger)
    assert _ssh_left(str(sshd.other_key)) == [] and _ssh_left(str(libvirtd.socket)) == []
