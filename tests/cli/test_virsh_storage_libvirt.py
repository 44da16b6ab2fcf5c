"""The storage comparison through the libvirt driver: every case of
tests/cli/wide/storage.txt and of tests/cli/test_virsh_storage.py run as
``virtctl -c libvirt:test:///...`` (libvirt's own test driver, through the
binding) against ``virsh -c test:///...``: identical stdout, the same success.

LIBVIRT_DIFFERS is empty: libvirt itself answers every pool and volume call.
"""
from __future__ import annotations

import shutil

import pytest

from virsh_side import both, needs_virsh, norm, verdict
from vtest_paths import SHARED

libvirt = pytest.importorskip("libvirt", reason="the libvirt binding is not installed (pip install '.[libvirt]')")

pytestmark = needs_virsh


def _storage():
    # the storage comparison's cases (test modules are not importable by name
    # under --import-mode=importlib)
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_storage_cases", Path(__file__).with_name("test_virsh_storage.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_s = _storage()
EXAMPLES = SHARED / "reference" / "libvirt-9.0" / "examples-test"

LIBVIRT_DIFFERS: dict[str, str] = {}

# test_virsh_storage.py's cases on node files (its test_node_file and test_undefine_storage)
NODE_CASES = [
    "pool-list --all --details; vol-list default-pool --details; pool-dumpxml default-pool",
    "vol-info --pool default-pool default-vol; vol-dumpxml --pool default-pool default-vol; "
    "vol-path --pool default-pool default-vol",
    "vol-create-as default-pool v1 1G; pool-list --details; vol-list default-pool",
]
UNDEFINE_HOWS = ["--remove-all-storage", "--storage vdb", "--storage /default-pool/v2,vda",
                 "--storage vdx", "--storage vdc"]
POOL_PF = ("<pool type='dir'><name>pf</name><uuid>0b5a4b6e-1c61-4bd3-9d0f-5a3c1a0f0b11</uuid>"
           "<target><path>/var/pf</path></target></pool>\n")


def _cases() -> list[tuple[str, str]]:
    """(uri, command) pairs; ``{dir}`` is the case's files directory."""
    out = [("test:///default", c) for c in _s.CASES]
    for node in ("testnode.xml", "testnodeinline.xml"):
        out += [(f"test://{{dir}}/ex/{node}", c) for c in NODE_CASES]
    for how in UNDEFINE_HOWS:
        for start in (False, True):
            out.append(("test://{dir}/ex/testnodeinline.xml",
                        "vol-create-as default-pool v1 1M; vol-create-as default-pool v2 1M; define {dir}/sd.xml; "
                        + ("start sd; " if start else "") + f"undefine sd {how}; vol-list default-pool; "
                        "list --all --name"))
    out += [
        ("test:///default", "vol-create-as default-pool v2 10M --allocation 1M --format qcow2; "
         "vol-create-from default-pool {dir}/cf.xml v2 --inputpool default-pool; vol-list default-pool --details; "
         "vol-dumpxml cf --pool default-pool; vol-create default-pool {dir}/cf.xml; vol-create default-pool {dir}/cf.xml"),
        ("test:///default", "pool-define {dir}/p.xml; pool-info pf; pool-dumpxml pf; pool-start pf; "
         "pool-info pf --bytes; pool-create {dir}/p.xml; pool-undefine pf"),
        ("test:///default", "pool-create {dir}/q.xml; pool-list --all --transient --details; pool-undefine qf; "
         "pool-autostart qf; pool-destroy qf; pool-list --all"),
        # beyond test_virsh_storage.py: what the libvirt driver maps besides
        ("test:///default", "pool-dumpxml --inactive default-pool"),
        ("test:///default", "pool-define-as p3 dir --target /tmp/p3; pool-dumpxml --inactive p3; pool-start p3; "
         "pool-list --details; vol-create-as p3 a 1M; vol-list p3 --details; vol-key a --pool p3; vol-pool /tmp/p3/a; "
         "pool-destroy p3; vol-info /tmp/p3/a; pool-list --all --details"),
        ("test:///default", "vol-create-as default-pool v2 10M; vol-resize v2 5M --pool default-pool; "
         "vol-resize v2 5M --pool default-pool --shrink; vol-info v2 --pool default-pool --bytes; "
         "vol-resize v2 1M --pool default-pool --delta; vol-resize v2 -2M --pool default-pool; "
         "vol-info v2 --pool default-pool --bytes"),
        ("test:///default", "vol-create-as default-pool v2 10M; vol-delete /default-pool/v2; vol-list default-pool"),
        ("test:///default", "pool-start default-pool; pool-build default-pool --overwrite; pool-undefine default-pool"),
    ]
    return out


