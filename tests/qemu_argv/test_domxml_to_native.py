"""virtctl domxml-to-native qemu-argv: the command line `start` would run, with
the runtime paths of the connection's own state root (the argv of a real
`start` is compared in tests/integration/test_qemu_stats_console.py)."""
from __future__ import annotations

import shlex
from pathlib import Path

from cli_runner import run
from qemu_argv.helpers import VIRT_INSTALL
from virtctl.drivers.qemu.state import StateRoot

T = ("-c", "test:///default")
F = str(VIRT_INSTALL / "generic-pc-i440fx.xml")
UUID = "7ea22b0c-0eb6-4328-a16c-be96fee8070a"  # the fixture's <uuid>


def _embed(tmp_path: Path) -> tuple[tuple[str, str], StateRoot]:
    root = tmp_path / "r"
    return ("-c", f"qemu:///embed?root={root}"), StateRoot.for_uri("/embed", {"root": str(root)})


def test_text_is_one_shell_quoted_line_with_the_roots_runtime_paths(tmp_path):
    c, state = _embed(tmp_path)
    r = run(*c, "domxml-to-native", "qemu-argv", "--xml", F)
    assert r.status == 0, r.err
    assert r.out.strip().count("\n") == 0
    argv = shlex.split(r.out)
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert "guest=vi-generic-pc,debug-threads=on" in argv
    paths = state.runtime_paths(UUID)
    assert f"socket,id=charmonitor,path={paths.qmp},server=on,wait=off" in argv
    assert paths.pidfile in argv and "/run/virtctl/" not in r.out


def test_domain_form_equals_xml_form(tmp_path):
    c, _ = _embed(tmp_path)
    assert run(*c, "define", F).status == 0
    by_xml = run(*c, "--json", "domxml-to-native", "--format", "qemu-argv", "--xml", F).json()["argv"]
    by_dom = run(*c, "--json", "domxml-to-native", "qemu-argv", "--domain", "vi-generic-pc").json()["argv"]
    assert by_xml == by_dom == shlex.split(run(*c, "domxml-to-native", "qemu-argv", "--xml", F).out)


def test_test_driver_has_no_native_format():
    # libvirt's test driver has no virConnectDomainXMLToNative either
    for args in (("--xml", F), ("--domain", "test")):
        r = run(*T, "domxml-to-native", "qemu-argv", *args)
        assert r.status == 6 and "not supported by the connection driver: domxml-to-native" in r.err


def test_errors(tmp_path):
    c, _ = _embed(tmp_path)
    r = run(*c, "domxml-to-native", "native-xml", "--xml", F)
    assert r.status == 6 and "unsupported config type native-xml" in r.err
    r = run(*c, "domxml-to-native", "qemu-argv")
    assert r.status == 2
    r = run(*c, "domxml-to-native", "qemu-argv", "--xml", "/nonexistent.xml")
    assert r.status == 3
    r = run(*c, "domxml-to-native", "qemu-argv", "--domain", "nosuch")
    assert r.status == 3
    t = tmp_path / "t.xml"
    t.write_text("<domain type='test'><name>t</name><memory>131072</memory><os><type>hvm</type></os></domain>")
    r = run(*c, "domxml-to-native", "qemu-argv", "--xml", str(t))
    assert r.status == 6 and "domain type 'test'" in r.err


def test_refusal_names_the_element(tmp_path):
    c, _ = _embed(tmp_path)
    f = tmp_path / "d.xml"
    f.write_text("<domain type='qemu'><name>x</name><memory>131072</memory><os><type>hvm</type></os>"
                 "<devices><hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/><product id='0x2'/>"
                 "</source></hostdev></devices></domain>")
    r = run(*c, "domxml-to-native", "qemu-argv", "--xml", str(f))
    assert r.status == 6 and "<hostdev type='usb'> is not supported by the qemu driver" in r.err


def test_command_module_imports_no_driver():
    src = (Path(__file__).resolve().parents[2] / "virtctl" / "commands" / "domain_native.py").read_text()
    assert "drivers" not in src
