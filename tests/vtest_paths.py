"""Where things are, for every test (tests/ is on sys.path under pytest)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the project root holds the libvirt corpus and references.
SHARED = Path(os.environ.get("VIRTCTL_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus" / "libvirt-9.0"
VIRSH = shutil.which("virsh")
