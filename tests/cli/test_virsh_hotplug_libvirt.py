"""The hotplug comparison through the libvirt driver: the cases of
tests/cli/test_virsh_hotplug.py (and its error cases) run as
``virtctl -c libvirt:test:///default`` against ``virsh -c test:///default``,
plus cases that reach libvirt's test driver itself (attach/detach/update,
which it refuses with "this function is not supported": the same refusal,
word for word, must come back through virtctl).

Here libvirt answers, so nothing differs in stdout or success.  One stderr
difference is on purpose (README, "differs from virsh on purpose"): with
--live alone virtctl makes libvirt's legacy call (virDomainAttachDevice, the
same change), so the refusal names it where virsh names ...Flags.
"""
from __future__ import annotations

import pytest

from virsh_side import both, needs_virsh, norm

libvirt = pytest.importorskip("libvirt", reason="the libvirt binding is not installed (pip install '.[libvirt]')")

URI = "test:///default"
OURS = "libvirt:" + URI


def _hotplug():
    # test modules are not importable by name under --import-mode=importlib
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_hotplug_cases", Path(__file__).with_name("test_virsh_hotplug.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_h = _hotplug()
CASES = list(_h.CASES)
# the error cases are the parametrize list of test_hotplug_errors_match_virsh
ERROR_CASES = [m for m in _h.test_hotplug_errors_match_virsh.pytestmark if m.name == "parametrize"][0].args[1]

DISK_XML = "<disk type='file' device='disk'><source file='/tmp/hp.img'/><target dev='vdb' bus='virtio'/></disk>"
CDROM_XML = "<disk type='file' device='cdrom'><source file='/tmp/x.iso'/><target dev='hdc' bus='ide'/></disk>"
# cases that reach libvirt's test driver (it refuses them): stderr must match too
DRIVER_CASES = [
    "attach-disk test /tmp/hp.img vdb",
    "attach-disk test /tmp/hp.img vdb --config",
    "attach-disk test /tmp/hp.img vdb --persistent",
    "attach-disk test /tmp/hp.img vdb --current",
    "attach-disk test /tmp/hp.img vdb --live --config",
    "detach-disk test vda",
    "detach-disk test vda --config",
    "detach-disk test /guest/diskimage1 --persistent",
    "attach-interface test network default",
    "attach-interface test network default --mac 52:54:00:11:22:33 --config",
    "detach-interface test network",
    "detach-interface test network --mac aa:bb:cc:dd:ee:ff --config",
    "attach-device test {dir}/disk.xml",
    "attach-device test {dir}/disk.xml --config",
    "attach-device test {dir}/bad.xml",
    "detach-device test {dir}/disk.xml --current",
    "update-device test {dir}/cdrom.xml",
    "update-device test {dir}/cdrom.xml --config --force",
    "detach-device-alias test virtio-disk0",
    "detach-device-alias test virtio-disk0 --config",
    "detach-device-alias test virtio-disk0 --live --config",
    "attach-disk nosuch /tmp/hp.img vdb --config",
]
# --live alone is libvirt's legacy call: the refusal names virDomainAttachDevice
LIVE_ALONE = "hotplug with `--live` alone is libvirt's legacy hotplug call"
LIBVIRT_DIFFERS = {
    "attach-disk test /tmp/hp.img vdb --live": LIVE_ALONE,
    "detach-disk test vda --live": LIVE_ALONE,
    "detach-device test {dir}/disk.xml --live": LIVE_ALONE,
}


def _one(raw: str, files, *, stderr: bool) -> str | None:
    """None when the case behaves as it must, else what is wrong."""
    cmd = raw.format(dir=files)
    theirs, ours = both(URI, cmd, files, ours_uri=OURS)
    if "Traceback" in ours.stderr:
        return f"{raw!r}: traceback: {ours.stderr[-500:]}"
    got = (norm(ours.stdout), ours.returncode == 0)
    want = (norm(theirs.stdout), theirs.returncode == 0)
    if got != want:
        return (f"{raw!r}: virsh rc={theirs.returncode} {theirs.stdout[-300:]!r} {theirs.stderr[-200:]!r}"
                f" / virtctl rc={ours.returncode} {ours.stdout[-300:]!r} {ours.stderr[-200:]!r}")
    if raw in LIBVIRT_DIFFERS:
        if ours.stderr == theirs.stderr:
            return f"{raw!r}: stderr no longer differs: drop it from LIBVIRT_DIFFERS"
        if ours.stderr.replace("virDomainAttachDevice", "virDomainAttachDeviceFlags").replace(
                "virDomainDetachDevice", "virDomainDetachDeviceFlags") != theirs.stderr:
            return f"{raw!r}: stderr differs in more than the call's name: {theirs.stderr!r} / {ours.stderr!r}"
        return None
    if stderr and ours.stderr != theirs.stderr:
        return f"{raw!r}: stderr: virsh {theirs.stderr!r} / virtctl {ours.stderr!r}"
    return None


@needs_virsh[0]
@needs_virsh[1]
def test_hotplug_cases_through_libvirt_as_virsh(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "disk.xml").write_text(DISK_XML)
    (tmp_path / "cdrom.xml").write_text(CDROM_XML)
    (tmp_path / "bad.xml").write_text("<disk type='file'><target dev='vdb'")
    jobs = ([(c, False) for c in CASES] + [(c, True) for c in ERROR_CASES] + [(c, True) for c in DRIVER_CASES]
            + [(c, True) for c in LIBVIRT_DIFFERS])
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(lambda j: _one(j[0], tmp_path, stderr=j[1]), jobs) if p]
    assert len(CASES) >= 30 and len(ERROR_CASES) >= 5
    assert not problems, f"{len(problems)} of {len(jobs)} cases:\n" + "\n".join(problems)


def test_differs_are_in_the_readme():
    from pathlib import Path

    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    section = readme[readme.index("differs from virsh on purpose"):]
    for words in set(LIBVIRT_DIFFERS.values()):
        assert words in section, words
