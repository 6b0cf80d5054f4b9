"""The demo's sample Wikipedia: our own articles (eat/data/demo/entities.yaml) written as real dump files.

`build_demo_dumps(out_dir)` writes, per language, the files Wikimedia publishes under their standard names:
`{lang}wiki-{date}-pages-articles-multistream.xml.bz2` with its `-multistream-index.txt.bz2`, and the
MySQL dumps `-page.sql.gz`, `-langlinks.sql.gz`, `-page_props.sql.gz`, `-redirect.sql.gz`; plus a small
Wikidata JSON dump `wikidata-{date}-all.json.gz` of the demo items for `eat wiki types`. The output is
byte-for-byte deterministic, so `eat demo` builds it on the fly instead of shipping binary files, and the
same pages exercise every path the miner takes on a real dump: redirects, a disambiguation page, a page
without an English link, infoboxes, references, language templates and Chinese -{...}- markup.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape

import yaml

from wiki_data.sql_dump import format_table_dump

DEMO_DATE = "20260101"
DEMO_LANGS = ("zh", "ja")
_TIMESTAMP = "2026-01-01T00:00:00Z"

# Wikidata classes of the demo articles (real class ids, so the shipped class -> type mapping applies);
# lake and island are reached only through P279 edges written into the demo Wikidata dump.
CLASS_IDS = {"human": "Q5", "city": "Q515", "village": "Q532", "university": "Q3918", "business": "Q4830453",
             "organization": "Q43229", "river": "Q4022", "mountain": "Q8502", "lake": "Q23397", "island": "Q23442"}  # fmt: skip
_SUBCLASS_OF = {"Q23397": "Q15324", "Q15324": "Q618123", "Q23442": "Q618123"}  # lake, body of water, island
# Items of the demo get ids in a range of their own: they are our articles, not real Wikidata items.
_FIRST_DEMO_QID = 990_001


def demo_entities() -> dict[str, list[dict]]:
    text = resources.files("eat").joinpath("data/demo/entities.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def demo_test_file(lang: str) -> Path:
    """The small labelled span-JSONL test set shipped for `lang` (our own sentences)."""
    return Path(str(resources.files("eat").joinpath(f"data/demo/test_{lang}.jsonl")))


def _page_xml(page_id: int, title: str, text: str, redirect: str | None = None) -> str:
    redirect_el = f'    <redirect title="{escape(redirect, {chr(34): "&quot;"})}" />\n' if redirect else ""
    return (
        "  <page>\n"
        f"    <title>{escape(title)}</title>\n"
        "    <ns>0</ns>\n"
        f"    <id>{page_id}</id>\n"
        f"{redirect_el}"
        "    <revision>\n"
        f"      <id>{page_id * 10}</id>\n"
        f"      <timestamp>{_TIMESTAMP}</timestamp>\n"
        "      <contributor><username>eat-ner demo</username><id>1</id></contributor>\n"
        "      <model>wikitext</model>\n"
        "      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>\n'
        "    </revision>\n"
        "  </page>\n"
    )


def _siteinfo(lang: str) -> str:
    return (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="'
        + lang
        + '">\n  <siteinfo>\n'
        f"    <sitename>Wikipedia</sitename>\n    <dbname>{lang}wiki</dbname>\n"
        '    <namespaces>\n      <namespace key="0" case="first-letter" />\n    </namespaces>\n'
        "  </siteinfo>\n"
    )


_SECTIONS = {"zh": ("历史", "{}的历史。", "参考文献"), "ja": ("歴史", "{}の歴史。", "脚注")}


def _body(lead: str, title: str, lang: str) -> str:
    """The lead followed by a short body (headings, a reference, a category), as real articles have."""
    history, sentence, notes = _SECTIONS.get(lang, ("History", "History of {}.", "References"))
    return (
        f"{lead}\n\n== {history} ==\n{sentence.format(title)}<ref>{title}</ref>\n\n== {notes} ==\n"
        f"<references />\n\n[[Category:{title}]]\n"
    )


def build_demo_dumps(out_dir: str | Path, langs=DEMO_LANGS, pages_per_stream: int = 8) -> Path:
    """Write the demo dumps for `langs` into `out_dir` (returns it)."""
    import bz2

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entities = demo_entities()
    qids = _demo_qids(entities)
    for lang in langs:
        pages: list[tuple[int, str, str, str | None]] = []  # id, title, text, redirect target
        page_rows, ll_rows, pp_rows, rd_rows = [], [], [], []
        next_id = 1000
        for article in entities[lang]:
            next_id += 1
            pid, title = next_id, article["title"]
            pages.append((pid, title, _body(article["lead"], title, lang), None))
            if article.get("en"):
                ll_rows.append((pid, "en", article["en"]))
            ll_rows.append((pid, "de", f"{title} (de)"))
            if article.get("disambiguation"):
                pp_rows.append((pid, "disambiguation", "", None))
            elif (lang, title) in qids:
                pp_rows.append((pid, "wikibase_item", qids[lang, title], None))
            for alias in article.get("redirects", []):
                next_id += 1
                pages.append((next_id, alias, f"#REDIRECT [[{title}]]", title))
                rd_rows.append((next_id, 0, title.replace(" ", "_"), "", ""))
        for pid, title, text, redirect in pages:
            page_rows.append(
                (pid, 0, title.replace(" ", "_"), 1 if redirect else 0, 0, 0.5, _TIMESTAMP.replace("-", "")[:8] + "000000",
                 None, pid * 10, len(text.encode()), "wikitext", None)
            )  # fmt: skip
        # A talk-namespace page: in the page table but never an article.
        page_rows.append((next_id + 1, 1, pages[0][1].replace(" ", "_"), 0, 0, 0.5, "20260101000000", None, 1, 10, "wikitext", None))  # fmt: skip
        prefix = out / f"{lang}wiki-{DEMO_DATE}"
        _write_multistream(prefix, lang, pages, pages_per_stream, bz2)
        for table, rows in (
            ("page", page_rows),
            ("langlinks", ll_rows),
            ("page_props", pp_rows),
            ("redirect", rd_rows),
        ):
            Path(f"{prefix}-{table}.sql.gz").write_bytes(format_table_dump(table, rows, rows_per_insert=7))
    (out / f"wikidata-{DEMO_DATE}-all.json.gz").write_bytes(
        gzip.compress(_wikidata_dump(entities, qids), mtime=0)
    )
    return out


def _demo_qids(entities: dict[str, list[dict]]) -> dict[tuple[str, str], str]:
    """One item id per English title (shared across languages), or per article without one."""
    by_key: dict[str, str] = {}
    out: dict[tuple[str, str], str] = {}
    for lang, articles in entities.items():
        for article in articles:
            if article.get("disambiguation") or not article.get("class"):
                continue
            key = article.get("en") or f"{lang}:{article['title']}"
            by_key.setdefault(key, f"Q{_FIRST_DEMO_QID + len(by_key)}")
            out[lang, article["title"]] = by_key[key]
    return out


def _claim(prop: str, target: str) -> dict:
    value = {"entity-type": "item", "numeric-id": int(target[1:]), "id": target}
    snak = {"snaktype": "value", "property": prop, "datavalue": {"value": value, "type": "wikibase-entityid"},
            "datatype": "wikibase-item"}  # fmt: skip
    return {"mainsnak": snak, "type": "statement", "rank": "normal"}


def _wikidata_dump(entities: dict[str, list[dict]], qids: dict[tuple[str, str], str]) -> bytes:
    """A Wikidata JSON dump in the official layout: '[', one entity per line ending in ',', ']'."""
    items: dict[str, dict] = {}
    for lang, articles in entities.items():
        for article in articles:
            qid = qids.get((lang, article["title"]))
            if qid is None:
                continue
            item = items.setdefault(qid, {"type": "item", "id": qid, "labels": {},
                                          "claims": {"P31": [_claim("P31", CLASS_IDS[article["class"]])]}, "sitelinks": {}})  # fmt: skip
            if article.get("en"):
                item["labels"]["en"] = {"language": "en", "value": article["en"]}
            item["labels"][lang] = {"language": lang, "value": article["title"]}
            item["sitelinks"][f"{lang}wiki"] = {
                "site": f"{lang}wiki",
                "title": article["title"],
                "badges": [],
            }
    for child, parent in _SUBCLASS_OF.items():
        items[child] = {"type": "item", "id": child, "labels": {},
                        "claims": {"P279": [_claim("P279", parent)]}, "sitelinks": {}}  # fmt: skip
    # Key order as in the real dump (type, id, labels, claims, sitelinks): streaming readers rely on it.
    lines = [json.dumps(item, ensure_ascii=False) for _, item in sorted(items.items())]
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode("utf-8")


def _write_multistream(prefix: Path, lang: str, pages, pages_per_stream: int, bz2) -> None:
    """Multistream layout: siteinfo stream, streams of N pages, closing stream; index = offset:id:title."""
    streams = [_siteinfo(lang).encode()]
    groups = [pages[i : i + pages_per_stream] for i in range(0, len(pages), pages_per_stream)]
    streams += ["".join(_page_xml(*p) for p in group).encode() for group in groups]
    streams.append(b"</mediawiki>\n")
    index_lines = []
    offset = 0
    with open(f"{prefix}-pages-articles-multistream.xml.bz2", "wb") as fh:
        for i, data in enumerate(streams):
            blob = bz2.compress(data, 9)
            if 1 <= i <= len(groups):
                index_lines += [f"{offset}:{pid}:{title}" for pid, title, _, _ in groups[i - 1]]
            fh.write(blob)
            offset += len(blob)
    with open(f"{prefix}-pages-articles-multistream-index.txt.bz2", "wb") as fh:
        fh.write(bz2.compress(("\n".join(index_lines) + "\n").encode("utf-8"), 9))
