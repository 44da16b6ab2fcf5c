"""Hotplug of interfaces on networks and bridges, for real: inside a network
namespace of the test's own (test_qemu_network.NsEnv), a running test guest
gets a NIC on a NAT network (a tap virtctl makes on the bridge), takes a
DHCP lease through it, and loses it again on detach: the tap goes with it.
A kill -9 between the tap and ``device_add`` is finished by the next
command; a guest that stops takes the hotplugged tap with it."""
from __future__ import annotations

import json
import os

import pytest

from integration.test_qemu_network import _wait_serial, nenv  # noqa: F401 - the fixture

pytestmark = pytest.mark.qemu

MAC = "52:54:00:ab:cd:01"


def _console(env, name: str, line: str) -> None:
    env.send_serial(env.uuid(name), line)


def _up(env):
    env.ok("net-define", env.net("hp", bridge="vcbr-hp", addr="10.79.0.1"))
    env.ok("net-start", "hp")
    env.guest_with("h1", "")
    env.ok("start", "h1")
    env.wait_ready(env.uuid("h1"))


def test_attach_interface_on_a_network_gets_a_lease_and_detach_removes_the_tap(nenv):  # noqa: F811
    env = nenv
    _up(env)
    out = env.ok("attach-interface", "h1", "network", "hp", "--model", "virtio", "--mac", MAC, "--live")
    assert out == "Interface attached successfully\n\n"
    live = env.ok("dumpxml", "h1")
    assert "<source network='hp' bridge='vcbr-hp'/>" in live and "<target dev='vnet0'/>" in live, live
    assert "<alias name='net0'/>" in live
    assert "INTERFACE=vcbr-hp" in env.sh("cat", "/sys/class/net/vnet0/master/uevent").stdout
    assert MAC not in env.ok("dumpxml", "h1", "--inactive")  # --live only
    _console(env, "h1", "dhcp")
    data = _wait_serial(env, "h1", "VIRTCTL-GUEST-NET eth0 10.79.0.")
    ip = data.split("VIRTCTL-GUEST-NET eth0 ", 1)[1].split()[0]
    leases = json.loads(env.ok("--json", "net-dhcp-leases", "hp"))["leases"]
    assert [(x["mac"], x["address"]) for x in leases] == [(MAC, ip)]
    # the same MAC again is refused (libvirt's words), nothing made
    r = env.run("attach-interface", "h1", "network", "hp", "--mac", MAC, "--live")
    assert r.returncode == 4 and f"network device with mac {MAC} already exists" in r.stderr, r.stderr
    assert "vnet1" not in env.links()
    r = env.run("net-destroy", "hp")
    assert r.returncode == 4 and "'h1'" in r.stderr, r.stderr  # a hotplugged user counts
    env.ok("detach-interface", "h1", "network", "--mac", MAC, "--live")
    assert "vnet0" not in env.links() and MAC not in env.ok("dumpxml", "h1")
    assert not env.record("h1").get("taps")


def test_kill9_after_the_tap_and_guest_stop_remove_hotplugged_taps(nenv):  # noqa: F811
    env = nenv
    _up(env)
    r = env.run("attach-interface", "h1", "network", "hp", "--model", "virtio", "--live",
                env={**os.environ, "VIRTCTL_KILL_AT": "hotplug:tap-made"})
    assert r.returncode in (-9, 137), (r.returncode, r.stderr)
    assert "vnet0" in env.links()  # made, QEMU never told
    assert "vnet0" not in env.ok("dumpxml", "h1")  # the next command (this one) finished it
    assert "vnet0" not in env.links()
    env.ok("attach-interface", "h1", "network", "hp", "--model", "virtio", "--live")
    assert "vnet0" in env.links()
    env.ok("destroy", "h1")
    assert "vnet0" not in env.links()
    env.ok("net-destroy", "hp")
