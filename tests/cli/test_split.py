"""virsh's command-string rules."""
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


@pytest.mark.parametrize("text", ["echo 'open", 'echo "open', "echo trailing\\"])
def test_incomplete(text):
    with pytest.raises(Incomplete):
        split_commands(text)
