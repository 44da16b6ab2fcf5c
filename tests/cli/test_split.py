"""virsh's command-string rules."""
import re

import pytest

from virtctl.cli.split import Incomplete, split_commands


@pytest.mark.parametrize("text,expected", [
    ("list --all", [["list", "--all"]]),
    ("destroy test; domstate test --reason", [["destroy", "test"], ["domstate", "test", "--reason"]]),
    ("a;;b", [["a"], ["b"]]),
    ("echo 'a b;c'", [["echo", "a b;c"]]),
    ('echo "a \\"b\\""', [["echo", 'a "b"']]),
    ("echo 'a\\b'", [["echo", "a\\b"]]),
    ("echo a\\ b", [["echo", "a b"]]),
    ("echo a # comment; not a command\nlist", [["echo", "a"], ["list"]]),
    ("echo a#b", [["echo", "a#b"]]),
    ("echo long \\\n line", [["echo", "long", "line"]]),
    ("  \t ", []),
    ("x\ny", [["x"], ["y"]]),
    ("echo ''", [["echo", ""]]),
])
def test_split(text, expected):
    assert split_commands(text) == expected


@pytest.mark.parametrize("text,message", [('echo "open', 'missing "'), ("echo trailing\\", "dangling \\")])
def test_incomplete(text, message):
    with pytest.raises(Incomplete, match=re.escape(message)):
        split_commands(text)
    with pytest.raises(Incomplete):
        split_commands(text, continuation=True)


def test_unclosed_single_quote_ends_the_argument_as_in_virsh():
    """virsh 9.0: `echo 'abc` prints abc; the interactive shell asks for more instead."""
    assert split_commands("echo 'abc") == [["echo", "abc"]]
    assert split_commands("echo 'a b; c") == [["echo", "a b; c"]]
    with pytest.raises(Incomplete):
        split_commands("echo 'abc", continuation=True)
