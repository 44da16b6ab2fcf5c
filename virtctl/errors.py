"""The one error hierarchy of virtctl.

Every failure the API raises is a :class:`VirtError` carrying a stable
``code`` (a string such as ``NO_DOMAIN``).  The code, not the message, is the
interface: scripts read it from ``--json`` error output and from the exit
status.  The mapping from code to exit status lives here and nowhere else
(``EXIT_STATUS``), and the README's table is checked against it by a test.

The same situation gives the same code whatever the driver or command:
"the domain is not running" is always ``OPERATION_INVALID``, "no such
domain" is always ``NO_DOMAIN``.
"""
from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Exit statuses of the ``virtctl`` command (documented in the README)."""

    OK = 0
    ERROR = 1  # an operation failed (generic)
    USAGE = 2  # bad command line: unknown command/option, bad argument value
    NOT_FOUND = 3  # the object named does not exist
    INVALID_STATE = 4  # the object is in the wrong state for the operation
    XML = 5  # XML missing, malformed or invalid
    NOT_SUPPORTED = 6  # the driver does not support the operation or option
    CONNECT = 7  # cannot connect to the hypervisor / bad URI
    DENIED = 8  # read-only connection, permissions
    TIMEOUT = 9  # an operation did not finish in time


# code -> (exit status, one-line meaning).  Order is the README's order.
CODES: dict[str, tuple[ExitStatus, str]] = {
    "INTERNAL_ERROR": (ExitStatus.ERROR, "a bug in virtctl or a driver"),
    "OPERATION_FAILED": (ExitStatus.ERROR, "the operation was tried and failed (e.g. a name already taken, QEMU refused)"),
    "SYSTEM_ERROR": (ExitStatus.ERROR, "the operating system refused (I/O, permissions on a file)"),
    "USAGE": (ExitStatus.USAGE, "unknown command or option, missing or extra argument"),
    "INVALID_ARG": (ExitStatus.USAGE, "an argument has a bad value (malformed UUID, negative memory, ...)"),
    "NO_DOMAIN": (ExitStatus.NOT_FOUND, "no domain with that name, UUID or id"),
    "NO_NETWORK": (ExitStatus.NOT_FOUND, "no network with that name or UUID"),
    "NO_STORAGE_POOL": (ExitStatus.NOT_FOUND, "no storage pool with that name or UUID"),
    "NO_STORAGE_VOL": (ExitStatus.NOT_FOUND, "no storage volume with that name, key or path"),
    "NO_DOMAIN_SNAPSHOT": (ExitStatus.NOT_FOUND, "no snapshot with that name"),
    "NO_FILE": (ExitStatus.NOT_FOUND, "a file named on the command line does not exist"),
    "OPERATION_INVALID": (ExitStatus.INVALID_STATE, "the object is in the wrong state (start a running domain, ...)"),
    "XML_ERROR": (ExitStatus.XML, "XML that cannot be parsed, is refused as hostile, or fails its schema"),
    "NOT_SUPPORTED": (ExitStatus.NOT_SUPPORTED, "the driver does not support this operation or option"),
    "CONNECT_FAILED": (ExitStatus.CONNECT, "no driver for the URI, or the hypervisor cannot be reached"),
    "OPERATION_DENIED": (ExitStatus.DENIED, "refused: read-only connection or not permitted"),
    "OPERATION_TIMEOUT": (ExitStatus.TIMEOUT, "the operation did not finish within its timeout"),
    "AGENT_UNRESPONSIVE": (ExitStatus.TIMEOUT, "the guest agent is not connected or did not answer in time"),
}


class VirtError(Exception):
    """Base of every error virtctl raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, code: str | None = None, detail: dict | None = None,
                 context: str | None = None):
        super().__init__(message)
        if code is not None:
            if code not in CODES:
                raise ValueError(f"unknown error code {code!r}")
            self.code = code
        self.message = message
        self.detail = detail or {}
        # what was being done, virsh's first error line ("Failed to start domain 'x'");
        # ``message`` stays the reason.  Set by the command layer (see ``Context``).
        self.context = context
        # already shown as text (``edit`` shows it before asking to edit again):
        # the text report then prints nothing more (JSON still gets its document)
        self.reported = False

    @property
    def exit_status(self) -> int:
        return int(CODES[self.code][0])

    def to_json(self) -> dict:
        out = {"code": self.code, "message": self.message, "exit_status": self.exit_status}
        if self.context:
            out["context"] = self.context
        if self.detail:
            out["detail"] = self.detail
        return out

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


