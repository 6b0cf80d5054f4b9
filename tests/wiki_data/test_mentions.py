"""`eat wiki mine --mentions`: link anchors on the real jawiki sample and on hand-written markup."""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from pathlib import Path

import pytest

from wiki_data.mentions import MAX_LINKS_PER_PAGE, link_title, position_bucket, scan_page, surface_match
from wiki_data.mine import MineConfig, mine
from wiki_data.pages import iter_raw_pages, parse_page
from wiki_data.schema import read_mentions, read_pairs
from wiki_data.shards import merge
from wiki_data.sql_dump import SqlDump, format_table_dump

FIXTURES = Path(__file__).parent / "fixtures" / "jawiki"
SAMPLE = "jawiki-20230501-pages-articles-sample238.xml.bz2"
_LINK = re.compile(r"\[\[([^\[\]|{}<>]+?)(?:\|([^\[\]{}<>]*?))?\]\]")
FIRST_EXTRA_ID = 1_000_000
REDIRECT_HOME = "日本"  # synthetic redirects among the link targets point here


def _kind(title: str) -> int:
    """A fixed role for each link target title: 0 red link, 1 article without English link, 2 redirect to
    REDIRECT_HOME, otherwise an English-linked article."""
    return zlib.crc32(title.encode()) % 10


def _sample_articles(shared_data: Path) -> list:
    pages = [parse_page(raw) for raw in iter_raw_pages(shared_data / "wikipedia" / SAMPLE)]
    return [p for p in pages if p.ns == 0 and not p.redirect]


@pytest.fixture(scope="session")
def ja_links(shared_data, tmp_path_factory) -> Path:
    """The real sample with page/langlinks/page_props/redirect tables that also hold every link target."""
    folder = tmp_path_factory.mktemp("ja-links")
    (folder / "jawiki-20230501-pages-articles.xml.bz2").symlink_to(shared_data / "wikipedia" / SAMPLE)
    tables = {
        "page": ["page_id", "page_namespace", "page_title", "page_is_redirect"],
        "langlinks": ["ll_from", "ll_lang", "ll_title"],
        "page_props": ["pp_page", "pp_propname", "pp_value", "pp_sortkey"],
        "redirect": ["rd_from", "rd_namespace", "rd_title", "rd_interwiki", "rd_fragment"],
    }
    rows = {}
    for table, cols in tables.items():
        src = next(FIXTURES.glob(f"*-{table}.sql.gz"))
        have = [c for c in cols if c not in ("pp_sortkey", "rd_interwiki", "rd_fragment")]
        rows[table] = [(*r, *([None] if table == "page_props" else ["", ""] if table == "redirect" else [])) for r in SqlDump(src, table).rows(have)]  # fmt: skip
    known = {str(t).replace("_", " ") for _, ns, t, _ in rows["page"] if ns == 0}
    targets = set()
    for page in _sample_articles(shared_data):
        for m in _LINK.finditer(page.text):
            title = link_title(m.group(1))
            if title and ":" not in title:
                targets.add(title)
    next_id = FIRST_EXTRA_ID
    for title in sorted(targets - known):
        kind = _kind(title)
        if kind == 0:
            continue
        next_id += 1
        rows["page"].append((next_id, 0, title.replace(" ", "_"), int(kind == 2)))
        if kind == 2:
            rows["redirect"].append((next_id, 0, REDIRECT_HOME, "", ""))
        elif kind != 1:
            rows["langlinks"].append((next_id, "en", f"EN {title}"))
            rows["page_props"].append((next_id, "wikibase_item", f"Q{next_id}", None))
    for table, cols in tables.items():
        (folder / f"jawiki-20230501-{table}.sql.gz").write_bytes(format_table_dump(table, rows[table], cols))
    return folder


@pytest.fixture(scope="session")
def mined(ja_links, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ja-mentions") / "out"
    mine(MineConfig(lang="ja", dump_dir=ja_links, out=out, workers=1, mentions=True))
    return out


def test_real_sample_mentions_are_exact_and_clean(mined, shared_data):
    rows = read_mentions(mined).to_pylist()
    assert len(rows) > 1000  # the sample's 189 articles link a lot
    pages = {p.page_id: p.text for p in _sample_articles(shared_data)}
    markup = re.compile(r"\[\[|\]\]|\{\{|\}\}|''|<[a-z/]|\ue000|\ue001|[\U000f0000-\U000fffff]")
    unpiped_or_piped = 0
    for r in rows:
        assert r["sentence"][r["start"] : r["end"]] == r["surface"]
        assert not markup.search(r["sentence"]), r["sentence"]
        assert r["surface"] == r["surface"].strip() and r["surface"]
        assert r["en_title"] and r["page_id"] in pages and r["target_page_id"] != r["page_id"]
        text = pages[r["page_id"]]
        # Most anchors are plain links: the wikitext holds [[target|surface]] or [[surface]] as such.
        raw_targets = {r["target_title"], r["target_title"].replace(" ", "_")}
        if r["via_redirect"]:
            raw_targets = {t for t, k in _link_targets(text) if k == r["surface"]} or raw_targets
        if any(f"[[{t}|{r['surface']}]]" in text or f"[[{t}]]" in text for t in raw_targets) or (
            f"|{r['surface']}]]" in text or f"[[{r['surface']}]]" in text
        ):
            unpiped_or_piped += 1
    assert unpiped_or_piped / len(rows) > 0.95
    # Grouping: n_in_sentence counts the rows of that sentence.
    per_sentence = Counter((r["page_id"], r["sentence_no"]) for r in rows)
    assert all(r["n_in_sentence"] == per_sentence[(r["page_id"], r["sentence_no"])] for r in rows)


def _link_targets(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).strip(), (m.group(2) or m.group(1)).strip()) for m in _LINK.finditer(text)]


