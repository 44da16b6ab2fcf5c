"""Hotplug commands on virtctl's test driver, which (unlike libvirt's)
applies attach/detach/update to its definitions: every command, the
--live/--config/--current/--persistent rules, refusals that change
nothing, JSON shapes and completion of the domain's targets, MACs and aliases."""
from __future__ import annotations

import json

import pytest

from cli_runner import run
from virtctl.cli.complete import Metadata, complete_argv, devices_of

URI = "test:///default"


def xml_pair(cmds: str) -> tuple[str, str, str]:
    """(stdout of ``cmds``, live XML, inactive XML) after them, in one connection."""
    r = run("-c", URI, f"{cmds}; echo ===; dumpxml test; echo ===; dumpxml test --inactive")
    out, live, inactive = r.out.split("===\n")
    return out, live, inactive


@pytest.mark.parametrize("flags,in_live,in_config", [
    ("", True, False),  # virsh's legacy call: the running domain
    ("--live", True, False), ("--config", False, True), ("--current", True, False),
    ("--persistent", True, True), ("--live --config", True, True),
])
def test_attach_disk_flags_on_a_running_domain(flags, in_live, in_config):
    out, live, inactive = xml_pair(f"attach-disk test /tmp/new.img vdb {flags}")
    assert out.startswith("Disk attached successfully\n")
    assert ("/tmp/new.img" in live) is in_live
    assert ("/tmp/new.img" in inactive) is in_config


def test_attach_disk_on_a_shut_off_domain():
    r = run("-c", URI, "destroy test; attach-disk test /tmp/new.img vdb")
    assert r.status == 4 and "domain is not running" in r.err
    out, live, inactive = xml_pair("destroy test; attach-disk test /tmp/new.img vdb --current; "
                                   "attach-disk test /tmp/p.img vdc --persistent")
    assert "/tmp/new.img" in inactive and "/tmp/p.img" in inactive
    r = run("-c", URI, "destroy test; attach-disk test /tmp/new.img vdb --live")
    assert r.status == 4


def test_detach_disk_and_interface():
    out, live, inactive = xml_pair("detach-disk test vda --config; detach-interface test network --live")
    assert out.count("successfully") == 2
    assert "vda" in live and "vda" not in inactive
    assert "aa:bb:cc:dd:ee:ff" not in live and "aa:bb:cc:dd:ee:ff" in inactive


def test_attach_interface_and_detach_by_mac():
    mac = "52:54:00:00:00:42"
    out, live, inactive = xml_pair(f"attach-interface test network default --mac {mac} --model virtio "
                                   "--persistent; detach-interface test network")
    assert "Interface attached successfully" in out
    assert "Domain has 2 interfaces. Please specify which one to detach using --mac" not in out
    r = run("-c", URI, f"attach-interface test network default --mac {mac} --live; detach-interface test network")
    assert r.status == 2 and "Domain has 2 interfaces" in r.err and "Failed to detach interface" in r.err
    out, live, _ = xml_pair(f"attach-interface test network default --mac {mac} --live; "
                            f"detach-interface test network --mac {mac} --live")
    assert mac not in live
    r = run("-c", URI, "attach-interface test network default --mac zz --live")
    assert r.status == 2 and "unable to parse mac address 'zz'" in r.err


def test_refusals_change_nothing(tmp_path):
    _, live0, inactive0 = xml_pair("echo")
    net = tmp_path / "net.xml"
    net.write_text("<network><name>n</name></network>")
    bad = tmp_path / "bad.xml"
    bad.write_text("<disk type='file'><source file='/x'/><target dev='vdq' bus='bogus'/></disk>")
    cases = [
        ("attach-disk test /tmp/x vda --persistent", 4, "target vda already exists"),
        (f"attach-device test {net} --persistent", 5, "unknown device type 'network'"),
        (f"attach-device test {bad} --persistent", 5, "bogus"),
        ("detach-disk test vdz", 2, "No disk found whose source path or target is vdz"),
        ("detach-device-alias test nosuch --live", 1, "no device found with alias nosuch"),
        ("attach-interface test network default --mac aa:bb:cc:dd:ee:ff --live", 4, "already exists"),
        ("change-media test vda /tmp/x.iso --insert", 2, "The disk device 'vda' is not removable"),
    ]
    for cmd, code, text in cases:
        r = run("-c", URI, cmd)
        assert r.status == code and text in r.err, (cmd, r.status, r.err)
        _, live, inactive = xml_pair("echo")
        assert (live, inactive) == (live0, inactive0), cmd


