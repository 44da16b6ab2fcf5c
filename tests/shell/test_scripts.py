"""The bash, zsh and fish scripts really complete: each shell runs its
script, the script runs the installed virtctl's engine."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from shell.conftest import shell_env
from vtest_paths import ROOT

COMPLETIONS = ROOT / "completions"


# --- bash: source, `complete -p`, COMP_WORDS/COMP_CWORD as bash sets them, read COMPREPLY -----

BASH_DRIVER = r"""
source "$1"
complete -p virtctl || exit 9
shift
COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
# split the way readline does: blanks, and COMP_WORDBREAKS characters (: and =) as words
read -r -a COMP_WORDS <<< "$(sed -e 's/\([:=]\)/ \1 /g' <<< "$COMP_LINE")"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_virtctl virtctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def bash_complete(line: str) -> list[str]:
    p = subprocess.run(["bash", "-c", BASH_DRIVER, "bash", str(COMPLETIONS / "virtctl.bash"), line],
                       capture_output=True, text=True, timeout=60, env=shell_env())
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "complete -F _virtctl virtctl"
    return [ln for ln in lines[1:] if ln]


def test_bash_completes_a_command():
    assert bash_complete("virtctl sta") == ["start"]
    assert {"domblklist", "dominfo", "domstate", "domuuid"} <= set(bash_complete("virtctl dom"))


def test_bash_completes_options_and_values(node_uri):
    assert bash_complete(f"virtctl -c {node_uri} start dbshut --pa") == ["--paused"]
    assert bash_complete(f"virtctl -c {node_uri} shutdown webfront --mode a") == ["acpi", "agent"]
    assert bash_complete(f"virtctl -c {node_uri} shutdown webfront --mode=a") == ["acpi", "agent"]
    assert bash_complete("virtctl --conn") == ["--connect"]
    # `test:///...` is split at ':' by readline: the candidates replace just the last piece
    assert bash_complete("virtctl -c test:///d") == ["///default"]


def test_bash_completes_domain_names_by_state(node_uri):
    assert bash_complete(f"virtctl -c {node_uri} start ") == ["dbshut"]
    assert bash_complete(f"virtctl -c {node_uri} resume ") == ["pausedbox"]
    assert bash_complete(f"virtctl -c {node_uri} destroy ") == ["pausedbox", "webfront"]
    assert bash_complete(f"virtctl --connect={node_uri} dominfo --domain d") == ["dbshut"]


def test_bash_completes_files(tmp_path, node_uri):
    (tmp_path / "guest-a.xml").write_text("<domain/>")
    assert bash_complete(f"virtctl -c {node_uri} define {tmp_path}/guest") == [f"{tmp_path}/guest-a.xml"]


# --- fish: `complete -C` runs fish's real completion ----------------------------------------

needs_fish = pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")


def fish_complete(line: str) -> list[str]:
    script = f"source {COMPLETIONS / 'virtctl.fish'}; complete -C {shlex_fish(line)}"
    p = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True, timeout=60,
                       env=shell_env())
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def shlex_fish(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


@needs_fish
def test_fish_completes_command_option_and_domain(node_uri):
    assert fish_complete("virtctl sta") == ["start\tStart a defined (inactive) domain."]
    assert fish_complete(f"virtctl -c {node_uri} start dbshut --pa") == ["--paused\tleave the guest paused after start"]
    assert fish_complete(f"virtctl -c {node_uri} start ") == ["dbshut\tshut off"]
    assert fish_complete(f"virtctl -c {node_uri} resume p") == ["pausedbox\tpaused"]
    assert sorted(c.split("\t")[0] for c in fish_complete(f"virtctl -c {node_uri} shutdown webfront --mode ")) == \
        ["acpi", "agent", "initctl", "paravirt", "signal"]


# --- zsh: an interactive zsh with compinit, driven in a pseudo-terminal ------------------------

needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")


@needs_zsh
def test_zsh_completes_command_option_and_domain(node_uri, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = shell_env(TERM="dumb", ZDOTDIR=str(tmp_path), HOME=str(tmp_path))
    z = pexpect.spawn("zsh", ["-f", "-i"], env=env, encoding="utf-8", timeout=20, dimensions=(40, 200))
    try:
        z.sendline(f"fpath=({COMPLETIONS} $fpath); autoload -U compinit; compinit -u -D; "
                   "PS1='ZP%% '")
        z.expect("ZP% ")

        def tab(line: str, expect: str):
            z.send(line + "\t")
            z.expect_exact(expect)
            z.send("\x15")  # kill the line
            z.sendline("")
            z.expect("ZP% ")

        tab("virtctl shutd", "shutdown ")
        tab(f"virtctl -c {node_uri} start dbshut --pa", "--paused ")
        tab(f"virtctl -c {node_uri} start d", "dbshut ")
        tab(f"virtctl -c {node_uri} resume ", "pausedbox ")
    finally:
        z.close(force=True)
