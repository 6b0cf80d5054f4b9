"""Benchmark `eat wiki mine` against a naive miner on a synthetic or a real-page multistream dump.

    .venv/bin/python bench/mine_bench.py [--pages 20000] [--work-dir /tmp/eat-mine-bench]
    .venv/bin/python bench/mine_bench.py --real --mentions --pages 5000     # real jawiki pages, with mentions

--real builds the dump from the real jawiki sample in ../shared/data/wikipedia (238 pages: articles, redirects
and project pages in the real dump's proportions), replicated under fresh ids and titles up to --pages,
about 2/3 of the articles English-linked; every link target of the sample is a page of the page table (2/3
English-linked too), so link resolution with --mentions meets real proportions of resolvable targets.
--mentions adds `eat wiki mine --mentions` runs (lead and the first 2 sections' link anchors) and the
cost ratio lead-only / with mentions (target: body parsing costs at most 3x the lead-only rate).

The generator writes our own pseudo-articles (lead with bold name, infobox, refs, pronunciation; a body
several times longer with sections, tables, citation templates, navboxes and categories), ~2/3 of the
main-namespace pages English-linked, plus redirects, non-article pages and the page/langlinks/page_props/
redirect SQL tables. Printed: pages/s for
  - baseline: one process, lxml iterparse of every page, mwparserfromhell strip_code of the whole
    article, first sentence, then the same SQL joins (measured on the first --baseline-pages pages),
  - ours with 1 and 2 workers (end to end: SQL tables, streams, leads, shards),
  - raw bz2 decompression of the whole file.
Targets: ours(2) >= 5x baseline, ours(2)/ours(1) >= 1.6 (--real: >= 1.7, and ours(1) >= 400 pages/s).
"""

from __future__ import annotations

import argparse
import bz2
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LANG = "xx"
DATE = "20240101"
SYLLABLES = [
    "ka",
    "ri",
    "to",
    "mo",
    "na",
    "se",
    "lu",
    "vi",
    "an",
    "el",
    "or",
    "is",
    "um",
    "ba",
    "de",
    "go",
    "ha",
    "ji",
    "ne",
    "po",
    "qu",
    "ra",
    "su",
    "te",
    "wo",
    "ya",
    "ze",
]


def word(rng: random.Random, lo: int = 1, hi: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(lo, hi)))


def sentence(rng: random.Random, titles: list[str], n: int | None = None) -> str:
    words = []
    for _ in range(n or rng.randint(8, 20)):
        r = rng.random()
        if r < 0.08:
            t = rng.choice(titles)
            words.append(f"[[{t}]]" if rng.random() < 0.5 else f"[[{t}|{word(rng)}]]")
        elif r < 0.1:
            words.append(f"''{word(rng)}''")
        else:
            words.append(word(rng))
    text = " ".join(words)
    if rng.random() < 0.3:
        text += f'<ref name="r{rng.randint(1, 99)}">{{{{cite web|url=https://example.org/{word(rng)}|title={word(rng)}|date=2020}}}}</ref>'
    return text[0].upper() + text[1:] + "."


