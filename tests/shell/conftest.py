"""Fixtures of the shell and completion tests: a test-driver node whose
domains are in every state completion filters on."""
from __future__ import annotations

import os
import shutil

import pytest

NODE_XML = """\
<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads><mhz>2000</mhz><model>Xeon</model></cpu>
  <memory>8192000</memory>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>webfront</name><uuid>aaaaaaaa-0000-0000-0000-000000000001</uuid><memory>1024</memory><os><type>hvm</type></os>
  </domain>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>dbshut</name><uuid>aaaaaaaa-0000-0000-0000-000000000002</uuid><memory>1024</memory><os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>pausedbox</name><uuid>aaaaaaaa-0000-0000-0000-000000000003</uuid><memory>1024</memory><os><type>hvm</type></os>
    <test:runstate>3</test:runstate>
  </domain>
</node>
"""


@pytest.fixture
def node_uri(tmp_path) -> str:
    """test:///PATH with webfront (running), dbshut (shut off), pausedbox (paused)."""
    path = tmp_path / "node.xml"
    path.write_text(NODE_XML)
    return f"test://{path}"


@pytest.fixture
def virtctl_exe() -> str:
    exe = shutil.which("virtctl")
    assert exe, "virtctl is not installed"
    return exe


def shell_env(**extra) -> dict:
    env = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", COLUMNS="120", LINES="40",
               PAGER="cat", NO_COLOR="1")
    env.update(extra)
    return env
