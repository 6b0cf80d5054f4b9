"""`eat wiki mine`: dump files -> typed entity pairs, in parallel, resumable, shardable across machines.

1. The SQL tables decide which pages are wanted (main namespace, not a redirect, not a disambiguation page,
   has an English langlink) before any wikitext is read.
2. Work is cut into streams: the bz2 streams of a multistream dump (from its index), or runs of 100 pages
   of a plain dump read once in this process. Streams without a wanted page are never decompressed.
3. Workers parse only the lead of wanted pages (`wiki_data.lead`), with a per-page time limit.
4. Output shards are fixed runs of `streams_per_shard` streams, so a shard's content depends only on the
   inputs: each is written once (temp file, then rename), `--resume` skips finished ones, and
   `--num-shards/--shard-index` hand contiguous ranges of shards to different machines.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from eat.config import StrictModel
from eat.errors import UserError
from wiki_data.discover import DumpFiles, discover
from wiki_data.pages import init_worker, work
from wiki_data.schema import (
    MENTIONS_SCHEMA,
    PAIRS_SCHEMA,
    mention_shard_name,
    mentions_table,
    pairs_table,
    shard_name,
    shard_paths,
)

log = logging.getLogger(__name__)

STATS_KEY = b"eat_stats"
PAGES_PER_PLAIN_STREAM = 100

# Page status codes decided from the SQL tables.
UNKNOWN, NON_MAIN, REDIRECT, DISAMBIG, NO_EN, WANTED = range(6)
STATUS_REASON = {
    UNKNOWN: "not_in_page_table",
    NON_MAIN: "non_main_namespace",
    REDIRECT: "redirect",
    DISAMBIG: "disambiguation",
    NO_EN: "no_en_link",
}
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


# ------------------------------------------------------------------------------------------ SQL side


@dataclass
class Selection:
    """What the SQL tables say about every page id."""

    status: bytearray
    titles: dict[int, str]  # wanted pages only
    en_titles: dict[int, str]
    qids: dict[int, str]
    aliases: dict[int, list[str]]
    sql_stats: dict = field(default_factory=dict)

    has_en: bytearray = field(default_factory=bytearray)
    # With --mentions only: every main-namespace title (articles and redirects, in the output variant) -> page
    # id, and redirect page id -> target page id.
    title_ids: dict[str, int] = field(default_factory=dict)
    redirect_to: dict[int, int] = field(default_factory=dict)

    def status_of(self, page_id: int) -> int:
        return self.status[page_id] if 0 <= page_id < len(self.status) else UNKNOWN

    def en_link(self, page_id: int) -> int:
        return self.has_en[page_id] if 0 <= page_id < len(self.has_en) else 0


def _title(raw: object) -> str:
    return str(raw).replace("_", " ")


def select_pages(files: DumpFiles, mentions: bool = False, convert=str) -> Selection:
    """Read the tables once and decide the wanted pages (before any wikitext is parsed).

    `mentions` also keeps what resolving link targets needs; `convert` maps titles to the script variant the
    wikitext is converted to (zh), since link targets are read from converted text.
    """
    from wiki_data.sql_dump import SqlDump

    sql_stats = {}
    page = SqlDump(files.page_table, "page")
    ns0: dict[int, str] = {}
    redirect_titles: dict[int, str] = {}
    non_main: list[int] = []
    max_id = 0
    for page_id, ns, title, is_redirect in page.rows(
        ["page_id", "page_namespace", "page_title", "page_is_redirect"]
    ):
        max_id = max(max_id, page_id)
        if ns != 0:
            non_main.append(page_id)
        elif is_redirect:
            redirect_titles[page_id] = _title(title)
        else:
            ns0[page_id] = _title(title)
    sql_stats["page"] = _sql_summary(page)

    links = SqlDump(files.langlinks, "langlinks")
    en_titles = {
        ll_from: _title(t)
        for ll_from, lang, t in links.rows(["ll_from", "ll_lang", "ll_title"], contains=(b"'en'",))
        if lang == "en" and t
    }
    sql_stats["langlinks"] = _sql_summary(links)

    props = SqlDump(files.page_props, "page_props")
    disambig: set[int] = set()
    qids: dict[int, str] = {}
    for pp_page, name, value in props.rows(
        ["pp_page", "pp_propname", "pp_value"], contains=(b"'disambiguation'", b"'wikibase_item'")
    ):
        if name == "disambiguation":
            disambig.add(pp_page)
        elif name == "wikibase_item" and value:
            qids[pp_page] = str(value)
    sql_stats["page_props"] = _sql_summary(props)

    status = bytearray(max_id + 1)
    for pid in non_main:
        status[pid] = NON_MAIN
    for pid in redirect_titles:
        status[pid] = REDIRECT
    titles = {}
    for pid, title in ns0.items():
        if pid in disambig:
            status[pid] = DISAMBIG
        elif pid not in en_titles:
            status[pid] = NO_EN
        else:
            status[pid] = WANTED
            titles[pid] = title

    aliases: dict[int, list[str]] = {}
    redirect_to: dict[int, int] = {}
    if files.redirects is not None:
        by_title = {t: pid for pid, t in titles.items()}
        any_title = {t: pid for pid, t in (ns0 | redirect_titles).items()} if mentions else {}
        red = SqlDump(files.redirects, "redirect")
        for rd_from, rd_ns, rd_title, *rest in red.rows(
            ["rd_from", "rd_namespace", "rd_title", "rd_interwiki"]
        ):
            if rd_ns != 0 or (rest and rest[0]):
                continue
            target = by_title.get(_title(rd_title))
            alias = redirect_titles.get(rd_from)
            if target is not None and alias:
                aliases.setdefault(target, []).append(alias)
            if (
                mentions
                and rd_from in redirect_titles
                and (to := any_title.get(_title(rd_title))) is not None
            ):
                redirect_to[rd_from] = to
        sql_stats["redirect"] = _sql_summary(red)
    has_en = bytearray(max_id + 1)
    for pid in en_titles:
        if pid <= max_id:
            has_en[pid] = 1
    wanted_en = {pid: en_titles[pid] for pid in titles}
    wanted_qids = {pid: qids[pid] for pid in titles if pid in qids}
    title_ids: dict[str, int] = {}
    if mentions:
        for pid, title in (ns0 | redirect_titles).items():
            title_ids.setdefault(convert(title), pid)
    return Selection(
        status, titles, wanted_en, wanted_qids, aliases, sql_stats, has_en, title_ids, redirect_to
    )


def _sql_summary(dump) -> dict:
    return {"file": str(dump.path), "rows": dump.stats.rows, "malformed": dump.stats.malformed}


def load_types(path: Path, qids: set[str]) -> dict[str, str]:
    """qid -> type for the given qids from an `eat wiki types` table."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not path.exists():
        raise UserError("types table not found (make it with `eat wiki types`)", path=path)
    try:
        table = pq.read_table(path, columns=["qid", "type"])
    except Exception as exc:
        raise UserError(f"not a types table with columns qid, type ({exc})", path=path) from None
    table = table.filter(
        pc.is_in(table["qid"], value_set=__import__("pyarrow").array(sorted(qids), "string"))
    )
    return dict(zip(table["qid"].to_pylist(), table["type"].to_pylist(), strict=True))