def _subclass(name: str, code: str, doc: str) -> type[VirtError]:
    return type(name, (VirtError,), {"code": code, "__doc__": doc})


InternalError = _subclass("InternalError", "INTERNAL_ERROR", "A bug.")
OperationFailed = _subclass("OperationFailed", "OPERATION_FAILED", "The operation was tried and failed.")
SystemError_ = _subclass("SystemError_", "SYSTEM_ERROR", "The operating system refused.")
UsageError = _subclass("UsageError", "USAGE", "Bad command line.")
InvalidArg = _subclass("InvalidArg", "INVALID_ARG", "An argument has a bad value.")
NoDomain = _subclass("NoDomain", "NO_DOMAIN", "No such domain.")
NoNetwork = _subclass("NoNetwork", "NO_NETWORK", "No such network.")
NoStoragePool = _subclass("NoStoragePool", "NO_STORAGE_POOL", "No such storage pool.")
NoStorageVol = _subclass("NoStorageVol", "NO_STORAGE_VOL", "No such storage volume.")
NoDomainSnapshot = _subclass("NoDomainSnapshot", "NO_DOMAIN_SNAPSHOT", "No such domain snapshot.")
NoFile = _subclass("NoFile", "NO_FILE", "No such file.")
OperationInvalid = _subclass("OperationInvalid", "OPERATION_INVALID", "Wrong state for the operation.")
XMLError = _subclass("XMLError", "XML_ERROR", "Bad XML.")
NotSupported = _subclass("NotSupported", "NOT_SUPPORTED", "Not supported by the driver.")
ConnectFailed = _subclass("ConnectFailed", "CONNECT_FAILED", "Cannot connect.")
OperationDenied = _subclass("OperationDenied", "OPERATION_DENIED", "Refused.")
OperationTimeout = _subclass("OperationTimeout", "OPERATION_TIMEOUT", "Timed out.")
AgentUnresponsive = _subclass("AgentUnresponsive", "AGENT_UNRESPONSIVE", "The guest agent did not answer.")


def for_code(code: str) -> type[VirtError]:
    """The class of ``code`` (VirtError itself for a code without one): errors
    translated from elsewhere (the libvirt driver, the remote protocol) are
    caught by the same ``except NoDomain:`` as virtctl's own."""
    for cls in VirtError.__subclasses__():
        if cls.code == code:
            return cls
    return VirtError


def not_supported(driver: str, feature: str, **detail) -> NotSupported:
    """The one wording for an operation or option a driver lacks (libvirt's).

    ``feature`` names it as a user knows it: the command and option
    (``"shutdown --mode agent"``, ``"screenshot"``), never an internal name.
    ``detail`` gets ``driver`` and ``feature`` (and any extra keys given)."""
    return NotSupported(
        f"this function is not supported by the connection driver: {feature}",
        detail={"driver": driver, "feature": feature, **detail},
    )


def unsupported_flags(driver: str, feature: str, flags: int, function: str) -> NotSupported:
    """libvirt's refusal of flags a driver function does not take, in its words
    ("unsupported flags (0x2) in function testDomainShutdownFlags"): what the
    test driver says where libvirt's test driver does."""
    return NotSupported(
        f"unsupported flags (0x{flags:x}) in function {function}",
        detail={"driver": driver, "feature": feature, "flags": flags, "function": function},
    )


class Context:
    """``with Context("Failed to start domain 'x'"): ...``: a VirtError raised
    inside gets that context line (virsh's first error line) unless it has
    one.  A class, not contextlib, to keep this module free of imports."""

    __slots__ = ("text",)

    def __init__(self, text: str | None):
        self.text = text  # None: add nothing

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.text and isinstance(exc, VirtError) and not exc.context:
            exc.context = self.text
        return False
