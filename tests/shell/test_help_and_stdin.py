"""`help` cuts descriptions only on a terminal; `virtctl shell` with stdin
from a pipe reads commands as the batch mode does (no prompt-toolkit)."""
from __future__ import annotations

import subprocess

import pytest

from shell.conftest import shell_env

T = ["-c", "test:///default"]


def test_help_is_whole_when_not_a_terminal(virtctl_exe):
    p = subprocess.run([virtctl_exe, *T, "help"], capture_output=True, text=True, timeout=60,
                       env=shell_env(COLUMNS="60"))
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert not [ln for ln in lines if ln.endswith("...")]
    edit = next(ln for ln in lines if ln.split()[:1] == ["edit"])
    assert edit.endswith("Edit a domain's persistent XML in $VISUAL or $EDITOR, then redefine it.")


def test_help_is_cut_to_the_terminal_width_on_a_terminal(virtctl_exe):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(virtctl_exe, [*T, "help"], env=shell_env(COLUMNS="80"), encoding="utf-8",
                          timeout=30, dimensions=(200, 80))
    child.expect(pexpect.EOF)
    lines = child.before.replace("\r\n", "\n").splitlines()
    assert lines and max(len(ln) for ln in lines) <= 80
    assert any(ln.endswith("...") for ln in lines)


def test_shell_reads_commands_from_a_pipe_like_batch_mode(virtctl_exe):
    text = "destroy test\ndomstate test\necho 'unclosed\nquit\necho never\n"
    shell = subprocess.run([virtctl_exe, *T, "shell"], input=text, capture_output=True, text=True, timeout=60)
    batch = subprocess.run([virtctl_exe, *T], input=text, capture_output=True, text=True, timeout=60)
    assert shell.returncode == batch.returncode == 0
    assert shell.stdout == batch.stdout == "Domain 'test' destroyed\n\nshut off\n\nunclosed\n"
    assert shell.stderr == batch.stderr == ""
    assert "not a terminal" not in shell.stderr


def test_stdin_lines_follow_virsh_rules_one_by_one(virtctl_exe):
    text = 'echo "open\necho a \\\necho next\nbogus\necho last\n'
    p = subprocess.run([virtctl_exe, *T], input=text, capture_output=True, text=True, timeout=60)
    assert p.stdout == "next\nlast\n"
    assert p.stderr == 'error: missing "\nerror: dangling \\\nerror: unknown command: \'bogus\'\n'
