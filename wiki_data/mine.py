"""`eat wiki mine`: dump files -> typed entity pairs, in parallel, resumable, shardable across machines.

1. The SQL tables decide which pages are wanted (`wiki_data.selection`: main namespace, not a redirect, not a
   disambiguation page, has an English langlink) before any wikitext is read.
2. Work is cut into streams (`wiki_data.shards`): the bz2 streams of a multistream dump (from its index), or
   runs of 100 pages of a plain dump read once in this process. Streams without a wanted page are never
   decompressed.
3. Workers (`wiki_data.pool`, `wiki_data.worker`) parse only the lead of wanted pages (`wiki_data.lead`), with
   a per-page time limit.
4. Output shards are fixed runs of `streams_per_shard` streams, so a shard's content depends only on the
   inputs: each is written once (temp file, then rename), `--resume` skips finished ones, and
   `--num-shards/--shard-index` hand contiguous ranges of shards to different machines.

This module holds the options, the run (checks, resume, dispatch, the one loop that collects worker results
into shards) and the rows written: worker output joined with the SQL selection and the types table.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pydantic import Field

from eat.config import StrictModel
from eat.console import make_progress
from eat.errors import UserError
from eat.io import LOCK_NAME, check_writable, output_lock, remove_leftovers, write_json, write_manifest
from wiki_data.discover import DumpFiles, discover
from wiki_data.multistream import read_index
from wiki_data.normalize import ZH_VARIANTS, to_variant
from wiki_data.pool import Runner, WorkerSettings
from wiki_data.schema import mentions_table, pairs_table, shard_name, shard_paths
from wiki_data.selection import REDIRECT, STATUS_REASON, WANTED, Selection, load_types, select_pages
from wiki_data.shards import (
    Job,
    collect_stats,
    my_shards,
    plain_jobs,
    print_summary,
    shard_count,
    stream_jobs,
    stream_plans,
    write_pairs_jsonl,
    write_shard,
)

log = logging.getLogger(__name__)


class MineConfig(StrictModel):
    """Options of `eat wiki mine` (also usable from Python)."""

    lang: str = Field(description="Wiki language code, e.g. zh, ja, ko, ru, ar (the {lang}wiki file prefix).")
    out: Path = Field(description="Output folder for pairs-*.parquet shards and stats.json.")
    dump_dir: Path | None = Field(
        None, description="Folder holding the dump files under their standard names."
    )
    date: str | None = Field(None, description="Dump date YYYYMMDD to pick in --dump-dir (default: newest).")
    workers: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, description="Worker processes."
    )
    types: Path | None = Field(
        None, description="qid->type Parquet table from `eat wiki types` (else infobox names)."
    )
    variant: str = Field(
        "zh-cn", description="Chinese script variant for title, surface and sentence (zh only)."
    )
    resume: bool = Field(False, description="Keep finished shards in OUT and do only the missing ones.")
    num_shards: int = Field(
        1, ge=1, description="Split the shard list into this many parts (one per machine)."
    )
    shard_index: int = Field(0, ge=0, description="Which part (0-based) of --num-shards this run does.")
    streams_per_shard: int = Field(50, ge=1, description="Dump streams (~100 pages each) per output shard.")
    skip_bad_streams: bool = Field(
        False, description="Skip and count corrupt bz2 streams instead of stopping."
    )
    page_timeout: float = Field(10.0, gt=0, description="Seconds allowed to clean one page's lead.")
    jsonl: bool = Field(False, description="Also write OUT/pairs.jsonl.")
    pages: Path | None = Field(None, description="Pages XML dump (overrides discovery).")
    index: Path | None = Field(None, description="Multistream index (overrides discovery).")
    page_table: Path | None = Field(None, description="page.sql(.gz) (overrides discovery).")
    langlinks: Path | None = Field(None, description="langlinks.sql(.gz) (overrides discovery).")
    page_props: Path | None = Field(None, description="page_props.sql(.gz) (overrides discovery).")
    redirects: Path | None = Field(None, description="redirect.sql(.gz) (overrides discovery; optional).")
    mentions: bool = Field(
        False,
        description="Also write mentions-*.parquet: link anchors to English-linked articles in clean sentences "
        "of the lead and the first --mention-sections sections (needs the redirect table to resolve redirects).",
    )
    mention_sections: int = Field(
        2, ge=0, description="Body sections scanned for mentions after the lead (0: the lead only)."
    )


@dataclass
class _Rows:
    """Worker output -> table rows: joined with the SQL selection, the types table and the dump date."""

    lang: str
    sel: Selection
    types: dict[str, str]
    date: str | None
    convert: Callable[[str], str]  # titles to the output script variant (zh), else identity

    def pairs(self, rows: list[tuple]) -> list[dict]:
        """Worker lead tuples -> pairs rows in page order, typed from Wikidata, else from the infobox."""
        out = []
        sel, types, convert = self.sel, self.types, self.convert
        for page_id, surface, sentence, infobox in rows:
            qid = sel.qids.get(page_id)
            etype, source = (types.get(qid), "wikidata") if qid and qid in types else (None, None)
            if etype is None and infobox:
                etype, source = infobox, "infobox"
            aliases = sorted({convert(a) for a in sel.aliases.get(page_id, [])})
            out.append(
                {
                    "lang": self.lang,
                    "page_id": page_id,
                    "title": convert(sel.titles[page_id]),
                    "surface": surface,
                    "en_title": sel.en_titles[page_id],
                    "qid": qid,
                    "type": etype,
                    "type_source": source,
                    "sentence": sentence,
                    "aliases": aliases,
                    "dump_date": self.date,
                }
            )
        out.sort(key=lambda r: r["page_id"])
        return out

    def mentions(self, found: list[tuple], counts: Counter) -> list[dict]:
        """Worker mention tuples -> mentions rows in page and sentence order: targets resolved, typed and
        classified; drops counted."""
        from wiki_data.mentions import (  # mwparserfromhell: loaded by runs with --mentions, only
            MentionResolver,
            Target,
            position_bucket,
            surface_match,
        )

        sel, types, convert = self.sel, self.types, self.convert
        resolver = MentionResolver(
            sel.title_ids,
            sel.redirect_to,
            sel.titles,
            is_redirect=lambda pid: sel.status_of(pid) == REDIRECT,
            reason_of=lambda pid: STATUS_REASON.get(sel.status_of(pid), "not_wanted"),
        )
        kept: dict[tuple[int, int], list[dict]] = {}
        for page_id, section, sentence_no, sentence, start, end, surface, target in found:
            hit = resolver.resolve(target)
            if isinstance(hit, Target) and hit.page_id == page_id:
                hit = "self_link"
            if not isinstance(hit, Target):
                counts[f"mention_drop_{hit}"] += 1
                continue
            title = convert(sel.titles[hit.page_id])
            qid = sel.qids.get(hit.page_id)
            etype = types.get(qid) if qid else None
            aliases = [convert(a) for a in sel.aliases.get(hit.page_id, [])]
            kept.setdefault((page_id, sentence_no), []).append(
                {
                    "lang": self.lang,
                    "page_id": page_id,
                    "title": convert(sel.titles[page_id]),
                    "section": section,
                    "sentence_no": sentence_no,
                    "sentence": sentence,
                    "start": start,
                    "end": end,
                    "surface": surface,
                    "target_page_id": hit.page_id,
                    "target_title": title,
                    "en_title": sel.en_titles[hit.page_id],
                    "qid": qid,
                    "type": etype,
                    "type_source": "wikidata" if etype else None,
                    "match": surface_match(surface, title, aliases),
                    "via_redirect": hit.via_redirect,
                    "dump_date": self.date,
                }
            )
        rows = []
        for group in kept.values():
            for row in group:
                row["n_in_sentence"] = len(group)
                counts[f"mention_match_{row['match']}"] += 1
                counts[f"mention_pos_{position_bucket(row['start'], len(row['sentence']))}"] += 1
                counts["mention_via_redirect"] += row["via_redirect"]
                counts["mention_typed"] += row["type"] is not None
            rows.extend(group)
        counts["mentions_kept"] += len(rows)
        counts["mention_sentences_kept"] += len(kept)
        counts["mention_pages_with"] += len({page for page, _ in kept})
        rows.sort(key=lambda r: (r["page_id"], r["sentence_no"], r["start"]))
        return rows


RUN_SETTINGS = "mine-run.json"


def _file_id(path: Path | None) -> list | None:
    """A file as a resume compares it: name and size (None for a file that is not given)."""
    if path is None:
        return None
    return [path.name, path.stat().st_size if path.exists() else None]


def run_settings(cfg: MineConfig, files: DumpFiles) -> dict:
    """What decides the shards' contents: a --resume must use the same, or the output mixes two runs."""
    return {
        "lang": cfg.lang,
        "variant": cfg.variant.lower() if cfg.lang == "zh" else None,
        "dump_date": files.date,
        "pages": _file_id(files.pages),
        "index": _file_id(files.index),
        "types": _file_id(cfg.types),
        "num_shards": cfg.num_shards,
        "shard_index": cfg.shard_index,
        "streams_per_shard": cfg.streams_per_shard,
        "mentions": cfg.mention_sections if cfg.mentions else None,
    }


