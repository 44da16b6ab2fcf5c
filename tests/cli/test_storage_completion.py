"""Completion of pool names, of volume names within the pool on the line, and
of vol-wipe's algorithms (test driver; no virsh needed)."""
from __future__ import annotations

from virtctl.api.connection import Connection
from virtctl.cli.complete import Metadata, complete


def _values(c):
    return [x.value for x in c.candidates]


def test_completion_of_pools_and_volumes_of_the_pool_on_the_line():
    with Connection("test:///default") as conn:
        pool = conn.lookup_pool("default-pool")
        for name in ("alpha.raw", "beta.qcow2"):
            pool.create_volume(f"<volume><name>{name}</name><capacity>1048576</capacity><target/></volume>")
        meta = Metadata.from_connection(conn)
        assert "default-pool" in _values(complete(["vol-list"], "", meta))
        assert _values(complete(["vol-info", "--pool", "default-pool"], "", meta)) == ["alpha.raw", "beta.qcow2"]
        assert _values(complete(["vol-wipe", "--pool", "default-pool"], "b", meta)) == ["beta.qcow2"]
        assert _values(complete(["vol-upload", "--pool", "nosuch"], "", meta)) == []
        assert _values(complete(["vol-info"], "a", meta)) == []  # no pool on the line: no guess
        assert _values(complete(["vol-wipe", "--pool", "default-pool", "alpha.raw", "--algorithm"], "r",
                                meta)) == ["random"]