def _files(d) -> None:
    (d / "ex").mkdir()
    if EXAMPLES.is_dir():
        shutil.copytree(EXAMPLES, d / "ex", dirs_exist_ok=True)
    (d / "sd.xml").write_text(_s.DOM_WITH_VOLUMES)
    (d / "cf.xml").write_text("<volume><name>cf</name><capacity>1024</capacity><target/></volume>\n")
    (d / "p.xml").write_text(POOL_PF)
    (d / "q.xml").write_text(POOL_PF.replace("pf", "qf").replace("0b5a4b6e", "1b5a4b6e"))


def _one(i: int, uri: str, raw: str, base) -> str | None:
    """None when the case behaves as it must, else what is wrong."""
    d = base / f"c{i}"  # a directory (and a home) of its own: node files are edited by nothing, but
    d.mkdir()           # the cases run side by side
    _files(d)
    uri, cmd = uri.format(dir=d), raw.format(dir=d)
    theirs, ours = both(uri, cmd, d, ours_uri="libvirt:" + uri)
    return verdict(f"{uri} {raw!r}", theirs, ours, differs=raw in LIBVIRT_DIFFERS,
                   key=lambda out: norm(out).replace(str(d), "{dir}"))


def test_every_storage_case_through_libvirt_as_virsh(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    if not EXAMPLES.is_dir():
        pytest.skip("libvirt examples not available")
    cases = _cases()
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(lambda ic: _one(ic[0], *ic[1], tmp_path), enumerate(cases)) if p]
    assert len(cases) >= 60
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)


def test_pool_edit_through_libvirt(tmp_path):
    import os

    from cli_runner import run_installed

    env = {**os.environ, "EDITOR": _s._editor(tmp_path, "sed -i 's#/tmp/p3<#/tmp/p3b<#' \"$1\"")}
    r = run_installed("-c", "libvirt:test:///default", "pool-define-as p3 dir --target /tmp/p3; pool-edit p3; "
                      "pool-dumpxml p3; pool-edit default-pool", env=env)
    assert r.status == 0, r.err
    assert "Pool p3 XML configuration edited." in r.out and "<path>/tmp/p3b</path>" in r.out
    assert "Pool default-pool XML configuration not changed." in r.out
    env["EDITOR"] = _s._editor(tmp_path, "sed -i \"s/type='dir'/type='bogus'/\" \"$1\"")
    r = run_installed("-c", "libvirt:test:///default", "pool-edit default-pool", env=env, stdin="")
    assert r.status != 0 and "edited" not in r.out


def test_api_lookup_through_libvirt():
    from virtctl.api.connection import Connection
    from virtctl.errors import VirtError

    def code(f):
        with pytest.raises(VirtError) as e:
            f()
        return e.value.code

    with Connection("libvirt:test:///default") as c:
        p = c.lookup_pool("default-pool")
        assert c.lookup_pool(p.uuid) == p
        assert p.info().target_path == "/default-pool" and p.info().type == "dir"
        v = p.create_volume("<volume><name>a</name><capacity>1024</capacity><target/></volume>")
        assert c.lookup_volume("a", pool=p) == v == c.lookup_volume("/default-pool/a")
        assert v.info().capacity == 1024 and v.info().pool_name == "default-pool"
        assert [x.name for x in p.volumes()] == ["a"]
        assert code(lambda: c.lookup_volume("a")) == "NO_STORAGE_VOL"
        assert code(lambda: c.lookup_pool("nosuch")) == "NO_STORAGE_POOL"
        p.destroy()
        assert code(lambda: p.volumes()) == "OPERATION_INVALID"
        assert code(lambda: v.info()) in ("NO_STORAGE_VOL", "OPERATION_INVALID")


def test_differs_are_in_the_readme():
    from pathlib import Path

    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    section = readme[readme.index("differs from virsh on purpose"):]
    for words in set(LIBVIRT_DIFFERS.values()):
        assert words in section, words
