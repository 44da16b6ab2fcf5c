"""Command semantics side by side with the real virsh on the test driver:
messages that echo the domain as typed, virsh's lookups, two-line errors,
legacy setmem/setvcpus, what libvirt's test driver refuses, and
``dumpxml --xpath``.  Same stdout, same success, and here the same stderr.

virsh's ``save``/``managedsave`` hang at random on the test driver (its
progress watcher races the instant job), so those few are checked against
virsh's output recorded here rather than run live.  The differences kept on
purpose (README, "Where virtctl differs from virsh on purpose") are tested at
the end, each against what virsh does.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest

from vtest_paths import VIRSH

VIRTCTL = shutil.which("virtctl")
U = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # test:///default's domain 'test'
needs_virsh = pytest.mark.skipif(VIRSH is None, reason="virsh not installed")

# domains in every state, names that look like an id and a UUID, a transient
# one and one with a managed save image
NODE_XML = textwrap.dedent("""\
    <node>
      <cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads><mhz>2000</mhz><model>Xeon</model></cpu>
      <memory>8192000</memory>
      <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
        <name>alpha</name><uuid>aaaaaaaa-2222-3333-4444-555555555555</uuid><memory>1024</memory><os><type>hvm</type></os>
        <test:runstate>5</test:runstate>
      </domain>
      <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
        <name>beta</name><uuid>11111111-2222-3333-4444-555555555555</uuid><memory>2048</memory><vcpu>3</vcpu><os><type>hvm</type></os>
        <test:runstate>3</test:runstate>
      </domain>
      <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0"><name>delta</name><uuid>dddddddd-2222-3333-4444-555555555555</uuid><memory>4096</memory><os><type>hvm</type></os><test:transient/></domain>
      <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0"><name>saved</name><uuid>5aaaaaaa-2222-3333-4444-555555555555</uuid><memory>4096</memory><os><type>hvm</type></os><test:runstate>5</test:runstate><test:hasmanagedsave/></domain>
      <domain type="test"><name>7</name><uuid>77777777-2222-3333-4444-555555555555</uuid><memory>4096</memory><os><type>hvm</type></os></domain>
      <domain type="test"><name>abcdefab-2222-3333-4444-555555555555</name><uuid>88888888-2222-3333-4444-555555555555</uuid><memory>4096</memory><os><type>hvm</type></os></domain>
    </node>
    """)

VM1_XML = """<domain type='test'><name>vm1</name><uuid>4d001c39-4ef5-4551-ae04-b25458819f61</uuid>
<memory unit='MiB'>512</memory><vcpu current='1'>4</vcpu><os><type>hvm</type></os></domain>
"""

# item 1: the domain named as typed
TYPED = [
    "destroy 1", f"suspend {U}", "reboot 1", "reset 1", "shutdown 1", "shutdown --domain 1", "autostart 1",
    f"autostart --disable {U}", "suspend 1; resume 1", f"destroy 1; undefine {U}", "undefine 1",
    f"destroy {U}; start {U}", f"destroy 1; domrename {U} foo", "destroy 1; destroy 1",
    f"destroy 1; reboot {U}", f"destroy 1; reset {U}",
]
# item 9: virsh's two error lines (context, then reason)
CONTEXT = [
    "destroy test; destroy test", "destroy test; reboot test", "destroy test; reset test",
    "destroy 1; start test --autodestroy", "undefine --nvram 1", "shutdown --mode agent 1",
    "vcpucount 1 --guest", "setmaxmem test 1G", "setmaxmem test 1G --live --config",
]
# item 3: lookups as virsh does them
LOOKUP = [
    "domname test", "domname 1", f"domname {U}", "domid 1", "domid test", f"domid {U}",
    f"domuuid {U}", "domuuid 1", "domuuid test", f"dominfo {U.replace('-', '')}", f"dominfo {U.upper()}",
    "dominfo ''", "domname ''", "domstate ''", "dumpxml ''", "vcpucount ''", "undefine ''", "autostart ''",
    "managedsave-remove ''", "domid ''", "domuuid ''", "define ''", "create ''", "save test ''",
    "restore ''", "domrename test ''", "dominfo ' 1'", "dominfo +1", "dominfo 01", "dominfo '1 '",
    "dominfo 1x",
]
# item 4: legacy calls without --live/--config/--current
LEGACY = [
    "destroy test; setmem test 1G", "destroy test; setmem test 1G --current; dominfo test",
    "destroy test; setmem test 1G --config; dominfo test", "setmem test 1G; dominfo test",
    "destroy test; setvcpus test 1", "destroy test; setvcpus test 1 --current; vcpucount test",
    "destroy test; setvcpus test 1 --config; vcpucount test", "setvcpus test 1; vcpucount test",
    "destroy test; setmaxmem test 1G; dominfo test", "setmem test 1G --live --config",
    "destroy test; setmem test 1G --live",
]
# item 5: what libvirt's test driver refuses (and what it takes)
REFUSED = [
    "setvcpus test 1 --hotpluggable", "setvcpus test 1 --guest", "setvcpus test 1 --hotpluggable --live",
    "shutdown test --mode acpi", "shutdown test --mode agent", "shutdown test --mode initctl",
    "shutdown test --mode signal", "shutdown test --mode paravirt",
    "destroy test; start test --autodestroy", "destroy test; start test --bypass-cache",
    "destroy test; start test --force-boot; domstate test --reason",
    "undefine test --nvram", "undefine test --managed-save", "undefine test --snapshots-metadata",
    "create {dir}/vm1.xml --autodestroy", "create {dir}/vm1.xml --validate",
    "define {dir}/vm1.xml --validate", "dumpxml test --update-cpu", "dumpxml test --migratable",
    "dumpxml test --inactive --security-info", "destroy test --graceful",
    "reboot test --mode acpi", "reboot test --mode agent", "reboot test --mode initctl",
    "reboot test --mode signal", "reboot test --mode paravirt",
    "destroy test; domrename test test", "destroy test; domrename test foo; list --all",
    "setvcpus test 99", "setvcpus test 3", "setvcpus test 0", "setvcpus test 2 --maximum",
    "destroy test; setvcpus test 2 --maximum", "setvcpus test 33 --maximum --config",
    "setvcpus test 1 --maximum --config --live; vcpucount test",
    "setvcpus test 3 --maximum --config --live; vcpucount test",
    "setvcpus test 4 --maximum --config; vcpucount test; setvcpus test 3 --config; vcpucount test",
    "setvcpus test 1 --live --config; vcpucount test", "setvcpus test 1 --guest --config",
    "vcpucount test --maximum --active", "start test",
]
# item 8: dumpxml --xpath
XPATH = [
    "dumpxml test --xpath '//nosuch' --wrap", "dumpxml test --xpath '//nosuch'",
    "dumpxml test --xpath '//['", "dumpxml test --xpath '//b]'", "dumpxml test --xpath 'nosuchfn()'",
    "dumpxml test --xpath 'count('", "dumpxml test --xpath '$x'", "dumpxml test --xpath 'foo:bar'",
    "dumpxml test --xpath '//name/text()'", "dumpxml test --xpath '//name/text()' --wrap",
    "dumpxml test --xpath '//@type'", "dumpxml test --xpath '//@type' --wrap",
    "dumpxml test --xpath '//disk/@type | //disk/target/@dev | //interface/@type' --wrap",
    "dumpxml test --xpath '//name|//name/text()' --wrap", "dumpxml test --xpath '//name/text() | //os' --wrap",
    "dumpxml test --xpath '//name | //uuid' --wrap", "dumpxml test --xpath '/'",
    "dumpxml test --xpath '/' --wrap", "dumpxml test --xpath name", "dumpxml test --xpath domain/name",
    "dumpxml test --xpath '//devices' --wrap", "dumpxml test --xpath '//os | //devices/*' --wrap",
    "dumpxml test --xpath '//text()' --wrap", "dumpxml test --xpath '//memory/@unit | //memory/text()' --wrap",
    "dumpxml test --wrap",
]
NODE = [
    "domrename beta beta", "domrename alpha alpha", "domrename alpha beta", "domrename alpha gamma; list --all",
    "undefine saved", "undefine saved --managed-save; list --all", "setmem delta 1 --config", "setmem delta 1",
    "setmaxmem delta 1", "setvcpus delta 1 --config", "vcpucount alpha --live", "domid 2", "domid 7",
    "domid aaaaaaaa-2222-3333-4444-555555555555", "domuuid aaaaaaaa-2222-3333-4444-555555555555",
    "domuuid 3", "domname 3", "domname 7", "domname aaaaaaaa-2222-3333-4444-555555555555",
    "domname aaaaaaaa222233334444555555555555", "dominfo aaaaaaaa222233334444555555555555",
    "dominfo AAAAAAAA-2222-3333-4444-555555555555", "dominfo ' aaaaaaaa-2222-3333-4444-555555555555'",
    "dominfo '    aaaaaaaa222233334444555555555555'", "dominfo 'aaaaaaaa222233334444555555555555    '",
    "dominfo 'aa aaaaaa-2222-3333-4444555555555555'", "dominfo 'aaaaaaaa--222233334444555555555555-'",
    "dominfo 'a-aaaaaaa-2222-3333-4444-55555555555'", "dominfo 7", "dominfo 3",
    "dominfo abcdefab-2222-3333-4444-555555555555", "destroy 3; dominfo 7", "suspend 7; resume 3",
    "destroy delta; list --all", "start alpha; start alpha",
]


def _env(tmp_path) -> dict:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8", "NO_COLOR": "1",
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_RUNTIME_DIR": str(tmp_path / "run")}


def _run(exe, uri: str, cmd: str, tmp_path, *opts: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *opts, "-c", uri, cmd], capture_output=True, text=True, errors="replace",
                          env=_env(tmp_path), stdin=subprocess.DEVNULL, timeout=60)


def _norm(text: str) -> str:
    return "\n".join("CPU time: -" if line.startswith("CPU time:") else line for line in text.split("\n"))


def _same(uri: str, cmd: str, tmp_path) -> None:
    ours, theirs = _run(VIRTCTL, uri, cmd, tmp_path), _run(VIRSH, uri, cmd, tmp_path)
    assert "Traceback" not in ours.stderr, ours.stderr
    assert _norm(ours.stdout) == _norm(theirs.stdout), f"stdout differs for {cmd!r}: {ours.stderr}"
    assert (ours.returncode == 0) == (theirs.returncode == 0), (cmd, ours.stderr, theirs.stderr)
    assert ours.stderr == theirs.stderr, f"stderr differs for {cmd!r}"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "vm1.xml").write_text(VM1_XML)
    (tmp_path / "node.xml").write_text(NODE_XML)
    return tmp_path


@needs_virsh
@pytest.mark.virsh
@pytest.mark.parametrize("cmd", TYPED + CONTEXT + LOOKUP + LEGACY + REFUSED + XPATH)
def test_default_driver_same_as_virsh(cmd, files):
    _same("test:///default", cmd.format(dir=files), files)


@needs_virsh
@pytest.mark.virsh
@pytest.mark.parametrize("cmd", NODE)
def test_node_file_same_as_virsh(cmd, files):
    _same(f"test://{files}/node.xml", cmd, files)


def _ours(cmd: str, tmp_path, *opts: str, uri: str = "test:///default") -> subprocess.CompletedProcess:
    return _run(VIRTCTL, uri, cmd, tmp_path, *opts)


# --- save, restore, managedsave: virsh's output recorded (it hangs at random there) --------------

@pytest.mark.parametrize("cmd,out,err", [
    ("save 1 {f}; restore {f}", "\nDomain '1' saved to {f}\n\nDomain restored from {f}\n\n", ""),
    (f"destroy 1; save {U} {{f}}", "Domain '1' destroyed\n\n\n",
     f"error: Failed to save domain '{U}' to {{f}}\nerror: Requested operation is not valid: domain is not running\n"),
    (f"destroy 1; managedsave {U}", "Domain '1' destroyed\n\n\n",
     f"error: Failed to save domain '{U}' state\nerror: Requested operation is not valid: domain is not running\n"),
    ("save test {f} --bypass-cache", "\n",
     "error: Failed to save domain 'test' to {f}\nerror: unsupported flags (0x1) in function testDomainSaveFlags\n"),
    ("save test {f} --running", "\n",
     "error: Failed to save domain 'test' to {f}\nerror: unsupported flags (0x2) in function testDomainSaveFlags\n"),
    ("save test {f} --paused", "\n",
     "error: Failed to save domain 'test' to {f}\nerror: unsupported flags (0x4) in function testDomainSaveFlags\n"),
    ("save test {f}; restore {f} --bypass-cache", "\nDomain 'test' saved to {f}\n\n\n",
     "error: Failed to restore domain from {f}\nerror: unsupported flags (0x1) in function testDomainRestoreFlags\n"),
    ("save test {f}; restore {f} --running", "\nDomain 'test' saved to {f}\n\n\n",
     "error: Failed to restore domain from {f}\nerror: unsupported flags (0x2) in function testDomainRestoreFlags\n"),
    ("save test {f}; restore {f} --paused", "\nDomain 'test' saved to {f}\n\n\n",
     "error: Failed to restore domain from {f}\nerror: unsupported flags (0x4) in function testDomainRestoreFlags\n"),
    (f"managedsave test --bypass-cache --running; managedsave-remove {U}", None, ""),
])
def test_save_commands_as_virsh_printed_them(cmd, out, err, tmp_path):
    f = str(tmp_path / "t.save")
    r = _ours(cmd.format(f=f), tmp_path)
    assert r.stderr == err.format(f=f)
    if out is not None:
        assert r.stdout == out.format(f=f)
    assert (r.returncode == 0) == (err == "")


# --- errors: one mechanism, two lines in text, one document in JSON ----------------------------

def test_json_error_keeps_one_document_with_the_context(tmp_path):
    r = _ours("destroy test; destroy 1", tmp_path, "--json")
    assert r.returncode == 3  # 'destroy 1': no domain with id 1 any more, and none named '1'
    r = _ours("destroy test; destroy test", tmp_path, "--json")
    doc = json.loads(r.stderr)
    assert doc["error"]["context"] == "Failed to destroy domain 'test'"
    assert doc["error"]["message"] == "Requested operation is not valid: domain is not running"
    assert doc["error"]["code"] == "OPERATION_INVALID" and r.returncode == 4
    r = _ours("shutdown --mode agent 1", tmp_path, "--json")
    doc = json.loads(r.stderr)["error"]
    assert doc["context"] == "Failed to shutdown domain '1'" and r.returncode == 6
    assert doc["detail"] == {"driver": "test", "feature": "shutdown --mode agent", "flags": 2,
                             "function": "testDomainShutdownFlags"}
    # no context where virsh has none: the lookup failed before anything was tried
    assert "context" not in json.loads(_ours("dominfo nosuch", tmp_path, "--json").stderr)["error"]


def test_json_keeps_the_resolved_name_and_uuid(tmp_path):
    out = _ours("suspend 1", tmp_path, "--json").stdout
    assert json.loads(out) == {"domain": "test", "uuid": U, "action": "suspended", "result": "ok"}
    out = _ours(f"destroy {U}", tmp_path, "--json").stdout
    assert json.loads(out)["domain"] == "test"


def test_no_internal_names_in_not_supported(tmp_path):
    from virtctl.errors import not_supported

    e = not_supported("qemu", "shutdown --mode agent")
    assert e.message == "this function is not supported by the connection driver: shutdown --mode agent"
    assert e.detail == {"driver": "qemu", "feature": "shutdown --mode agent"}
    from virtctl.drivers.base import DomainDriver

    with pytest.raises(Exception) as exc:
        DomainDriver().screenshot("u", "/tmp/x")
    assert exc.value.message.endswith(": screenshot") and "domain." not in exc.value.message


def test_api_shutdown_mode_takes_a_list_or_a_comma_string():
    import virtctl

    with virtctl.open("test:///default") as conn:
        dom = conn.lookup_domain("test")
        for mode in ("acpi,agent", ["acpi", "agent"], ("agent", "acpi")):
            with pytest.raises(virtctl.VirtError) as e:
                dom.shutdown(mode=mode)
            assert e.value.message == "unsupported flags (0x3) in function testDomainShutdownFlags"
        with pytest.raises(virtctl.VirtError) as e:
            dom.reboot(mode="acpi,bogus")
        assert e.value.code == "INVALID_ARG" and "Unknown mode bogus value" in e.value.message
        dom.reboot(mode=["acpi", "agent"])  # libvirt's test driver takes every reboot mode


def test_lookup_rules_of_the_api():
    from virtctl.api.connection import looks_like_uuid, parse_id

    assert looks_like_uuid(U) and looks_like_uuid(U.upper()) and looks_like_uuid("    " + U.replace("-", ""))
    assert not looks_like_uuid(U.replace("-", ""))  # 32 characters: a name, as in virsh
    assert not looks_like_uuid(" " + U) and not looks_like_uuid(U + "x")
    assert [parse_id(s) for s in ("3", " 3", "+3", "03", "-0", "-3", "3 ", "1_0", "", "٣", "99999999999")] == \
        [3, 3, 3, 3, 0, None, None, None, None, None, None]


# --- dumpxml --xpath: the extension, and virsh's behaviour kept ----------------------------------

@pytest.mark.parametrize("expr,wrap,out", [
    ("count(//disk)", False, "1\n"),
    ("count(//disk)", True, "<nodes>1</nodes>\n"),
    ("string(//name)", False, "test\n"),
    ("string(//nosuch)", True, "<nodes/>\n"),
    ("boolean(//disk)", False, "true\n"),
    ("1 div 0", False, "Infinity\n"),
    ("0.5 + 1", False, "1.5\n"),
])
def test_dumpxml_xpath_prints_scalar_results(expr, wrap, out, tmp_path):
    """virsh refuses these ("internal error: Incorrect xpath"): an extension (README)."""
    r = _ours(f"dumpxml test --xpath '{expr}'" + (" --wrap" if wrap else ""), tmp_path, "-q")
    assert r.returncode == 0 and r.stdout == out and r.stderr == ""


def test_dumpxml_xpath_invalid_expression_is_virsh_s(tmp_path):
    r = _ours("dumpxml test --xpath '//['", tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "\n", "XPath error : Invalid expression\n//[\n  ^\n")
    r = _ours("dumpxml test --xpath 'nosuchfn(1)'", tmp_path)
    assert r.stderr == "xmlXPathCompOpEval: function nosuchfn not found\nXPath error : Unregistered function\n"
    r = _ours("dumpxml test --xpath '//['", tmp_path, "--json")
    assert json.loads(r.stdout) == {"results": []} and r.stderr.startswith("XPath error")


def test_dumpxml_xpath_escapes_as_libxml2(tmp_path):
    xml = tmp_path / "u.xml"
    xml.write_text("<domain type='test'><name>uni</name><title>\u00dcn &amp; &lt;x&gt; \"q\"</title>"
                   "<memory>1024</memory><os><type>hvm</type></os><devices><disk type='file' device='disk'>"
                   "<source file='/tmp/\u00e9 \"x\" &amp;'/><target dev='vda'/></disk></devices></domain>")
    r = _ours(f"define {xml}; dumpxml uni --xpath '//title | //source/@file'", tmp_path, "-q")
    # text raw, attributes with non-ASCII as character references (what virsh printed)
    assert r.stdout == ("<title>\u00dcn &amp; &lt;x&gt; \"q\"</title>\n"
                        " file=\"/tmp/&#xE9; &quot;x&quot; &amp;\"\n")


# --- edit: an invalid edit declined at the prompt prints its error once --------------------------

def test_edit_invalid_xml_answered_no_prints_the_error_once(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    editor = tmp_path / "ed.sh"
    editor.write_text("#!/bin/sh\nprintf '<domain type=\"test\"><name>test</name>' > \"$1\"\n")
    editor.chmod(0o755)
    env = {**_env(tmp_path), "EDITOR": str(editor), "TERM": "dumb"}
    log = []

    class Tee:
        def write(self, s):
            log.append(s)

        def flush(self):
            pass

    p = pexpect.spawn(VIRTCTL, ["-c", "test:///default", "edit test"], env=env, encoding="utf-8", timeout=30)
    p.logfile_read = Tee()
    p.expect_exact("Try again? [y,n]: ")
    p.sendline("n")
    p.expect(pexpect.EOF)
    p.close()
    transcript = "".join(log)
    assert p.exitstatus == 5 and transcript.count("error:") == 1, transcript


# --- where virtctl differs on purpose (README), each checked against what virsh does ----------------

def _virsh(cmd: str, tmp_path, uri: str = "test:///default") -> subprocess.CompletedProcess:
    return _run(VIRSH, uri, cmd, tmp_path)


@needs_virsh
@pytest.mark.virsh
def test_differs_start_and_create_paused(files):
    cmd = "destroy test; start test --paused; domstate test --reason"
    assert "unsupported flags (0x1) in function testDomainCreateWithFlags" in _virsh(cmd, files).stderr
    r = _ours(cmd, files)
    assert r.returncode == 0 and "paused (user)" in r.stdout
    cmd = f"create {files}/vm1.xml --paused; domstate vm1"
    assert "unsupported flags (0x1) in function testDomainCreateXML" in _virsh(cmd, files).stderr
    assert _ours(cmd, files).stdout.endswith("paused\n\n")


@needs_virsh
@pytest.mark.virsh
def test_differs_shutdown_wait(files):
    assert _virsh("shutdown test --wait", files).returncode != 0  # virsh has no --wait
    r = _ours("shutdown test --wait --timeout 5; domstate test", files)
    assert r.returncode == 0 and r.stdout == "Domain 'test' is shut off\n\nshut off\n\n"


@needs_virsh
@pytest.mark.virsh
def test_differs_transient_domains_are_not_undefined_or_autostarted(files):
    uri = f"test://{files}/node.xml"
    for cmd in ("undefine delta", "autostart delta"):
        assert _virsh(cmd, files, uri).returncode == 0  # libvirt's test driver "succeeds"
    r = _ours("undefine delta", files, uri=uri)
    assert r.returncode == 4 and r.stderr == ("error: Failed to undefine domain 'delta'\nerror: Requested "
                                              "operation is not valid: cannot undefine transient domain\n")
    r = _ours("autostart delta", files, uri=uri)
    assert r.returncode == 4 and r.stderr.startswith("error: Failed to mark domain 'delta' as autostarted\n")


@needs_virsh
@pytest.mark.virsh
def test_differs_start_after_managed_save_is_restored(files):
    uri = f"test://{files}/node.xml"
    assert "running (booted)" in _virsh("start saved; domstate saved --reason", files, uri).stdout
    assert "running (restored)" in _ours("start saved; domstate saved --reason", files, uri=uri).stdout


@needs_virsh
@pytest.mark.virsh
def test_differs_wrong_state_errors_say_operation_invalid(files):
    """libvirt's test driver calls these 'internal error'; the reason line here
    says what it is (and the code is OPERATION_INVALID, exit 4)."""
    for cmd, theirs in (("destroy test; suspend test", "internal error: domain 'test' not running"),
                        ("destroy test; shutdown test", "internal error: domain 'test' not running"),
                        ("resume test", "internal error: domain 'test' not paused")):
        v, o = _virsh(cmd, files), _ours(cmd, files)
        assert theirs in v.stderr and o.stdout == v.stdout and o.returncode == 4
        assert o.stderr.splitlines()[0] == v.stderr.splitlines()[0]  # the same context line
        assert o.stderr.splitlines()[1].startswith("error: Requested operation is not valid: domain is not")


@needs_virsh
@pytest.mark.virsh
def test_differs_dumpxml_xpath_scalars(files):
    cmd = "dumpxml test --xpath 'count(//disk)'"
    assert "internal error: Incorrect xpath 'count(//disk)'" in _virsh(cmd, files).stderr
    assert _ours(cmd, files).stdout == "1\n\n"



def test_console_unknown_device_is_invalid_arg(tmp_path):
    r = _ours("console test --devname nosuch", tmp_path, "--json")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 2 and err["code"] == "INVALID_ARG"
    assert err["message"] == "invalid argument: cannot find character device nosuch"


def test_messages_print_braces_in_names_and_files_as_they_are(tmp_path):
    """Messages are templates filled with the user's words, never re-read."""
    xml = tmp_path / "{file}.xml"
    xml.write_text(VM1_XML.replace("<name>vm1</name>", "<name>a{name}{0}</name>"))
    r = _ours(f"define '{xml}'; start 'a{{name}}{{0}}'; destroy 'a{{name}}{{0}}'", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"Domain 'a{{name}}{{0}}' defined from {xml}\n\nDomain 'a{{name}}{{0}}' started\n\n"
                        "Domain 'a{name}{0}' destroyed\n\n")
