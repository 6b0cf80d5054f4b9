"""The entity-pairs table written by `eat wiki mine` and read by the dataset builders.

One row per article: the target-language page, the name as written in its lead, its English title, a type and
the first clean lead sentence containing the name. The schema lives here so writers and readers cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from eat.errors import UserError

PAIRS_SCHEMA = pa.schema(
    [
        pa.field("lang", pa.string(), nullable=False),
        pa.field("page_id", pa.int64(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("surface", pa.string(), nullable=False),
        pa.field("en_title", pa.string(), nullable=False),
        pa.field("qid", pa.string()),
        pa.field("type", pa.string()),
        pa.field("type_source", pa.string()),
        pa.field("sentence", pa.string(), nullable=False),
        pa.field("aliases", pa.list_(pa.string()), nullable=False),
        pa.field("dump_date", pa.string()),
    ]
)
PAIRS_COLUMNS = tuple(PAIRS_SCHEMA.names)
SHARD_GLOB = "pairs-*.parquet"
ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")
TYPE_SOURCES = ("wikidata", "infobox")


def shard_name(index: int) -> str:
    """File name of shard `index` (finished shards only ever carry this name)."""
    return f"pairs-{index:05d}.parquet"


def pairs_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts with the schema's keys) -> a table with exactly PAIRS_SCHEMA."""
    return pa.Table.from_pylist([{k: r.get(k) for k in PAIRS_COLUMNS} for r in rows], schema=PAIRS_SCHEMA)


def shard_paths(directory: str | Path) -> list[Path]:
    """Finished shard files in `directory`, in shard order."""
    return sorted(Path(directory).glob(SHARD_GLOB))


def read_pairs(directory: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All shards of a mining output folder as one table (PAIRS_SCHEMA, or the requested columns)."""
    import pyarrow.parquet as pq

    directory = Path(directory)
    if directory.is_file() and directory.suffix == ".parquet":
        paths = [directory]
    else:
        if not directory.is_dir():
            raise UserError("pairs folder not found (expected the OUT of `eat wiki mine`)", path=directory)
        paths = shard_paths(directory)
        if not paths:
            raise UserError(f"no {SHARD_GLOB} files (expected the OUT of `eat wiki mine`)", path=directory)
    tables = []
    for path in paths:
        try:
            table = pq.read_table(path, columns=columns)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise UserError(f"unreadable Parquet shard: {exc}", path=path) from None
        missing = [c for c in (columns or PAIRS_COLUMNS) if c not in table.column_names]
        if missing:
            raise UserError(f"not an entity-pairs shard: missing column(s) {', '.join(missing)}", path=path)
        schema = PAIRS_SCHEMA if columns is None else pa.schema([PAIRS_SCHEMA.field(c) for c in columns])
        tables.append(table.select(list(schema.names)).cast(schema))
    return pa.concat_tables(tables)


def iter_pairs(directory: str | Path) -> Iterator[dict]:
    """Rows of all shards as dicts (small outputs and tests; use read_pairs for columnar work)."""
    yield from read_pairs(directory).to_pylist()
