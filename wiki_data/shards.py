"""Output shards of `eat wiki mine`: which tasks make up each shard, the one shard writer, stats and merge.

A shard is a fixed run of `streams_per_shard` dump streams, so its content depends only on the inputs: it is
written once (temp file, then rename), a resumed run skips it, and `--num-shards/--shard-index` hand
contiguous ranges of shards (every n-th shard of a plain dump) to different machines. Each pairs file carries its shard's counts in its
metadata, so the stats of resumed and merged runs add up.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from rich.table import Table

from eat.console import report
from eat.errors import UserError
from eat.io import atomic_dir, atomic_path, check_writable, write_json, write_jsonl
from wiki_data.multistream import Stream
from wiki_data.pages import iter_raw_pages, page_id_of
from wiki_data.schema import (
    MENTION_GLOB,
    MENTIONS_SCHEMA,
    PAIRS_SCHEMA,
    iter_pairs,
    mention_shard_name,
    read_mentions,
    read_pairs,
    shard_name,
    shard_paths,
)
from wiki_data.selection import STATUS_REASON, UNKNOWN, WANTED, Selection
from wiki_data.worker import PagesTask, StreamTask, Task

log = logging.getLogger(__name__)

STATS_KEY = b"eat_stats"
PAGES_PER_PLAIN_STREAM = 100
DROP_REASONS = (
    "non_main_namespace",
    "redirect",
    "disambiguation",
    "no_en_link",
    "not_in_page_table",
    "no_sentence",
    "parse_error",
    "timeout",
    "bad_xml",
    "bad_stream",
    "missing_from_dump",
)
SQL_DROPS = DROP_REASONS[:5]  # decided from the SQL tables, before a page is parsed

# ------------------------------------------------------------------------------------------------ planning


@dataclass
class ShardPlan:
    """The streams of one shard of a multistream dump that hold a wanted page."""

    index: int
    tasks: list[StreamTask]
    counts: Counter  # SQL-side decisions for the pages of this shard


@dataclass
class ShardEnd:
    """Tags a shard's last task: once its result is in, shard `index` is complete and is written."""

    index: int
    counts: Counter  # SQL-side decisions for the pages of this shard


Job = tuple[ShardEnd | None, Task]


def my_shards(n_shards: int, num_shards: int, shard_index: int) -> list[int]:
    """The contiguous range of shard indices that part `shard_index` of `num_shards` does."""
    lo = n_shards * shard_index // num_shards
    hi = n_shards * (shard_index + 1) // num_shards
    return list(range(lo, hi))


