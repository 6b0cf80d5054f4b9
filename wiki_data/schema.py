"""The tables written by `eat wiki mine` and read by the dataset builders.

Pairs (`pairs-*.parquet`): one row per article: the target-language page, the name as written in its lead, its
English title, a type and the first clean lead sentence containing the name.

Mentions (`mentions-*.parquet`, with `--mentions`): one row per link anchor in a clean sentence of the lead or
the first body sections of an article, whose target article (after redirects) has an English link. The
anchor can sit anywhere in the sentence and often differs from the target's title (a short form, an
inflection), which is what teaches alignment without the first-phrase shortcut. Columns:
- lang, page_id, title: the article the sentence comes from; section: 0 for the lead, k for the k-th section;
  sentence_no: the sentence's ordinal among the page's scanned sentences (page_id + sentence_no groups
  the mentions of one sentence);
- sentence: plain text; start, end: the anchor's character span in it (`sentence[start:end] == surface`);
- target_page_id, target_title, en_title, qid: the linked article, resolved through redirects;
  via_redirect: the link named a redirect;
- type, type_source: from the Wikidata types table (`--types`); readers may fill the rest from the target's
  pairs row (its infobox type);
- match: how the surface relates to the target: "title" (equals the title without disambiguator), "alias"
  (a redirect title) or "differs" (a short form, an inflection...);
- n_in_sentence: mentions kept in that sentence.
The schemas live here so writers and readers cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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
MENTIONS_SCHEMA = pa.schema(
    [
        pa.field("lang", pa.string(), nullable=False),
        pa.field("page_id", pa.int64(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("section", pa.int32(), nullable=False),
        pa.field("sentence_no", pa.int32(), nullable=False),
        pa.field("sentence", pa.string(), nullable=False),
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
        pa.field("surface", pa.string(), nullable=False),
        pa.field("target_page_id", pa.int64(), nullable=False),
        pa.field("target_title", pa.string(), nullable=False),
        pa.field("en_title", pa.string(), nullable=False),
        pa.field("qid", pa.string()),
        pa.field("type", pa.string()),
        pa.field("type_source", pa.string()),
        pa.field("match", pa.string(), nullable=False),
        pa.field("via_redirect", pa.bool_(), nullable=False),
        pa.field("n_in_sentence", pa.int32(), nullable=False),
        pa.field("dump_date", pa.string()),
    ]
)
MENTION_COLUMNS = tuple(MENTIONS_SCHEMA.names)
MENTION_GLOB = "mentions-*.parquet"
MENTION_MATCHES = ("title", "alias", "differs")
ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")
TYPE_SOURCES = ("wikidata", "infobox")


def shard_name(index: int) -> str:
    """File name of shard `index` (finished shards only ever carry this name)."""
    return f"pairs-{index:05d}.parquet"


def mention_shard_name(index: int) -> str:
    """File name of the mentions shard written with pairs shard `index`."""
    return f"mentions-{index:05d}.parquet"


def mentions_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts with the schema's keys) -> a table with exactly MENTIONS_SCHEMA."""
    return pa.Table.from_pylist(
        [{k: r.get(k) for k in MENTION_COLUMNS} for r in rows], schema=MENTIONS_SCHEMA
    )


def read_mentions(directory: str | Path) -> pa.Table:
    """All mentions shards of a mining output folder as one table (MENTIONS_SCHEMA)."""
    directory = Path(directory)
    paths = [directory] if directory.is_file() and directory.suffix == ".parquet" else None
    if paths is None:
        if not directory.is_dir():
            raise UserError(
                "mentions folder not found (expected the OUT of `eat wiki mine --mentions`)", path=directory
            )
        paths = sorted(directory.glob(MENTION_GLOB))
        if not paths:
            raise UserError(
                f"no {MENTION_GLOB} files (mine with `eat wiki mine --mentions` into this folder)",
                path=directory,
            )
    return _read_shards(paths, MENTIONS_SCHEMA, "a mentions shard")


def pairs_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts with the schema's keys) -> a table with exactly PAIRS_SCHEMA."""
    return pa.Table.from_pylist([{k: r.get(k) for k in PAIRS_COLUMNS} for r in rows], schema=PAIRS_SCHEMA)