def article(rng: random.Random, title: str, titles: list[str]) -> str:
    name = title
    kind = rng.choice(["person", "settlement", "company", "film"])
    lead = (
        f"{{{{Short description|{word(rng)} {word(rng)}}}}}\n"
        f"{{{{Infobox {kind}\n| name = {name}\n| image = {word(rng)}.jpg\n"
        f"| coordinates = {{{{coord|{rng.randint(0, 89)}|{rng.randint(0, 59)}|N|{rng.randint(0, 179)}|E}}}}\n"
        + "".join(f"| {word(rng)} = {word(rng)} {word(rng)}\n" for _ in range(8))
        + "}}\n"
        f"'''{name}''' ({{{{lang-en|{name}}}}}; {{{{IPA|{word(rng)}}}}}<ref>{{{{cite book|title={word(rng)}}}}}</ref>) "
        f"is a {word(rng)} {word(rng)} in [[{rng.choice(titles)}]]. "
        + " ".join(sentence(rng, titles) for _ in range(rng.randint(2, 4)))
        + "\n\n"
    )
    body = []
    for _ in range(rng.randint(4, 7)):
        body.append(f"== {word(rng).title()} {word(rng)} ==\n")
        for _ in range(rng.randint(2, 4)):
            body.append(" ".join(sentence(rng, titles) for _ in range(rng.randint(3, 7))) + "\n\n")
        if rng.random() < 0.5:
            rows = "".join(
                f"|-\n| {word(rng)} || {rng.randint(1900, 2020)} || [[{rng.choice(titles)}]] || {{{{flag|{word(rng)}}}}}\n"
                for _ in range(rng.randint(4, 12))
            )
            body.append(
                f'{{| class="wikitable sortable"\n! {word(rng)} !! Year !! Place !! Flag\n{rows}|}}\n\n'
            )
    body.append("== References ==\n{{Reflist|30em}}\n\n== External links ==\n")
    body.append("".join(f"* [https://example.org/{word(rng)} {word(rng)} {word(rng)}]\n" for _ in range(3)))
    body.append(
        f"{{{{Navbox\n| title = {word(rng)}\n"
        + "".join(f"| list{i} = [[{rng.choice(titles)}]] • [[{rng.choice(titles)}]]\n" for i in range(1, 6))
        + "}}\n"
    )
    body.append("".join(f"[[Category:{word(rng)} {word(rng)}]]\n" for _ in range(4)))
    return lead + "".join(body)


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def generate(folder: Path, n_pages: int, seed: int = 0) -> Path:
    from wiki_data.multistream import write_multistream
    from wiki_data.sql_dump import format_table_dump

    stamp = folder / f".done-{n_pages}-{seed}"
    if stamp.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    titles = []
    seen = set()
    while len(titles) < n_pages:
        t = f"{word(rng, 2, 3).title()} {word(rng, 2, 3).title()}"
        if t not in seen:
            seen.add(t)
            titles.append(t)
    page_rows, ll_rows, pp_rows, rd_rows = [], [], [], []
    articles = []

    def pages():
        for i, title in enumerate(titles):
            pid = i + 1
            r = rng.random()
            if r < 0.05:  # project page
                ns, text, redirect = 4, f"Project page {sentence(rng, titles)}", None
            elif r < 0.15:  # redirect
                target = rng.choice(titles[:i] or titles)
                ns, text, redirect = 0, f"#REDIRECT [[{target}]]", target
            else:
                ns, text, redirect = 0, article(rng, title, titles), None
                articles.append(pid)
                if rng.random() < 2 / 3:
                    ll_rows.append((pid, "en", title.replace(" ", "_")))
                pp_rows.append((pid, "wikibase_item", f"Q{1000 + pid}", None))
                if rng.random() < 0.01:
                    pp_rows.append((pid, "disambiguation", "", None))
            ptitle = title.replace(" ", "_")
            page_rows.append(
                (
                    pid,
                    ns,
                    ptitle,
                    1 if redirect else 0,
                    0,
                    0.5,
                    "20240101000000",
                    None,
                    pid,
                    len(text),
                    "wikitext",
                    None,
                )
            )
            if redirect:
                rd_rows.append((pid, 0, redirect.replace(" ", "_"), "", ""))
            red = f'<redirect title="{esc(redirect)}" />' if redirect else ""
            yield (
                f"  <page>\n    <title>{esc(title if ns == 0 else 'Project:' + title)}</title>\n    <ns>{ns}</ns>\n"
                f"    <id>{pid}</id>\n    {red}<revision>\n      <id>{pid * 10}</id>\n"
                f'      <text bytes="{len(text)}" xml:space="preserve">{esc(text)}</text>\n    </revision>\n  </page>\n'
            )

    prefix = folder / f"{LANG}wiki-{DATE}-"
    write_multistream(
        pages(),
        f"{prefix}pages-articles-multistream.xml.bz2",
        f"{prefix}pages-articles-multistream-index.txt.bz2",
    )
    page_cols = ["page_id", "page_namespace", "page_title", "page_is_redirect", "page_is_new", "page_random",
                 "page_touched", "page_links_updated", "page_latest", "page_len", "page_content_model", "page_lang"]  # fmt: skip
    Path(f"{prefix}page.sql.gz").write_bytes(format_table_dump("page", page_rows, page_cols, 2000))
    Path(f"{prefix}langlinks.sql.gz").write_bytes(
        format_table_dump("langlinks", ll_rows, ["ll_from", "ll_lang", "ll_title"], 2000)
    )
    Path(f"{prefix}page_props.sql.gz").write_bytes(
        format_table_dump("page_props", pp_rows, ["pp_page", "pp_propname", "pp_value", "pp_sortkey"], 2000)
    )
    Path(f"{prefix}redirect.sql.gz").write_bytes(
        format_table_dump(
            "redirect", rd_rows, ["rd_from", "rd_namespace", "rd_title", "rd_interwiki", "rd_fragment"], 2000
        )
    )
    stamp.write_text(f"{len(articles)} articles, {len(ll_rows)} English-linked\n")
    return folder


REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikipedia" / "jawiki-20230501-pages-articles-sample238.xml.bz2"  # fmt: skip


def generate_real(folder: Path, n_pages: int) -> Path:
    """A multistream jawiki dump of --pages pages copied from the real sample, with SQL tables to match."""
    import re
    import zlib

    from wiki_data.mentions import link_title
    from wiki_data.multistream import write_multistream
    from wiki_data.pages import iter_raw_pages, parse_page
    from wiki_data.sql_dump import format_table_dump

    stamp = folder / f".done-real-{n_pages}"
    if stamp.exists():
        return folder
    if not REAL_SAMPLE.is_file():
        sys.exit(f"error: the real jawiki sample is not at {REAL_SAMPLE}")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sample = [parse_page(raw) for raw in iter_raw_pages(REAL_SAMPLE)]
    english = lambda title: zlib.crc32(title.encode()) % 3 != 0  # noqa: E731 (2 in 3 titles)
    page_rows, ll_rows, pp_rows, rd_rows = [], [], [], []
    redirect_re = re.compile(r"#(?:REDIRECT|転送)\s*\[\[([^\]|#]+)", re.I)
    n_articles = 0

    def pages():
        nonlocal n_articles
        for i in range(n_pages):
            src = sample[i % len(sample)]
            copy = i // len(sample)
            title = src.title if copy == 0 else f"{src.title} ({copy})"
            pid = i + 1
            is_redirect = src.redirect or bool(src.ns == 0 and redirect_re.match(src.text))
            page_rows.append((pid, src.ns, title.split(":", 1)[1] if src.ns else title, int(is_redirect)))
            if is_redirect and (m := redirect_re.match(src.text)):
                rd_rows.append((pid, 0, m.group(1).strip(), "", ""))
            elif src.ns == 0:
                n_articles += 1
                if english(title):
                    ll_rows.append((pid, "en", f"EN {title}"))
                pp_rows.append((pid, "wikibase_item", f"Q{pid}", None))
            red = f'<redirect title="{esc(title)}" />' if is_redirect else ""
            yield (
                f"  <page>\n    <title>{esc(title)}</title>\n    <ns>{src.ns}</ns>\n    <id>{pid}</id>\n    {red}"
                f'<revision>\n      <id>{pid * 10}</id>\n      <text xml:space="preserve">{esc(src.text)}</text>\n'
                "    </revision>\n  </page>\n"
            )

    prefix = folder / "jawiki-20230501-"
    write_multistream(pages(), f"{prefix}pages-articles-multistream.xml.bz2", f"{prefix}pages-articles-multistream-index.txt.bz2")  # fmt: skip
    known = {t for _, ns, t, _ in page_rows if ns == 0}
    targets = {
        link_title(m.group(1))
        for p in sample
        if p.ns == 0
        for m in re.finditer(r"\[\[([^\[\]|{}<>]+)", p.text)
    }
    pid = n_pages
    for title in sorted(t for t in targets - known if t and ":" not in t):
        pid += 1
        page_rows.append((pid, 0, title, 0))
        if english(title):
            ll_rows.append((pid, "en", f"EN {title}"))
            pp_rows.append((pid, "wikibase_item", f"Q{pid}", None))
    page_rows = [(i, ns, t.replace(" ", "_"), r) for i, ns, t, r in page_rows]
    cols = {"page": ["page_id", "page_namespace", "page_title", "page_is_redirect"],
            "langlinks": ["ll_from", "ll_lang", "ll_title"], "page_props": ["pp_page", "pp_propname", "pp_value", "pp_sortkey"],
            "redirect": ["rd_from", "rd_namespace", "rd_title", "rd_interwiki", "rd_fragment"]}  # fmt: skip
    for table, rows in (
        ("page", page_rows),
        ("langlinks", ll_rows),
        ("page_props", pp_rows),
        ("redirect", rd_rows),
    ):
        Path(f"{prefix}{table}.sql.gz").write_bytes(format_table_dump(table, rows, cols[table], 2000))
    stamp.write_text(f"{n_articles} articles, {len(ll_rows)} English-linked pages (incl. link targets)\n")
    return folder


