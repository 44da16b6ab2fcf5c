"""The wire format of virtctl+ssh:// (drivers/remote/protocol.py): every
value the driver interface hands out survives the trip, and class names
from the far end are looked up only among virtctl's own."""
from __future__ import annotations

import json

import pytest

from virtctl.api.network import NetworkRecord
from virtctl.api.types import DomainState, NodeInfo
from virtctl.drivers.remote import protocol
from virtctl.errors import NoDomain, VirtError


def _trip(value):
    return protocol.decode(json.loads(json.dumps(protocol.encode(value))))


def test_values_survive_the_trip():
    import virtctl

    with virtctl.open("test:///default") as conn:
        rec = conn.lookup_domain("test").snapshot
        node = conn.node_info()
    value = {"rec": rec, "node": node, "state": DomainState.PAUSED, 3: (1, "a", None), b"k": [b"\x00\xff", 1.5],
             "net": NetworkRecord(uuid="u", name="n", active=True, persistent=False, autostart=False)}
    back = _trip(value)
    assert back == value
    assert type(back["state"]) is DomainState and isinstance(back["node"], NodeInfo)
    assert isinstance(back["rec"].state, DomainState)


@pytest.mark.parametrize("doc", [{"__r": "os:system", "f": []}, {"__e": "subprocess:Popen", "v": 1},
                                 {"__dc": "virtctl.errors:VirtError", "k": {"__d": []}},
                                 {"__r": "virtctl.api.types:DomainState", "f": [1]}])
def test_only_virtctl_record_classes_are_made(doc):
    with pytest.raises(VirtError) as exc:
        protocol.decode(doc)
    assert exc.value.code == "INTERNAL_ERROR"


def test_errors_keep_their_class_code_and_detail():
    exc = NoDomain("failed to get domain 'x'", detail={"domain": "x"}, context="ctx")
    back = protocol.error_from(json.loads(json.dumps(protocol.error_doc(exc))))
    assert type(back) is NoDomain
    assert (back.code, back.message, back.detail, back.context) == ("NO_DOMAIN", exc.message, {"domain": "x"}, "ctx")
    assert protocol.error_from({"code": "BOGUS", "message": "m"}).code == "INTERNAL_ERROR"