def shard_paths(directory: str | Path) -> list[Path]:
    """Finished shard files in `directory`, in shard order."""
    return sorted(Path(directory).glob(SHARD_GLOB))


def read_pairs(directory: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All shards of a mining output folder as one table (PAIRS_SCHEMA, or the requested columns)."""
    directory = Path(directory)
    if directory.is_file() and directory.suffix == ".parquet":
        paths = [directory]
    else:
        if not directory.is_dir():
            raise UserError("pairs folder not found (expected the OUT of `eat wiki mine`)", path=directory)
        paths = shard_paths(directory)
        if not paths:
            raise UserError(f"no {SHARD_GLOB} files (expected the OUT of `eat wiki mine`)", path=directory)
    schema = PAIRS_SCHEMA if columns is None else pa.schema([PAIRS_SCHEMA.field(c) for c in columns])
    return _read_shards(paths, schema, "an entity-pairs shard")


def _read_shards(paths: list[Path], schema: pa.Schema, what: str) -> pa.Table:
    """Shards read (only `schema`'s columns), checked and cast to `schema`, as one table; one UserError
    naming the file for a damaged shard, a missing column, a null or a wrong type."""
    import pyarrow.parquet as pq

    tables = []
    for path in paths:
        try:
            table = pq.read_table(path, columns=list(schema.names))
        except Exception as exc:  # pyarrow raises several types for damaged files and missing columns
            present = _columns_of(path)
            missing = [c for c in schema.names if present is not None and c not in present]
            if missing:
                raise UserError(f"not {what}: missing column(s) {', '.join(missing)}", path=path) from None
            raise UserError(f"unreadable Parquet shard: {exc}", path=path) from None
        tables.append(_conform(table.select(list(schema.names)), schema, path))
    return pa.concat_tables(tables)


def _columns_of(path: Path) -> list[str] | None:
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).names
    except Exception:  # not Parquet at all: the caller reports it as unreadable
        return None


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """`table` cast to `schema`, or one line naming the column whose type or nulls do not fit."""
    for column_field in schema:
        column = table.column(column_field.name)
        if not column_field.nullable and column.null_count:
            row = next(i for i, v in enumerate(column.to_pylist()) if v is None)
            raise UserError(
                f"column {column_field.name!r} is null in row {row}, which the schema does not allow",
                path=path,
            )
        try:
            column.cast(column_field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise UserError(
                f"column {column_field.name!r} holds {column.type}, expected {column_field.type}", path=path
            ) from None
    return table.cast(schema)


def iter_pairs(directory: str | Path) -> Iterator[dict]:
    """Rows of all shards as dicts (small outputs and tests; use read_pairs for columnar work)."""
    yield from read_pairs(directory).to_pylist()


ALIGN_TEST_SOURCES = ("pair", "mention")


@dataclass(frozen=True)
class AlignTestItem:
    """One line of `align_test.jsonl` or `align_test_mentions.jsonl` (written by `eat wiki sft`, scored by
    `evaluation.align_eval`): the chat to send and the gold phrase with its offset. Mention items
    (`source: mention`) carry their flags: anchor at the sentence start, surface differing from the title,
    several anchors in the sentence."""

    lang: str
    qid: str | None
    en_title: str
    phrase: str
    sentence: str
    answer: str
    answer_start: int
    shifted: bool
    messages: list[dict[str, str]]
    followups: list[str] = field(default_factory=list)
    source: str = "pair"
    match: str | None = None  # mentions: "title", "alias" or "differs"
    n_in_sentence: int | None = None
    at_start: bool | None = None
    surface_differs: bool | None = None
    multi: bool | None = None

    def __post_init__(self) -> None:
        if self.source not in ALIGN_TEST_SOURCES:
            raise ValueError(f"source must be one of {', '.join(ALIGN_TEST_SOURCES)}, not {self.source!r}")
        if self.source == "mention" and None in (self.at_start, self.surface_differs, self.multi):
            raise ValueError("a mention item needs at_start, surface_differs and multi")

    @property
    def span(self) -> tuple[int, int]:
        return self.answer_start, self.answer_start + len(self.answer)