def check_resume_settings(out: Path, settings: dict) -> None:
    """--resume continues only the run that made OUT's shards (same wiki, dump, variant, types, sharding)."""
    path = out / RUN_SETTINGS
    if not path.is_file():
        if shard_paths(out):
            log.warning(
                "%s has shards but no %s: cannot check they come from these settings", out, RUN_SETTINGS
            )
        return
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        raise UserError(f"{RUN_SETTINGS} is unreadable; mine into a new folder", path=out) from None
    changed = [f"{k}: {before.get(k)!r} -> {v!r}" for k, v in settings.items() if before.get(k) != v]
    if changed:
        raise UserError(
            f"--resume with other settings than the run that wrote these shards ({'; '.join(changed[:3])}): "
            "use the same flags, or a new --out",
            path=out,
        )


def mine(cfg: MineConfig) -> dict:
    """Run the whole mining job; returns the stats written to OUT/stats.json."""
    if cfg.lang == "zh" and cfg.variant.lower() not in ZH_VARIANTS:
        raise UserError(f"--variant {cfg.variant!r} is not one of {', '.join(ZH_VARIANTS)}")
    if cfg.shard_index >= cfg.num_shards:
        raise UserError(f"--shard-index {cfg.shard_index} must be below --num-shards {cfg.num_shards}")
    files = discover(
        cfg.lang, cfg.dump_dir, cfg.date, cfg.pages, cfg.index, cfg.page_table, cfg.langlinks, cfg.page_props,
        cfg.redirects,
    )  # fmt: skip
    out = cfg.out
    if out.exists() and not out.is_dir():
        raise UserError("--out is a file; give a folder for the pairs-*.parquet shards", path=out)
    check_writable(out)  # before minutes of reading SQL tables
    with output_lock(out / LOCK_NAME):  # a second `eat wiki mine` into OUT stops here, naming this one's PID
        remove_leftovers(out)  # temporaries of a killed run
        return _mine_locked(cfg, files, out)


