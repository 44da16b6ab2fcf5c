"""The completion engine, from plain fake metadata: no driver, no connection."""
from __future__ import annotations

import pytest

from virtctl.cli.complete import Metadata, complete, complete_argv, quote_virsh, split_partial

META = Metadata.from_dict({"uri": "test:///default", "domains": [
    {"name": "web1", "state": "running"},
    {"name": "web2", "state": "shut-off"},
    {"name": "db", "state": "paused"},
    {"name": "tmp", "state": "running", "persistent": False},
    {"name": "idle1", "state": "idle"},
]})


def values(words, incomplete=""):
    return complete(words, incomplete, META).values()


def test_command_names_with_help():
    r = complete([], "st", META)
    assert r.values() == ["start"]
    assert "inactive" in r.candidates[0].help
    assert "poweroff" in values([], "pow") and "exit" in values([], "ex")


@pytest.mark.parametrize("command,expected", [
    ("start", ["web2"]),                         # inactive
    ("shutdown", ["idle1", "tmp", "web1"]),      # running
    ("suspend", ["idle1", "tmp", "web1"]),
    ("destroy", ["db", "idle1", "tmp", "web1"]),  # active
    ("resume", ["db"]),                          # paused
    ("undefine", ["db", "idle1", "web1", "web2"]),  # persistent
    ("dominfo", ["db", "idle1", "tmp", "web1", "web2"]),  # all
])
def test_domain_names_filtered_by_state(command, expected):
    assert values([command]) == expected


def test_domain_candidates_carry_their_state():
    r = complete(["dominfo"], "t", META)
    assert [(c.value, c.help) for c in r.candidates] == [("tmp", "running, transient")]
    assert complete(["start"], "", META).candidates[0].help == "shut off"


def test_prefix_filters():
    assert values(["dominfo"], "web") == ["web1", "web2"]
    assert values(["start"], "web1") == []


def test_options_with_descriptions_and_given_ones_dropped():
    r = complete(["start"], "--", META)
    assert {"--domain", "--paused", "--autodestroy", "--bypass-cache", "--force-boot"} <= set(r.values())
    assert r.values()[0] == "--domain" and "<domain>" in r.candidates[0].help
    # a bare word filled <domain>: --domain again would be "option --domain already seen"
    assert "--domain" not in values(["start", "web2"], "--") and "--paused" in values(["start", "web2"], "--")
    assert "--paused" not in values(["start", "web2", "--paused"], "--")
    assert "--domain" not in values(["start", "--domain", "web2"], "--")


def test_choice_values_in_every_form():
    assert values(["shutdown", "web1", "--mode"]) == ["acpi", "agent", "initctl", "signal", "paravirt"]
    assert values(["shutdown", "--mode"], "a") == ["acpi", "agent"]
    assert values(["shutdown", "web1"], "--mode=a") == ["--mode=acpi", "--mode=agent"]


def test_positional_or_option_forms():
    # a bare word fills the first positional; the next bare word the second
    assert values(["domrename"]) == ["web2"]
    assert values(["domrename", "web2"]) == []            # <new-name>: free text
    # --domain given by name: the first bare word is then <new-name>
    assert values(["domrename", "--domain", "web2"]) == []
    assert values(["domrename", "--domain"]) == ["web2"]
    # flags in between do not consume a word
    assert values(["start", "--paused"]) == ["web2"]
    # all positionals filled: options are offered
    assert "--paused" in values(["start", "web2"])
    # after --, everything is bare: no options
    assert values(["setmem", "web1", "--"], "-") == []


def test_files_where_a_file_is_expected():
    r = complete(["define"], "", META)
    assert r.files and r.candidates == []
    assert complete(["create", "--file"], "/tm", META).files


def test_other_completers():
    assert {"domblklist", "dominfo", "domstate", "domuuid"} <= set(values(["help"], "dom"))
    assert values(["domxml-to-native"], "q") == ["qemu-argv"]
    assert values(["connect"], "test") == ["test:///default"]
    assert complete(["connect"], "", META).candidates[0].help == "current connection"
    assert values(["echo"], "") == []
    assert complete(["nosuch"], "", META).candidates == []


def test_global_options_before_the_command():
    assert complete_argv(["-c"], "te", META).values() == ["test:///default"]
    assert complete_argv([], "--con", META).values() == ["--connect"]
    assert complete_argv(["-c", "test:///default", "-r"], "sta", META).values() == ["start"]
    assert complete_argv(["-c", "test:///default", "resume"], "", META).values() == ["db"]
    assert complete_argv([], "--connect=q", META).values() == ["--connect=qemu:///session",
                                                                "--connect=qemu:///system"]


def test_metadata_is_read_lazily_and_failures_are_empty():
    calls = []

    def load():
        calls.append(1)
        raise OSError("hypervisor down")

    meta = Metadata(load)
    assert complete(["list"], "--al", meta).values() == ["--all"]
    assert calls == []                       # no names needed, no connection
    assert complete(["start"], "", meta).values() == []
    assert calls == [1]


@pytest.mark.parametrize("text,expected", [
    ("", ([], "", 0)),
    ("sta", ([], "sta", 0)),
    ("start ", (["start"], "", 6)),
    ("start 'we", (["start"], "we", 6)),
    ('start "a b', (["start"], "a b", 6)),
    ("start a\\ b", (["start"], "a b", 6)),
    ("list; start w", (["start"], "w", 12)),
    ("start w # comment", None),
    ("shutdown web1 --mode ", (["shutdown", "web1", "--mode"], "", 21)),
])
def test_split_partial_uses_virsh_rules(text, expected):
    assert split_partial(text) == expected


def test_quote_virsh_round_trips():
    from virtctl.cli.split import split_commands

    for v in ["plain", "a b", "it's", 'say "hi"', "semi;colon", "#hash", "back\\slash"]:
        assert split_commands("echo " + quote_virsh(v)) == [["echo", v]]


def test_global_options_with_values_and_groups_are_skipped():
    """virsh's -k N, -e SEQ, -t and grouped short options come before the command."""
    assert complete_argv(["-k", "5", "-t", "-e", "^a", "start"], "", META).values() == ["web2"]
    assert complete_argv(["-qrctest:///default", "resume"], "", META).values() == ["db"]
    assert complete_argv(["-c"], "te", META).values() == ["test:///default"]
    assert "--timing" in complete_argv([], "--t", META).values()


def test_virsh_rules_in_completion():
    """The completer replays the command line's own parser: -5 is data, `--` ends options."""
    after = values(["setmem", "web1", "-5"], "--")
    assert "--size" not in after and "--domain" not in after and "--live" in after
    assert values(["domrename", "--"], "") == ["web2"]   # after `--`, data: the <domain>
    assert values(["domrename", "--"], "--") == []       # ... and never an option
    assert values(["reboot", "web1", "--mode"], "acpi,a") == ["acpi,agent"]
