"""Column files (CoNLL/BIO/BMES): one token per line with its tag in the last column, blank lines between
sentences, `-DOCSTART-` lines skipped. The one reader behind training's tagger data and evaluation's test sets;
each caller checks the tags against its own scheme.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eat.errors import UserError


@dataclass
class ColumnSentence:
    tokens: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the file line of each token, for errors


def read_columns(path: str | Path) -> list[ColumnSentence]:
    """The sentences of a column file; tab-separated lines split on tabs, others on whitespace.

    A UTF-8 BOM is not part of the first token; a line with fewer than two columns, or text that is not
    UTF-8, is one UserError naming the file (and line).
    """
    path = Path(path)
    sentences: list[ColumnSentence] = []
    current = ColumnSentence()
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for number, raw in enumerate(fh, 1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    if current.tokens:
                        sentences.append(current)
                        current = ColumnSentence()
                    continue
                cols = line.split("\t") if "\t" in line else line.split()
                if cols[0] == "-DOCSTART-":
                    continue
                if len(cols) < 2 or not cols[0] or not cols[-1].strip():
                    raise UserError(
                        f"expected `token<TAB>tag` (tag in the last column), got {line[:60]!r}",
                        path=path,
                        line=number,
                    )
                current.tokens.append(cols[0])
                current.tags.append(cols[-1].strip())
                current.lines.append(number)
    except UnicodeDecodeError as exc:
        raise UserError(
            f"not UTF-8 text (byte {exc.start} cannot be decoded); convert it to UTF-8", path=path
        ) from None
    if current.tokens:
        sentences.append(current)
    return sentences
