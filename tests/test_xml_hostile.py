"""Hostile XML through the hardened parser (xmlapi.parse / parse_file) and
the validator: each gives an XMLError with a clear message, never a hang, a
file read or a crash."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from cli_runner import run_installed
from virtctl.errors import SystemError_, XMLError
from virtctl.xml import validate as V
from virtctl.xml import xmlapi

MINIMAL = """<domain type='kvm'>
  <name>demo</name>
  <memory>1024</memory>
  <os><type>hvm</type></os>
  {extra}
</domain>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<domain type='kvm'><name>&lol9;</name></domain>
"""

REFUSED = "DOCTYPE and entity declarations are not allowed"


def _raises(data, source="<input>") -> str:
    with pytest.raises(XMLError) as exc:
        xmlapi.parse(data, source=source)
    assert exc.value.code == "XML_ERROR"
    return exc.value.message


def test_minimal_is_valid():
    V.validate(xmlapi.parse(MINIMAL.format(extra="")))


def test_billion_laughs():
    assert _raises(BILLION_LAUGHS, "lol.xml") == f"lol.xml: {REFUSED}"


def test_external_entity_file():
    data = (b'<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            b"<domain type='kvm'><name>&x;</name></domain>\n")
    assert _raises(data) == f"<input>: {REFUSED}"


def test_external_dtd():
    data = (b'<?xml version="1.0"?>\n<!DOCTYPE domain SYSTEM "http://example.invalid/domain.dtd">\n'
            b"<domain type='kvm'><name>x</name></domain>\n")
    assert _raises(data) == f"<input>: {REFUSED}"


def test_doctype_lowercase_and_parameter_entity():
    data = b'<!doctype domain [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><domain/>'
    assert _raises(data) == f"<input>: {REFUSED}"


def _write_later(path, data: bytes) -> threading.Thread:
    """Open ``path`` (a FIFO) for writing in a thread and write ``data``."""
    def write():
        with open(path, "wb") as f:
            f.write(data)
    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_entity_on_a_fifo(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = (f'<!DOCTYPE domain [<!ENTITY x SYSTEM "file://{fifo}">]>\n'
            "<domain type='kvm'><name>&x;</name></domain>\n")
    assert _raises(data) == f"<input>: {REFUSED}"  # refused before anything opens the FIFO
    # the FIFO itself is read as a document, as virsh reads it, once written
    writer = _write_later(fifo, data.encode())
    with pytest.raises(XMLError) as exc:
        xmlapi.parse_file(str(fifo))
    writer.join(10)
    assert exc.value.message == f"{fifo}: {REFUSED}"


def test_fifo_is_read_to_its_end(tmp_path):
    fifo = tmp_path / "dom.xml"
    os.mkfifo(fifo)
    text = MINIMAL.format(extra="")
    writer = _write_later(fifo, text.encode())
    assert xmlapi.read_file(str(fifo)) == text.encode()
    writer.join(10)


def test_endless_device_is_refused_after_the_limit():
    # /dev/zero never ends: reading stops one byte past the limit
    with pytest.raises(XMLError) as exc:
        xmlapi.read_file("/dev/zero")
    assert exc.value.message == f"/dev/zero: file is larger than the limit of {xmlapi.MAX_BYTES} bytes"


def test_pipe_past_the_limit_is_refused_without_reading_it_all(tmp_path):
    r, w = os.pipe()
    sent = []

    def flood():  # writes until the reader goes away (EPIPE), at most 64 MiB
        chunk = b" " * (1 << 20)
        try:
            for _ in range(64):
                os.write(w, chunk)
                sent.append(len(chunk))
        except OSError:
            pass
        finally:
            os.close(w)
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        with pytest.raises(XMLError) as exc:
            xmlapi.read_file(f"/proc/self/fd/{r}")
    finally:
        os.close(r)
    t.join(30)
    assert "larger than the limit" in exc.value.message
    assert sum(sent) < 20 * (1 << 20)  # the writer was cut off, not drained


def test_directory_is_refused(tmp_path):
    with pytest.raises(SystemError_) as exc:
        xmlapi.read_file(str(tmp_path))
    assert exc.value.message == f"failed to read '{tmp_path}': Is a directory"


def test_define_reads_stdin_and_process_substitution(tmp_path):
    text = "<domain type='test'><name>piped</name><memory>1024</memory><os><type>hvm</type></os></domain>"
    r = run_installed("-c", "test:///default", "define", "/dev/stdin", stdin=text)
    assert (r.status, r.out.strip()) == (0, "Domain 'piped' defined from /dev/stdin"), r.err
    path = tmp_path / "d.xml"
    path.write_text(text)
    exe = shutil.which("virtctl")
    p = subprocess.run(["bash", "-c", f'"{exe}" -c test:///default create <(cat "{path}")'],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("Domain 'piped' created from /dev/fd/"), p.stderr
    p = subprocess.run(["bash", "-c", f'"{exe}" validate <(cat "{path}")'],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "validates" in p.stdout, p.stderr


def test_fifo_without_writer_is_waited_on_like_virsh(tmp_path):
    """virsh blocks until a writer opens the FIFO; so does virtctl (and
    Ctrl-C stops it).  Never a hang here: the test writes, or kills it."""
    fifo = tmp_path / "later.xml"
    os.mkfifo(fifo)
    p = subprocess.Popen([shutil.which("virtctl"), "-c", "test:///default", "define", str(fifo)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        assert p.poll() is None, p.communicate()  # still waiting for a writer, not "empty"
        with open(fifo, "w") as f:
            f.write("<domain type='test'><name>late</name><memory>1024</memory>"
                    "<os><type>hvm</type></os></domain>")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert (p.returncode, out.strip()) == (0, f"Domain 'late' defined from {fifo}"), err


def test_fifo_wait_is_interrupted_by_ctrl_c(tmp_path):
    fifo = tmp_path / "never.xml"
    os.mkfifo(fifo)
    p = subprocess.Popen([shutil.which("virtctl"), "-c", "test:///default", "define", str(fifo)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130 and "Traceback" not in err


def test_xinclude_is_not_processed_and_is_rejected():
    extra = ('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd" '
             'parse="text"/>')
    text = MINIMAL.format(extra=extra)
    root = xmlapi.parse(text)
    assert "root:" not in xmlapi.tostring(root)  # nothing was included
    with pytest.raises(XMLError) as exc:
        V.validate(root, source="xi.xml", text=text)
    assert exc.value.message == "xi.xml:5:3: /domain/xi:include: unknown element <xi:include> in <domain>"


def test_ten_mib_plus_one_byte(tmp_path):
    data = b"<domain>" + b" " * (xmlapi.MAX_BYTES + 1 - len(b"<domain></domain>")) + b"</domain>"
    assert len(data) == xmlapi.MAX_BYTES + 1
    assert _raises(data, "big.xml") == (
        f"big.xml: document is {xmlapi.MAX_BYTES + 1} bytes, larger than the limit of "
        f"{xmlapi.MAX_BYTES} bytes")
    path = tmp_path / "big.xml"
    path.write_bytes(data)
    with pytest.raises(XMLError) as exc:
        xmlapi.parse_file(str(path))
    assert exc.value.message == (
        f"{path}: file is {xmlapi.MAX_BYTES + 1} bytes, larger than the limit of {xmlapi.MAX_BYTES} bytes")


def test_exactly_ten_mib_is_read(tmp_path):
    # (one text node stays under libxml2's own 10,000,000-byte limit)
    head = MINIMAL.format(extra="<description>").encode()
    tail = b"</description>\n</domain>\n"
    body = head.replace(b"\n</domain>\n", b"")
    text = b"x" * 9_000_000
    pad = b" " * (xmlapi.MAX_BYTES - len(body) - len(text) - len(tail))
    data = body + text + tail[:-len(b"</domain>\n")] + pad + b"</domain>\n"
    assert len(data) == xmlapi.MAX_BYTES
    root = xmlapi.parse(data)
    V.validate(root)


def test_fifty_megabytes_refused(tmp_path):
    path = tmp_path / "huge.xml"
    with open(path, "wb") as f:  # sparse: refused from its size, never read
        f.write(b"<domain>")
        f.truncate(50 * 1000 * 1000)
    with pytest.raises(XMLError) as exc:
        xmlapi.parse_file(str(path))
    assert "larger than the limit" in exc.value.message
    with pytest.raises(XMLError) as exc:
        xmlapi.parse(b"<domain>" + b"x" * (50 * 1000 * 1000) + b"</domain>", source="huge")
    assert exc.value.message.startswith("huge: document is 50000017 bytes, larger than the limit")


def test_deep_nesting():
    depth = 100_000  # libxml2 stops first: its message is replaced by ours
    data = "<domain>" + "<a>" * depth + "</a>" * depth + "</domain>"
    msg = _raises(data, "deep.xml")
    assert msg.startswith("deep.xml:1:")
    assert msg.endswith(f"document is nested more than {xmlapi.MAX_DEPTH} levels deep (the limit)")
    assert "XML_PARSE_HUGE" not in msg


def test_moderate_nesting_in_unknown_element_is_rejected_by_schema():
    extra = "<devices>" + "<x>" * 200 + "</x>" * 200 + "</devices>"
    root = xmlapi.parse(MINIMAL.format(extra=extra))
    with pytest.raises(XMLError) as exc:
        V.validate(root, source="n.xml")
    assert exc.value.message == "n.xml:5: /domain/devices/x: unknown element <x> in <devices>"


def test_deep_nesting_in_metadata_is_free_form_but_bounded():
    extra = "<metadata>" + "<a:x xmlns:a='urn:a'>" * 200 + "</a:x>" * 200 + "</metadata>"
    V.validate(xmlapi.parse(MINIMAL.format(extra=extra)))


def test_truncated_document():
    text = MINIMAL.format(extra="<devices><disk type='file'>")[:-30]
    msg = _raises(text, "cut.xml")
    assert msg.startswith("cut.xml:") and "malformed XML" in msg


def test_invalid_utf8():
    data = "<domain type='kvm'><name>caf\u00e9</name></domain>".encode("latin-1")
    msg = _raises(data, "latin.xml")
    assert msg.startswith("latin.xml:1:") and "malformed XML" in msg
    assert "UTF-8" in msg or "encoding" in msg.lower()


def test_empty_and_blank_documents():
    assert _raises(b"") == "<input>: document is empty"
    assert _raises(b"  \n ") == "<input>: document is empty"


def test_wrong_root_element():
    root = xmlapi.parse("<html><body/></html>")
    with pytest.raises(XMLError) as exc:
        V.validate(root)
    assert exc.value.message == (
        "unknown root element <html> (expected one of: <domain>, <network>, <pool>, <volume>, "
        "<domainsnapshot>, <node>)")
    with pytest.raises(XMLError) as exc:
        V.validate(xmlapi.parse("<network><name>n</name></network>"), "domain", source="x.xml")
    assert exc.value.message == (
        "x.xml:1: /network: wrong root element <network> (expected <domain> for a domain document)")


def test_processing_instructions_and_comments_are_dropped():
    text = "<?xml-stylesheet href='x'?><!-- c --><domain type='kvm'><?pi x?><name>a</name><os><type>hvm</type></os></domain>"
    root = xmlapi.parse(text)
    V.validate(root)
    assert "<?" not in xmlapi.tostring(root) and "<!--" not in xmlapi.tostring(root)


def test_unknown_namespace_element_rejected():
    extra = "<evil:thing xmlns:evil='urn:evil'/>"
    with pytest.raises(XMLError) as exc:
        V.validate(xmlapi.parse(MINIMAL.format(extra=extra)), source="ns.xml")
    assert exc.value.message == "ns.xml:5: /domain/evil:thing: unknown element <evil:thing> in <domain>"
