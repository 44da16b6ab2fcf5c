#!/usr/bin/env python3
"""The libvirt driver against virsh on the same libvirtd, in one run.

    python tests/bench/bench_libvirt.py [--runs N] [--domains N]

Starts the tests' private libvirtd (tests/integration/libvirtd_fixture.py:
its own namespaces, nothing of the machine's libvirtd touched) and the
tests' sshd on 127.0.0.1 (tests/sshd_fixture.py), defines N domains
(default 20), then times as fresh processes (median of --runs, default 11)
``list --all`` and ``dominfo`` through ``virtctl -c URI`` and ``virsh -c
URI``, for the local socket (``qemu+unix:///system?socket=...``) and for
``qemu+ssh://`` to the same daemon.  Not run by pytest.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from integration.libvirtd_fixture import PrivateLibvirtd  # noqa: E402
from sshd_fixture import SshServer  # noqa: E402
from bench_remote import timed  # noqa: E402 - the same fresh-process timer

VIRTCTL = str(Path(sys.executable).parent / "virtctl")
VIRSH = shutil.which("virsh")
DOM = ("<domain type='qemu'><name>{n}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
       "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--domains", type=int, default=20)
    a = ap.parse_args()
    if VIRSH is None:
        raise SystemExit("virsh is not installed (Debian: libvirt-clients)")
    import libvirt
    import urllib.parse

    d = PrivateLibvirtd()
    srv = None
    try:
        d.wait_ready()
        conn = libvirt.open(d.uri)
        for i in range(a.domains):
            conn.defineXML(DOM.format(n=f"b{i:03d}"))
        conn.close()
        srv = SshServer.start(Path(tempfile.mkdtemp(prefix="vt-sshd-")))
        wrap = srv.dir / "ssh-for-libvirt"
        wrap.write_text(f"#!/bin/sh\nexec {srv.ssh_command} \"$@\"\n")
        wrap.chmod(0o755)
        q = urllib.parse.urlencode({"socket": str(d.socket), "keyfile": str(srv.client_key),
                                    "command": str(wrap), "proxy": "netcat", "no_tty": "1"})
        uris = {"local socket": d.uri, "qemu+ssh": f"qemu+ssh://{srv.user}@127.0.0.1:{srv.port}/system?{q}"}
        rows = []
        for label, uri in uris.items():
            for cmd in (["list", "--all"], ["dominfo", "b000"]):
                ours = timed([VIRTCTL, "-c", uri, *cmd], None, a.runs)
                theirs = timed([VIRSH, "-c", uri, *cmd], None, a.runs)
                rows.append((f"{' '.join(cmd)} ({label})", ours, theirs))
        print(f"\nthrough libvirtd, {a.domains} defined domains; ms, median of {a.runs} fresh processes")
        print(f"{'command':34} {'virtctl':>8} {'virsh':>8} {'virtctl/virsh':>14}")
        print("-" * 67)
        for name, ours, theirs in rows:
            print(f"{name:34} {ours:8.1f} {theirs:8.1f} {ours / theirs:13.2f}x")
    finally:
        if srv is not None:
            srv.stop()
        d.stop()


if __name__ == "__main__":
    main()
