"""A wide comparison with the real virsh (issue 8, "What it must show").

Each line of ``tests/cli/wide/*.txt`` is one command string run through virsh
and virtctl by ``virsh_side.compare``: ``default*.txt`` on ``test:///default``,
every other file on the node file ``wide/node.xml`` (domains in every state).
Any kind may add its own ``wide/<kind>.txt`` (run on ``test:///default`` by
that kind's own module, e.g. test_virsh_network.py; here it counts for the
coverage check only, so that no case runs twice).  ``{dir}`` is the case's
scratch directory (holding ``vm1.xml``, ``bad.xml`` and ``node.xml``).

Every command in ``COMMANDS`` must appear in some case, except the few in
``VIRTCTL_ONLY``; a case that differs on purpose is listed in ``DIFFERS`` with
its reason (each matching an item of README's "differs on purpose").
"""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from virsh_side import both, compare, needs_virsh, norm

WIDE = Path(__file__).parent / "wide"

VM1_XML = """<domain type='test'><name>vm1</name><uuid>4d001c39-4ef5-4551-ae04-b25458819f61</uuid>
<memory unit='MiB'>512</memory><vcpu current='1'>4</vcpu><os><type>hvm</type></os></domain>
"""

# commands with nothing to compare in one non-interactive command string
VIRTCTL_ONLY = {
    "console": "needs a terminal and a guest console; tested in tests/shell and the QEMU tests",
    "edit": "runs $EDITOR interactively; tested in tests/cli/test_xml_commands.py",
    "shell": "virtctl's interactive shell entry; virsh has no such command",
    "save": "virsh's save hangs at random on the test driver; recorded output in test_virsh_semantics.py",
    "managedsave": "as save; recorded output in test_virsh_semantics.py",
    "top": "beyond virsh (no virsh peer); tested in tests/cli/test_top_events.py and test_qemu_top.py",
}

# commands whose virsh comparison needs input files or an editor: compared by
# their kind's module (the file named), in sequences this line format cannot hold
COMPARED_ELSEWHERE = {
    **{c: "tests/cli/test_virsh_network.py" for c in ("net-create", "net-create-as", "net-define", "net-edit")},
    **{c: "tests/cli/test_virsh_storage.py" for c in ("pool-create", "pool-define", "pool-edit",
                                                       "vol-create", "vol-create-from")},
    "snapshot-edit": "tests/cli/test_virsh_snapshot.py",
    **{c: "tests/cli/test_top_events.py" for c in ("net-event", "pool-event")},
    "domifaddr": "tests/cli/test_virsh_domain_net.py",
    **{c: "tests/cli/test_virsh_hotplug.py" for c in (
        "attach-device", "detach-device", "detach-device-alias", "update-device", "attach-disk", "detach-disk",
        "attach-interface", "detach-interface", "change-media")},
}

# case -> reason; each reason names README's "differs on purpose" item
# case -> the words of README's "differs on purpose" item that covers it
_HELP = "has virtctl's own layout, with examples"
_VERSION = "`version` names virtctl, not libvirt"
_VALIDATE = "virsh 9.0 has no `validate` command"
_PAUSED = "supports `start --paused` and `create --paused`"
_TRANSIENT = "it refuses to `undefine` a transient domain and to `autostart` one"
_RESTORED = "`start` after `managedsave` reports reason `restored`"
DIFFERS: dict[str, str] = {
    **{c: _HELP for c in ["help", "help dominfo", "help list", "help domain", "help monitor", "help host",
                          "help setmem", "help virsh", "help quit"]},
    "version": _VERSION, "version --daemon": _VERSION,
    "validate {dir}/vm1.xml": _VALIDATE,
    "create {dir}/vm1.xml --paused": _PAUSED, "destroy test; start test --paused; domstate test": _PAUSED,
    "undefine delta": _TRANSIENT, "autostart delta": _TRANSIENT,
    "start saved; domstate saved --reason": _RESTORED,
}


def _cases(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.replace("\\n", "\n"))
    return out


# the files this module runs; every other wide/*.txt belongs to a kind's module
RUN_HERE = ("default.txt", "node.txt")


def _all(run_here_only: bool) -> list[tuple[str, str]]:
    return [(f.name, c) for f in sorted(WIDE.glob("*.txt")) for c in _cases(f)
            if not run_here_only or f.name in RUN_HERE]


CASES = _all(True)
ALL_CASES = _all(False)


def _param(name: str, cmd: str):
    return pytest.param(name, cmd, id=f"{name}:{cmd}")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "vm1.xml").write_text(VM1_XML)
    (tmp_path / "bad.xml").write_text("<domain type='test'><name>bad</name>")
    shutil.copy(WIDE / "node.xml", tmp_path / "node.xml")
    return tmp_path


@needs_virsh[0]
@needs_virsh[1]
@pytest.mark.parametrize("name,cmd", [_param(n, c) for n, c in CASES])
def test_same_as_virsh(name, cmd, files):
    uri = "test:///default" if name.startswith("default") else f"test://{files}/node.xml"
    if cmd in DIFFERS:  # differs on purpose: it must still differ, and not crash
        theirs, ours = both(uri, cmd.format(dir=files), files)
        assert "Traceback" not in ours.stderr, ours.stderr
        assert (norm(ours.stdout), ours.returncode == 0) != (norm(theirs.stdout), theirs.returncode == 0)
        return
    compare(uri, cmd.format(dir=files), files)


def _words(cmd: str) -> set[str]:
    try:
        toks = shlex.split(cmd.replace(";", " ; ").replace("\n", " ; "))
    except ValueError:
        toks = cmd.split()
    first, out = True, set()
    for t in toks:
        if t == ";":
            first = True
        elif first:
            out.add(t)
            first = False
    return out


def test_enough_cases():
    assert len(CASES) >= 400


def test_every_command_has_a_case():
    from virtctl.commands import COMMANDS
    used = set().union(*(_words(c) for _, c in ALL_CASES))
    missing = sorted(set(COMMANDS) - used - set(VIRTCTL_ONLY) - set(COMPARED_ELSEWHERE))
    assert not missing, f"commands without a case in tests/cli/wide/*.txt: {missing}"


def test_virtctl_only_are_commands():
    from virtctl.commands import COMMANDS
    assert set(VIRTCTL_ONLY) <= set(COMMANDS)


def test_compared_elsewhere_really_are():
    """Each command excused here appears in the module that is said to compare it."""
    root = Path(__file__).parents[2]
    for cmd, module in COMPARED_ELSEWHERE.items():
        assert cmd in (root / module).read_text(), f"{cmd} is not in {module}"


def test_differs_are_cases_with_a_readme_reason():
    cmds = {c for _, c in CASES}
    assert set(DIFFERS) <= cmds
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    section = readme[readme.index("differs from virsh on purpose"):]
    for cmd, words in DIFFERS.items():
        assert words in section, f"{cmd!r}: README's differs-on-purpose section lacks {words!r}"
