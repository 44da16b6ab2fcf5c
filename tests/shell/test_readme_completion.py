"""The README's completion steps, run literally in an empty home directory,
then each shell completes `virtctl sta` to `start` the way a user's shell
would load the script (bash through the bash-completion package, zsh
through ~/.zshrc and compinit, fish from ~/.config/fish/completions)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from vtest_paths import ROOT

BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def readme_steps() -> dict[str, list[str]]:
    """The lines of the README's completion block, by the shell named in its comments."""
    text = (ROOT / "README.md").read_text()
    start = text.index("Completion for your login shell")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1)
    steps: dict[str, list[str]] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("#"):
            current = line.lstrip("# ").split()[0]
            steps.setdefault(current, [])
        elif line.strip() and current:
            steps[current].append(line)
    return steps


def clean_env(home) -> dict:
    """A fresh user's environment: only HOME, PATH (virtctl first), a terminal."""
    return {"HOME": str(home), "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin",
            "TERM": "dumb", "LANG": "C.UTF-8", "NO_COLOR": "1"}


def run_steps(shell: str, home) -> None:
    steps = readme_steps()[shell]
    assert steps, f"no {shell} step in the README"
    for line in steps:
        p = subprocess.run(["sh", "-c", line], cwd=ROOT, env=clean_env(home), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, f"README step failed: {line}\n{p.stderr}"


def test_the_readme_names_all_three_shells():
    assert {"bash", "zsh", "fish"} <= set(readme_steps())


@pytest.mark.skipif(not os.path.exists(BASH_COMPLETION), reason="bash-completion not installed")
def test_bash_steps_work_in_an_empty_home(tmp_path):
    run_steps("bash", tmp_path)
    # what ~/.bashrc does on Debian: load bash-completion, which finds our script on demand
    driver = f"""
source {BASH_COMPLETION}
__load_completion virtctl 2>/dev/null || _completion_loader virtctl
complete -p virtctl || exit 9
COMP_LINE="virtctl sta"; COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=(virtctl sta); COMP_CWORD=1
_virtctl virtctl sta virtctl
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    p = subprocess.run(["bash", "-c", driver], env=clean_env(tmp_path), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["complete -F _virtctl virtctl", "start"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_steps_work_in_an_empty_home(tmp_path):
    run_steps("zsh", tmp_path)
    # an interactive zsh reads ~/.zshrc: the completion function is registered for virtctl
    p = subprocess.run(["zsh", "-i", "-c", "print -r -- ${_comps[virtctl]}; autoload +X _virtctl && print ok"],
                       env=clean_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["_virtctl", "ok"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_steps_work_in_an_empty_home(tmp_path):
    run_steps("fish", tmp_path)
    p = subprocess.run(["fish", "-c", "complete -C 'virtctl sta'"], env=clean_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert [line.split("\t")[0] for line in p.stdout.splitlines()] == ["start"]
