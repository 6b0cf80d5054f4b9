"""Streaming reader for MediaWiki's MySQL table dumps (`*-page.sql.gz`, `*-langlinks.sql.gz`, ...).

Real dumps are one `INSERT INTO ... VALUES (...),(...);` statement per line, lines of ~1 MB, tens of millions
of rows. We read the (gzip or plain) file in chunks, cut it at newlines, and walk the tuples with one compiled
regex per row on bytes; strings are decoded (and unescaped only when they contain a backslash) afterwards.
Column names come from the dump's own `CREATE TABLE`, so column order changes between MediaWiki versions do
not matter. A row that does not parse is skipped and counted, never fatal.
"""

from __future__ import annotations

import bz2
import gzip
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eat.errors import UserError

CHUNK = 4 << 20

# Column orders of current MediaWiki, used only when a dump has no CREATE TABLE (hand-written fixtures).
DEFAULT_COLUMNS = {
    "page": [
        "page_id",
        "page_namespace",
        "page_title",
        "page_is_redirect",
        "page_is_new",
        "page_random",
        "page_touched",
        "page_links_updated",
        "page_latest",
        "page_len",
        "page_content_model",
        "page_lang",
    ],
    "langlinks": ["ll_from", "ll_lang", "ll_title"],
    "page_props": ["pp_page", "pp_propname", "pp_value", "pp_sortkey"],
    "redirect": ["rd_from", "rd_namespace", "rd_title", "rd_interwiki", "rd_fragment"],
}

_STRING = rb"'(?:[^'\\]|\\.)*'"
# One tuple: strings (which may hold any byte, parentheses included) or runs of non-quote, non-paren bytes.
_ROW = re.compile(rb"\(((?:" + _STRING + rb"|[^'()])*)\)", re.S)
_FIELD = re.compile(rb"\s*(?:(?:_binary\s*)?'((?:[^'\\]|\\.)*)'|(NULL)|([-+0-9.eE]+))\s*(,|\Z)", re.S)
_INSERT = re.compile(rb"INSERT INTO `?(\w+)`?\s*(?:\(([^)]*)\)\s*)?VALUES\s*", re.I)
_CREATE = re.compile(rb"CREATE TABLE `?(\w+)`?\s*\((.*?)\n\)", re.S | re.I)
_COLUMN = re.compile(rb"^\s*`(\w+)`", re.M)
_ESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "Z": "\x1a"}


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _value(match: re.Match) -> object:
    raw, null, number = match.group(1), match.group(2), match.group(3)
    if raw is not None:
        text = raw.decode("utf-8", "replace")
        return _unescape(text) if "\\" in text else text
    if null is not None:
        return None
    try:
        return int(number)
    except ValueError:
        return float(number)


def parse_tuple(inner: bytes) -> list | None:
    """The values of one `(...)` body, or None if it is malformed."""
    values = []
    pos, end = 0, len(inner)
    while True:
        m = _FIELD.match(inner, pos)
        if m is None:
            return None
        values.append(_value(m))
        pos = m.end()
        if m.group(4) != b",":
            return values if pos >= end else None


@dataclass
class SqlStats:
    """What a read found: rows kept, rows skipped as malformed, INSERT statements."""

    rows: int = 0
    malformed: int = 0
    statements: int = 0
    filtered: int = 0
    examples: list[str] = field(default_factory=list)

    def bad(self, text: bytes) -> None:
        self.malformed += 1
        if len(self.examples) < 3:
            self.examples.append(text[:80].decode("utf-8", "replace"))