# --------------------------------------------------------------------------------------------- workers

# ------------------------------------------------------------------------------------------ shards


@dataclass
class ShardPlan:
    index: int
    tasks: list[tuple]
    counts: Counter  # SQL-side decisions for the pages of this shard


def _stream_shards(files: DumpFiles, sel: Selection, cfg: MineConfig) -> tuple[int, Iterator[ShardPlan]]:
    from wiki_data.multistream import read_index

    streams = read_index(files.index)
    n_shards = max(1, -(-len(streams) // cfg.streams_per_shard))

    def plans(indices: list[int]) -> Iterator[ShardPlan]:
        for k in indices:
            counts, tasks = Counter(), []
            for st in streams[k * cfg.streams_per_shard : (k + 1) * cfg.streams_per_shard]:
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
                    tasks.append(
                        (
                            "stream",
                            str(files.pages),
                            st.offset,
                            st.length,
                            frozenset(wanted),
                            cfg.skip_bad_streams,
                        )
                    )
            yield ShardPlan(k, tasks, counts)

    return n_shards, plans  # type: ignore[return-value]


def _my_shards(n_shards: int, cfg: MineConfig) -> list[int]:
    """Contiguous range of shard indices for this machine."""
    if cfg.shard_index >= cfg.num_shards:
        raise UserError(f"--shard-index {cfg.shard_index} must be below --num-shards {cfg.num_shards}")
    lo = n_shards * cfg.shard_index // cfg.num_shards
    hi = n_shards * (cfg.shard_index + 1) // cfg.num_shards
    return list(range(lo, hi))


def _write_shard(
    out: Path, index: int, rows: list[dict], counts: Counter, mentions: list[dict] | None = None
) -> None:
    """Write shard `index`: its mentions first (with --mentions), then its pairs, whose file marks it done."""
    import pyarrow.parquet as pq

    from eat.io import atomic_path

    if mentions is not None:
        mentions.sort(key=lambda r: (r["page_id"], r["sentence_no"], r["start"]))
        with atomic_path(out / mention_shard_name(index)) as tmp:
            pq.write_table(mentions_table(mentions), tmp, compression="zstd")
    rows.sort(key=lambda r: r["page_id"])
    table = pairs_table(rows)
    meta = {STATS_KEY: json.dumps(dict(sorted(counts.items())), sort_keys=True).encode()}
    table = table.replace_schema_metadata(meta)
    path = out / shard_name(index)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def shard_stats(path: Path) -> Counter:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return Counter(json.loads(meta.get(STATS_KEY, b"{}")))


def _init_pool_worker(lang: str, variant: str | None, timeout: float, sections: int | None) -> None:
    """Workers leave Ctrl-C to the parent, which stops them: no traceback from every worker, no hang."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(lang, variant, timeout, sections)


class _Runner:
    """Runs tasks on a process pool (or in-process for one worker), in order, with a bounded queue.

    A ProcessPoolExecutor rather than multiprocessing.Pool: when a worker dies (OOM killer, kill -9) Pool
    waits for its task forever, while the executor fails the task with BrokenProcessPool.
    """

    def __init__(self, cfg: MineConfig):
        self.cfg = cfg
        self.pool = None
        variant = cfg.variant if cfg.lang == "zh" else None
        sections = cfg.mention_sections if cfg.mentions else None
        if cfg.workers > 1:
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                cfg.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_pool_worker,
                initargs=(cfg.lang, variant, cfg.page_timeout, sections),
            )
        else:
            init_worker(cfg.lang, variant, cfg.page_timeout, sections)

    def run(self, tasks: Iterator[tuple[object, tuple]]) -> Iterator[tuple[object, tuple]]:
        """Yield (tag, result) in task order."""
        if self.pool is None:
            for tag, task in tasks:
                yield tag, work(task)
            return
        from concurrent.futures.process import BrokenProcessPool

        window: deque = deque()
        limit = self.cfg.workers * 4
        try:
            try:
                for tag, task in tasks:
                    window.append((tag, self.pool.submit(work, task)))
                    while len(window) >= limit:
                        t, fut = window.popleft()
                        yield t, fut.result()
            except UserError:
                # The input broke (e.g. a damaged plain dump): finish what was already handed out, so every
                # shard completed before the damage is written, then report.
                while window:
                    t, fut = window.popleft()
                    yield t, fut.result()
                raise
            while window:
                t, fut = window.popleft()
                yield t, fut.result()
        except BrokenProcessPool:
            raise UserError(
                "a mining worker process died (out of memory, or killed); finished shards are kept: "
                "re-run with --resume (and fewer --workers if memory is short)"
            ) from None

    def close(self) -> None:
        if self.pool is not None:
            # Stop at once (Ctrl-C, errors): running tasks belong to unfinished shards, which are redone.
            from eat.compat import terminate_workers

            terminate_workers(self.pool)
            self.pool.shutdown(wait=True, cancel_futures=True)


def _finish_rows(
    sel: Selection, rows: list[tuple], cfg: MineConfig, types: dict[str, str], date: str | None
) -> list[dict]:
    out = []
    variant = cfg.variant if cfg.lang == "zh" else None
    convert = _converter(variant)

    for page_id, surface, sentence, infobox in rows:
        qid = sel.qids.get(page_id)
        etype, source = (types.get(qid), "wikidata") if qid and qid in types else (None, None)
        if etype is None and infobox:
            etype, source = infobox, "infobox"
        aliases = sorted({convert(a) for a in sel.aliases.get(page_id, [])})
        out.append(
            {
                "lang": cfg.lang,
                "page_id": page_id,
                "title": convert(sel.titles[page_id]),
                "surface": surface,
                "en_title": sel.en_titles[page_id],
                "qid": qid,
                "type": etype,
                "type_source": source,
                "sentence": sentence,
                "aliases": aliases,
                "dump_date": date,
            }
        )
    return out


def _finish_mentions(
    sel: Selection,
    found: list[tuple],
    cfg: MineConfig,
    types: dict[str, str],
    date: str | None,
    counts: Counter,
) -> list[dict]:
    """Worker mention tuples -> mentions rows: targets resolved, typed and classified; drops counted."""
    from wiki_data.mentions import MentionResolver, Target, position_bucket, surface_match

    variant = cfg.variant if cfg.lang == "zh" else None
    convert = _converter(variant)
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
                "lang": cfg.lang,
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
                "dump_date": date,
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
    return rows


RUN_SETTINGS = "mine-run.json"


def _file_id(path: Path | None) -> list | None:
    """A file as a resume compares it: name and size (None for a file that is not given)."""
    if path is None:
        return None
    return [path.name, path.stat().st_size if path.exists() else None]


def run_settings(cfg: MineConfig, files) -> dict:
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
    from eat.console import make_progress
    from eat.io import write_json

    if cfg.lang == "zh":
        from wiki_data.normalize import ZH_VARIANTS

        if cfg.variant.lower() not in ZH_VARIANTS:
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
    sel = select_pages(files, cfg.mentions, _converter(cfg.variant if cfg.lang == "zh" else None))
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

    runner = _Runner(cfg)
    try:
        if files.index is not None:
            n_shards, plans = _stream_shards(files, sel, cfg)
            mine_idx = _my_shards(n_shards, cfg)
            todo = [k for k in mine_idx if not (cfg.resume and (out / shard_name(k)).exists())]
            if cfg.resume:
                log.info(f"--resume: {len(mine_idx) - len(todo)} of {len(mine_idx)} shards already done")
            plan_list = list(plans(todo))
            total = sum(len(t[4]) for p in plan_list for t in p.tasks)
            _run_multistream(runner, plan_list, out, sel, cfg, types, files.date, total, make_progress)
        else:
            _run_plain(runner, files, out, sel, cfg, types, make_progress)
    finally:
        runner.close()

    stats = collect_stats(out)
    stats.update(lang=cfg.lang, dump_date=files.date, sql=sel.sql_stats, files={
        "pages": str(files.pages), "index": str(files.index) if files.index else None,
    })  # fmt: skip
    write_json(out / "stats.json", stats)
    if cfg.mentions and "mentions" in stats:
        from wiki_data.mentions import write_mention_report

        write_mention_report(stats["mentions"], out)
    if cfg.jsonl:
        write_pairs_jsonl(out)
    print_summary(stats)
    return stats


def _run_multistream(runner, plans, out, sel, cfg, types, date, total, make_progress) -> None:
    def tasks():
        for plan in plans:
            if not plan.tasks:  # nothing wanted in this shard: an empty shard still marks it done
                yield (plan, True), ("pages", [])
            for i, task in enumerate(plan.tasks):
                yield (plan, i == len(plan.tasks) - 1), task

    rows: list[tuple] = []
    mentions: list[tuple] = []
    counts = Counter()
    with make_progress() as progress:
        bar = progress.add_task(f"{cfg.lang}wiki pages", total=total, unit="pages")
        for (plan, last), (r, m, c, n) in runner.run(tasks()):
            rows.extend(r)
            mentions.extend(m)
            counts.update(c)
            progress.advance(bar, n)
            if last:
                counts.update(plan.counts)
                counts["kept"] += len(rows)
                found = _finish_mentions(sel, mentions, cfg, types, date, counts) if cfg.mentions else None
                _write_shard(out, plan.index, _finish_rows(sel, rows, cfg, types, date), counts, found)
                rows, mentions, counts = [], [], Counter()


def _run_plain(
    runner, files: DumpFiles, out: Path, sel: Selection, cfg: MineConfig, types, make_progress
) -> None:
    """A non-multistream dump: read once here, wanted pages fanned out to workers in batches."""
    from wiki_data.pages import iter_raw_pages, page_id_of

    per_shard = PAGES_PER_PLAIN_STREAM * cfg.streams_per_shard
    done = {int(p.stem.split("-")[1]) for p in shard_paths(out)} if cfg.resume else set()

    def my_shard(k: int) -> bool:
        return k % cfg.num_shards == cfg.shard_index if cfg.num_shards > 1 else True

    def tasks():
        ordinal = 0
        counts = Counter()
        batch: list[bytes] = []
        shard = 0
        for raw in iter_raw_pages(files.pages):
            k = ordinal // per_shard
            ordinal += 1
            if k != shard:
                if my_shard(shard) and shard not in done:
                    yield (shard, True, counts), ("pages", batch)
                batch, counts, shard = [], Counter(), k
            if not my_shard(k) or k in done:
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
                yield (shard, False, None), ("pages", batch)
                batch = []
        if ordinal == 0 or (my_shard(shard) and shard not in done):
            yield (shard, True, counts), ("pages", batch)

    rows: list[tuple] = []
    mentions: list[tuple] = []
    counts = Counter()
    date = files.date
    with make_progress() as progress:
        bar = progress.add_task(f"{cfg.lang}wiki pages", total=len(sel.titles), unit="pages")
        for (shard, last, sql_counts), (r, m, c, n) in runner.run(tasks()):
            rows.extend(r)
            mentions.extend(m)
            counts.update(c)
            progress.advance(bar, n)
            if last:
                counts.update(sql_counts)
                counts["kept"] += len(rows)
                found = _finish_mentions(sel, mentions, cfg, types, date, counts) if cfg.mentions else None
                _write_shard(out, shard, _finish_rows(sel, rows, cfg, types, date), counts, found)
                rows, mentions, counts = [], [], Counter()


# ---------------------------------------------------------------------------------------- stats/merge


def collect_stats(out: Path) -> dict:
    """Totals over the shards in `out` (each shard carries its own counts, so resumed runs add up)."""
    total = Counter()
    paths = shard_paths(out)
    for path in paths:
        total.update(shard_stats(path))
    pages = {
        "pages_seen": total.get("pages_seen", 0),
        "with_en_link": total.get("with_en_link", 0),
        "wanted": total.get("pages_seen", 0) - sum(total.get(r, 0) for r in DROP_REASONS[:5]),
        "kept": total.get("kept", 0),
    }
    dropped = {r: total.get(r, 0) for r in DROP_REASONS}
    stats = {
        "pages": pages,
        "dropped": dropped,
        "streams": {"total": total.get("streams", 0), "read": total.get("streams_read", 0)},
        "shards": len(paths),
    }
    from wiki_data.mentions import mention_stats

    if (mentions := mention_stats(total)) is not None:
        stats["mentions"] = mentions
    return stats


def print_summary(stats: dict) -> None:
    from rich.table import Table

    from eat.console import report

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


def write_pairs_jsonl(out: Path) -> int:
    from eat.io import write_jsonl
    from wiki_data.schema import iter_pairs

    return write_jsonl(out / "pairs.jsonl", iter_pairs(out))


def merge(inputs: list[Path], out: Path) -> dict:
    """Combine mining outputs (e.g. one per machine): dedupe by (lang, page_id), sum stats, renumber shards."""
    from eat.io import atomic_dir

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError("merge output exists and is not an empty folder; choose a new --out", path=out)
    for folder in inputs:  # every input checked before anything is written
        if not shard_paths(folder):
            raise UserError("no pairs-*.parquet shards here", path=folder)
    if out.exists():
        out.rmdir()
    with atomic_dir(out) as tmp:  # the merged folder appears whole, or not at all
        return _merge_into(inputs, tmp, out)


def _merge_into(inputs: list[Path], out: Path, final: Path) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from eat.io import atomic_path, write_json

    seen: set[tuple[str, int]] = set()
    seen_mentions: set[tuple[str, int]] = set()
    total = Counter()
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
                table = table.filter(pc.equal(__import__("pyarrow").array(keep), True))
                counts["kept"] = counts.get("kept", 0) - dropped
                counts["pages_seen"] = counts.get("pages_seen", 0) - dropped
            total.update(counts)
            meta = {STATS_KEY: json.dumps(dict(sorted(counts.items())), sort_keys=True).encode()}
            table = table.cast(PAIRS_SCHEMA).replace_schema_metadata(meta)
            mentions = path.with_name(path.name.replace("pairs-", "mentions-", 1))
            if mentions.is_file():  # the same pages' mentions, deduped by their source page
                m = pq.read_table(mentions)
                pages = list(zip(m["lang"].to_pylist(), m["page_id"].to_pylist(), strict=True))
                fresh = [k not in seen_mentions for k in pages]
                seen_mentions.update(pages)
                m = m.filter(pc.equal(__import__("pyarrow").array(fresh, "bool"), True))
                with atomic_path(out / mention_shard_name(n)) as tmp:
                    pq.write_table(m.cast(MENTIONS_SCHEMA), tmp, compression="zstd")
            with atomic_path(out / shard_name(n)) as tmp:
                pq.write_table(table, tmp, compression="zstd")
            n += 1
    stats = collect_stats(out)
    stats.update(extra)
    if len(langs) > 1:  # a multilingual merge: no single language or dump date describes it
        stats.update(lang=",".join(sorted(langs)), dump_date=None, sql=None)
    stats["merged_from"] = [str(p) for p in inputs]
    write_json(out / "stats.json", stats)
    log.info("merged %d folders into %s", len(inputs), final)
    return stats


def _converter(variant: str | None):
    """Chinese variant conversion, or identity when no variant applies."""
    if not variant:
        return str
    import functools

    from wiki_data.normalize import to_variant

    return functools.partial(to_variant, variant=variant)