def _mine_locked(cfg: MineConfig, files: DumpFiles, out: Path) -> dict:
    if not cfg.resume and shard_paths(out):
        raise UserError(
            "output folder already holds pairs-*.parquet shards; use --resume or a new folder", path=out
        )
    if cfg.skip_bad_streams and files.index is None:
        log.warning(
            "--skip-bad-streams applies to multistream dumps: %s is one bz2 stream, so nothing after a damaged "
            "block can be read (the shards finished before it are kept)",
            files.pages.name,
        )
    settings = run_settings(cfg, files)
    if cfg.resume:
        check_resume_settings(out, settings)
    if cfg.types is not None and not cfg.types.is_file():
        raise UserError("--types table not found (build it with `eat wiki types`)", path=cfg.types)
    log.info(f"reading SQL tables for {cfg.lang}wiki ...")
    variant = cfg.variant if cfg.lang == "zh" else None
    convert = _converter(variant)
    sections = cfg.mention_sections if cfg.mentions else None
    runner = Runner(cfg.workers, WorkerSettings(cfg.lang, variant, cfg.page_timeout, sections))
    try:
        runner.warm_up()  # worker processes start and import their parsers while the tables are read
        sel = select_pages(files, cfg.mentions, convert)
        if cfg.mentions and files.redirects is None:
            log.warning(
                "no redirect table: links that name a redirect are dropped (counted as redirect_unresolved)"
            )
        types: dict[str, str] = {}
        if cfg.types is not None:
            types = load_types(cfg.types, set(sel.qids.values()))
        log.info(f"{len(sel.titles):,} wanted pages (main namespace, English link, not disambiguation)")
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RUN_SETTINGS, settings)
        write_manifest(out, "eat wiki mine")
    except BaseException:
        runner.close()
        raise

    rows = _Rows(cfg.lang, sel, types, files.date, convert)
    try:
        jobs, total = _jobs(files, sel, cfg)
        _collect(runner, jobs, total, rows, cfg)
    except KeyboardInterrupt:
        runner.close()  # workers stop at once; the shards finished so far are complete files
        log.warning("interrupted: finished shards are kept in %s; re-run the same command with --resume", out)
        raise
    finally:
        runner.close()

    stats = collect_stats(out)
    stats.update(lang=cfg.lang, dump_date=files.date, sql=sel.sql_stats, files={
        "pages": str(files.pages), "index": str(files.index) if files.index else None,
    })  # fmt: skip
    write_json(out / "stats.json", stats)
    if cfg.mentions and "mentions" in stats:
        from wiki_data.mentions import write_mention_report  # mwparserfromhell, matplotlib: only here

        write_mention_report(stats["mentions"], out)
    if cfg.jsonl:
        write_pairs_jsonl(out)
    print_summary(stats)
    return stats


