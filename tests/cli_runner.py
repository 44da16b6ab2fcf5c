"""Run virtctl in-process (fast) or through the installed entry point."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
from dataclasses import dataclass

from virtctl.cli.main import main


@dataclass
class Result:
    status: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def run(*argv: str, stdin: str | None = None) -> Result:
    """In-process: main() with captured streams."""
    import sys

    from virtctl.cli import session as session_mod

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr = out, err
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        try:
            main(list(argv))
            status = 0
        except SystemExit as exc:
            status = exc.code or 0
    finally:
        sys.stdout, sys.stderr, sys.stdin = old
    del session_mod
    return Result(int(status), out.getvalue(), err.getvalue())


def run_installed(*argv: str, env=None, stdin: str | None = None) -> Result:
    exe = shutil.which("virtctl")
    assert exe, "virtctl is not installed"
    p = subprocess.run([exe, *argv], capture_output=True, text=True, env=env, input=stdin, timeout=60)
    return Result(p.returncode, p.stdout, p.stderr)
