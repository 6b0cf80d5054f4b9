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
from wiki_data.schema import PAIRS_SCHEMA, pairs_table, shard_name, shard_paths

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

    def status_of(self, page_id: int) -> int:
        return self.status[page_id] if 0 <= page_id < len(self.status) else UNKNOWN

    def en_link(self, page_id: int) -> int:
        return self.has_en[page_id] if 0 <= page_id < len(self.has_en) else 0


def _title(raw: object) -> str:
    return str(raw).replace("_", " ")


def select_pages(files: DumpFiles) -> Selection:
    """Read the tables once and decide the wanted pages (before any wikitext is parsed)."""
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
    if files.redirects is not None:
        by_title = {t: pid for pid, t in titles.items()}
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
        sql_stats["redirect"] = _sql_summary(red)
    has_en = bytearray(max_id + 1)
    for pid in en_titles:
        if pid <= max_id:
            has_en[pid] = 1
    wanted_en = {pid: en_titles[pid] for pid in titles}
    wanted_qids = {pid: qids[pid] for pid in titles if pid in qids}
    return Selection(status, titles, wanted_en, wanted_qids, aliases, sql_stats, has_en)


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


def _write_shard(out: Path, index: int, rows: list[dict], counts: Counter) -> None:
    import pyarrow.parquet as pq

    from eat.io import atomic_path

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


def _init_pool_worker(lang: str, variant: str | None, timeout: float) -> None:
    """Workers leave Ctrl-C to the parent, which stops them: no traceback from every worker, no hang."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(lang, variant, timeout)


class _Runner:
    """Runs tasks on a process pool (or in-process for one worker), in order, with a bounded queue.

    A ProcessPoolExecutor rather than multiprocessing.Pool: when a worker dies (OOM killer, kill -9) Pool
    waits for its task forever, while the executor fails the task with BrokenProcessPool.
    """

    def __init__(self, cfg: MineConfig):
        self.cfg = cfg
        self.pool = None
        variant = cfg.variant if cfg.lang == "zh" else None
        if cfg.workers > 1:
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                cfg.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_pool_worker,
                initargs=(cfg.lang, variant, cfg.page_timeout),
            )
        else:
            init_worker(cfg.lang, variant, cfg.page_timeout)

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
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
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
    sel = select_pages(files)
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
    counts = Counter()
    with make_progress() as progress:
        bar = progress.add_task(f"{cfg.lang}wiki pages", total=total, unit="pages")
        for (plan, last), (r, c, n) in runner.run(tasks()):
            rows.extend(r)
            counts.update(c)
            progress.advance(bar, n)
            if last:
                counts.update(plan.counts)
                counts["kept"] += len(rows)
                _write_shard(out, plan.index, _finish_rows(sel, rows, cfg, types, date), counts)
                rows, counts = [], Counter()


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
    counts = Counter()
    with make_progress() as progress:
        bar = progress.add_task(f"{cfg.lang}wiki pages", total=len(sel.titles), unit="pages")
        for (shard, last, sql_counts), (r, c, n) in runner.run(tasks()):
            rows.extend(r)
            counts.update(c)
            progress.advance(bar, n)
            if last:
                counts.update(sql_counts)
                counts["kept"] += len(rows)
                _write_shard(out, shard, _finish_rows(sel, rows, cfg, types, files.date), counts)
                rows, counts = [], Counter()


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
    return {
        "pages": pages,
        "dropped": dropped,
        "streams": {"total": total.get("streams", 0), "read": total.get("streams_read", 0)},
        "shards": len(paths),
    }


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