def shard_count(streams: list[Stream], per_shard: int) -> int:
    return max(1, -(-len(streams) // per_shard))


def stream_plans(
    streams: list[Stream],
    indices: list[int],
    sel: Selection,
    pages: Path,
    per_shard: int,
    skip_bad: bool,
) -> list[ShardPlan]:
    """Plans of shards `indices` of a multistream dump: a task per stream with a wanted page."""
    plans = []
    for k in indices:
        counts, tasks = Counter(), []
        for st in streams[k * per_shard : (k + 1) * per_shard]:
            wanted = []
            for pid in st.page_ids:
                counts["pages_seen"] += 1
                s = sel.status_of(pid)
                counts["with_en_link"] += sel.en_link(pid)
                if s == WANTED:
                    wanted.append(pid)
                else:
                    counts[STATUS_REASON[s]] += 1
            counts["streams"] += 1
            if wanted:
                counts["streams_read"] += 1
                tasks.append(StreamTask(str(pages), st.offset, st.length, frozenset(wanted), skip_bad))
        plans.append(ShardPlan(k, tasks, counts))
    return plans


def stream_jobs(plans: list[ShardPlan]) -> Iterator[Job]:
    """The plans' tasks in order, each shard's last one tagged with its end."""
    for plan in plans:
        end = ShardEnd(plan.index, plan.counts)
        if not plan.tasks:  # nothing wanted in this shard: an empty shard still marks it done
            yield end, PagesTask([])
        for i, task in enumerate(plan.tasks):
            yield (end if i == len(plan.tasks) - 1 else None), task


def plain_jobs(
    pages: Path, sel: Selection, per_shard: int, num_shards: int, shard_index: int, done: set[int]
) -> Iterator[Job]:
    """A non-multistream dump, read once here: its wanted pages in batches, shard by shard.

    A shard is `per_shard` runs of 100 pages in file order; with several parts, part i takes every shard k
    with k % num_shards == i (the number of shards is unknown until the end of the file).
    """
    per_shard_pages = PAGES_PER_PLAIN_STREAM * per_shard

    def ours(k: int) -> bool:
        return (k % num_shards == shard_index if num_shards > 1 else True) and k not in done

    ordinal = 0
    counts = Counter()
    batch: list[bytes] = []
    shard = 0
    for raw in iter_raw_pages(pages):
        k = ordinal // per_shard_pages
        ordinal += 1
        if k != shard:
            if ours(shard):
                yield ShardEnd(shard, counts), PagesTask(batch)
            batch, counts, shard = [], Counter(), k
        if not ours(k):
            continue
        pid = page_id_of(raw)
        counts["pages_seen"] += 1
        s = sel.status_of(pid) if pid is not None else UNKNOWN
        counts["with_en_link"] += sel.en_link(pid) if pid is not None else 0
        if s != WANTED:
            counts[STATUS_REASON[s]] += 1
            continue
        batch.append(raw)
        if len(batch) >= PAGES_PER_PLAIN_STREAM:
            counts["streams"] += 1
            yield None, PagesTask(batch)
            batch = []
    if ordinal == 0 or ours(shard):
        yield ShardEnd(shard, counts), PagesTask(batch)


# ------------------------------------------------------------------------------------------------- writing


def write_shard(
    out: Path, index: int, pairs: pa.Table, counts: Counter, mentions: pa.Table | None = None
) -> None:
    """Write shard `index`: its mentions first (when given), then its pairs, whose file marks it done."""
    import pyarrow.parquet as pq

    if mentions is not None:
        with atomic_path(out / mention_shard_name(index)) as tmp:
            pq.write_table(mentions.cast(MENTIONS_SCHEMA), tmp, compression="zstd")
    meta = {STATS_KEY: json.dumps(dict(sorted(counts.items())), sort_keys=True).encode()}
    table = pairs.cast(PAIRS_SCHEMA).replace_schema_metadata(meta)
    with atomic_path(out / shard_name(index)) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_pairs_jsonl(out: Path) -> int:
    return write_jsonl(out / "pairs.jsonl", iter_pairs(out))


# --------------------------------------------------------------------------------------------------- stats


def shard_stats(path: Path) -> Counter:
    """The counts a pairs shard carries in its metadata."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return Counter(json.loads(meta.get(STATS_KEY, b"{}")))


def collect_stats(out: Path) -> dict:
    """Totals over the shards in `out` (each shard carries its own counts, so resumed runs add up)."""
    from wiki_data.mentions import mention_stats  # mwparserfromhell: only once the run is done

    total = Counter()
    paths = shard_paths(out)
    for path in paths:
        total.update(shard_stats(path))
    pages = {
        "pages_seen": total.get("pages_seen", 0),
        "with_en_link": total.get("with_en_link", 0),
        "wanted": total.get("pages_seen", 0) - sum(total.get(r, 0) for r in SQL_DROPS),
        "kept": total.get("kept", 0),
    }
    dropped = {r: total.get(r, 0) for r in DROP_REASONS}
    stats = {
        "pages": pages,
        "dropped": dropped,
        "streams": {"total": total.get("streams", 0), "read": total.get("streams_read", 0)},
        "shards": len(paths),
    }
    if (mentions := mention_stats(total)) is not None:
        stats["mentions"] = mentions
    return stats


def print_summary(stats: dict) -> None:
    table = Table(title=f"{stats.get('lang', '')}wiki mining summary", show_header=True)
    table.add_column("")
    table.add_column("pages", justify="right")
    for key, value in stats["pages"].items():
        table.add_row(key.replace("_", " "), f"{value:,}")
    for key, value in stats["dropped"].items():
        if value:
            table.add_row(f"  dropped: {key.replace('_', ' ')}", f"{value:,}")
    report(table)
    m = stats.get("mentions")
    if m:
        n = max(m["mentions"], 1)
        report(
            f"mentions: {m['mentions']:,} in {m['sentences']:,} sentences of {m['pages_with_mentions']:,} pages "
            f"({m['mentions_per_1000_pages']:,} per 1,000 pages scanned); surface differs from the title "
            f"{m['surface_differs_share']:.1%}; anchor at the sentence start "
            f"{m['position']['at the start'] / n:.1%}"
        )


# --------------------------------------------------------------------------------------------------- merge


def merge(inputs: list[Path], out: Path) -> dict:
    """Combine mining outputs (e.g. one per machine): dedupe by (lang, page_id), sum stats, renumber shards."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError("merge output exists and is not an empty folder; choose a new --out", path=out)
    for folder in inputs:  # every input checked before anything is written: a damaged shard is one line
        if not shard_paths(folder):
            raise UserError("no pairs-*.parquet shards here", path=folder)
        read_pairs(folder)
        if any(Path(folder).glob(MENTION_GLOB)):
            read_mentions(folder)
    check_writable(out.resolve().parent)
    if out.exists():
        out.rmdir()
    with atomic_dir(out) as tmp:  # the merged folder appears whole, or not at all
        return _merge_into(inputs, tmp, out)


def _merge_into(inputs: list[Path], out: Path, final: Path) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    seen: set[tuple[str, int]] = set()
    seen_mentions: set[tuple[str, int]] = set()
    extra: dict = {}
    langs: set[str] = set()
    n = 0
    for folder in inputs:
        paths = shard_paths(folder)
        stats_file = folder / "stats.json"
        if stats_file.exists() and not extra:
            prev = json.loads(stats_file.read_text("utf-8"))
            extra = {k: prev[k] for k in ("lang", "dump_date", "sql") if k in prev}
        for path in paths:
            table = pq.read_table(path)
            langs.update(table["lang"].to_pylist())
            keys = list(zip(table["lang"].to_pylist(), table["page_id"].to_pylist(), strict=True))
            keep = [k not in seen for k in keys]
            seen.update(keys)
            counts = shard_stats(path)
            dropped = keep.count(False)
            if dropped:
                table = table.filter(pc.equal(pa.array(keep), True))
                counts["kept"] = counts.get("kept", 0) - dropped
                counts["pages_seen"] = counts.get("pages_seen", 0) - dropped
            mentions = None
            mentions_path = path.with_name(path.name.replace("pairs-", "mentions-", 1))
            if mentions_path.is_file():  # the same pages' mentions, deduped by their source page
                mentions = pq.read_table(mentions_path)
                pages = list(zip(mentions["lang"].to_pylist(), mentions["page_id"].to_pylist(), strict=True))
                fresh = [k not in seen_mentions for k in pages]
                seen_mentions.update(pages)
                mentions = mentions.filter(pc.equal(pa.array(fresh, "bool"), True))
            write_shard(out, n, table, counts, mentions)
            n += 1
    stats = collect_stats(out)
    stats.update(extra)
    if len(langs) > 1:  # a multilingual merge: no single language or dump date describes it
        stats.update(lang=",".join(sorted(langs)), dump_date=None, sql=None)
    stats["merged_from"] = [str(p) for p in inputs]
    write_json(out / "stats.json", stats)
    log.info("merged %d folders into %s", len(inputs), final)
    return stats