def baseline(folder: Path, limit: int, lang: str = LANG) -> tuple[int, float, int]:
    """Naive miner: every page parsed, whole article through strip_code, joins after."""
    import mwparserfromhell
    from lxml import etree

    from wiki_data.discover import discover
    from wiki_data.lead import split_sentences
    from wiki_data.selection import select_pages

    t0 = time.perf_counter()
    files = discover(lang, folder)
    sel = select_pages(files)
    n = kept = 0
    with bz2.open(files.pages, "rb") as fh:
        for _, el in etree.iterparse(fh, tag="{*}page"):
            title = el.findtext("{*}title")
            pid = int(el.findtext("{*}id"))
            text = el.findtext("{*}revision/{*}text") or ""
            plain = mwparserfromhell.parse(text).strip_code()
            first = next((s for p in plain.split("\n") for s in split_sentences(p, lang) if title in s), None)
            if first and sel.status_of(pid) == 5 and pid in sel.en_titles:
                kept += 1
            n += 1
            el.clear()
            while el.getprevious() is not None:
                del el.getparent()[0]
            if n >= limit:
                break
    return n, time.perf_counter() - t0, kept


def ours(
    folder: Path, out: Path, workers: int, lang: str = LANG, mentions: bool = False
) -> tuple[int, float, dict]:
    from wiki_data.mine import MineConfig, mine

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    stats = mine(MineConfig(lang=lang, dump_dir=folder, out=out, workers=workers, mentions=mentions))
    return stats["pages"]["pages_seen"], time.perf_counter() - t0, stats


def decompress_rate(folder: Path) -> tuple[float, float]:
    path = next(folder.glob("*multistream.xml.bz2"))
    t0 = time.perf_counter()
    total = 0
    with bz2.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
    return total, time.perf_counter() - t0


def _burn(_: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.perf_counter() - t0


def parallel_headroom() -> float:
    """How much faster 2 CPU-bound processes finish 2 jobs than 1 does: ~2.0 on 2 idle cores.

    Printed next to ours(2)/ours(1) because a shared or hyper-threaded machine caps any 2-worker speed-up.
    """
    import multiprocessing as mp

    one = _burn(0)
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_burn, [0])  # warm up the workers
        t0 = time.perf_counter()
        pool.map(_burn, [0, 1], chunksize=1)
        two = time.perf_counter() - t0
    return 2 * one / two


# zhwiki's size (approximate public figures for 2025, not measured here): pages in pages-articles (articles,
# redirects and other namespaces), main-namespace articles, and articles with an English interlanguage link.
ZHWIKI = {"pages": 4_500_000, "articles": 1_450_000, "english_linked": 850_000}


