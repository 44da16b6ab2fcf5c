"""One-shot start-up discipline: what a ``list``/``dominfo``/``domstate``
does not need, it does not import (lxml, rich, prompt_toolkit, the schema
validator, subprocess, ...), on the test driver and on the QEMU driver;
and the shortcuts that make it so (test:///default's summaries, the QEMU
driver's content-keyed summary cache) never show a stale value.

Each check runs virtctl's ``main`` in a fresh interpreter and reads
``sys.modules`` after it; no timing is asserted (tests/bench/bench_cli.py
measures)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# never imported by a one-shot list/dominfo/domstate (prefixes of module names)
FORBIDDEN = ("lxml", "rich", "prompt_toolkit", "virtctl.xml.xmlapi", "virtctl.xml.validate",
             "virtctl.xml.domain", "virtctl.xml.schema_model", "virtctl.savefile", "gzip",
             "subprocess", "socket", "hashlib", "secrets", "tempfile", "shutil",
             "virtctl.drivers.qemu.launch", "virtctl.drivers.qemu.live", "virtctl.drivers.qemu.qmp",
             "virtctl.drivers.qemu.storage", "virtctl.drivers.qemu.network",
             "virtctl.drivers.qemu.snapshot")

# the only top-level packages a one-shot list/dominfo/domstate may import: the
# forbidden list above names what is known to be heavy, this catches what is
# new (a module added at the top of a file the one-shot path reads).  Python's
# own start-up modules and click's are here; anything else is a regression to
# look at (import it lazily, or add it here with the reason).
ALLOWED_TOP = frozenset("""
    __future__ __main__ _abc _ast _bisect _codecs _collections _collections_abc _compat_pickle
    _compression _contextvars _datetime _distutils_hack _frozen_importlib _frozen_importlib_external
    _functools _heapq _imp _io _json _locale _opcode _operator _signal _sitebuiltins _sre _stat
    _string _struct _thread _tokenize _typing _uuid _warnings _weakref _weakrefset abc ast atexit
    builtins codecs collections contextlib contextvars copyreg datetime dis encodings enum errno
    fcntl fnmatch functools gettext genericpath heapq importlib inspect io itertools json keyword
    linecache locale marshal math ntpath opcode operator os pathlib platform posix posixpath re
    reprlib select site sre_compile sre_constants sre_parse stat string struct
    sys threading time token tokenize types typing unicodedata urllib uuid warnings weakref
    zipimport click virtctl
    __editable___virtctl_0_1_0_finder _virtctl_editable
    _blake2 _sha256 copy dataclasses ipaddress
""".split())
# _blake2, _sha256: the C hashes of summary.py and state.py (not hashlib's start-up);
# copy, dataclasses: the test driver's storage records (api/storage.py), loaded with its node;
# ipaddress: urllib.parse's own import (an editable install's start-up has it already)
_BASELINE: set[str] = set()


def unexpected_in(modules: set[str]) -> list[str]:
    """Top-level packages imported beyond ALLOWED_TOP and beyond what the bare
    interpreter already has at start-up on this machine (its site may import more)."""
    if not _BASELINE:
        r = subprocess.run([sys.executable, "-c", "import sys, json; print(json.dumps(sorted(sys.modules)))"],
                           capture_output=True, text=True, timeout=60, cwd="/")
        _BASELINE.update(m.split(".")[0] for m in json.loads(r.stdout))
        _BASELINE.discard("json")  # the probe's own import
    return sorted({m.split(".")[0] for m in modules} - ALLOWED_TOP - _BASELINE)

_PROBE = """
import json, sys
sys.argv = ["virtctl"] + sys.argv[1:]
from virtctl.cli.main import main
try:
    main()
