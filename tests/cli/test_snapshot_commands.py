"""Snapshot commands on the test driver beyond the virsh comparison: JSON
shapes, exit statuses, the API's filters and tree, completion of names."""
from __future__ import annotations

import json

import pytest

from cli_runner import run
from virtctl.api.connection import Connection
from virtctl.cli.complete import Metadata, complete
from virtctl.errors import NoDomainSnapshot, OperationInvalid

URI = "test:///default"
TREE = ("snapshot-create-as test a; snapshot-create-as test b; snapshot-create-as test c; "
        "snapshot-revert test a; snapshot-create-as test d")


def docs(text: str) -> list:
    dec, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


def test_json_shapes():
    r = run("-c", URI, "--json", TREE + "; snapshot-list test; snapshot-info test a; snapshot-current test --name;"
            " snapshot-parent test c; snapshot-delete test b --children")
    assert r.status == 0, r.err
    out = docs(r.out)
    created = out[0]
    assert created == {"domain": "test", "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f",
                       "action": "snapshot-created", "snapshot": "a", "result": "ok"}
    listing = out[5]
    assert [s["name"] for s in listing] == ["a", "b", "c", "d"]
    assert set(listing[0]) == {"name", "domain", "parent", "creation_time", "state", "description", "current",
                               "location", "disk_only", "metadata"}
    assert listing[1]["parent"] == "a" and listing[3]["current"] is True
    info = out[6]
    assert (info["name"], info["children"], info["descendants"]) == ("a", 2, 3)
    assert out[7]["name"] == "d"
    assert out[8] == {"snapshot": "c", "parent": "b"}
    assert out[9]["action"] == "snapshot-deleted" and out[9]["children"] is True


def test_exit_statuses():
    assert run("-c", URI, "snapshot-info test nosuch").status == 3  # NO_DOMAIN_SNAPSHOT
    assert run("-c", URI, "snapshot-current test").status == 4  # no current snapshot
    assert run("-c", URI, "snapshot-create-as test s1 --disk-only").status == 6  # NOT_SUPPORTED
    assert run("-c", URI, "snapshot-info test").status == 2  # usage
    r = run("-c", URI, "--json", "snapshot-info test nosuch")
    assert json.loads(r.err)["error"]["code"] == "NO_DOMAIN_SNAPSHOT"


def test_bad_diskspec_changes_nothing():
    r = run("-c", URI, "snapshot-create-as test s1 --diskspec vdz; snapshot-list test --name")
    assert "no disk named 'vdz'" in r.err
    assert r.out.startswith("\n")  # nothing listed


def test_api_filters_and_tree():
    with Connection(URI) as conn:
        dom = conn.domain_by_name("test")
        for name in "abc":
            dom.create_snapshot(f"<domainsnapshot><name>{name}</name></domainsnapshot>")
        dom.snapshot_lookup("a").revert()
        dom.create_snapshot("<domainsnapshot><name>d</name></domainsnapshot>")
        names = lambda snaps: [s.name for s in snaps]  # noqa: E731
        assert names(dom.snapshots()) == ["a", "b", "c", "d"]
        assert names(dom.snapshots(roots=True)) == ["a"]
        assert names(dom.snapshots(leaves=True)) == ["c", "d"]
        assert names(dom.snapshots(no_leaves=True)) == ["a", "b"]
        assert names(dom.snapshots(topological=True)) == ["a", "d", "b", "c"]
        assert names(dom.snapshots(active=True)) == ["a", "b", "c", "d"]
        assert names(dom.snapshots(inactive=True)) == []
        assert names(dom.snapshots(internal=True)) == ["a", "b", "c", "d"]
        assert names(dom.snapshots(external=True)) == []
        assert names(dom.snapshots(disk_only=True)) == []
        assert names(dom.snapshots(current=True)) == []
        a = dom.snapshot_lookup("a")
        assert names(a.children()) == ["b", "d"] and names(a.descendants()) == ["b", "c", "d"]
        assert dom.snapshot_lookup("c").parent().name == "b" and a.parent() is None
        assert dom.current_snapshot().name == "d"
        assert conn.domains(has_snapshot=True)[0].name == "test"
        with pytest.raises(NoDomainSnapshot):
            dom.snapshot_lookup("zzz")
        dom.destroy()
        with pytest.raises(OperationInvalid):
            dom.undefine()
        dom.undefine(snapshots_metadata=True)
        assert conn.domains() == []


def test_completion_of_snapshot_names():
    with Connection(URI) as conn:
        dom = conn.domain_by_name("test")
        for name in ("alpha", "beta"):
            dom.create_snapshot(f"<domainsnapshot><name>{name}</name></domainsnapshot>")
        meta = Metadata.from_connection(conn)
        values = lambda c: [x.value for x in c.candidates]  # noqa: E731
        assert values(complete(["snapshot-revert", "test"], "", meta)) == ["alpha", "beta"]
        assert values(complete(["snapshot-info", "--domain", "test"], "b", meta)) == ["beta"]
        assert values(complete(["snapshot-list", "test", "--from"], "a", meta)) == ["alpha"]
        assert values(complete(["snapshot-info", "nosuch"], "", meta)) == []
