"""Markdown tables, the one way the reports, cards and bench pages write them.

A row is `| a | b |`, each cell written as an f-string writes it (`format(value)`). Cells are not escaped,
so the bytes stay those that tests and readers compare: cells are numbers, fixed labels and names (files,
runs, languages), where a `|` is unlikely; a caller with free text escapes it itself. The alignment row
has one `---` (left) or `---:` (right) per column, with no spaces: `|---|---:|`. A blank header cell is
written `| |`, as the pages already had it; a blank data cell keeps both spaces (`|  |`), as it had too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_RULES = {"l": "---", "r": "---:"}


def row(cells: Iterable[object]) -> str:
    """One table row, for code that appends rows as it goes."""
    return "| " + " | ".join(format(c) for c in cells) + " |"


def rule(align: str) -> str:
    """The alignment row below the header: one character per column, `l` (left) or `r` (right)."""
    unknown = set(align) - set(_RULES)
    if unknown:
        raise ValueError(f"table alignment takes only 'l' and 'r', not {''.join(sorted(unknown))!r}")
    return "|" + "".join(_RULES[a] + "|" for a in align)


def header(headers: Sequence[str], align: str | None = None) -> list[str]:
    """The header row and the alignment row (all left unless `align` says otherwise)."""
    align = "l" * len(headers) if align is None else align
    if len(align) != len(headers):
        raise ValueError(f"{len(headers)} columns but {len(align)} alignment characters ({align!r})")
    return ["|" + "".join(f" {h} |" if h else " |" for h in headers), rule(align)]


def table_lines(
    headers: Sequence[str], rows: Iterable[Iterable[object]], align: str | None = None
) -> list[str]:
    """The whole table as lines: header, alignment row, one line per row."""
    return [*header(headers, align), *(row(r) for r in rows)]


def table(headers: Sequence[str], rows: Iterable[Iterable[object]], align: str | None = None) -> str:
    """The whole table joined with newlines, with no newline at the end."""
    return "\n".join(table_lines(headers, rows, align))
