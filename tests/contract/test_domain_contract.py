"""The driver contract: what every driver must do, through the public API.

Parametrised over drivers: the test driver (in memory) and the native QEMU
driver (``qemu:///embed?root=<tmp>``, real QEMU under TCG, booting the test
guest of tests/guest/build.py; skipped where qemu-system-x86_64 is absent).
Each driver's fixture yields a connection that already has a running domain
named ``test`` (as test:///default has).
"""
from __future__ import annotations

import shutil

import pytest

import virtctl
from virtctl.api.types import DomainState
from virtctl.errors import InvalidArg, NoDomain, NotSupported, OperationDenied, OperationInvalid, VirtError, XMLError

XML = """<domain type='{type}'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>2</vcpu>
  <os><type>hvm</type>{boot}</os>{features}
</domain>
"""
_QEMU_BOOT: dict[str, str] = {}


def _xml(dtype: str, name: str) -> str:
    if dtype == "qemu":
        return XML.format(type="qemu", name=name, boot=_QEMU_BOOT["boot"],
                          features="<features><acpi/></features>")
    return XML.format(type=dtype, name=name, boot="", features="")


def _qemu_connection(root):
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian: qemu-system-x86)")
    from guest.build import build_guest

    g = build_guest()
    # the bzImage: QEMU starts whatever the memory size (the contract never needs a booted guest)
    kernel = g.bzimage or g.kernel
    _QEMU_BOOT["boot"] = (f"<kernel>{kernel}</kernel><initrd>{g.initrd}</initrd>"
                          f"<cmdline>{g.cmdline}</cmdline>")
    conn = virtctl.open(f"qemu:///embed?root={root}")
    conn.define_domain(_xml("qemu", "test")).start()
    return conn


def _kill_leftovers(conn) -> None:
    for dom in conn.domains(active=True):
        try:
            dom.destroy()
        except VirtError:
            pass


@pytest.fixture(params=["test", pytest.param("qemu", marks=pytest.mark.qemu)])
def driver(request, tmp_path):
    if request.param == "test":
        conn = virtctl.open("test:///default")
        yield conn, "test"
        conn.close()
    else:
        conn = _qemu_connection(tmp_path)
        try:
            yield conn, "qemu"
        finally:
            _kill_leftovers(conn)
            sock = conn._driver.state.sock
            conn.close()
            if sock.startswith("/tmp/virtctl-"):
                shutil.rmtree(sock, ignore_errors=True)


def _define(conn, dtype, name="c1"):
    return conn.define_domain(_xml(dtype, name))


def test_define_lookup_undefine(driver):
    conn, dtype = driver
    dom = _define(conn, dtype)
    assert conn.lookup_domain("c1") == dom
    assert conn.domain_by_uuid(dom.uuid) == dom
    assert conn.domain_by_name("c1").uuid == dom.uuid
    rec = dom.info()
    assert (rec.state, rec.persistent, rec.id) == (DomainState.SHUTOFF, True, None)
    assert rec.max_memory_kib == 65536 and rec.vcpus == 2
    dom.undefine()
    with pytest.raises(NoDomain):
        dom.info()
    with pytest.raises(NoDomain) as e:
        conn.lookup_domain("c1")
    assert e.value.code == "NO_DOMAIN" and e.value.exit_status == 3


def test_lifecycle_and_reasons(driver):
    conn, dtype = driver
    dom = _define(conn, dtype)
    dom.start()
    rec = dom.info()
    assert rec.state == DomainState.RUNNING and rec.reason_text == "booted" and rec.id is not None
    with pytest.raises(OperationInvalid):
        dom.start()
    dom.suspend()
    assert (dom.info().state, dom.info().reason_text) == (DomainState.PAUSED, "user")
    dom.resume()
    assert (dom.info().state, dom.info().reason_text) == (DomainState.RUNNING, "unpaused")
    dom.destroy()
    rec = dom.info()
    assert (rec.state, rec.reason_text, rec.id) == (DomainState.SHUTOFF, "destroyed", None)
    for op in (dom.destroy, dom.suspend, dom.resume, dom.reset, dom.reboot):
        with pytest.raises(OperationInvalid) as e:
            op()
        assert e.value.code == "OPERATION_INVALID"
    dom.start(paused=True)
    assert dom.info().state == DomainState.PAUSED
    dom.destroy()


def test_transient_domain_disappears(driver):
    conn, dtype = driver
    dom = conn.create_domain(_xml(dtype, "t1"))
    rec = dom.info()
    assert rec.persistent is False and rec.state == DomainState.RUNNING
    with pytest.raises(OperationInvalid):
        dom.set_autostart(True)
    dom.destroy()
    with pytest.raises(NoDomain):
        dom.info()


def test_domains_filters_are_one_snapshot(driver):
    conn, dtype = driver
    a = _define(conn, dtype, "fa")
    b = _define(conn, dtype, "fb")
    b.start()
    b.suspend()
    names = lambda doms: sorted(d.name for d in doms)  # noqa: E731
    assert "fa" in names(conn.domains(active=False))
    assert "fb" in names(conn.domains(active=True))
    assert names(conn.domains(states=[DomainState.PAUSED])) == ["fb"]
    a.set_autostart(True)
    assert names(conn.domains(autostart=True)) == ["fa"]
    assert all(d.snapshot.persistent for d in conn.domains(persistent=True))


