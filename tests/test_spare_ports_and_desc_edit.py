"""Two README differs-on-purpose items without a home elsewhere: the spare
pcie-root-ports of q35 definitions (hotplug out of the box, as libvirt adds
them) and `desc --edit` through $EDITOR."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from virtctl.api.connection import Connection
from virtctl.xml import xmlapi

Q35 = """<domain type='qemu'><name>q</name><memory unit='MiB'>64</memory>
<os><type machine='q35'>hvm</type></os><devices/></domain>"""


def test_q35_definition_without_pci_controllers_gets_spare_root_ports(tmp_path):
    with Connection(f"qemu:///embed?root={tmp_path}/root") as conn:
        dom = conn.define_domain(Q35)
        root = xmlapi.parse(dom.xml(inactive=True))
    ports = [c for c in root.findall("devices/controller") if c.get("model") == "pcie-root-port"]
    assert len(ports) == 4


def test_desc_edit_runs_the_editor_on_the_description(tmp_path):
    editor = tmp_path / "ed.sh"
    editor.write_text("#!/bin/sh\necho 'written by the editor' > \"$1\"\n")
    editor.chmod(0o755)
    env = {**os.environ, "EDITOR": str(editor), "VISUAL": str(editor)}
    exe = Path(sys.executable).with_name("virtctl")
    r = subprocess.run([str(exe), "-c", "test:///default",
                        "desc test --edit; desc test"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "written by the editor" in r.stdout
