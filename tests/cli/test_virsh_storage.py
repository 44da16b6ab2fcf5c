"""Storage pool and volume commands against virsh on the test driver."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from virsh_side import compare, needs_virsh
from vtest_paths import SHARED

pytestmark = needs_virsh

CASES = [line for line in (Path(__file__).parent / "wide" / "storage.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]
EXAMPLES = SHARED / "reference" / "libvirt-9.0" / "examples-test"


@pytest.mark.parametrize("cmd", CASES)
def test_default(cmd, tmp_path):
    compare("test:///default", cmd, tmp_path)


@pytest.mark.parametrize("node", ["testnode.xml", "testnodeinline.xml"])
@pytest.mark.parametrize("cmd", [
    "pool-list --all --details; vol-list default-pool --details; pool-dumpxml default-pool",
    "vol-info --pool default-pool default-vol; vol-dumpxml --pool default-pool default-vol; "
    "vol-path --pool default-pool default-vol",
    "vol-create-as default-pool v1 1G; pool-list --details; vol-list default-pool",
])
def test_node_file(node, cmd, tmp_path):
    if not EXAMPLES.is_dir():
        pytest.skip("libvirt examples not available")
    d = tmp_path / "ex"
    shutil.copytree(EXAMPLES, d)
    compare(f"test://{d / node}", cmd, tmp_path)


def test_api_lookup():
    from virtctl.api.connection import Connection
    from virtctl.errors import NoStoragePool, NoStorageVol, OperationInvalid

    with Connection("test:///default") as c:
        p = c.lookup_pool("default-pool")
        assert c.lookup_pool(p.uuid) == p
        v = p.create_volume("<volume><name>a</name><capacity>1024</capacity><target/></volume>")
        assert c.lookup_volume("a", pool=p) == v == c.lookup_volume("/default-pool/a")
        assert [x.name for x in p.volumes()] == ["a"]
        with pytest.raises(NoStorageVol):
            c.lookup_volume("a")
        with pytest.raises(NoStoragePool):
            c.lookup_pool("nosuch")
        p.destroy()
        with pytest.raises(OperationInvalid):
            p.volumes()


DOM_WITH_VOLUMES = """<domain type='test'><name>sd</name><memory>8192</memory><os><type>hvm</type></os><devices>
<disk type='volume' device='disk'><source pool='default-pool' volume='v1'/><target dev='vda'/></disk>
<disk type='file' device='disk'><source file='/default-pool/v2'/><target dev='vdb'/></disk>
<disk type='file' device='disk'><source file='/elsewhere.img'/><target dev='vdc'/></disk>
</devices></domain>
"""


@pytest.mark.parametrize("how", ["--remove-all-storage", "--storage vdb", "--storage /default-pool/v2,vda",
                                 "--storage vdx", "--storage vdc"])
@pytest.mark.parametrize("start", [False, True])
def test_undefine_storage(how, start, tmp_path):
    if not EXAMPLES.is_dir():
        pytest.skip("libvirt examples not available")
    d = tmp_path / "ex"
    shutil.copytree(EXAMPLES, d)
    xml = tmp_path / "sd.xml"
    xml.write_text(DOM_WITH_VOLUMES)
    cmd = (f"vol-create-as default-pool v1 1M; vol-create-as default-pool v2 1M; define {xml}; "
           + ("start sd; " if start else "") + f"undefine sd {how}; vol-list default-pool; list --all --name")
    theirs, ours = compare(f"test://{d / 'testnodeinline.xml'}", cmd, tmp_path)
    assert ("not managed" in ours.stderr) == ("not managed" in theirs.stderr)


def _editor(tmp_path, script: str) -> str:
    p = tmp_path / "ed.sh"
    p.write_text("#!/bin/sh\n" + script + "\n")
    p.chmod(0o755)
    return str(p)


def test_pool_edit(tmp_path):
    import os

    from cli_runner import run_installed

    env = {**os.environ, "EDITOR": _editor(tmp_path, "sed -i 's#/tmp/p3<#/tmp/p3b<#' \"$1\"")}
    r = run_installed("-c", "test:///default", "pool-define-as p3 dir --target /tmp/p3; pool-edit p3; "
                      "pool-dumpxml p3; pool-edit default-pool", env=env)
    assert r.status == 0, r.err
    assert "Pool p3 XML configuration edited." in r.out and "<path>/tmp/p3b</path>" in r.out
    assert "Pool default-pool XML configuration not changed." in r.out
    env["EDITOR"] = _editor(tmp_path, "sed -i \"s/type='dir'/type='bogus'/\" \"$1\"")
    r = run_installed("-c", "test:///default", "pool-edit default-pool", env=env, stdin="")
    assert r.status == 5 and "edited" not in r.out


def test_vol_create_from_file(tmp_path):
    f = tmp_path / "cf.xml"
    f.write_text("<volume><name>cf</name><capacity>1024</capacity><target/></volume>\n")
    compare("test:///default", f"vol-create-as default-pool v2 10M --allocation 1M --format qcow2; "
            f"vol-create-from default-pool {f} v2 --inputpool default-pool; vol-list default-pool --details; "
            f"vol-dumpxml cf --pool default-pool; vol-create default-pool {f}; vol-create default-pool {f}", tmp_path)


def test_pool_define_from_file(tmp_path):
    f = tmp_path / "p.xml"
    f.write_text("<pool type='dir'><name>pf</name><uuid>0b5a4b6e-1c61-4bd3-9d0f-5a3c1a0f0b11</uuid>"
                 "<target><path>/var/pf</path></target></pool>\n")
    compare("test:///default", f"pool-define {f}; pool-info pf; pool-dumpxml pf; pool-start pf; "
            f"pool-info pf --bytes; pool-create {f}; pool-undefine pf", tmp_path)
    g = tmp_path / "q.xml"
    g.write_text(f.read_text().replace("pf", "qf").replace("0b5a4b6e", "1b5a4b6e"))
    compare("test:///default", f"pool-create {g}; pool-list --all --transient --details; pool-undefine qf; "
            "pool-autostart qf; pool-destroy qf; pool-list --all", tmp_path)
