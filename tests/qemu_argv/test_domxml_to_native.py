"""virtctl domxml-to-native qemu-argv."""
from __future__ import annotations

import shlex

from cli_runner import run
from qemu_argv.helpers import VIRT_INSTALL

T = ("-c", "test:///default")
F = str(VIRT_INSTALL / "generic-pc-i440fx.xml")


def test_text_is_one_shell_quoted_line():
    r = run(*T, "domxml-to-native", "qemu-argv", "--xml", F)
    assert r.status == 0, r.err
    assert r.out.strip().count("\n") == 0
    argv = shlex.split(r.out)
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert "guest=vi-generic-pc,debug-threads=on" in argv
    assert "socket,id=charmonitor,path=/run/virtctl/7ea22b0c-0eb6-4328-a16c-be96fee8070a/qmp.sock,server=on,wait=off" in argv


def test_json_and_positional_forms():
    r = run(*T, "--json", "domxml-to-native", "--format", "qemu-argv", "--xml", F)
    assert r.status == 0, r.err
    argv = r.json()["argv"]
    assert argv == shlex.split(run(*T, "domxml-to-native", "qemu-argv", "--xml", F).out)


def test_errors():
    r = run(*T, "domxml-to-native", "native-xml", "--xml", F)
    assert r.status == 6 and "unsupported config type native-xml" in r.err
    r = run(*T, "domxml-to-native", "qemu-argv")
    assert r.status == 2
    r = run(*T, "domxml-to-native", "qemu-argv", "--xml", "/nonexistent.xml")
    assert r.status == 3
    # the test driver's own domain is type='test': the qemu driver refuses it by name
    r = run(*T, "domxml-to-native", "qemu-argv", "--domain", "test")
    assert r.status == 6 and "<domain type='test'>" in r.err


def test_refusal_names_the_element(tmp_path):
    f = tmp_path / "d.xml"
    f.write_text("<domain type='qemu'><name>x</name><memory>131072</memory><os><type>hvm</type></os>"
                 "<devices><hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/><product id='0x2'/>"
                 "</source></hostdev></devices></domain>")
    r = run(*T, "domxml-to-native", "qemu-argv", "--xml", str(f))
    assert r.status == 6 and "<hostdev type='usb'> is not supported by the qemu driver" in r.err
