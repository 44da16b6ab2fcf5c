"""net-* commands side by side with the real virsh on the test driver:
``test:///default`` and libvirt's own node files (networks in files and
inline), through tests/virsh_side.py's compare()."""
from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from virsh_side import VIRTCTL, compare, needs_virsh, run
from vtest_paths import SHARED

pytestmark = needs_virsh

REF = SHARED / "reference" / "libvirt-9.0" / "examples-test"
WIDE = pathlib.Path(__file__).parent / "wide" / "network.txt"

NET_XML = """\
<network>
  <name>n1</name>
  <uuid>11111111-2222-3333-4444-000000000001</uuid>
  <forward mode='route'/>
  <bridge name='br9'/>
  <ip address='10.9.0.1' netmask='255.255.255.0'/>
</network>
"""


def _cases():
    return [line for line in WIDE.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("cmd", _cases())
def test_default(cmd, tmp_path):
    compare("test:///default", cmd, tmp_path)


@pytest.mark.parametrize("node", ["testnode.xml", "testnodeinline.xml"])
@pytest.mark.parametrize("cmd", [
    "net-list --all",
    "net-dumpxml default",
    "net-dumpxml private",
    "net-info private",
    "net-uuid private",
    "net-destroy private; net-list --inactive --name; net-undefine private; net-list --all",
])
def test_node_file(node, cmd, tmp_path):
    if not (REF / node).exists():
        pytest.skip("libvirt's examples are not here")
    compare(f"test://{REF / node}", cmd, tmp_path)


@pytest.mark.parametrize("cmd", [
    "net-define {f}; net-list --all; net-info n1; net-dumpxml n1",
    "net-define {f}; net-start n1; net-list --all; net-destroy n1; net-undefine n1; net-list --all",
    "net-create {f}; net-list --all --transient; net-info n1; net-destroy n1; net-list --all",
    "net-create {f}; net-undefine n1",
    "net-define {f}; net-define {f}; net-list --all --uuid",
    "net-define {f}; net-autostart n1; net-list --all --autostart --name",
    "net-define /nonexistent.xml",
])
def test_define_create(cmd, tmp_path):
    f = tmp_path / "n1.xml"
    f.write_text(NET_XML)
    compare("test:///default", cmd.format(f=f), tmp_path)


def _ours(cmd: str, tmp_path, *opts):
    return run([VIRTCTL, *opts, "-c", "test:///default", cmd], tmp_path)


def test_json_shapes(tmp_path):
    r = _ours("net-list --all", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"networks": [{
        "name": "default", "uuid": "dd8fe884-6c02-601e-7551-cca97df1c5df", "active": True,
        "persistent": True, "autostart": False, "bridge": "virbr0"}]}
    r = _ours("net-destroy default", tmp_path, "--json")
    assert json.loads(r.stdout) == {"network": "default", "uuid": "dd8fe884-6c02-601e-7551-cca97df1c5df",
                                    "action": "destroyed", "result": "ok"}
    r = _ours("net-dumpxml default", tmp_path, "--json")
    assert json.loads(r.stdout)["xml"].startswith("<network>")


def test_errors_codes(tmp_path):
    """virsh's test driver ignores unknown elements; virtctl refuses them
    with a pointed error, as it does for domains (a deliberate difference)."""
    r = _ours("net-info nope", tmp_path, "--json")
    assert r.returncode == 3
    r = _ours("net-start default", tmp_path)
    assert r.returncode == 4 and "already running" in r.stderr
    bad = tmp_path / "bad.xml"
    bad.write_text("<network><name>x</name><bogus/></network>")
    r = _ours(f"net-define {bad}", tmp_path)
    assert r.returncode == 5 and "bogus" in r.stderr, r.stderr
    r = _ours("net-dhcp-leases default", tmp_path)
    assert r.returncode == 6


def test_readonly_refused(tmp_path):
    r = _ours("net-destroy default", tmp_path, "-r")
    assert r.returncode == 8, r.stderr


def test_qemu_driver_has_networks_and_no_default(tmp_path):
    """The QEMU driver's networks (tests/integration/test_qemu_network.py runs
    them for real): none exists until one is defined, not even 'default'."""
    r = run([VIRTCTL, "-c", f"qemu:///embed?root={tmp_path}/r", "net-list", "--all", "--name"], tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "", (r.stdout, r.stderr)
    r = run([VIRTCTL, "-c", f"qemu:///embed?root={tmp_path}/r", "net-info", "default"], tmp_path)
    assert r.returncode == 3 and "default" in r.stderr, r.stderr


def test_create_as(tmp_path):
    r = _ours("net-create-as lab --subnet 10.77.0.0/24 --forward route; net-list --all --transient --name; "
              "net-dumpxml lab", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "lab\n" in r.stdout and "<forward mode='route'/>" in r.stdout
    assert "<ip address='10.77.0.1' netmask='255.255.255.0'>" in r.stdout
    assert "<range start='10.77.0.2' end='10.77.0.254'/>" in r.stdout
    r = _ours("net-create-as iso --subnet 10.78.0.0/16 --forward none --define; net-list --inactive --name", tmp_path)
    assert r.returncode == 0 and "iso\n" in r.stdout and "Network iso defined" in r.stdout
    r = _ours("net-create-as bad --subnet 10.1.2.3/31", tmp_path)
    assert r.returncode == 2 and "invalid subnet" in r.stderr
    r = _ours("net-create-as bad --subnet nope", tmp_path, "--json")
    assert json.loads(r.stderr)["error"]["code"] == "INVALID_ARG"


def test_edit(tmp_path):
    editor = tmp_path / "ed.sh"
    editor.write_text("#!/bin/sh\nsed -i s/virbr0/virbr7/ \"$1\"\n")
    editor.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "EDITOR": str(editor)}
    r = subprocess.run([VIRTCTL, "-c", "test:///default", "net-destroy default; net-edit default; net-info default"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Network default XML configuration edited." in r.stdout and "virbr7" in r.stdout
    env["EDITOR"] = "true"
    r = subprocess.run([VIRTCTL, "-c", "test:///default", "net-edit default"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and "not changed" in r.stdout


def test_completion_of_network_names(tmp_path):
    from virtctl.cli.complete import Metadata, complete_argv, StaticCommandSource

    meta = Metadata.from_dict({"networks": [{"name": "default", "active": True},
                                            {"name": "lab", "active": False},
                                            {"name": "tmp", "active": True, "persistent": False}]})
    assert complete_argv(["net-start"], "", meta, StaticCommandSource()).values() == ["lab"]
    assert complete_argv(["net-destroy"], "", meta, StaticCommandSource()).values() == ["default", "tmp"]
    assert complete_argv(["net-undefine"], "", meta, StaticCommandSource()).values() == ["default", "lab"]
    assert complete_argv(["net-info"], "l", meta, StaticCommandSource()).values() == ["lab"]
    r = run([VIRTCTL, "__complete", "--", "-c", "test:///default", "net-info", "d"], tmp_path)
    assert r.stdout.splitlines()[1].startswith("default")


def test_python_api_filters_and_errors():
    from virtctl.api.connection import open as vopen
    from virtctl.errors import NoNetwork, OperationDenied, OperationInvalid, XMLError

    with vopen("test:///default") as conn:
        assert [n.name for n in conn.networks()] == ["default"]
        assert conn.networks(active=False) == []
        net = conn.lookup_network("DD8FE884-6C02-601E-7551-CCA97DF1C5DF")
        assert net.name == "default" and net.snapshot.bridge == "virbr0"
        lab = conn.define_network(NET_XML)
        assert [n.name for n in conn.networks(active=False, persistent=True)] == ["n1"]
        with pytest.raises(OperationInvalid):
            net.start()
        lab.start()
        lab.update("add", "ip-dhcp-host", "<host mac='52:54:00:00:00:09' ip='10.9.0.9'/>")
        assert "52:54:00:00:00:09" in lab.xml()
        with pytest.raises(XMLError):
            lab.update("add", "ip-dhcp-host", "<range start='1' end='2'/>")
        lab.destroy()
        lab.undefine()
        with pytest.raises(NoNetwork):
            conn.lookup_network("n1")
        with pytest.raises(XMLError, match="bogus"):
            conn.define_network("<network><name>x</name><bogus/></network>")
    with vopen("test:///default", readonly=True) as conn:
        with pytest.raises(OperationDenied):
            conn.lookup_network("default").destroy()
