"""The interactive shell, end to end, in a real pseudo-terminal (pexpect)."""
from __future__ import annotations

import re

import pytest

from shell.conftest import shell_env

pexpect = pytest.importorskip("pexpect")

PROMPT = r"virtctl \(test:///default\)[#$]"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Shell:
    def __init__(self, exe, tmp_path, *args):
        self.state = tmp_path / "state"
        env = shell_env(XDG_STATE_HOME=str(self.state), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
        self.p = pexpect.spawn(exe, ["-c", "test:///default", *args], env=env, encoding="utf-8",
                               timeout=20, dimensions=(40, 120))

    def expect(self, pattern):
        self.p.expect(pattern)
        return self.p

    def prompt(self, pattern=PROMPT):
        self.p.expect(pattern)

    def run(self, line, expect):
        """Type ``line``, Enter, wait for ``expect`` then the next prompt;
        the output in between, without escape sequences."""
        self.p.send(line + "\r")
        self.p.expect(expect)
        out = ANSI.sub("", self.p.before + self.p.after)
        self.prompt()
        return out

    def tab(self, typed, completed):
        """Type ``typed`` then TAB; wait for the line to show ``completed``."""
        self.p.send(typed)
        self.p.send("\t")
        self.p.expect_exact(completed)


@pytest.fixture
def sh(virtctl_exe, tmp_path):
    s = Shell(virtctl_exe, tmp_path)
    s.prompt()
    yield s
    s.p.close(force=True)


def test_typing_completion_errors_history_and_exit(sh):
    # TAB completes a command name, then a running domain
    sh.tab("dest", "roy")
    sh.tab(" t", "est")
    sh.run("", "Domain 'test' destroyed")
    # the cache was refreshed in the background: `start` now offers the shut-off domain
    sh.tab("sta", "rt")
    sh.tab(" ", "test")
    sh.run("", "Domain 'test' started")
    # an option, then an enumerated value
    sh.tab("reboot test --mo", "de")
    sh.tab(" ac", "pi")
    sh.run("", "is being rebooted")
    # a failing command, then a working one: the shell carries on
    assert "error: failed to get domain 'nosuch'" in sh.run("dominfo nosuch", "failed to get domain 'nosuch'")
    sh.run("domstate test", r"running|shut off")
    # history: up arrow recalls the last line
    sh.run("echo recall-me", "recall-me")
    sh.p.send("\x1b[A")
    sh.p.expect_exact("echo recall-me")
    sh.run("", "recall-me")
    # exit leaves with status 0; history was written to $XDG_STATE_HOME/virtctl/history
    sh.p.send("exit\r")
    sh.p.expect(pexpect.EOF)
    sh.p.close()
    assert sh.p.exitstatus == 0
    history = (sh.state / "virtctl" / "history").read_text()
    assert "+echo recall-me" in history and "+destroy test" in history


def test_ctrl_c_abandons_the_line_and_ctrl_d_leaves(sh):
    sh.p.send("destroy test")
    sh.p.send("\x03")  # Ctrl-C: the line is dropped, not run
    sh.prompt()
    sh.run("domstate test", "running")
    sh.p.send("\x04")  # Ctrl-D on an empty line
    sh.p.expect(pexpect.EOF)


def test_continuation_lines_and_command_strings(sh):
    sh.p.send("echo 'one\r")          # open quote: a continuation line
    sh.p.expect_exact(">")
    sh.run("two'; echo three", r"one\r\ntwo\r\nthree")   # output lines, not the echoed input
    sh.p.send("echo a \\\r")          # backslash continuation
    sh.p.expect_exact(">")
    sh.run("b", r"[^ ]a b\r\n")   # the output line, not "echo a b"


def test_connect_switches_and_prompt_shows_read_only(sh):
    sh.run("destroy test", "destroyed")
    # typed after a space, so that history's auto-suggestion never offers it for
    # "conn" below: under load the threaded completer answers late, and the test
    # would see the suggestion's "ect" instead of the completion's
    sh.p.send(" connect test:///default --readonly\r")
    sh.prompt(r"virtctl \(test:///default\) \[ro\][#$]")
    # a new connection: the test driver starts afresh, and refuses changes
    sh.p.send("domstate test\r")
    sh.p.expect("running")
    sh.p.send("destroy test\r")
    sh.p.expect("read only")
    sh.p.send("conn\t")
    sh.p.expect_exact("ect")
    sh.p.send(" test:///d\t")
    sh.p.expect_exact("efault")
    sh.p.send("\r")
    sh.prompt(PROMPT)
    sh.run("uri", "test:///default")
    sh.p.send("quit\r")
    sh.p.expect(pexpect.EOF)


def test_help_lists_groups(sh):
    out = sh.run("help", "Virtctl itself")
    assert "Grouped commands:" in out and "Domain Management (help keyword 'domain')" in out
    assert "quit (exit)" in sh.run("help virtctl", r"shell\s+Open")
    assert "--readonly" in sh.run("help connect", "--readonly")
