"""All of virtctl's output formatting: virsh's tables and key/value blocks,
and JSON.  Commands build data and call these; none formats by itself."""
from __future__ import annotations

import unicodedata

from virtctl.lazy import lazy

json = lazy("json")  # only for --json


def display_width(s: str) -> int:
    """Terminal cells taken by ``s`` (wide East Asian characters take two)."""
    if s.isascii():
        return len(s)
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def table(headers: list[str], rows: list[list[str]], *, header: bool = True) -> str:
    """virsh's table: each cell is ' ' + text, padded, with two spaces
    between columns; the last column is not padded; a dashed rule under the
    header as wide as all padded columns plus separators.  No trailing
    newline after the last row."""
    # virsh sizes columns by the header only when it prints one (-q does not)
    widths = [display_width(h) if header else 0 for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    last = len(headers) - 1

    def line(cells: list[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            if i == last:
                parts.append(" " + cell)
            else:
                parts.append(" " + cell + " " * (widths[i] - display_width(cell)) + "  ")
        return "".join(parts)

    out = []
    if header:
        out.append(line(headers))
        out.append("-" * sum(w + 3 for w in widths))
    out.extend(line(r) for r in rows)
    return "\n".join(out) + ("\n" if out else "")


def key_values(pairs: list[tuple[str, str]], width: int | None = None) -> str:
    """virsh's ``Key:   value`` blocks (dominfo, nodeinfo): labels padded to
    a fixed column."""
    if width is None:
        width = max(len(k) for k, _ in pairs) + 2
    return "".join(f"{(k + ':').ljust(width)}{v}\n" for k, v in pairs)


def to_json(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