def zhwiki_projection(rates: dict, stamp: str) -> str:
    """Hours for zhwiki at the rates measured on the real-page dump, as a Markdown table.

    The bench dump's pages are 79% articles and about half of them are wanted; zhwiki's 4.5M pages are
    about 19% wanted. A page that is not wanted costs only its share of decompression (its stream is skipped
    unread when it holds no wanted page), far less than a parsed one, so charging every zhwiki page the
    measured all-pages rate gives an upper bound. Workers beyond 2 are scaled by the measured
    1 -> 2 worker efficiency, the only parallel figure this 2-core machine can give.
    """
    from bench.report import md_table

    rows = []
    for mentions in (False, True):
        if (1, mentions) not in rates:
            continue
        one = rates[(1, mentions)]
        eff = min(1.0, rates.get((2, mentions), 2 * one) / (2 * one))
        row = {"run": "with --mentions" if mentions else "lead only", "pages/s, 1 worker": f"{one:,.0f}",
               "1->2 efficiency": f"{eff:.0%}"}  # fmt: skip
        for workers in (1, 8, 32):
            rate = one * (1 + (workers - 1) * eff)
            row[f"hours, {workers} workers"] = f"{ZHWIKI['pages'] / rate / 3600:.2f}"
        rows.append(row)
    return (
        f"zhwiki: ~{ZHWIKI['pages'] / 1e6:.1f}M pages, ~{ZHWIKI['articles'] / 1e6:.2f}M articles, "
        f"~{ZHWIKI['english_linked'] / 1e6:.2f}M with an English link (approximate public figures, not measured "
        f"here). Measured: the rates above on the real-page dump ({stamp}). Upper bound: every zhwiki page is "
        "charged the all-pages rate, though zhwiki's pages are 19% wanted against about half on the bench dump, and a page that is not wanted costs only decompression.\n\n"
        + md_table(rows)
    )