def test_duplicates_refused(driver):
    conn, dtype = driver
    dom = _define(conn, dtype, "dup")
    with pytest.raises(VirtError) as e:
        _define(conn, dtype, "dup")  # same name, new UUID
    assert e.value.code == "OPERATION_FAILED"
    other = _xml(dtype, "dup2").replace("<name>", f"<uuid>{dom.uuid}</uuid><name>")
    with pytest.raises(VirtError) as e:
        conn.define_domain(other)  # same UUID, other name
    assert e.value.code == "OPERATION_FAILED"
    assert [d.name for d in conn.domains() if d.uuid == dom.uuid] in ([], ["dup"])


@pytest.mark.parametrize("bad", [
    "<domain type='test'><name>a/b</name><memory>1</memory><os><type>hvm</type></os></domain>",
    "<domain type='test'><name>..</name><memory>1</memory><os><type>hvm</type></os></domain>",
    "<domain type='test'><name>-x</name><memory>1</memory><os><type>hvm</type></os></domain>",
    "<domain type='test'><name>a\x01b</name><memory>1</memory><os><type>hvm</type></os></domain>",
    "<domain type='test'><name>x</name><uuid>not-a-uuid</uuid><memory>1</memory><os><type>hvm</type></os></domain>",
    "<domain type='test'><name>x</name><memory>1</memory><os><type>hvm</type></os><bogus/></domain>",
    "<network><name>x</name></network>",
    "<domain",
])
def test_bad_xml_defines_nothing(driver, bad):
    conn, _ = driver
    before = [(d.uuid, d.name) for d in conn.domains()]
    with pytest.raises(XMLError) as e:
        conn.define_domain(bad)
    assert e.value.code == "XML_ERROR" and e.value.exit_status == 5
    assert [(d.uuid, d.name) for d in conn.domains()] == before


def test_memory_and_vcpus(driver):
    conn, dtype = driver
    dom = _define(conn, dtype, "mem")
    with pytest.raises(InvalidArg):
        dom.set_memory(-1)
    with pytest.raises(InvalidArg):
        dom.set_memory(2**70)
    with pytest.raises(InvalidArg):
        dom.set_memory(10**9)  # above the maximum
    dom.set_memory(32768)
    assert dom.info().memory_kib == 32768
    dom.set_max_memory(16384)
    assert (dom.info().max_memory_kib, dom.info().memory_kib) == (16384, 16384)
    dom.set_vcpus(1)
    assert dom.vcpu_count().config_current == 1
    with pytest.raises(InvalidArg):
        dom.set_vcpus(3)
    dom.start()
    with pytest.raises(OperationInvalid):
        dom.set_max_memory(8192)
    assert dom.vcpu_count().live_current == 1
    dom.destroy()


def test_rename(driver):
    conn, dtype = driver
    dom = _define(conn, dtype, "r1")
    dom.rename("r2")
    assert conn.lookup_domain("r2").uuid == dom.uuid
    dom.start()
    with pytest.raises(OperationInvalid):
        dom.rename("r3")
    dom.destroy()


def test_readonly_connection_refuses_changes(driver):
    conn, dtype = driver
    ro = virtctl.open(conn.uri, readonly=True)
    dom = ro.lookup_domain("test")
    assert dom.info().name == "test"
    for op in (lambda: dom.destroy(), lambda: ro.define_domain(_xml(dtype, "x")),
               lambda: dom.set_autostart(True), lambda: dom.xml(security_info=True)):
        with pytest.raises(OperationDenied) as e:
            op()
        assert e.value.code == "OPERATION_DENIED"


def test_unsupported_option_is_typed(driver):
    conn, dtype = driver
    dom = _define(conn, dtype, "ns")
    with pytest.raises(NotSupported) as e:
        dom.set_vcpus(1, guest=True)
    assert e.value.code == "NOT_SUPPORTED" and e.value.detail["driver"] == dtype
    assert e.value.detail["feature"] == "setvcpus --guest" and "set_vcpus" not in e.value.message  # no internal names


def test_lookup_order(driver):
    """id first, then UUID, then name (documented in the README)."""
    conn, dtype = driver
    running_id = str(conn.lookup_domain("test").info().id)
    named = conn.define_domain(_xml(dtype, running_id))
    assert conn.lookup_domain(running_id).name == "test"  # the id wins
    conn.lookup_domain("test").destroy()
    assert conn.lookup_domain(running_id) == named  # no such id any more: the name


def test_builtin_default_node_is_valid():
    """test:///default skips validating its own constant; prove it is valid."""
    from virtctl.drivers.test.default_node import DEFAULT_NODE_XML
    from virtctl.xml import validate, xmlapi

    validate.validate(xmlapi.parse(DEFAULT_NODE_XML), "node", text=DEFAULT_NODE_XML)