def test_change_media_and_update_device(tmp_path):
    cd = tmp_path / "cd.xml"
    cd.write_text("<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>")
    out, live, inactive = xml_pair(f"attach-device test {cd} --persistent; "
                                   "change-media test hdc /tmp/a.iso --insert --live")
    assert "Successfully inserted media." in out
    assert "/tmp/a.iso" in live and "/tmp/a.iso" not in inactive
    r = run("-c", URI, f"attach-device test {cd} --persistent; change-media test hdc --eject")
    assert r.status == 2 and "The disk device 'hdc' doesn't have media" in r.err
    out, live, _ = xml_pair(f"attach-device test {cd} --persistent; change-media test hdc /tmp/a.iso --insert; "
                            "change-media test hdc /tmp/b.iso --update; change-media test hdc --eject --print-xml")
    assert "Successfully updated media." in out and "/tmp/b.iso" in live
    assert "<source" not in out.split("Successfully updated media.")[1]
    r = run("-c", URI, f"attach-device test {cd} --persistent; change-media test hdc /tmp/a.iso --insert; "
                       "change-media test hdc /tmp/a.iso --insert")
    assert r.status == 2 and "already has media" in r.err
    vda = tmp_path / "vda.xml"
    vda.write_text("<disk type='file' device='disk'><source file='/other'/><target dev='vda'/></disk>")
    r = run("-c", URI, f"update-device test {vda}")
    assert r.status == 4 and "only their media can be changed" in r.err


def test_alias_detach_and_detach_device(tmp_path):
    d = tmp_path / "d.xml"
    d.write_text("<disk type='file'><source file='/tmp/u'/><target dev='vdu'/><alias name='ua-data'/></disk>")
    out, live, inactive = xml_pair(f"attach-device test {d} --persistent; detach-device-alias test ua-data --config")
    assert "Device detach request sent successfully" in out
    assert "ua-data" in live and "ua-data" not in inactive
    out, live, _ = xml_pair(f"attach-device test {d} --live; detach-device test {d} --live")
    assert "Device detached successfully" in out and "/tmp/u" not in live


def test_json_shapes(tmp_path):
    r = run("-c", URI, "--json", "attach-disk test /tmp/j.img vdj --persistent")
    doc = json.loads(r.out)
    assert doc == {"domain": "test", "uuid": doc["uuid"], "action": "attached", "live": True, "config": True,
                   "device": "disk", "target": "vdj", "source": "/tmp/j.img", "result": "ok"}
    r = run("-c", URI, "--json", "attach-interface test network default --mac 52:54:00:00:00:01 --live")
    doc = json.loads(r.out)
    assert doc["action"] == "attached" and doc["mac"] == "52:54:00:00:00:01" and doc["type"] == "network"
    r = run("-c", URI, "--json", "attach-disk test /tmp/j.img vdj --print-xml")
    assert json.loads(r.out)["xml"].startswith("<disk type='file'>")
    r = run("-c", URI, "--json", "detach-disk test vdz")
    assert r.status == 2 and json.loads(r.err)["error"]["code"] == "INVALID_ARG"


def test_transient_domain_has_no_config(tmp_path):
    x = tmp_path / "t.xml"
    x.write_text("<domain type='test'><name>tr</name><memory>1024</memory><os><type>hvm</type></os></domain>")
    r = run("-c", URI, f"create {x}; attach-disk tr /tmp/x vdb --config")
    assert r.status == 4 and "transient" in r.err


def test_completion_of_targets_macs_and_aliases():
    from virtctl.api.connection import Connection

    with Connection(URI) as conn:
        meta = Metadata.from_connection(conn)
        assert devices_of(meta, "test", "disk") == [("vda", "/guest/diskimage1")]
        assert devices_of(meta, "test", "mac") == [("aa:bb:cc:dd:ee:ff", "network")]
        assert devices_of(meta, "nosuch", "disk") == []
        got = complete_argv(["detach-disk", "test"], "v", meta)
        assert [c.value for c in got.candidates] == ["vda"]
        got = complete_argv(["detach-interface", "test", "network", "--mac"], "", meta)
        assert [c.value for c in got.candidates] == ["aa:bb:cc:dd:ee:ff"]
        conn.lookup_domain("test").attach_device(
            "<disk type='file'><source file='/a'/><target dev='vdb'/><alias name='ua-x'/></disk>", live=True)
        got = complete_argv(["detach-device-alias", "test"], "ua", meta)
        assert [c.value for c in got.candidates] == ["ua-x"]
