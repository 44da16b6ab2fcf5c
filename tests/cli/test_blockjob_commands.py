"""Block commands on the test driver beyond the virsh comparison: disk
completion, the progress line, bandwidth values, the API's checks."""
from __future__ import annotations

import io

import pytest

from virtctl.api.connection import Connection
from virtctl.cli.complete import Metadata, complete
from virtctl.commands import blockjob
from virtctl.errors import InvalidArg, NotSupported

URI = "test:///default"


def test_completion_of_disk_targets():
    with Connection(URI) as conn:
        meta = Metadata.from_connection(conn)
        values = lambda c: [x.value for x in c.candidates]  # noqa: E731
        assert values(complete(["blockcommit", "test"], "", meta)) == ["vda"]
        assert values(complete(["blockjob", "--domain", "test"], "v", meta)) == ["vda"]
        assert values(complete(["domblkinfo", "test"], "", meta)) == ["vda"]
        assert values(complete(["blockresize", "nosuch"], "", meta)) == []


def test_progress_line_is_virshs():
    class S:
        out, err = io.StringIO(), io.StringIO()
    s = S()
    blockjob._progress(s, "Block Commit", 50, 100)
    blockjob._progress(s, "Block Copy", 1, 100000)  # not done: never 100
    blockjob._progress(s, "Block Pull", 0, 0)
    assert s.err.getvalue() == "\rBlock Commit: [50.00 %]\rBlock Copy: [99.99 %]\rBlock Pull: [100.00 %]"


@pytest.mark.parametrize("text,as_bytes,want", [("10", False, 10 << 20), ("10", True, 10), ("3M", False, 3 << 20),
                                                ("1500K", False, 1 << 20), ("-1", False, 0), ("2k", True, 2048)])
def test_bandwidth_values(text, as_bytes, want):
    assert blockjob.bandwidth_bytes(text, as_bytes) == want


@pytest.mark.parametrize("text", ["abc", "1Q", "", "1.5M"])
def test_bad_bandwidth(text):
    with pytest.raises(InvalidArg, match="for <--bandwidth> option is malformed"):
        blockjob.bandwidth_bytes(text, False)


def test_api_checks_and_test_driver_answers():
    with Connection(URI) as conn:
        dom = conn.domain_by_name("test")
        assert dom.block_info("vda")["capacity"] == 1099506450432
        assert dom.block_info("/guest/diskimage1")["physical"] == 1099511627776
        with pytest.raises(InvalidArg, match="invalid path vdz not assigned to domain"):
            dom.block_info("vdz")
        with pytest.raises(InvalidArg):
            dom.block_commit("vda", bandwidth=-1)
        with pytest.raises(InvalidArg):
            dom.block_resize("", 1024)
        for call in (lambda: dom.block_commit("vda", active=True), lambda: dom.block_pull("vda"),
                     lambda: dom.block_copy("vda", "/tmp/x"), lambda: dom.block_job_info("vda"),
                     lambda: dom.block_job_abort("vda"), lambda: dom.block_resize("vda", 1 << 30)):
            with pytest.raises(NotSupported):
                call()
