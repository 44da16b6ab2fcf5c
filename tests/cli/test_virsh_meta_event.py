"""event, desc, metadata, vncdisplay, ttyconsole, inject-nmi, dompmsuspend,
dompmwakeup and send-process-signal against virsh on test:///default."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from virsh_side import VIRTCTL, compare, needs_virsh, run

pytestmark = needs_virsh

URI = "test:///default"

CASES = [line for line in (Path(__file__).parent / "wide" / "meta.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]
# what a line of wide/meta.txt cannot hold
EXTRA = ["desc test --title --new-desc 'line1\nline2'"]


@pytest.mark.parametrize("cmd", CASES + EXTRA)
def test_matches_virsh(cmd, tmp_path):
    compare(URI, cmd, tmp_path)


def test_json_shapes(tmp_path):
    r = run([VIRTCTL, "-c", URI, "--json", "desc test --new-desc hi; desc test; metadata test http://e.org/ "
             "--key k --set '<a/>'; metadata test http://e.org/; event --list"], tmp_path)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(d) for d in _split_json(r.stdout)]
    assert docs[0] == {"domain": "test", "uuid": docs[0]["uuid"], "description": "hi", "changed": True}
    assert docs[1]["description"] == "hi"
    assert docs[2]["changed"] is True and docs[2]["key"] == "k"
    assert docs[3]["metadata"] == "<a/>"
    assert docs[4][0] == "lifecycle" and len(docs[4]) == 27


def test_event_json_timeout(tmp_path):
    r = run([VIRTCTL, "-c", URI, "--json", "event --all --timeout 1"], tmp_path)
    assert r.returncode == 1
    assert [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()] == [
        {"events_received": 0, "timed_out": True}]


def _split_json(text: str) -> list[str]:
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, j = dec.raw_decode(text, i)
        out.append(json.dumps(obj))
        i = j
