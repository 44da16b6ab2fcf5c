"""libvirt's errors as virtctl's: one table from libvirt's error codes to
virtctl's codes.  The message stays libvirt's own words (virtctl mirrors them
already); libvirt's code number and domain ride along in ``detail``."""
from __future__ import annotations

import contextlib

from virtctl.errors import CODES, ConnectFailed, VirtError, for_code

# libvirt error code name -> virtctl code; codes not listed are OPERATION_FAILED
# (libvirt's "internal error: ..." included: in virtctl INTERNAL_ERROR means a bug
# in virtctl itself)
TABLE: dict[str, str] = {
    "VIR_ERR_NO_DOMAIN": "NO_DOMAIN",
    "VIR_ERR_NO_NETWORK": "NO_NETWORK",
    "VIR_ERR_NO_STORAGE_POOL": "NO_STORAGE_POOL",
    "VIR_ERR_NO_STORAGE_VOL": "NO_STORAGE_VOL",
    "VIR_ERR_NO_DOMAIN_SNAPSHOT": "NO_DOMAIN_SNAPSHOT",
    "VIR_ERR_OPERATION_INVALID": "OPERATION_INVALID",
    "VIR_ERR_XML_ERROR": "XML_ERROR",
    "VIR_ERR_XML_DETAIL": "XML_ERROR",
    "VIR_ERR_XML_INVALID_SCHEMA": "XML_ERROR",
    "VIR_ERR_NO_SUPPORT": "NOT_SUPPORTED",
    "VIR_ERR_ARGUMENT_UNSUPPORTED": "NOT_SUPPORTED",
    "VIR_ERR_CONFIG_UNSUPPORTED": "NOT_SUPPORTED",
    "VIR_ERR_INVALID_ARG": "INVALID_ARG",
    "VIR_ERR_OPERATION_DENIED": "OPERATION_DENIED",
    "VIR_ERR_ACCESS_DENIED": "OPERATION_DENIED",
    "VIR_ERR_AUTH_FAILED": "CONNECT_FAILED",
    "VIR_ERR_AUTH_CANCELLED": "CONNECT_FAILED",
    "VIR_ERR_NO_CONNECT": "CONNECT_FAILED",
    "VIR_ERR_RPC": "CONNECT_FAILED",
    "VIR_ERR_OPERATION_TIMEOUT": "OPERATION_TIMEOUT",
    "VIR_ERR_AGENT_UNRESPONSIVE": "AGENT_UNRESPONSIVE",
    "VIR_ERR_OPERATION_FAILED": "OPERATION_FAILED",
    "VIR_ERR_SYSTEM_ERROR": "SYSTEM_ERROR",
}
_BY_NUMBER: dict[int, str] | None = None


def code_of(libvirt, number: int) -> str:
    global _BY_NUMBER
    if _BY_NUMBER is None:
        _BY_NUMBER = {getattr(libvirt, name): code for name, code in TABLE.items()
                      if hasattr(libvirt, name)}
    return _BY_NUMBER.get(number, "OPERATION_FAILED")


def convert(libvirt, exc) -> VirtError:
    """A virtctl error for a ``libvirt.libvirtError``."""
    number = exc.get_error_code()
    code = code_of(libvirt, number)
    assert code in CODES
    message = exc.get_error_message() or str(exc)
    return for_code(code)(message, code=code,
                          detail={"libvirt_code": number, "libvirt_domain": exc.get_error_domain()})


@contextlib.contextmanager
def mapped(libvirt):
    """Inside: every libvirtError leaves as the matching virtctl error."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise convert(libvirt, exc) from None


def import_binding():
    """The binding, or CONNECT_FAILED saying what to install."""
    try:
        import libvirt
    except ImportError:
        raise ConnectFailed(
            "the libvirt driver needs the libvirt Python binding: pip install 'virtctl[libvirt]' "
            "(it builds against libvirt's headers: apt-get install libvirt-dev pkg-config gcc "
            "python3-dev), or use Debian's python3-libvirt with a venv made with "
            "--system-site-packages") from None
    # libvirt prints every error on stderr by default; virtctl reports them itself
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt
