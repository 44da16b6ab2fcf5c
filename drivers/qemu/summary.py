"""What ``list``, ``dominfo`` and ``domstate`` need of a stored definition,
without parsing it each time.

A :class:`Summary` holds the few values a :class:`DomainRecord` takes from
a definition (name, title, OS type, vCPUs, memory).  The cache maps the
*content* of a definition file (a BLAKE2b digest of its bytes, read anyway
to be summarised) to its summary, so it can never be stale: a file that
changes in any way has another key, whatever its mtime, inode or size.
Nothing but these summaries is cached; locks, runtime probes and
recovery (runtime.sync, recover.py) run exactly as without it.

The cache is one JSON file, ``RUN/summaries.json``, rewritten atomically
(no fsync: losing it costs a re-parse) when a summary was added; ``list``
keeps only the entries of the files it read, so it does not grow.  It is
only a cache: unreadable, corrupt or unwritable, it is ignored.  A
definition that does not parse is never cached (the caller's CorruptState
path reports it as before).
"""
from __future__ import annotations

import json
import os

try:  # ~0.6 ms to import, where hashlib (OpenSSL) costs ~6 ms
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - CPython always has it
    from hashlib import blake2b

CACHE_FILE = "summaries.json"
_MAX_ENTRIES = 100_000


class Summary:
    """The record fields of a definition (same names as DomainDef's)."""

    __slots__ = ("name", "title", "os_type", "vcpus", "max_memory_kib", "memory_kib")

    def __init__(self, name, title, os_type, vcpus, max_memory_kib, memory_kib):
        self.name, self.title, self.os_type = name, title, os_type
        self.vcpus, self.max_memory_kib, self.memory_kib = vcpus, max_memory_kib, memory_kib

    @classmethod
    def of(cls, definition) -> "Summary":
        return cls(definition.name, definition.title, definition.os_type, definition.vcpus,
                   definition.max_memory_kib, definition.memory_kib)

    def to_list(self) -> list:
        return [self.name, self.title, self.os_type, self.vcpus, self.max_memory_kib, self.memory_kib]

    @classmethod
    def from_list(cls, v) -> "Summary | None":
        if (isinstance(v, list) and len(v) == 6 and all(isinstance(x, str) for x in v[:3])
                and all(type(x) is int for x in v[3:])):
            return cls(*v)
        return None


def key_of(data: bytes) -> str:
    return blake2b(data, digest_size=20).hexdigest()


class SummaryCache:
    """Summaries by content digest, loaded on first use, saved by :meth:`save`."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, CACHE_FILE)
        self._entries: dict | None = None
        self._used: set[str] = set()
        self._dirty = False

    def _load(self) -> dict:
        if self._entries is None:
            self._entries = {}
            try:
                with open(self.path, "rb") as f:
                    data = json.loads(f.read(64 << 20))
                if isinstance(data, dict) and isinstance(data.get("entries"), dict):
                    self._entries = data["entries"]
            except (OSError, ValueError):
                pass  # absent or corrupt: start empty
        return self._entries

    def get(self, data: bytes, parse):
        """The summary of the definition whose bytes are ``data``; ``parse(data)``
        (which may raise) makes the DomainDef on a miss."""
        key = key_of(data)
        entries = self._load()
        self._used.add(key)
        hit = Summary.from_list(entries.get(key))
        if hit is not None:
            return hit
        summary = Summary.of(parse(data))
        entries[key] = summary.to_list()
        self._dirty = True
        return summary

    def put(self, data: bytes, definition) -> None:
        """Remember the summary of ``definition``, just written as ``data``
        (define, start: the next one-shot ``list`` then parses nothing)."""
        self._load()[key_of(data)] = Summary.of(definition).to_list()
        self._dirty = True

    def save(self, *, prune: bool = False) -> None:
        """Write the cache if it changed; ``prune``: keep only the entries used
        since it was loaded (after a ``list``, which reads every definition)."""
        if self._entries is None:
            return
        if prune and len(self._entries) > len(self._used):
            self._entries = {k: v for k, v in self._entries.items() if k in self._used}
            self._dirty = True
        if not self._dirty or len(self._entries) > _MAX_ENTRIES:
            return
        from virtctl.drivers.qemu.state import atomic_write

        try:
            if os.path.isdir(os.path.dirname(self.path)):
                atomic_write(self.path, json.dumps({"entries": self._entries}, separators=(",", ":")),
                             sync=False)
            self._dirty = False
        except Exception:  # noqa: BLE001 - only a cache: read-only root, full disk, ...
            pass