def _open(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"BZh":
        return bz2.open(path, "rb")
    if path.suffix in (".gz", ".bz2"):
        raise UserError(f"not a {path.suffix[1:]} file (its first bytes say otherwise)", path=path)
    return open(path, "rb")


def _blocks(path: Path) -> Iterator[bytes]:
    """Complete lines in chunks of about CHUNK bytes (a line longer than CHUNK is yielded whole)."""
    rest = b""
    with _open(path) as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            buf = rest + chunk
            cut = buf.rfind(b"\n")
            if cut < 0:
                rest = buf
                continue
            yield buf[: cut + 1]
            rest = buf[cut + 1 :]
    if rest:
        yield rest


class SqlDump:
    """Rows of one table dump: `for row in SqlDump(path).rows(["ll_from", "ll_lang"])`."""

    def __init__(self, path: str | Path, table: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError("SQL dump not found", path=self.path)
        self.table = table
        self.stats = SqlStats()
        self.columns: list[str] | None = None

    def _columns_from(self, block: bytes, name: str) -> None:
        m = _CREATE.search(block)
        if m and m.group(1).decode() == name:
            self.columns = [c.decode() for c in _COLUMN.findall(m.group(2))]

    def tuples(self, contains: tuple[bytes, ...] = ()) -> Iterator[list]:
        """Every well-formed row of the table's INSERT statements, as a list of Python values.

        With `contains`, rows whose raw bytes hold none of those substrings are counted but not decoded
        (e.g. `(b"'en'",)` for English langlinks): most of a big table is skipped at regex speed.
        """
        stats = self.stats
        try:
            for block in _blocks(self.path):
                if self.columns is None and b"CREATE TABLE" in block:
                    name = self.table or (
                        _CREATE.search(block).group(1).decode() if _CREATE.search(block) else ""
                    )
                    self._columns_from(block, name)
                for ins in _INSERT.finditer(block):
                    name = ins.group(1).decode()
                    if self.table is None:
                        self.table = name
                    if name != self.table:
                        continue
                    if ins.group(2) and self.columns is None:
                        self.columns = [c.strip().strip("`") for c in ins.group(2).decode().split(",")]
                    if self.columns is None:
                        self.columns = DEFAULT_COLUMNS.get(name)
                    stats.statements += 1
                    yield from self._rows_of_statement(block, ins.end(), contains)
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise UserError(f"cannot read SQL dump ({exc})", path=self.path) from None
        if self.table is not None and stats.statements == 0:
            raise UserError(
                f"no INSERT INTO `{self.table}` statement: not a {self.table} table dump, or empty",
                path=self.path,
            )

    def _rows_of_statement(self, block: bytes, pos: int, contains: tuple[bytes, ...]) -> Iterator[list]:
        stats = self.stats
        ncols = len(self.columns) if self.columns else None
        end = block.find(b"\n", pos)
        end = len(block) if end < 0 else end
        row_match = _ROW.match
        while pos < end:
            m = row_match(block, pos, end)
            if m is not None:
                pos = m.end()
                if contains and not any(c in m.group(1) for c in contains):
                    stats.rows += 1
                    stats.filtered += 1
                    sep = block[pos : pos + 1]
                    if sep == b",":
                        pos += 1
                        continue
                    if sep == b";" or pos >= end:
                        return
                values = parse_tuple(m.group(1))
                if values is None or (ncols is not None and len(values) != ncols):
                    stats.bad(m.group(0))
                else:
                    stats.rows += 1
                    yield values
            else:
                # Not a tuple here: resynchronise on the next row boundary and count the damage.
                nxt = block.find(b"),(", pos, end)
                stats.bad(block[pos : pos + 80])
                if nxt < 0:
                    return
                pos = nxt + 2
                continue
            sep = block[pos : pos + 1]
            if sep == b",":
                pos += 1
            elif sep == b";" or pos >= end:
                return
            else:  # garbage between rows
                nxt = block.find(b",(", pos, end)
                stats.bad(block[pos : pos + 80])
                if nxt < 0:
                    return
                pos = nxt + 1

    def rows(self, columns: Iterable[str], contains: tuple[bytes, ...] = ()) -> Iterator[tuple]:
        """Rows projected on `columns` (names from the dump's CREATE TABLE); see `tuples` for `contains`."""
        wanted = list(columns)
        index: list[int] | None = None
        for values in self.tuples(contains):
            if index is None:
                if not self.columns:
                    raise UserError(f"cannot tell the columns of table {self.table!r}", path=self.path)
                missing = [c for c in wanted if c not in self.columns]
                if missing:
                    raise UserError(
                        f"table {self.table!r} has no column(s) {', '.join(missing)}; "
                        f"it has {', '.join(self.columns)}",
                        path=self.path,
                    )
                index = [self.columns.index(c) for c in wanted]
            yield tuple(values[i] for i in index)


def _sql_literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return "'" + text.replace("\0", "\\0") + "'"


def _sql_type(value: object) -> str:
    if isinstance(value, bool | int):
        return "int(10) unsigned NOT NULL"
    if isinstance(value, float):
        return "double unsigned NOT NULL"
    return "varbinary(255) DEFAULT NULL"


def format_table_dump(
    table: str, rows: Iterable[tuple], columns: Iterable[str] | None = None, rows_per_insert: int = 1000
) -> bytes:
    """A gzip-compressed table dump in mysqldump's layout: CREATE TABLE, then extended INSERT statements.

    The demo data, tests and benchmarks write their SQL through this, so what they feed the reader has
    the real dump syntax (escapes, NULLs, several INSERTs). Output is deterministic (gzip mtime 0).
    """
    rows = list(rows)
    names = list(columns) if columns is not None else DEFAULT_COLUMNS[table]
    first = rows[0] if rows else ("",) * len(names)
    create = ",\n".join(f"  `{n}` {_sql_type(v)}" for n, v in zip(names, first, strict=True))
    lines = [
        "-- MySQL dump (written by eat-ner)",
        f"DROP TABLE IF EXISTS `{table}`;",
        f"CREATE TABLE `{table}` (\n{create}\n) ENGINE=InnoDB DEFAULT CHARSET=binary;",
        f"LOCK TABLES `{table}` WRITE;",
        f"/*!40000 ALTER TABLE `{table}` DISABLE KEYS */;",
    ]
    for i in range(0, len(rows), rows_per_insert):
        values = ",".join(
            "(" + ",".join(_sql_literal(v) for v in row) + ")" for row in rows[i : i + rows_per_insert]
        )
        lines.append(f"INSERT INTO `{table}` VALUES {values};")
    lines += [f"/*!40000 ALTER TABLE `{table}` ENABLE KEYS */;", "UNLOCK TABLES;", ""]
    return gzip.compress("\n".join(lines).encode("utf-8"), mtime=0)
