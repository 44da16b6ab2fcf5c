"""Volume names: a single file name inside the pool directory, nothing else."""
from __future__ import annotations

from virtctl.errors import InvalidArg

TEMP_PREFIX = ".virtctl-tmp-"  # a volume being written; never listed, never a volume's name
MAX_NAME = 255


def check_volume_name(name: str) -> str:
    """``name`` when it is safe as a file name in the pool directory, else
    INVALID_ARG naming what is wrong."""
    why = None
    if not name:
        why = "it is empty"
    elif "\0" in name:
        why = "it contains a NUL byte"
    elif "/" in name:
        why = "it contains '/'"
    elif name in (".", ".."):
        why = f"'{name}' names a directory"
    elif name.startswith("-"):
        why = "it starts with '-'"
    elif name.startswith(TEMP_PREFIX):
        why = f"names starting with '{TEMP_PREFIX}' are reserved"
    elif len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        why = f"it is longer than {MAX_NAME} bytes"
    if why:
        raise InvalidArg(f"invalid volume name '{name}': {why} (a volume is one file in its pool's directory)",
                         detail={"name": name})
    return name