except SystemExit as exc:
    status = exc.code
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + json.dumps({"status": status, "modules": sorted(sys.modules)}) + "\\n")
"""


def run_probe(*args: str) -> tuple[int, str, set[str]]:
    env = dict(os.environ, NO_COLOR="1")
    for k in ("VIRTCTL_DEFAULT_URI", "VIRSH_DEFAULT_CONNECT_URI", "LIBVIRT_DEFAULT_URI"):
        env.pop(k, None)
    # cwd "/": `python -c` puts the working directory first on sys.path, and the
    # source tree's virtctl/ (no drivers/ in it) must not shadow the installed one
    r = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True,
                       env=env, timeout=120, cwd="/")
    line = [x for x in r.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, r.stderr
    data = json.loads(line[-1][len("MODULES "):])
    return data["status"], r.stdout, set(data["modules"])


def forbidden_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


@pytest.mark.parametrize("command", [["list", "--all"], ["list"], ["dominfo", "test"],
                                     ["domstate", "test"], ["domstate", "--reason", "1"],
                                     ["--json", "list", "--all"]])
def test_test_driver_one_shot_imports(command):
    status, out, modules = run_probe("-c", "test:///default", *command)
    assert status == 0, out
    assert "test" in out or "running" in out
    assert forbidden_in(modules) == []
    assert unexpected_in(modules) == []


def test_a_command_that_needs_xml_still_gets_it():
    """The lazy definition parses on first need: dumpxml, and a change made
    before a listing, show the real definition."""
    status, out, modules = run_probe("-c", "test:///default",
                                     "setmem test 1048576 --config; dumpxml --inactive test; dominfo test")
    assert status == 0
    assert "<currentMemory unit='KiB'>1048576</currentMemory>" in out
    assert "lxml.etree" in modules


def test_default_node_summaries_match_the_definitions():
    """test:///default answers list/dominfo from default_node.py's summaries:
    they must be what parsing the default node gives."""
    from virtctl.drivers.test import default_node, node
    from virtctl.drivers.test.domains import TestDomainDriver

    parsed = node.load(default_node.DEFAULT_NODE_XML, source="test:///default", trusted=True)
    lazy = node.load_default()
    assert len(parsed.domains) == len(lazy.domains) == len(default_node.DEFAULT_DOMAINS)
    for p, q in zip(parsed.domains, lazy.domains):
        assert p.runstate == q.runstate and p.transient == q.transient and p.managed_save == q.managed_save
        for attr in node.LazyDomainDef._SUMMARY:
            assert getattr(q.definition, attr) == getattr(p.definition, attr), attr
        assert q.definition._real is None  # still not parsed
        assert q.definition.to_xml() == p.definition.to_xml()
    assert [x.findtext("name") for x in lazy.networks] == [x.findtext("name") for x in parsed.networks]
    assert [x.findtext("name") for x in lazy.pools] == [x.findtext("name") for x in parsed.pools]
    # the records are the same whichever way the node was loaded
    a, b = TestDomainDriver(), TestDomainDriver()
    a.load(parsed.domains)
    b.load(lazy.domains)
    strip = lambda r: {k: v for k, v in r.to_json().items() if k != "cpu_time_ns"}  # noqa: E731
    assert [strip(r) for r in a.list()] == [strip(r) for r in b.list()]


# --- the QEMU driver ----------------------------------------------------------------------

XML = ("<domain type='qemu'><name>{name}</name><memory unit='MiB'>{mib}</memory>"
       "<vcpu>{vcpus}</vcpu><os><type>hvm</type></os></domain>")


@pytest.fixture
def qemu_root(tmp_path):
    import virtctl

    root = tmp_path / "root"
    uri = f"qemu:///embed?root={root}"
    with virtctl.open(uri) as conn:
        conn.define_domain(XML.format(name="g", mib=64, vcpus=1))
    return uri, root


def test_qemu_one_shot_imports(qemu_root):
    uri, _root = qemu_root
    run_probe("-c", uri, "list", "--all")  # a first listing fills the summary cache
    for command in (["list", "--all"], ["dominfo", "g"], ["domstate", "g"], ["--json", "dominfo", "g"]):
        status, out, modules = run_probe("-c", uri, *command)
        assert status == 0, out
        assert forbidden_in(modules) == [], command
        assert unexpected_in(modules) == [], command
    # the existence check of destroy (and of the other lifecycle commands) reads
    # the summary too: a refused destroy of a shut-off domain parses nothing
    status, out, modules = run_probe("-c", uri, "destroy", "g")
    assert status != 0
    assert forbidden_in(modules) == []


def _domain_xml(root) -> str:
    (path,) = (root / "domains").glob("*/domain.xml")
    return str(path)


def _dominfo(uri: str) -> dict:
    status, out, _ = run_probe("-c", uri, "--json", "dominfo", "g")
    assert status == 0, out
    return json.loads(out)


def test_qemu_summary_cache_is_never_stale(qemu_root):
    """The cache is keyed by content: a definition changed behind virtctl's
    back (same size, same mtime even) shows its new values at once."""
    uri, root = qemu_root
    assert _dominfo(uri)["max_memory_kib"] == 65536
    assert (root / "run" / "summaries.json").exists()
    path = _domain_xml(root)
    st = os.stat(path)
    data = open(path, "rb").read()
    assert b"<memory unit='KiB'>65536</memory>" in data
    changed = data.replace(b"65536", b"98304")  # same length
    with open(path, "wb") as f:
        f.write(changed)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _dominfo(uri)["max_memory_kib"] == 98304
    _, out, _ = run_probe("-c", uri, "list", "--all")
    assert " g " in out


def test_qemu_summary_cache_corrupt_or_unwritable_is_ignored(qemu_root):
    uri, root = qemu_root
    cache = root / "run" / "summaries.json"
    _dominfo(uri)
    for garbage in (b"{not json", b"[]", json.dumps({"entries": {"x": 1}}).encode(),
                    json.dumps({"entries": {k: ["evil", "", "hvm", "1", 0, 0] for k in
                                            json.loads(cache.read_bytes())["entries"]}}).encode()):
        cache.write_bytes(garbage)
        info = _dominfo(uri)
        assert info["name"] == "g" and info["max_memory_kib"] == 65536


def test_qemu_corrupt_definition_is_not_cached(qemu_root):
    """A definition that does not parse is reported as before (listed, no
    state, with a warning), whatever the cache holds."""
    uri, root = qemu_root
    _dominfo(uri)
    with open(_domain_xml(root), "wb") as f:
        f.write(b"<domain type='qemu'><name>g</name>")
    status, out, _ = run_probe("-c", uri, "list", "--all")
    assert status == 0
    assert "no state" in out