def main() -> None:
    import os

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20000)
    ap.add_argument("--baseline-pages", type=int, default=4000, help="pages the (slow) baseline runs on")
    ap.add_argument("--repeat", type=int, default=1, help="runs of ours per worker count; the best is kept")
    ap.add_argument("--real", action="store_true", help="real jawiki pages instead of synthetic ones")
    ap.add_argument("--mentions", action="store_true", help="also time `eat wiki mine --mentions`")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/eat-mine-bench"))
    ap.add_argument(
        "--out", type=Path, default=None, help="folder for mine_bench.md and .png (default: the work dir)"
    )
    args = ap.parse_args()
    os.environ.setdefault("EAT_NO_PROGRESS", "1")
    import logging

    logging.disable(logging.INFO)

    kind = "real" if args.real else "synthetic"
    lang = "ja" if args.real else LANG
    folder = args.work_dir / f"dump-{kind}"
    t0 = time.perf_counter()
    (generate_real if args.real else generate)(folder, args.pages)
    stamp = next(folder.glob(".done-*")).read_text().strip()
    print(
        f"{kind} dump: {args.pages:,} pages in {folder} ({stamp}); ready in {time.perf_counter() - t0:.1f}s"
    )
    size = sum(p.stat().st_size for p in folder.glob("*.bz2"))
    nbytes, secs = decompress_rate(folder)
    decompress_pages_per_s = args.pages / secs
    print(
        f"raw bz2 decompression : {args.pages / secs:10,.0f} pages/s  ({nbytes / secs / 1e6:.1f} MB/s of XML, {size / 1e6:.1f} MB bz2)"
    )
    bn, bsecs, _ = baseline(folder, args.baseline_pages, lang)
    base_rate = bn / bsecs
    print(f"baseline (1 process)  : {base_rate:10,.1f} pages/s  (first {bn:,} pages, {bsecs:.1f}s)")
    rates: dict[tuple[int, bool], float] = {}
    configs = [(1, False), (2, False)] + ([(1, True), (2, True)] if args.mentions else [])
    mention_stats = None
    for w, with_mentions in configs * args.repeat:  # interleaved, so a burst of other load hits all alike
        n, secs, stats = ours(folder, args.work_dir / f"out{w}", w, lang, with_mentions)
        rates[(w, with_mentions)] = max(rates.get((w, with_mentions), 0.0), n / secs)
        extra = f", {stats['mentions']['mentions']:,} mentions" if with_mentions else ""
        mention_stats = stats.get("mentions") or mention_stats
        print(
            f"ours, {w} worker{'s' if w > 1 else ' '}{' + mentions' if with_mentions else ''}: "
            f"{rates[(w, with_mentions)]:10,.1f} pages/s  ({n:,} pages, {secs:.1f}s, kept {stats['pages']['kept']:,}{extra})"
        )
    # Issue #15 asks 1.7x and 400 pages/s per worker of the real-page dump.
    scaling = 1.7 if args.real else 1.6
    ratios = [
        f"ours(2) / baseline    : {rates[(2, False)] / base_rate:6.1f}x   (target >= 5x)",
        f"ours(2) / ours(1)     : {rates[(2, False)] / rates[(1, False)]:6.2f}x   (target >= {scaling}x)",
    ]
    if args.real:
        ratios.append(
            f"ours(1) per worker    : {rates[(1, False)]:6.0f} pages/s (target >= 400; bz2 decompression alone "
            f"allows {decompress_pages_per_s:,.0f})"
        )
    if args.mentions:
        for w in (1, 2):
            cost = rates[(w, False)] / rates[(w, True)]
            ratios.append(
                f"lead-only / with mentions, {w} worker{'s' if w > 1 else ''}: {cost:5.2f}x slower  (target <= 3x)"
            )
    ratios.append(
        f"machine: {os.cpu_count()} CPUs; 2 CPU-bound processes run {parallel_headroom():.2f}x as fast as 1 right now"
    )
    print("\n".join(ratios))
    from bench.report import bar_chart, md_table, write_markdown

    out = args.out or args.work_dir
    out.mkdir(parents=True, exist_ok=True)
    runs = {
        "raw bz2 decompression (upper bound)": decompress_pages_per_s,
        "baseline, 1 process": base_rate,
    }
    for (w, with_mentions), rate in rates.items():
        runs[f"ours, {w} worker{'s' if w > 1 else ''}{' + mentions' if with_mentions else ''}"] = rate
    table = [
        {"run": k, "pages/s": f"{v:,.1f}", "vs baseline": f"{v / base_rate:.1f}x"} for k, v in runs.items()
    ]
    name = "mine_real_bench" if args.real else "mine_bench"
    sections = [(None, f"{args.pages:,}-page {kind} multistream dump ({size / 1e6:.1f} MB bz2; {stamp})"), (None, md_table(table)),
                (None, "\n".join(f"- {x.replace('  ', ' ').strip()}" for x in ratios))]  # fmt: skip
    if mention_stats:
        m = mention_stats
        sections.append(
            (
                "Mentions",
                f"{m['mentions']:,} mentions in {m['sentences']:,} sentences ({m['mentions_per_1000_pages']:,} per "
                f"1,000 pages scanned); surface differs from the title: {m['surface_differs_share']:.1%}; "
                f"anchor at the sentence start: {m['position']['at the start'] / max(m['mentions'], 1):.1%}",
            )
        )
    if args.real:
        sections.append(("zhwiki projection", zhwiki_projection(rates, stamp)))
        print(sections[-1][1])
    write_markdown(out / f"{name}.md", "bench/mine_bench.py", sections)
    bar_chart(out / f"{name}.png", list(runs), list(runs.values()), "pages per second (log scale)",
              f"Mining a {kind} multistream dump", log=True)  # fmt: skip
    print(f"wrote {out / f'{name}.md'} and {out / f'{name}.png'}")


if __name__ == "__main__":
    main()
