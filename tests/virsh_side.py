"""The same command string through the real virsh and through virtctl.

Every kind's comparison with virsh (domains, networks, pools, volumes,
snapshots, ...) runs through here, so that the environment both programs see
and the few normalisations they need live in one place.  virsh is the oracle
(Debian's libvirt-clients); tests that use this are skipped where it is absent.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from vtest_paths import VIRSH

VIRTCTL = shutil.which("virtctl")

needs_virsh = [pytest.mark.virsh, pytest.mark.skipif(VIRSH is None, reason="virsh not installed")]

_CPU_TIME = re.compile(r"^CPU time:\s+\S+$", re.M)
# snapshots: creation times (and the default names made of them) are the wall clock
_SNAP_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}")
_SNAP_EPOCH = re.compile(r"<creationTime>\d+</creationTime>|(?<=Domain snapshot )1\d{9}\b|^1\d{9}$", re.M)
# domblkstat: the test driver's counters are the wall clock (microseconds since the
# epoch divided by 10, 20, 30, 40; errs its seconds / 2), in both layouts
_BLK_CLOCK = re.compile(r"^(\S+ (?:rd_req|rd_bytes|wr_req|wr_bytes|errs) )\d+$"
                        r"|^( (?:number of (?:read operations|bytes read|write operations|bytes written)"
                        r"|error count):\s+)\d+$", re.M)


def norm(text: str) -> str:
    """What differs by nature: the test driver's CPU time and block counters
    are the wall clock."""
    text = _CPU_TIME.sub("CPU time: <normalised>", text)
    text = _BLK_CLOCK.sub(lambda m: (m.group(1) or m.group(2)) + "<clock>", text)
    return _SNAP_EPOCH.sub("<time>", _SNAP_TIME.sub("<time>", text))


def run(argv: list[str], home) -> subprocess.CompletedProcess:
    """Run with a clean environment whose home and config are ``home``."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C.UTF-8",
           "XDG_CONFIG_HOME": str(home / "cfg")}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def both(uri: str, cmd: str, home, *, options: tuple[str, ...] = (), ours_uri: str | None = None):
    """(virsh's result, virtctl's result) for one command string; virtctl
    connects to ``ours_uri`` when given (``libvirt:test:///default``)."""
    theirs = run([VIRSH, *options, "-c", uri, cmd], home)
    ours = run([VIRTCTL, *options, "-c", ours_uri or uri, cmd], home)
    return theirs, ours


def compare(uri: str, cmd: str, home, *, options: tuple[str, ...] = (), ours_uri: str | None = None):
    """Assert identical stdout and the same success or failure."""
    theirs, ours = both(uri, cmd, home, options=options, ours_uri=ours_uri)
    assert "Traceback" not in ours.stderr, ours.stderr
    assert norm(ours.stdout) == norm(theirs.stdout), (
        f"stdout differs for {cmd!r}\n--- virsh stderr: {theirs.stderr}\n--- virtctl stderr: {ours.stderr}")
    assert (ours.returncode == 0) == (theirs.returncode == 0), (
        f"success differs for {cmd!r}: virsh {theirs.returncode} ({theirs.stderr.strip()}), "
        f"virtctl {ours.returncode} ({ours.stderr.strip()})")
    return theirs, ours


def verdict(label: str, theirs, ours, *, differs: bool, key=None) -> str | None:
    """None when virtctl's run of a case behaves as virsh's (stdout through
    ``key``, default norm(), and success or failure), else what is wrong;
    ``differs``: the case is listed as differing on purpose, so it must still
    differ.  One judge for every comparison run case by case in a pool."""
    key = key or norm
    if "Traceback" in ours.stderr:
        return f"{label}: traceback: {ours.stderr[-800:]}"
    same = (key(ours.stdout), ours.returncode == 0) == (key(theirs.stdout), theirs.returncode == 0)
    if differs:
        return None if not same else f"{label} no longer differs: drop it from LIBVIRT_DIFFERS"
    if not same:
        return (f"{label}: virsh rc={theirs.returncode} {theirs.stdout[-400:]!r} {theirs.stderr[-200:]!r}"
                f" / virtctl rc={ours.returncode} {ours.stdout[-400:]!r} {ours.stderr[-200:]!r}")
    return None
