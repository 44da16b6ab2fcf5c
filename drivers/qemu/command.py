"""The command ``start`` runs, prepared in one place (``domxml-to-native``
shows the very same argv).

:func:`prepare`, before anything is spawned:

1. the argv builder checks the definition (NOT_SUPPORTED / XML errors come
   first, before any probe);
2. the emulator is resolved and checked to be a QEMU for the domain's
   architecture (emulator.py, cached);
3. disk backing chains are resolved from the images and written into the
   live definition as ``<backingStore>`` (backing.py);
4. the argv is built from that live definition, naming host files by path,
   or by descriptor for a confined QEMU (argv_files.py).

Then ``launch.start_domain`` opens the files (:meth:`Command.open`), spawns
QEMU (:meth:`Command.spawn`: confined, or as the caller), and once QMP is up
hands over what the command line cannot carry (``Handover.after_start``).
"""
from __future__ import annotations

import dataclasses
import os

from virtctl.errors import OperationFailed


@dataclasses.dataclass
class Command:
    definition: object  # the live DomainDef: backing chains explicit
    argv: list[str]
    user: object  # confine.QemuUser, None when QEMU runs as the caller
    files: object  # argv_files.HostFiles

    def open(self):
        """The descriptors a confined QEMU needs (None when not confined)."""
        if self.user is None:
            return None
        from virtctl.drivers.qemu.handover import Handover

        return Handover(self.user).open(self.files.requests)

    def spawn(self, argv: list[str], log_path: str, handover):
        """Start QEMU detached, stdout and stderr appended to ``log_path``,
        held at the gate (process.Gated) until its pid is recorded."""
        from virtctl.drivers.qemu import process

        if self.user is None:
            return process.spawn_gated(argv, log_path)
        from virtctl.drivers.qemu import confine

        r, w = os.pipe()
        try:
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                # the gate shell runs as the QEMU user already; it only reads "go" and execs QEMU
                child = confine.spawn(process.gate_argv(argv), user=self.user, fds=handover.fds, stdin=r,
                                      stdout=log, stderr=log, lock_fd=handover.pidfile_fd)
            finally:
                os.close(log)
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        return process.Gated(child, w)

    def user_record(self) -> dict | None:
        """What the runtime record keeps about the QEMU user."""
        return self.user.record() if self.user is not None else None


def prepare(state, definition, paths, *, show: bool = False, warn=None) -> Command:
    """The command to start ``definition`` on the connection ``state``.

    ``show`` (domxml-to-native): a QEMU binary that is not installed here is
    shown by the name the definition gives instead of failing.  ``warn``
    (default: a ``warning:`` line on stderr) hears that QEMU falls back to
    ``nobody`` because the QEMU user does not exist."""
    from virtctl.drivers.qemu import backing, emulator
    from virtctl.drivers.qemu.argv import build_argv, emulator_path
    from virtctl.drivers.qemu.argv_files import HostFiles

    conf = getattr(state, "confine", None)
    user = conf.user(definition) if conf is not None else None
    if user is not None and user.fallback:
        from virtctl.drivers.qemu.confine import CREATE_USER, DEFAULT_USER

        (warn or _stderr)(f"QEMU runs as '{user.name}': the QEMU user '{DEFAULT_USER}' does not exist "
                          f"(create it: {CREATE_USER})")
    from virtctl.drivers.qemu.storage.resolve import resolve

    definition = resolve(state, definition)  # <disk type='volume'> -> the volume's file
    if any(i.get("type") in ("network", "bridge") for i in definition.root.findall("devices/interface")):
        from virtctl.drivers.qemu.network.resolve import resolve as resolve_net

        definition = resolve_net(state, definition)  # the bridge, MAC and tap name of each
    name = emulator_path(definition)
    build_argv(definition, paths, emulator=name, files=HostFiles(passed=user is not None))
    try:
        binary = emulator.resolve(name)
    except OperationFailed:
        if not show:
            raise
        binary = None
    if binary is not None:
        type_el = definition.root.find("os/type")
        arch = (type_el.get("arch") if type_el is not None else None) or "x86_64"
        emulator.check(binary, arch, user=user, cache_dir=state.run)
    live = backing.annotate(definition, user=user, named_only=getattr(state, "backing_named", False))
    files = HostFiles(passed=user is not None)
    argv = build_argv(live, paths, emulator=binary or name, files=files)
    return Command(live, argv, user, files)


def _stderr(msg: str) -> None:
    import sys

    sys.stderr.write(f"warning: {msg}\n")