def test_real_sample_targets_resolved_and_dropped_by_their_role(mined):
    rows = read_mentions(mined).to_pylist()
    for r in rows:
        role = _kind(r["target_title"]) if r["target_page_id"] >= FIRST_EXTRA_ID else None
        assert role not in (0, 1, 2)  # red links, no-English targets and redirects never appear as targets
        if r["target_page_id"] >= FIRST_EXTRA_ID:
            assert r["en_title"] == f"EN {r['target_title']}" and r["qid"] == f"Q{r['target_page_id']}"
    redirected = [r for r in rows if r["via_redirect"]]
    # The synthetic redirects land on REDIRECT_HOME; the sample's own redirect table adds a few more.
    assert sum(r["target_title"] == REDIRECT_HOME for r in redirected) > len(redirected) / 2
    assert all(r["match"] in ("alias", "differs") for r in redirected)
    stats = json.loads((mined / "stats.json").read_text("utf-8"))["mentions"]
    assert stats["mentions"] == len(rows)
    assert stats["dropped"]["red_link"] > 0 and stats["dropped"]["target_no_en_link"] > 0
    assert sum(stats["position"].values()) == len(rows) and sum(stats["match"].values()) == len(rows)
    assert (mined / "mentions.md").is_file() and (mined / "mentions.png").stat().st_size > 1000


def test_section_links_and_first_letter():
    assert link_title("標準語#各言語における標準語") == "標準語"
    assert link_title("bus_stop") == "Bus stop" and link_title(":en") == "En"
    assert link_title("#歴史") == ""


def scan(text: str, lang: str = "ja", variant: str | None = None, sections: int = 2):
    sentences, counts = scan_page(text, lang, variant, sections)
    return [
        (s.sentence, [(a.surface, a.target, s.sentence[a.start : a.end]) for a in s.anchors])
        for s in sentences
    ], counts


def test_spans_survive_templates_refs_bold_and_nested_links():
    text = (
        "'''東京'''は[[日本]]の[[首都]]<ref>{{cite web|title=[[総務省]]}}</ref>である{{要出典}}。"
        "[[東京大学|'''東大''']]と{{lang|en|[[Tokyo Station|Tokyo]]}}駅、[[千代田区|[[千代田]]区]]がある。"
    )
    out, _ = scan(text)
    assert out[0] == ("東京は日本の首都である。", [("日本", "日本", "日本"), ("首都", "首都", "首都")])
    sentence, anchors = out[1]
    assert sentence == "東大とTokyo駅、千代田区がある。"
    assert anchors == [
        ("東大", "東京大学", "東大"),
        ("Tokyo", "Tokyo Station", "Tokyo"),
        ("千代田区", "千代田区", "千代田区"),
    ]


def test_zh_variant_markup_inside_an_anchor():
    text = "[[北京大學|-{zh-hans:北大; zh-hant:北大學}-]]位于[[北京]]。"
    out, _ = scan(text, lang="zh", variant="zh-cn")
    assert out == [("北大位于北京。", [("北大", "北京大学", "北大"), ("北京", "北京", "北京")])]


def test_link_trail_and_korean_particles():
    out, _ = scan("Он жил в [[Москва|Москв]]е и в [[Киев]]е.", lang="ru")
    assert out[0][1] == [("Москве", "Москва", "Москве"), ("Киеве", "Киев", "Киеве")]
    out, _ = scan("[[서울]]에서 태어났다.", lang="ko")
    assert out[0][1] == [("서울", "서울", "서울")]


def test_body_depth_and_non_articles():
    text = "導入の[[文]]。\n== 歴史 ==\n歴史の[[年]]。\n== 地理 ==\n[[ファイル:X.jpg|thumb|[[山]]の写真]]地理の[[川]]。[[Category:国]]"
    out, counts = scan(text, sections=1)
    assert [s for s, _ in out] == ["導入の文。", "歴史の年。"]
    out, counts = scan(text, sections=2)
    assert out[-1] == ("地理の川。", [("川", "川", "川")])
    assert counts["link_not_article"] == 2  # the file (with its caption's link) and the category
    out, _ = scan(text, sections=0)
    assert [s for s, _ in out] == ["導入の文。"]


