"""The checked-in completion scripts and man page are what the generators
produce now, and every command declares how its values complete."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess

import click
import pytest

from vtest_paths import ROOT
from virtctl.cli import tree
from virtctl.cli.options import COMPLETERS, completer_of

REGEN = "python scripts/gen_completions.py && python scripts/gen_man.py"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_value_has_a_completer_or_declares_none():
    missing, unknown = [], []
    for name, cmd in tree.all_commands().items():
        for p in cmd.params:
            if isinstance(p, click.Option) and (p.is_flag or p.count or p.name == "help"):
                continue
            if not isinstance(p, (click.Option, click.Argument)):
                continue
            label = f"{name} {'/'.join(p.opts) if isinstance(p, click.Option) else p.name.upper()}"
            c = completer_of(p)
            if c is None:
                missing.append(label)
            elif c != "choice" and c not in COMPLETERS and not c.startswith("enum:"):
                unknown.append(f"{label} (completer={c!r})")
    assert not missing and not unknown, (
        ("values without a completer: " + ", ".join(missing) + ". " if missing else "")
        + ("unknown completers: " + ", ".join(unknown) + ". " if unknown else "")
        + "Declare one on the option -- completer='domain:inactive' (or another of "
        + ", ".join(COMPLETERS) + ") via virtctl.cli.options.positional()/option()/argument(), "
        + "a click.Choice type, or completer='none' for free text -- then run: " + REGEN)


def test_completion_scripts_are_generated_from_the_current_tree():
    gen = _load("gen_completions")
    commands = sorted(tree.all_commands())
    for rel, text in gen.render().items():
        path = ROOT / rel
        current = path.read_text() if path.exists() else ""
        absent = [c for c in commands if c not in current]
        assert current == text, (
            f"{rel} is stale" + (f" (commands missing: {', '.join(absent)})" if absent else "")
            + f"; run: {REGEN}")


def test_man_page_is_generated_from_the_current_tree():
    gen = _load("gen_man")
    text = gen.render()
    path = ROOT / gen.OUT
    current = path.read_text() if path.exists() else ""
    absent = [c for c in sorted(tree.all_commands()) if f"\\fB{c.replace('-', chr(92) + '-')}\\fR" not in current]
    assert current == text, (f"{gen.OUT} is stale"
                             + (f" (commands missing: {', '.join(absent)})" if absent else "")
                             + f"; run: {REGEN}")


def test_man_page_documents_every_command_option_and_exit_status():
    from virtctl.errors import CODES

    text = (ROOT / "man" / "virtctl.1").read_text()
    for name, cmd in tree.all_commands().items():
        assert f"\\fB{name.replace('-', chr(92) + '-')}\\fR" in text, name
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name != "help":
                assert p.opts[0].replace("-", "\\-") in text, (name, p.opts)
    for code in CODES:
        assert code.replace("_", "_") in text
    for word in ("ENVIRONMENT", "EXIT STATUS", "FILES", "VIRTCTL_DEFAULT_URI", "XDG_STATE_HOME"):
        assert word in text


@pytest.mark.skipif(shutil.which("man") is None, reason="man-db not installed")
def test_man_page_renders_without_warnings():
    p = subprocess.run(["man", "--warnings", "-l", str(ROOT / "man" / "virtctl.1")],
                       capture_output=True, text=True, env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin",
                                                             "LANG": "C.UTF-8"}, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr
    assert "virtctl - manage virtual machines" in p.stdout
    assert "EXIT STATUS" in p.stdout
