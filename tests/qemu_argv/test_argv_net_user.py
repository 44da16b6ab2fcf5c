"""``<interface type='user'>`` with ``<portForward>`` -> QEMU's -netdev
(slirp hostfwd, or a stream to passt) and passt's port options
(argv_net_user.py); the real thing is tests/integration/test_qemu_portforward.py."""
from __future__ import annotations

import json

import pytest

from qemu_argv.helpers import paths
from qemu_argv.test_argv import dom, opts
from virtctl.drivers.qemu import argv_net_user as nu
from virtctl.drivers.qemu.argv import build_argv
from virtctl.drivers.qemu.argv_common import Ctx
from virtctl.drivers.qemu.argv_files import HostFiles
from virtctl.errors import NotSupported, XMLError

P = paths()


def iface(inner: str, backend: str = "") -> str:
    return f"<interface type='user'>{backend}<model type='virtio'/>{inner}</interface>"


def netdevs(xml: str, files=None) -> list[dict]:
    return [json.loads(n) for n in opts(build_argv(dom(xml), P, files=files), "-netdev")]


def test_hostfwd_default_address_ranges_to_and_exclude():
    pf = ("<portForward proto='tcp'><range start='2222' to='22'/></portForward>"
          "<portForward proto='udp' address='0.0.0.0'><range start='5000' end='5003' to='6000'/>"
          "<range start='5001' exclude='yes'/></portForward>")
    (n,) = netdevs(iface(pf))
    assert n == {"type": "user", "id": "hostnet0", "hostfwd": [
        {"str": "tcp:127.0.0.1:2222-:22"}, {"str": "udp::5000-:6000"}, {"str": "udp::5002-:6002"},
        {"str": "udp::5003-:6003"}]}


def test_passt_netdev_is_a_stream_to_its_socket_and_its_port_specs():
    pf = ("<portForward proto='tcp' address='127.0.0.1'><range start='2222' to='22'/>"
          "<range start='8000' end='8010'/><range start='8005' end='8006' exclude='yes'/></portForward>")
    (n,) = netdevs(iface(pf, "<backend type='passt'/>"))
    assert n == {"type": "stream", "id": "hostnet0", "server": False,
                 "addr": {"type": "unix", "path": nu.socket_path(P, 0)}}
    d = dom(iface(pf, "<backend type='passt'/>"))
    c = Ctx(d.root, P, machine_family="q35", accel="tcg", arch="x86_64")
    fwds = nu.forwards(c, d.root.find("devices/interface"))
    assert nu.passt_specs(fwds) == ["-t", "127.0.0.1/2222:22,8000-8010,~8005-8006", "-u", "none"]


def test_passt_socket_of_a_confined_qemu_is_a_descriptor():
    files = HostFiles(passed=True)
    (n,) = netdevs(iface("", "<backend type='passt'/>"), files)
    assert n["addr"]["type"] == "fd" and int(n["addr"]["str"]) >= 3
    assert [r.kind for r in files.requests if r.path == nu.socket_path(P, 0)] == ["connect"]


@pytest.mark.parametrize("pf,err,needle", [
    ("<portForward proto='tcp' address='::1'><range start='22'/></portForward>", NotSupported, "IPv4 only"),
    ("<portForward proto='tcp'/>", NotSupported, "without a <range>"),
    ("<portForward proto='tcp'><range start='9' exclude='yes'/></portForward>", NotSupported, "without a <range>"),
    ("<portForward proto='tcp'><range start='30' end='20'/></portForward>", XMLError, "end is below start"),
    ("<portForward proto='tcp'><range start='22'/><range start='22'/></portForward>", XMLError, "forwarded twice"),
    ("<portForward proto='tcp'><range start='1' end='300'/></portForward>", NotSupported, "at most 256"),
    ("<portForward proto='tcp'><range start='65000' end='65010' to='65530'/></portForward>", XMLError,
     "past 65535"),
])
def test_bad_forwards(pf, err, needle):
    with pytest.raises(err) as ei:
        build_argv(dom(iface(pf)), P)
    assert needle in str(ei.value)


def test_source_dev_only_with_passt_and_link_state_accepted():
    with pytest.raises(NotSupported, match="only with passt"):
        build_argv(dom(iface("<source dev='eth0'/>")), P)
    assert netdevs(iface("<source dev='eth0'/><link state='down'/>", "<backend type='passt'/>"))[0]["type"] == \
        "stream"
