"""virsh's command-line rules, in the one place that parses (virtctl/cli/parse.py,
virtctl/cli/options.py, virtctl/cli/main.py), checked byte for byte.

Each row of RULES is what virsh 9.0 prints on test:///default (stdout, stderr,
success); ``test_rows_are_virsh_behaviour`` checks the table itself against the real
virsh where it is installed, so the expectations are virsh's, not ours.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from cli_runner import run, run_installed
from vtest_paths import VIRSH

T = ("-c", "test:///default")

SIZE_5 = "error: Scaled numeric value '-5' for <size> option is malformed or out of range\n"

# (command string, stdout, stderr, success) -- virsh 9.0's bytes
RULES = [
    # a repeated option, by name or after filling it by position (parse stage: nothing on stdout)
    ("dominfo --domain test --domain test", "", "error: option --domain already seen\n", False),
    ("dominfo test --domain test", "", "error: option --domain already seen\n", False),
    ("list --all --all", "", "error: option --all already seen\n", False),
    ("echo --shell --shell a", "", "error: option --shell already seen\n", False),
    # --opt=value; a flag given a value
    ("domid --domain=test", "1\n\n", "", True),
    ("list --all=yes", "", "error: invalid '=' after option --all\n", False),
    # an option needs `--` and a letter or digit: -x and -5 are data
    ("dominfo -x", "\n", "error: failed to get domain '-x'\n", False),
    ("dominfo --5", "", "error: command 'dominfo' doesn't support option --5\n", False),
    ("echo ---x -y", "---x -y\n", "", True),
    ("echo -- --foo", "--foo\n", "", True),
    ("echo --string a --string b c", "a b c\n", "", True),
    ("setmem test -5", "\n", SIZE_5, False),
    ("setmem test --size -5", "\n", SIZE_5, False),
    ("setmem test -- -5", "\n", SIZE_5, False),
    ("setmem test 1X", "\n", "error: Scaled numeric value '1X' for <size> option is malformed or out of "
                             "range\nerror: invalid argument: unknown suffix 'X'\n", False),
    # value errors are found when the command runs: the commands before it have run
    ("uri; setmem test -5; uri", "test:///default\n\n\ntest:///default\n\n", SIZE_5, True),
    ("uri; setmem test --bogus; uri", "", "error: command 'setmem' doesn't support option --bogus\n", False),
    # usage errors in virsh's words
    ("dominfo", "", "error: command 'dominfo' requires <domain> option\n", False),
    ("domrename", "", "error: command 'domrename' requires <domain> option\n"
                      "error: command 'domrename' requires <new-name> option\n", False),
    ("start", "", "error: command 'start' requires <domain> option\n", False),
    ("setmem test", "", "error: command 'setmem' requires --size option\n", False),  # a number: --size
    ("setvcpus test", "", "error: command 'setvcpus' requires --count option\n", False),
    ("send-key test", "", "error: command 'send-key' requires <keycode> option\n", False),
    ("dominfo test --foo", "", "error: command 'dominfo' doesn't support option --foo\n", False),
    ("dominfo test test", "", "error: unexpected data 'test'\n", False),
    ("dominfo --domain", "", "error: expected syntax: --domain <string>\n", False),
    ("setvcpus test --count", "", "error: expected syntax: --count <number>\n", False),
    ("dominfo ''", "\n", "error: Failed to get option 'domain': Option argument is empty\n", False),
    ("screenshot test --screen x", "\n",
     "error: Numeric value 'x' for <screen> option is malformed or out of range\n", False),
    ("send-key test --holdtime -1 1", "\n",
     "error: Numeric value '-1' for <holdtime> option is malformed or out of range\n", False),
    # mutual exclusions and requirements (run stage)
    ("echo --shell --xml a", "\n", "error: Options --shell and --xml are mutually exclusive\n", False),
    ("echo --xml --split a", "\n", "error: Options --xml and --split are mutually exclusive\n", False),
    ("echo --shell --split a", "\n", "error: Options --shell and --split are mutually exclusive\n", False),
    ("echo --shell --xml --split a", "\n", "error: Options --shell and --xml are mutually exclusive\n", False),
    ("setmem test 1024 --current --live", "\n", "error: Options --current and --live are mutually exclusive\n",
     False),
    ("setmaxmem test 1G --config --current", "\n",
     "error: Options --current and --config are mutually exclusive\n", False),
    ("setvcpus test 2 --maximum --live", "\n", "error: Option --config is required by option --maximum\n",
     False),
    ("setvcpus test 2 --guest --config", "\n", "error: Options --guest and --config are mutually exclusive\n",
     False),
    ("vcpucount test --current --live", "2\n\n", "", True),
    ("vcpucount test --current --config", "2\n\n", "", True),
    ("vcpucount test --maximum --live", "2\n\n", "", True),
    ("vcpucount test --active --config", "2\n\n", "", True),
    ("vcpucount test --live --config", "\n", "error: Options --live and --config are mutually exclusive\n",
     False),
    ("vcpucount test --maximum --active", "\n",
     "error: Options --active and --maximum are mutually exclusive\n", False),
    ("vcpucount test --guest --config", "\n", "error: Options --guest and --config are mutually exclusive\n",
     False),
    ("vcpucount test --maximum --active --live --config", "\n",
     "error: Options --live and --config are mutually exclusive\n", False),
    # a lone --current is vcpucount's old spelling of --active: it excludes --live only beside
    # --maximum or --active
    ("vcpucount test --maximum --live --current", "\n",
     "error: Options --current and --live are mutually exclusive\n", False),
    ("vcpucount test --active --config --current", "\n",
     "error: Options --current and --config are mutually exclusive\n", False),
    # comma lists, each item checked, each command with its own message
    ("reboot test --mode acpi,agent", "Domain 'test' is being rebooted\n\n", "", True),
    ("reboot test --mode acpi,bogus", "\n", "error: Unknown mode bogus value, expecting 'acpi', 'agent', "
                                           "'initctl', 'signal' or 'paravirt'\n", False),
    ("shutdown test --mode bogus", "\n", "error: Unknown mode bogus value, expecting 'acpi', 'agent', "
                                         "'initctl', 'signal', or 'paravirt'\n", False),
    ("reboot test acpi", "Domain 'test' is being rebooted\n\n", "", True),  # --mode is positional
    # quoting
    ("echo 'abc", "abc\n", "", True),
    ("echo 'a b; c", "a b; c\n", "", True),
    ('echo "abc', "", 'error: missing "\n', False),
    ("echo abc\\", "", "error: dangling \\\n", False),
    # blank lines: after each command that ran, failed or not; not after echo; quit ends it
    ("echo a; echo b", "a\nb\n", "", True),
    ("echo a; uri", "a\ntest:///default\n\n", "", True),
    ("dominfo nosuch; echo x", "\nx\n", "error: failed to get domain 'nosuch'\n", True),
    ("echo --bogus; echo x", "", "error: command 'echo' doesn't support option --bogus\n", False),
    ("quit; echo after", "", "", True),
    ("exit", "", "", True),
    ("echo a; quit; echo after", "a\n", "", True),
    ("uri; exit; uri", "test:///default\n\n", "", True),
    ("frob; echo a", "", "error: unknown command: 'frob'\n", False),
    # `help` ignores what it does not know, as virsh's does
    ("help uri --bogus extra", None, "", True),
    # the URI as given, query included; connect with no URI: the same one again
    ("connect test:///default?x=1; uri; connect; uri", "\ntest:///default?x=1\n\n\ntest:///default?x=1\n\n",
     "", True),
    ("destroy test; connect; list --all",
     "Domain 'test' destroyed\n\n\n Id   Name   State\n----------------------\n 1    test   running\n\n", "",
     True),
]


def _virsh(cmd: str, tmp_path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    return subprocess.run([VIRSH, *T, cmd], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("cmd,out,err,ok", RULES)
def test_parses_and_reports_as_virsh(cmd, out, err, ok):
    r = run(*T, cmd)
    if out is not None:
        assert r.out == out, cmd
    assert r.err == err, cmd
    assert (r.status == 0) == ok, (cmd, r.status)


@pytest.mark.virsh
@pytest.mark.skipif(VIRSH is None, reason="virsh not installed")
@pytest.mark.parametrize("cmd,out,err,ok", RULES)
def test_rows_are_virsh_behaviour(cmd, out, err, ok, tmp_path):
    v = _virsh(cmd, tmp_path)
    if out is not None:
        assert v.stdout == out
    assert v.stderr == err
    assert (v.returncode == 0) == ok


@pytest.mark.virsh
@pytest.mark.skipif(VIRSH is None, reason="virsh not installed")
def test_every_vcpucount_combination_as_virsh(tmp_path):
    import itertools

    flags = ["--maximum", "--active", "--live", "--config", "--current"]
    for r in range(1, len(flags) + 1):
        for combo in itertools.combinations(flags, r):
            for cmd in ("vcpucount test " + " ".join(combo), "destroy test; vcpucount test " + " ".join(combo)):
                v, ours = _virsh(cmd, tmp_path), run(*T, cmd)
                assert (ours.out, ours.err, ours.status == 0) == (v.stdout, v.stderr, v.returncode == 0), cmd


def test_through_the_installed_entry_point():
    r = run_installed(*T, "dominfo --domain test --domain test; uri")
    assert (r.status, r.out, r.err) == (2, "", "error: option --domain already seen\n")
    r = run_installed(*T, "setmem", "test", "-5")
    assert (r.status, r.out, r.err) == (2, "\n", SIZE_5)
    r = run_installed(*T, "echo 'abc; quit; echo after")
    assert (r.status, r.out) == (0, "abc; quit; echo after\n")
    r = run_installed(*T, "echo abc; quit; echo after")
    assert (r.status, r.out) == (0, "abc\n")


def test_codes_of_usage_and_value_errors():
    """Syntax: USAGE (exit 2); a bad value: INVALID_ARG (exit 2), with --json too."""
    for cmd, code in (("dominfo --domain a --domain b", "USAGE"), ("list --all=1", "USAGE"),
                      ("setmem test -5", "INVALID_ARG"), ("shutdown test --mode bogus", "INVALID_ARG"),
                      ("echo --xml --shell", "USAGE"), ("dominfo ''", "INVALID_ARG")):
        r = run("--json", *T, cmd)
        assert r.status == 2, cmd
        assert json.loads(r.err)["error"]["code"] == code, cmd


def test_no_click_phrases_anywhere():
    bad = ["shutdown test --mode bogus", "setmem test x", "screenshot test --screen -1", "dominfo --bogus",
           "dominfo", "list --all=yes", "domrename", "setvcpus test --count", "send-key test --holdtime x 1",
           "vcpucount test --live --config", "validate /dev/null bogus", "console test --idle x"]
    for cmd in bad:
        r = run(*T, cmd)
        assert r.status != 0 and r.err.startswith("error: "), cmd
        for phrase in ("Invalid value for", "Usage:", "Try '", "Error:", "No such option", "Missing option",
                       "is not one of", "does not take a value", "is not a valid"):
            assert phrase not in r.err, (cmd, r.err)


def test_mode_lists_reach_the_api_as_a_tuple(monkeypatch):
    """`--mode acpi,agent` is one tuple of modes, each once, in order; the API passes a tuple on."""
    from virtctl.drivers.test.domains import TestDomainDriver

    seen = []
    monkeypatch.setattr(TestDomainDriver, "reboot", lambda self, uuid, *, mode=None: seen.append(mode))
    assert run(*T, "reboot test --mode agent,acpi,agent; reboot test; reboot test signal").status == 0
    assert seen == [("agent", "acpi"), None, ("signal",)]


def test_option_types_in_process():
    import click

    from virtctl.cli.options import Enum, EnumList, Number, ScaledSize
    from virtctl.errors import InvalidArg

    p = click.Option(["--size"])
    assert ScaledSize().convert("512M", p, None) == 524288
    assert ScaledSize().convert(" +5", p, None) == 5
    for bad in ("-5", "1.5G", "0x10", ""):
        with pytest.raises(InvalidArg, match=re.escape(f"Scaled numeric value '{bad}' for <size>")):
            ScaledSize().convert(bad, p, None)
    q = click.Option(["--count"])
    assert Number(minimum=0).convert("010", q, None) == 10
    with pytest.raises(InvalidArg, match="Numeric value '-1' for <count> option"):
        Number(minimum=0).convert("-1", q, None)
    m = click.Option(["--mode"])
    assert EnumList(["a", "b"]).convert("b,a,b", m, None) == ("b", "a")
    with pytest.raises(InvalidArg, match="Unknown mode 'c', expecting 'a' or 'b'"):
        Enum(["a", "b"]).convert("c", m, None)


def test_declared_rules_run_in_the_order_written():
    """mutually_exclusive/requires declared on a new command work with no code in its body."""
    import click

    from virtctl.cli.options import command, mutually_exclusive, requires
    from virtctl.cli.session import Session
    from virtctl.errors import UsageError

    @command("probe")
    @click.option("--a", is_flag=True)
    @click.option("--b", is_flag=True)
    @click.option("--c", is_flag=True)
    @mutually_exclusive("a", "b")
    @requires("c", "a")
    def probe(a, b, c):
        pass

    s = Session()
    ctx = probe.make_context("probe", ["--b", "--a", "--c"], obj=s)
    with pytest.raises(UsageError, match="Options --a and --b are mutually exclusive"):
        with ctx:
            probe.invoke(ctx)
    ctx = probe.make_context("probe", ["--c"], obj=s)
    with pytest.raises(UsageError, match="Option --a is required by option --c"):
        with ctx:
            probe.invoke(ctx)


# --- global options, the URI, --json after the command --------------------------------------


def test_json_after_the_command_name():
    r = run(*T, "list", "--all", "--json")
    assert json.loads(r.out)["domains"][0]["name"] == "test"
    r = run(*T, "list --json; uri")  # that command's output only
    doc, rest = r.out.rsplit("}\n", 1)
    assert json.loads(doc + "}")["domains"] and rest == "test:///default\n\n"
    r = run(*T, "dominfo nosuch --json")
    assert json.loads(r.err)["error"]["code"] == "NO_DOMAIN" and r.out == ""
    r = run(*T, "dominfo --json --bogus")
    assert json.loads(r.err)["error"]["code"] == "USAGE"


def test_timing():
    r = run("-t", *T, "uri; echo a")
    assert re.fullmatch(r"test:///default\n\n\(Time: \d+\.\d{3} ms\)\n\na\n\(Time: \d+\.\d{3} ms\)\n\n", r.out)
    r = run("-q", "-t", *T, "uri")  # as virsh: -q does not hide the timing
    assert re.fullmatch(r"test:///default\n\n\(Time: \d+\.\d{3} ms\)\n\n", r.out)


@pytest.mark.parametrize("argv,status,err", [
    (("-k", "0"), 0, ""), (("-k", "5", "-K", "3"), 0, ""), (("--keepalive-interval=7",), 0, ""),
    (("-k", "x"), 2, "error: Invalid value for option -k\n"),
    (("-K", "-1"), 2, "error: option -K requires a positive integer argument\n"),
    (("-e", "^a"), 0, ""), (("-e", "~"), 0, ""),
    (("-e", "xx"), 2, "error: Invalid string 'xx' for escape sequence\n"),
    (("-e", "^"), 2, "error: Invalid string '^' for escape sequence\n"),
    (("-x",), 2, "error: unsupported option '-x'. See --help.\n"),
    (("--bogus",), 2, "error: unsupported option '--bogus'. See --help.\n"),
    (("--k", "5"), 2, "error: unsupported option '--k'. See --help.\n"),  # ambiguous abbreviation
    (("--conn", "test:///default"), 0, ""), (("-qr",), 0, ""),
])
def test_global_options(argv, status, err):
    r = run(*T, *argv, "uri")
    assert (r.status, r.err) == (status, err)
    if status == 0:
        assert r.out.startswith("test:///default\n")


def test_refused_global_options_say_so():
    for opt, val in (("-d", "4"), ("--debug", "0"), ("-l", "/tmp/x"), ("--log", "/tmp/x")):
        r = run(*T, opt, val, "uri")
        assert r.status == 6 and "is not supported by virtctl" in r.err and r.out == "", opt
    assert run("-V").out.startswith("virtctl ") and run("--version=long").out == run("-V").out
    assert run("--version=short").out == run("-v").out


def test_grouped_short_options_and_connect_in_one_word():
    r = run("-qctest:///default", "destroy test; list --all --name")
    assert (r.status, r.out) == (0, "test\n")


def test_escape_option_reaches_the_console(monkeypatch):
    from virtctl.cli.session import Session

    seen = {}

    def fake_attach(session, dom, **kw):
        from virtctl.commands.domain_console import parse_escape

        seen["esc"] = parse_escape(kw.get("escape") or session.escape)
    monkeypatch.setattr("virtctl.commands.domain_console.attach", fake_attach)
    run("-e", "^a", *T, "console test")
    assert seen == {"esc": 1}
    assert Session().escape is None


def test_uri_order(tmp_path, monkeypatch):
    from virtctl import uri as uri_mod

    cfg = tmp_path / "xdg-config"
    monkeypatch.setattr(uri_mod, "SYSTEM_LIBVIRT_CONF", str(tmp_path / "etc-libvirt.conf"))
    (cfg / "virtctl").mkdir(parents=True)
    (cfg / "virtctl" / "config.toml").write_text('uri = "test:///from-virtctl-config"\n')
    assert uri_mod.resolve(None) == "test:///from-virtctl-config"
    (tmp_path / "etc-libvirt.conf").write_text('uri_default = "test:///from-etc"\n')
    if os.geteuid() == 0:  # libvirt's own file for root, when there is no per-user one
        assert uri_mod.resolve(None) == "test:///from-etc"
    (cfg / "libvirt").mkdir()
    (cfg / "libvirt" / "libvirt.conf").write_text(
        '# a comment\nuri_aliases = [\n  "x=test:///x",\n]\nuri_default = "test:///from-libvirt-conf"  # hi\n')
    assert uri_mod.resolve(None) == "test:///from-libvirt-conf"
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///from-libvirt-env")
    assert uri_mod.resolve(None) == "test:///from-libvirt-env"
    monkeypatch.setenv("VIRSH_DEFAULT_CONNECT_URI", "test:///from-virsh-env")
    assert uri_mod.resolve(None) == "test:///from-virsh-env"
    monkeypatch.setenv("VIRTCTL_DEFAULT_URI", "test:///from-virtctl-env")
    assert uri_mod.resolve(None) == "test:///from-virtctl-env"
    assert uri_mod.resolve("test:///explicit") == "test:///explicit"


def test_libvirt_conf_values():
    from virtctl.errors import VirtError
    from virtctl.uri import uri_default_of

    assert uri_default_of("uri_default = 'test:///a'\n") == "test:///a"
    assert uri_default_of("#uri_default = \"qemu:///system\"\n") is None
    assert uri_default_of("uri_default_x = \"a\"\n") is None
    with pytest.raises(VirtError, match="uri_default must be a quoted string"):
        uri_default_of("uri_default = qemu:///system\n")


def test_virsh_environment_through_the_installed_entry_point(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    for var in ("VIRSH_DEFAULT_CONNECT_URI", "LIBVIRT_DEFAULT_URI"):
        r = run_installed("uri", env={**env, var: "test:///default?from=" + var})
        assert r.out == f"test:///default?from={var}\n\n", r.err
    (tmp_path / "cfg" / "libvirt").mkdir(parents=True)
    (tmp_path / "cfg" / "libvirt" / "libvirt.conf").write_text('uri_default = "test:///default?conf"\n')
    assert run_installed("uri", env=env).out == "test:///default?conf\n\n"
    r = run_installed("uri", env={**env, "VIRTCTL_DEFAULT_URI": "test:///default?mine",
                                  "LIBVIRT_DEFAULT_URI": "test:///default?theirs"})
    assert r.out == "test:///default?mine\n\n"


def test_connection_failure_ends_the_run_before_anything_runs():
    r = run("-c", "test:///nonexistent/node.xml", "echo a; uri")
    assert (r.status, r.out) == (7, "")  # virsh: nothing either
    r = run("-c", "test:///nonexistent/node.xml", "echo a; help uri")
    assert r.status == 0 and r.out.startswith("a\n")  # needs no hypervisor (virsh fails here)
    r = run("-c", "test:///nonexistent/node.xml", "connect test:///default; uri")
    assert (r.status, r.out) == (0, "\ntest:///default\n\n")


# --- unknown commands ---------------------------------------------------------------------


def test_virsh_command_not_implemented_yet():
    r = run(*T, "nwfilter-list")
    assert (r.status, r.out) == (6, "")
    assert r.err == "error: 'nwfilter-list' is a virsh command that virtctl does not implement yet\n"
    assert json.loads(run("--json", *T, "nwfilter-list").err)["error"]["code"] == "NOT_SUPPORTED"
    r = run(*T, "help nwfilter-list")
    assert r.status == 6 and "virsh command that virtctl does not implement yet" in r.err


def test_typo_keeps_virsh_first_line_and_suggests():
    r = run(*T, "lst")
    assert r.status == 2 and r.out == ""
    assert r.err == "error: unknown command: 'lst'\nhint: did you mean 'list'?\n"
    err = json.loads(run("--json", *T, "lst").err)["error"]
    assert err["code"] == "USAGE" and err["detail"]["suggestions"] == ["list"]
    assert run(*T, "help dominf").err.endswith("hint: did you mean 'dominfo'?\n")
    assert run(*T, "zzzzzz").err == "error: unknown command: 'zzzzzz'\n"


def test_virsh_command_table_is_virsh_help(tmp_path):
    from virtctl.commands import ALIASES, COMMANDS
    from virtctl.commands.virsh_names import VIRSH_COMMANDS

    assert len(VIRSH_COMMANDS) == 274 and "net-list" in VIRSH_COMMANDS
    # every virtctl command named like a virsh one is one of virsh's
    assert {"list", "dominfo", "quit", "exit", "connect"} <= VIRSH_COMMANDS
    assert not ({"poweroff", "validate", "shell"} & VIRSH_COMMANDS)
    assert not (set(COMMANDS) | set(ALIASES)) - VIRSH_COMMANDS - {"poweroff", "validate", "shell", "net-create-as", "top"}
    if VIRSH is not None:
        out = subprocess.run([VIRSH, "help"], capture_output=True, text=True, timeout=60).stdout
        names = {ln.split()[0] for ln in out.splitlines() if ln.startswith("    ") and ln.strip()}
        assert names == VIRSH_COMMANDS


# --- where virtctl differs on purpose (README), each with virsh's side where it is installed ---


def test_quiet_keeps_echo_newline(tmp_path):
    assert run("-q", *T, "echo a; echo b").out == "a\nb\n"
    if VIRSH is not None:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        v = subprocess.run([VIRSH, "-q", *T, "echo a; echo b"], capture_output=True, text=True, env=env)
        assert v.stdout == "ab"


def test_values_are_checked_before_the_domain_is_looked_up(tmp_path):
    r = run(*T, "setmem nosuch -5")
    assert (r.status, r.out, r.err) == (2, "\n", SIZE_5)
    if VIRSH is not None:  # virsh looks the domain up first: another message, the same failure
        v = _virsh("setmem nosuch -5", tmp_path)
        assert (v.returncode != 0, v.stdout, v.stderr) == (True, "\n", "error: failed to get domain 'nosuch'\n")


def test_echo_alone_needs_no_hypervisor(tmp_path):
    r = run("-c", "test:///nonexistent/node.xml", "echo a")
    assert (r.status, r.out) == (0, "a\n")
    if VIRSH is not None:
        v = subprocess.run([VIRSH, "-c", "test:///nonexistent/node.xml", "echo a"], capture_output=True,
                           text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert v.returncode != 0 and v.stdout == ""
