"""The QEMU driver's snapshot planner (drivers/qemu/snapshot/plan.py): what
each request asks of each disk, and what it refuses before anything is
touched (no QEMU needed)."""
from __future__ import annotations

import pytest

from virtctl.drivers.qemu.snapshot import plan
from virtctl.errors import InvalidArg, NotSupported, OperationInvalid
from virtctl.xml import xmlapi
from virtctl.xml.domain import DomainDef

DOM = """<domain type='qemu'><name>p</name><memory unit='MiB'>64</memory>
<os><type machine='pc'>hvm</type>{os}</os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
{more}</devices></domain>"""
RAW = ("<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/i/b.raw'/>"
       "<target dev='vdb' bus='virtio'/></disk>")
CD = "<disk type='file' device='cdrom'><source file='/i/c.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>"


def _make(req="<domainsnapshot><name>s</name></domainsnapshot>", os="", more="", run_state=None, **kw):
    d = DomainDef.parse(DOM.format(os=os, more=more), validate=False)
    flags = dict(disk_only=False, live=False, quiesce=False)
    flags.update(kw)
    return plan.make(xmlapi.parse(req), d, run_state=run_state, **flags)


def test_defaults_internal_and_cdrom_left_out():
    p = _make(more=CD, run_state="running")
    assert (p.memory, p.state) == ("internal", "running")
    assert [(d.target, d.mode) for d in p.disks] == [("vda", "internal"), ("hdc", "no")]
    p = _make(more=CD)
    assert (p.memory, p.state) == ("no", "shutoff")


def test_disk_only_is_external_with_a_default_overlay_name():
    p = _make(disk_only=True, run_state="running")
    assert (p.memory, p.state, p.kind) == ("no", "disk-snapshot", "external")
    assert p.disks[0].overlay == "/i/a.s"


def test_raw_disk_refused_naming_it_unless_left_out():
    with pytest.raises(NotSupported, match=r"disk 'vdb'.*'raw' \('/i/b.raw'\)"):
        _make(more=RAW)
    req = "<domainsnapshot><name>s</name><disks><disk name='vdb' snapshot='no'/></disks></domainsnapshot>"
    assert [d.mode for d in _make(req, more=RAW).disks] == ["internal", "no"]
    with pytest.raises(NotSupported, match="disk 'vdb'.*every writable disk"):
        _make(req, more=RAW, run_state="running")


def test_memory_snapshot_with_pflash_or_nvram_refused():
    for os in ("<loader type='pflash' readonly='yes'>/f/OVMF.fd</loader>", "<nvram>/f/vars.fd</nvram>"):
        with pytest.raises(NotSupported, match="pflash firmware or NVRAM"):
            _make(os=os, run_state="running")
        _make(os=os)  # shut off: disks only, fine
        _make(os=os, run_state="running", disk_only=True)


def test_bad_requests():
    with pytest.raises(InvalidArg, match="no disk named 'vdz'"):
        _make("<domainsnapshot><disks><disk name='vdz'/></disks></domainsnapshot>")
    with pytest.raises(NotSupported, match="external memory"):
        _make("<domainsnapshot><memory snapshot='external' file='/m'/></domainsnapshot>", run_state="running")
    with pytest.raises(NotSupported, match="mixing internal and external"):
        _make("<domainsnapshot><disks><disk name='vda' snapshot='internal'/>"
              "<disk name='vdb' snapshot='external'/></disks></domainsnapshot>",
              more=RAW.replace("raw", "qcow2"))
    with pytest.raises(OperationInvalid, match="inactive domain"):
        _make("<domainsnapshot><memory snapshot='internal'/></domainsnapshot>")
    with pytest.raises(NotSupported, match="--live"):
        _make(run_state="running", disk_only=True, live=True)
    with pytest.raises(NotSupported, match="--quiesce"):
        _make(quiesce=True)


# --- external revert and delete: what they keep (real qcow2 files, no QEMU) ----------------------------
def _snap(name, state_src, overlay, parent=None, revert=None):
    from virtctl.drivers.qemu.snapshot.store import meta_of

    rd = (f"<revertDisks><disk name='vda' snapshot='external' type='file'><driver type='qcow2'/>"
          f"<source file='{revert}'/></disk></revertDisks>") if revert else ""
    par = f"<parent><name>{parent}</name></parent>" if parent else ""
    xml = (f"<domainsnapshot><name>{name}</name><state>disk-snapshot</state>{par}<creationTime>1</creationTime>"
           f"<memory snapshot='no'/><disks><disk name='vda' snapshot='external' type='file'>"
           f"<driver type='qcow2'/><source file='{overlay}'/></disk></disks>{rd}"
           + DOM.format(os="", more="").replace("/i/a.qcow2", str(state_src)) + "</domainsnapshot>")
    return meta_of(xmlapi.parse(xml))


def test_external_revert_removes_only_an_overlay_that_is_nobodys_state(tmp_path):
    import subprocess

    from virtctl.drivers.qemu.snapshot import extrevert

    base, ov1, ov2, mine = (tmp_path / f"{n}.qcow2" for n in ("base", "ov1", "ov2", "mine"))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    for top, below in ((ov1, base), (ov2, ov1), (mine, ov1)):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(below), "-F", "qcow2", str(top)],
                       check=True)
    e1, e2 = _snap("e1", base, ov1), _snap("e2", ov1, ov2, parent="e1")
    metas = {"e1": e1, "e2": e2}

    def dom(src):
        return DomainDef.parse(DOM.format(os="", more="").replace("/i/a.qcow2", str(src)), validate=False)

    snap_def = DomainDef.parse(e1.domain_xml, validate=False)
    # the domain on e2's overlay: nobody's state, removed; e1's new overlay is on base
    disks, abandon = extrevert.plan(e1, snap_def, dom(ov2), metas)
    assert [(d["target"], d["backing"], d["fmt"]) for d in disks] == [("vda", str(base), "qcow2")]
    assert disks[0]["overlay"].startswith(str(tmp_path / "base.")) and abandon == [str(ov2)]
    # on ov1 (e2's state): kept; on an image virtctl did not make: kept
    assert extrevert.plan(e1, snap_def, dom(ov1), metas)[1] == []
    assert extrevert.plan(e1, snap_def, dom(mine), metas)[1] == []


def test_plain_name_of_a_json_pseudo_filename():
    from virtctl.drivers.qemu.blockjob import _plain_name

    assert _plain_name('json:{"backing": {"driver": "qcow2"}, "driver": "qcow2", '
                       '"file": {"driver": "file", "filename": "/i/m1.qcow2"}}') == "/i/m1.qcow2"
    assert _plain_name("/i/a.qcow2") == "/i/a.qcow2" and _plain_name(None) is None
