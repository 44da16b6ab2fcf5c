"""Is ``<emulator>`` a QEMU for this domain?  Asked before every start.

libvirt probes a binary's capabilities before it runs a guest with it; here
the binary is started as QEMU would be (confined on a confined connection:
a definition naming ``/bin/sh`` gains nothing from the probe) with::

    BINARY -machine none -nodefaults -no-user-config -display none -S -qmp stdio

and must greet in QMP and answer ``query-version`` and ``query-target`` with
an architecture that runs the domain (``x86_64`` for x86_64 and i686
guests, ``i386`` for i686).  ``/bin/true``, a shell script, a QEMU for
another architecture are refused with an error naming the binary.

The answer is cached per connection (``RUN/emulators.json``, keyed by path,
device, inode, size, mtime and ctime of the binary, and the user probing
it), so a start costs one ``stat`` once a binary is known.  A binary
replaced or modified (new inode, size or times) is probed again.
"""
from __future__ import annotations

import json
import os
import shutil

from virtctl.errors import OperationFailed

PROBE_TIMEOUT = 30.0
CACHE_NAME = "emulators.json"
_ARCHES = {"x86_64": ("x86_64",), "i686": ("x86_64", "i386")}
_INPUT = b"".join(json.dumps(c).encode() + b"\n" for c in (
    {"execute": "qmp_capabilities"}, {"execute": "query-version", "id": "v"},
    {"execute": "query-target", "id": "t"}, {"execute": "quit"}))


def resolve(name: str) -> str:
    """The absolute path of the binary ``name`` (a bare name is looked up on PATH)."""
    found = name if os.path.isabs(name) else shutil.which(name)
    if not found or not os.access(found, os.X_OK) or os.path.isdir(found):
        raise OperationFailed(f"cannot find the QEMU binary '{name}' (Debian: apt-get install qemu-system-x86)")
    return found


def check(path: str, arch: str, *, user=None, cache_dir: str | None = None) -> dict:
    """``{"version": ..., "arch": ...}`` of the QEMU at ``path``; OperationFailed
    if it is not a QEMU (or not one for ``arch``)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise OperationFailed(f"cannot use the emulator '{path}': {exc.strerror}") from None
    key = json.dumps([path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                      user.uid if user is not None else os.geteuid()])
    cache_file = os.path.join(cache_dir, CACHE_NAME) if cache_dir else None
    cache = _read_cache(cache_file)
    found = cache.get(key)
    if not (isinstance(found, dict) and isinstance(found.get("arch"), str)):
        found = probe(path, user=user)
        if cache_file:
            cache = {k: v for k, v in cache.items() if json.loads(k)[0] != path}
            cache[key] = found
            _write_cache(cache_file, cache)
    if found["arch"] not in _ARCHES.get(arch, (arch,)):
        raise OperationFailed(f"the emulator '{path}' is a QEMU for {found['arch']}, which cannot run an "
                              f"{arch} domain")
    return found


def probe(path: str, *, user=None) -> dict:
    from virtctl.drivers.qemu import confine

    argv = [path, "-machine", "none", "-nodefaults", "-no-user-config", "-display", "none", "-S",
            "-qmp", "stdio"]
    who = f" as the QEMU user '{user.name}'" if user is not None else ""
    try:
        status, out, err = confine.run(argv, user=user, input=_INPUT, timeout=PROBE_TIMEOUT)
    except OSError as exc:
        raise OperationFailed(f"the emulator '{path}' cannot be run{who}: {exc.strerror}") from None
    except OperationFailed:
        raise OperationFailed(f"the emulator '{path}' is not a QEMU binary: it did not answer QMP "
                              f"within {PROBE_TIMEOUT:g}s") from None
    replies: dict = {}
    greeted = False
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict):
            continue
        if isinstance(msg.get("QMP"), dict):
            greeted = True
        elif "id" in msg and isinstance(msg.get("return"), dict):
            replies[msg["id"]] = msg["return"]
    version, target = replies.get("v"), replies.get("t")
    if not greeted or not version or not target or not isinstance(target.get("arch"), str):
        tail = err.decode(errors="replace").strip().splitlines()
        detail = f": {tail[-1]}" if tail else ""
        raise OperationFailed(f"the emulator '{path}' is not a QEMU binary: it did not answer QMP when run"
                              f"{who} (exit status {status}){detail}")
    q = version.get("qemu") or {}
    return {"version": f"{q.get('major')}.{q.get('minor')}.{q.get('micro')}", "arch": target["arch"]}


def _read_cache(path: str | None) -> dict:
    if not path:
        return {}
    from virtctl.drivers.qemu.state import CorruptState, read_json

    try:
        return read_json(path) or {}
    except CorruptState:
        return {}  # probed again and rewritten


def _write_cache(path: str, cache: dict) -> None:
    from virtctl.drivers.qemu.state import write_json
    from virtctl.errors import VirtError

    try:
        write_json(path, cache, sync=False)
    except VirtError:
        pass  # a cache: a full disk must not fail the start