def test_pathological_markup_is_counted_not_fatal():
    out, counts = scan("これは[[未完のリンク。次の[[文]]。\n\n別の段落の[[文]]。")
    assert out == [("別の段落の文。", [("文", "文", "文")])]  # the broken paragraph is dropped whole
    assert counts["mention_sentences_markup_left"] == 1
    out, counts = scan("[[A]]" * (MAX_LINKS_PER_PAGE + 1))
    assert out == [] and counts["mention_pages_too_many_links"] == 1
    out, counts = scan("{{Infobox|name=[[中の人]]}}[[外]]の話。[[ファイル:A.png]]")
    assert out == [("外の話。", [("外", "外", "外")])]
    out, counts = scan("''[[斜体]]''の[[|空]]と[[#節]]。")
    assert out == [("斜体の空と。", [("斜体", "斜体", "斜体")])]
    assert counts["link_to_own_section"] == 1 and counts["link_empty_anchor"] == 1


def test_surface_classes_and_position_buckets():
    assert surface_match("北京大学", "北京大学", []) == "title"
    assert surface_match("マーキュリー", "マーキュリー (惑星)", []) == "title"
    assert surface_match("北大", "北京大学", ["北大"]) == "alias"
    assert surface_match("東大", "東京大学", []) == "differs"
    assert position_bucket(0, 10) == "at the start" and position_bucket(1, 10) == "0-25%"
    assert position_bucket(9, 10) == "75-100%"


def test_pages_with_broken_link_markup_never_kill_a_shard(tmp_path):
    def page(pid: int, title: str, text: str) -> str:
        return (
            f"<page><title>{title}</title><ns>0</ns><id>{pid}</id><revision><id>{pid}0</id>"
            f'<text xml:space="preserve">{text}</text></revision></page>\n'
        )

    many = "".join(f"[[T{i}]]" for i in range(MAX_LINKS_PER_PAGE + 10))
    xml = (
        "<mediawiki>\n"
        + page(1, "Good", "'''Good''' is near [[Paris]] and [[Nowhere]].")
        + page(2, "Many", f"'''Many''' links. {many}")
        + page(3, "Open", "'''Open''' has [[Paris and no end.\n\nThen [[Paris|the city]] again.")
        + page(4, "Paris", "'''Paris''' is a city.")
        + "</mediawiki>\n"
    )
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "xxwiki-20240101-pages-articles.xml").write_text(xml)
    ids = [(1, "Good"), (2, "Many"), (3, "Open"), (4, "Paris")]
    (folder / "xxwiki-20240101-page.sql.gz").write_bytes(
        format_table_dump("page", [(i, 0, t, 0) for i, t in ids], ["page_id", "page_namespace", "page_title", "page_is_redirect"])
    )  # fmt: skip
    (folder / "xxwiki-20240101-langlinks.sql.gz").write_bytes(
        format_table_dump("langlinks", [(i, "en", t) for i, t in ids], ["ll_from", "ll_lang", "ll_title"])
    )
    (folder / "xxwiki-20240101-page_props.sql.gz").write_bytes(
        format_table_dump("page_props", [(1, "wikibase_item", "Q1", None)], ["pp_page", "pp_propname", "pp_value", "pp_sortkey"])
    )  # fmt: skip
    stats = mine(MineConfig(lang="xx", dump_dir=folder, out=tmp_path / "out", workers=1, mentions=True))
    rows = read_mentions(tmp_path / "out").to_pylist()
    assert {(r["page_id"], r["surface"], r["en_title"]) for r in rows} == {
        (1, "Paris", "Paris"),
        (3, "the city", "Paris"),
    }
    assert stats["mentions"]["dropped"]["red_link"] == 1  # Nowhere
    assert stats["mentions"]["dropped"]["pages_too_many_links"] == 1
    assert stats["pages"]["kept"] == 4


def test_resume_and_merge_keep_mentions(ja_links, mined, tmp_path):
    from wiki_data.schema import mention_shard_name, shard_name

    reference = read_mentions(mined)
    out = tmp_path / "out"
    mine(MineConfig(lang="ja", dump_dir=ja_links, out=out, workers=2, mentions=True, streams_per_shard=1))
    assert read_mentions(out).num_rows == reference.num_rows
    (out / shard_name(0)).unlink()
    (out / mention_shard_name(0)).unlink()
    mine(
        MineConfig(
            lang="ja", dump_dir=ja_links, out=out, workers=1, mentions=True, streams_per_shard=1, resume=True
        )
    )
    assert read_mentions(out).sort_by([("page_id", "ascending"), ("sentence_no", "ascending"), ("start", "ascending")]).equals(
        reference.sort_by([("page_id", "ascending"), ("sentence_no", "ascending"), ("start", "ascending")])
    )  # fmt: skip
    with pytest.raises(Exception, match="other settings"):
        mine(MineConfig(lang="ja", dump_dir=ja_links, out=out, workers=1, streams_per_shard=1, resume=True))
    merged = tmp_path / "merged"
    merge([mined, out], merged)
    assert read_mentions(merged).num_rows == reference.num_rows
    assert read_pairs(merged).num_rows == read_pairs(mined).num_rows