def _jobs(files: DumpFiles, sel: Selection, cfg: MineConfig) -> tuple[Iterator[Job], int]:
    """This run's tasks, each shard's last one tagged, and the number of wanted pages they cover."""
    if files.index is None:  # a plain dump: read once here, wanted pages fanned out to workers in batches
        done = {int(p.stem.split("-")[1]) for p in shard_paths(cfg.out)} if cfg.resume else set()
        jobs = plain_jobs(files.pages, sel, cfg.streams_per_shard, cfg.num_shards, cfg.shard_index, done)
        return jobs, len(sel.titles)
    streams = read_index(files.index)
    if sel.titles and not any(sel.status_of(pid) == WANTED for st in streams for pid in st.page_ids):
        raise UserError(
            "the multistream index lists none of the wanted pages (empty, or from another dump than the SQL "
            "tables)",
            path=files.index,
        )
    ours = my_shards(shard_count(streams, cfg.streams_per_shard), cfg.num_shards, cfg.shard_index)
    todo = [k for k in ours if not (cfg.resume and (cfg.out / shard_name(k)).exists())]
    if cfg.resume:
        log.info(f"--resume: {len(ours) - len(todo)} of {len(ours)} shards already done")
    plans = stream_plans(streams, todo, sel, files.pages, cfg.streams_per_shard, cfg.skip_bad_streams)
    total = sum(len(task.wanted) for plan in plans for task in plan.tasks)
    return stream_jobs(plans), total


def _collect(runner: Runner, jobs: Iterator[Job], total: int, rows: _Rows, cfg: MineConfig) -> None:
    """Worker results gathered shard by shard; a shard is written as soon as its last task is in."""
    found: list[tuple] = []
    mentions: list[tuple] = []
    counts = Counter()
    with make_progress() as progress:
        bar = progress.add_task(f"{cfg.lang}wiki pages", total=total, unit="pages")
        for end, result in runner.run(jobs):
            found.extend(result.rows)
            mentions.extend(result.mentions)
            counts.update(result.counts)
            progress.advance(bar, result.pages)
            if end is None:
                continue
            counts.update(end.counts)
            counts["kept"] += len(found)
            kept = mentions_table(rows.mentions(mentions, counts)) if cfg.mentions else None
            write_shard(cfg.out, end.index, pairs_table(rows.pairs(found)), counts, kept)
            found, mentions, counts = [], [], Counter()


def _converter(variant: str | None) -> Callable[[str], str]:
    """Chinese variant conversion, or identity when no variant applies."""
    return partial(to_variant, variant=variant) if variant else str
