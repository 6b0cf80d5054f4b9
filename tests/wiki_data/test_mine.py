"""`eat wiki mine` on the real jawiki sample (plain and multistream copy) with our own SQL fixtures."""

from __future__ import annotations

import bz2
import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eat.errors import UserError
from wiki_data.mine import MineConfig, mine
from wiki_data.multistream import read_index, write_multistream
from wiki_data.schema import read_pairs, shard_paths
from wiki_data.shards import merge
from wiki_data.sql_dump import format_table_dump

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = "jawiki-20230501-pages-articles-sample238.xml.bz2"


@pytest.fixture(scope="session")
def reference(ja_multi, tmp_path_factory) -> Path:
    """One uninterrupted multistream run with 1 worker: what every other run must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "out"
    mine(MineConfig(lang="ja", dump_dir=ja_multi, out=out, workers=1, streams_per_shard=3, jsonl=True))
    return out


def run(folder: Path, out: Path, **kw) -> dict:
    cfg = {"lang": "ja", "dump_dir": folder, "out": out, "workers": 1, "streams_per_shard": 3, **kw}
    return mine(MineConfig(**cfg))


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in shard_paths(out)}


def test_reference_content(reference):
    table = read_pairs(reference)
    rows = {r["page_id"]: r for r in table.to_pylist()}
    stats = json.loads((reference / "stats.json").read_text())
    assert stats["pages"]["pages_seen"] == 238
    assert stats["pages"]["kept"] == len(rows) > 100
    assert stats["dropped"]["disambiguation"] == 1 and 14 not in rows  # EU (曖昧さ回避)
    assert stats["dropped"]["redirect"] > 0 and stats["dropped"]["non_main_namespace"] > 0
    assert stats["dropped"]["no_en_link"] > 0
    kept_plus_dropped = stats["pages"]["kept"] + sum(stats["dropped"].values())
    assert kept_plus_dropped == 238
    paris = rows[31]
    assert paris["title"] == "パリ" and paris["en_title"] == "Paris" and paris["qid"] == "Q90"
    assert paris["surface"] == "パリ" and paris["sentence"].startswith("パリ（Paris")
    assert paris["aliases"] == ["巴里", "花の都"]  # the interwiki redirect is not an alias
    assert paris["dump_date"] == "20230501"
    assert (
        rows[55]["type"] == "LOC" and rows[55]["type_source"] == "infobox"
    )  # 台東区, {{日本の市|...}}-style box
    for r in rows.values():
        assert r["surface"] in r["sentence"]
        assert "[[" not in r["sentence"] and "{{" not in r["sentence"] and "<ref" not in r["sentence"]
    lines = (reference / "pairs.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == len(rows) and json.loads(lines[0])["lang"] == "ja"
    for path in shard_paths(reference):  # sorted by page_id within each shard
        ids = pq.read_table(path, columns=["page_id"])["page_id"].to_pylist()
        assert ids == sorted(ids)


def test_plain_and_multistream_and_workers_agree(reference, ja_plain, ja_multi, tmp_path):
    want = read_pairs(reference).sort_by("page_id")
    run(ja_multi, tmp_path / "m2", workers=2)
    assert shard_bytes(tmp_path / "m2") == shard_bytes(reference)
    run(ja_plain, tmp_path / "p1", workers=1)
    run(ja_plain, tmp_path / "p2", workers=2)
    p1 = read_pairs(tmp_path / "p1").sort_by("page_id")
    assert p1.equals(want)
    assert shard_bytes(tmp_path / "p1") == shard_bytes(tmp_path / "p2")
    stats_plain = json.loads((tmp_path / "p1" / "stats.json").read_text())
    stats_multi = json.loads((reference / "stats.json").read_text())
    assert stats_plain["pages"] == stats_multi["pages"] and stats_plain["dropped"] == stats_multi["dropped"]


def test_resume_after_deleting_a_shard(reference, ja_multi, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    victim = shard_paths(out)[1]
    victim.unlink()
    (out / "stats.json").unlink()
    run(ja_multi, out, resume=True)
    assert shard_bytes(out) == shard_bytes(reference)
    assert (
        json.loads((out / "stats.json").read_text())["pages"]
        == json.loads((reference / "stats.json").read_text())["pages"]
    )
    with pytest.raises(UserError, match="--resume"):
        run(ja_multi, out)


def test_resume_refuses_other_settings_than_the_first_run(reference, ja_multi, tmp_path):
    """Shards of one run continued with another sharding, wiki or type table would mix two results."""
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    shard_paths(out)[-1].unlink()
    with pytest.raises(UserError, match="streams_per_shard: 3 -> 5"):
        run(ja_multi, out, resume=True, streams_per_shard=5)
    types = tmp_path / "types.parquet"
    types.write_bytes(b"x")
    with pytest.raises(UserError, match="types: None -> "):
        run(ja_multi, out, resume=True, types=types)
    with pytest.raises(UserError, match="is a file"):
        run(ja_multi, types)


def test_pages_file_that_is_not_a_dump_is_refused(ja_plain, tmp_path):
    import bz2

    folder = tmp_path / "dumps"
    shutil.copytree(ja_plain, folder)
    pages = next(folder.glob("*pages-articles.xml.bz2"))
    for content, needle in [
        (b"not bz2 at all", "not a bz2 file"),
        (bz2.compress(b"just some text"), "not a MediaWiki XML dump"),
        (bz2.compress(b'<?xml version="1.0"?><rss><channel/></rss>'), "not a MediaWiki XML dump"),
    ]:
        pages.write_bytes(content)
        with pytest.raises(UserError, match=needle):
            run(folder, tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_crash_mid_shard_leaves_no_shard_and_resume_completes(reference, ja_multi, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_write = pq.write_table
    calls = {"n": 0}

    def dying_write(table, where, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the third shard dies half-written
            Path(where).write_bytes(b"PAR1 half a file")
            raise KeyboardInterrupt
        return real_write(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", dying_write)  # what wiki_data.shards.write_shard writes with
    with pytest.raises(KeyboardInterrupt):
        run(ja_multi, out)
    monkeypatch.undo()
    assert len(shard_paths(out)) == 2  # finished shards kept, the broken one never got its name
    assert not list(out.glob("*.tmp"))
    run(ja_multi, out, resume=True)
    assert shard_bytes(out) == shard_bytes(reference)


def test_shard_index_split_and_merge(reference, ja_multi, tmp_path):
    for i in range(2):
        run(ja_multi, tmp_path / f"part{i}", num_shards=2, shard_index=i)
    parts = [shard_bytes(tmp_path / f"part{i}") for i in range(2)]
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    stats = merge([tmp_path / "part0", tmp_path / "part1", tmp_path / "part0"], tmp_path / "merged")
    merged = read_pairs(tmp_path / "merged").sort_by("page_id")
    assert merged.equals(read_pairs(reference).sort_by("page_id"))  # the repeated input is deduplicated
    ref_stats = json.loads((reference / "stats.json").read_text())
    assert stats["pages"]["kept"] == ref_stats["pages"]["kept"]
    with pytest.raises(UserError, match="shard-index"):
        run(ja_multi, tmp_path / "bad", num_shards=2, shard_index=2)
    # A bad input anywhere in the list: nothing written, and the same command works once it is fixed.
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no pairs-"):
        merge([tmp_path / "part0", tmp_path / "empty"], tmp_path / "merged2")
    assert not (tmp_path / "merged2").exists()
    merge([tmp_path / "part0", tmp_path / "part1"], tmp_path / "merged2")
    with pytest.raises(UserError, match="not an empty folder"):
        merge([tmp_path / "part0"], tmp_path / "merged2")


def test_corrupt_stream_is_reported_or_skipped(ja_multi, tmp_path):
    folder = tmp_path / "dump"
    shutil.copytree(ja_multi, folder)
    dump = folder / "jawiki-20230501-pages-articles-multistream.xml.bz2"
    streams = read_index(folder / "jawiki-20230501-pages-articles-multistream-index.txt.bz2")
    bad = streams[2]
    data = bytearray(dump.read_bytes())
    mid = bad.offset + bad.length // 2
    data[mid : mid + 64] = b"\0" * 64
    dump.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        run(folder, tmp_path / "out")
    assert str(dump) in str(err.value) and f"byte offset {bad.offset}" in str(err.value)
    stats = run(folder, tmp_path / "out2", skip_bad_streams=True)
    assert stats["dropped"]["bad_stream"] > 0
    assert stats["pages"]["kept"] + sum(stats["dropped"].values()) == 238


def test_truncated_plain_dump_names_offset(ja_plain, shared_data, tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    for f in (FIXTURES / "jawiki").iterdir():
        shutil.copy(f, folder / f.name)
    data = (shared_data / "wikipedia" / SAMPLE).read_bytes()
    (folder / "jawiki-20230501-pages-articles.xml.bz2").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"jawiki-20230501-pages-articles\.xml\.bz2: .*byte offset \d+"):
        run(folder, tmp_path / "out")
    assert not shard_paths(tmp_path / "out")[1:]  # at most the shard finished before the damage
    # With workers, the shards completed before the damage are written too (not lost in the queue).
    (folder / "jawiki-20230501-pages-articles.xml.bz2").write_bytes(data[: len(data) * 9 // 10])
    with pytest.raises(UserError, match="byte offset"):
        run(folder, tmp_path / "out2", workers=2, streams_per_shard=1)
    assert len(shard_paths(tmp_path / "out2")) >= 1


def test_missing_files_one_line(tmp_path, capsys):
    from eat.cli import main

    (tmp_path / "jawiki-20230501-page.sql.gz").write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main(["wiki", "mine", "--lang", "ja", "--dump-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = " ".join(capsys.readouterr().err.split())  # rich may wrap the one line at the terminal width
    assert err.startswith("error: missing dump file(s): looked for") and "Traceback" not in err
    assert "jawiki-*-pages-articles-multistream.xml.bz2" in err and "jawiki-*-pages-articles.xml.bz2" in err
    assert "jawiki-*-langlinks.sql.gz" in err and "jawiki-*-page_props.sql.gz" in err
    assert "jawiki-*-page.sql" not in err  # that one exists
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


# A page's timeout alarm may fire inside some object's __del__, where Python prints and drops the exception;
# the miner still counts the page as timed out (wiki_data.pages), so the printed warning is expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_broken_and_pathological_pages_are_counted(tmp_path):
    def page(pid: int, title: str, text: str) -> str:
        return (
            f"<page><title>{title}</title><ns>0</ns><id>{pid}</id><revision><id>{pid}0</id>"
            f'<text bytes="1" xml:space="preserve">{text}</text></revision></page>\n'
        )

    xml = (
        "<mediawiki>\n"
        + page(1, "Good", "'''Good''' is a fine page.")
        + page(2, "Broken", "'''Broken''' has <unclosed> markup & no escaping.")
        + page(3, "Slow", "{{a|" * 3000)
        + page(4, "Empty", "{{Infobox person}}")
        + "</mediawiki>\n"
    )
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "xxwiki-20240101-pages-articles.xml").write_text(xml)
    ids = [(1, "Good"), (2, "Broken"), (3, "Slow"), (4, "Empty")]
    (folder / "xxwiki-20240101-page.sql.gz").write_bytes(
        format_table_dump(
            "page",
            columns=["page_id", "page_namespace", "page_title", "page_is_redirect"],
            rows=[(i, 0, t, 0) for i, t in ids],
        )
    )
    (folder / "xxwiki-20240101-langlinks.sql.gz").write_bytes(
        format_table_dump(
            "langlinks", columns=["ll_from", "ll_lang", "ll_title"], rows=[(i, "en", t) for i, t in ids]
        )
    )
    (folder / "xxwiki-20240101-page_props.sql.gz").write_bytes(
        format_table_dump(
            "page_props",
            columns=["pp_page", "pp_propname", "pp_value", "pp_sortkey"],
            rows=[(1, "wikibase_item", "Q1", None)],
        )
    )
    stats = mine(MineConfig(lang="xx", dump_dir=folder, out=tmp_path / "out", workers=1, page_timeout=0.3))
    assert stats["pages"]["kept"] == 1
    assert stats["dropped"]["bad_xml"] == 1 and stats["dropped"]["timeout"] == 1
    assert stats["dropped"]["no_sentence"] == 1
    (row,) = read_pairs(tmp_path / "out").to_pylist()
    assert row["qid"] == "Q1" and row["sentence"] == "Good is a fine page." and row["aliases"] == []


def test_zh_titles_and_text_in_one_variant(tmp_path):
    def page(pid: int, title: str, name: str) -> str:
        from xml.sax.saxutils import escape

        text = escape((FIXTURES / "pages" / f"{name}.wiki").read_text("utf-8"))
        return (
            f"<page><title>{title}</title><ns>0</ns><id>{pid}</id><revision><id>{pid}0</id>"
            f'<text xml:space="preserve">{text}</text></revision></page>\n'
        )

    folder = tmp_path / "dump"
    folder.mkdir()
    pages = [page(7, "臺北車站", "zh_taipei_station"), page(8, "電腦", "zh_computer")]
    write_multistream(pages, folder / "zhwiki-20240101-pages-articles-multistream.xml.bz2",
                      folder / "zhwiki-20240101-pages-articles-multistream-index.txt.bz2", pages_per_stream=1)  # fmt: skip
    cols = ["page_id", "page_namespace", "page_title", "page_is_redirect"]
    (folder / "zhwiki-20240101-page.sql.gz").write_bytes(
        format_table_dump(
            "page", columns=cols, rows=[(7, 0, "臺北車站", 0), (8, 0, "電腦", 0), (9, 0, "臺北站", 1)]
        )
    )
    (folder / "zhwiki-20240101-langlinks.sql.gz").write_bytes(
        format_table_dump(
            "langlinks",
            columns=["ll_from", "ll_lang", "ll_title"],
            rows=[(7, "en", "Taipei_Main_Station"), (8, "en", "Computer")],
        )
    )
    (folder / "zhwiki-20240101-page_props.sql.gz").write_bytes(
        format_table_dump(
            "page_props",
            columns=["pp_page", "pp_propname", "pp_value", "pp_sortkey"],
            rows=[(8, "wikibase_item", "Q68", None)],
        )
    )
    (folder / "zhwiki-20240101-redirect.sql.gz").write_bytes(
        format_table_dump("redirect", columns=["rd_from", "rd_namespace", "rd_title", "rd_interwiki", "rd_fragment"], rows=[(9, 0, "臺北車站", "", "")])
    )  # fmt: skip
    types = tmp_path / "types.parquet"
    import pyarrow as pa

    pq.write_table(pa.table({"qid": ["Q68"], "type": ["MISC"], "class": ["Q2424752"]}), types)
    mine(MineConfig(lang="zh", dump_dir=folder, out=tmp_path / "cn", workers=1, types=types))
    rows = {r["page_id"]: r for r in read_pairs(tmp_path / "cn").to_pylist()}
    assert (
        rows[7]["title"] == "台北车站"
        and rows[7]["surface"] == "台北车站"
        and rows[7]["aliases"] == ["台北站"]
    )
    assert rows[7]["en_title"] == "Taipei Main Station" and rows[7]["type_source"] == "infobox"
    assert rows[8]["title"] == "电脑" and rows[8]["surface"] == "计算机"
    assert rows[8]["type"] == "MISC" and rows[8]["type_source"] == "wikidata"
    mine(MineConfig(lang="zh", dump_dir=folder, out=tmp_path / "tw", workers=1, variant="zh-tw"))
    tw = {r["page_id"]: r for r in read_pairs(tmp_path / "tw").to_pylist()}
    assert tw[7]["title"] == "臺北車站" and tw[7]["sentence"].startswith(
        "臺北車站（Taipei Main Station）是位於臺灣"
    )
    with pytest.raises(UserError, match="variant"):
        mine(MineConfig(lang="zh", dump_dir=folder, out=tmp_path / "x", variant="zh-xx"))


def test_index_written_by_helper_matches_pages(ja_multi):
    streams = read_index(ja_multi / "jawiki-20230501-pages-articles-multistream-index.txt.bz2")
    assert sum(len(s.page_ids) for s in streams) == 238 and len(streams) == 12
    with open(ja_multi / "jawiki-20230501-pages-articles-multistream.xml.bz2", "rb") as fh:
        fh.seek(streams[0].offset)
        first = bz2.BZ2Decompressor().decompress(fh.read(streams[0].length))
    assert first.lstrip().startswith(b"<page>") and first.count(b"<page>") == 20


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_page_timeout_survives_an_alarm_swallowed_in_a_destructor(monkeypatch):
    """An alarm that fires while a __del__ runs (e.g. during garbage collection) is swallowed by Python;
    the page must still be counted as timed out, not finish as a normal page."""
    import time as _time

    import wiki_data.lead
    from wiki_data.worker import init_worker, process_raw_pages

    class SlowToDelete:
        def __del__(self):
            end = _time.monotonic() + 0.4
            while _time.monotonic() < end:
                pass

    def process_page(title, text, lang, variant=None):
        SlowToDelete()  # deleted at once: the alarm at 0.1 s fires inside __del__
        return wiki_data.lead.LeadResult(surface=title, sentence=f"{title} is a page.", infobox_type=None)

    monkeypatch.setattr(wiki_data.lead, "process_page", process_page)
    init_worker("en", None, 0.1)
    raw = b"<page><title>T</title><ns>0</ns><id>1</id><revision><id>2</id><text>x</text></revision></page>"
    rows, _, counts = process_raw_pages([raw], None)
    assert rows == [] and counts["timeout"] == 1


def test_a_worker_that_dies_ends_the_run_with_one_line(tmp_path, monkeypatch):
    """A worker killed mid-run (OOM killer, kill -9) must not leave the job waiting forever."""
    import wiki_data.pool as pool

    runner = pool.Runner(2, pool.WorkerSettings(lang="ja", variant=None, page_timeout=10.0))
    monkeypatch.setattr(pool, "work", os._exit)  # the task (1) becomes the worker's exit status
    try:
        with pytest.raises(UserError, match=r"worker process died.*--resume"):
            list(runner.run(iter([("shard 0", 1)])))
    finally:
        runner.close()


def test_explicit_file_of_another_wiki_is_refused(ja_plain, tmp_path):
    folder = tmp_path / "dumps"
    shutil.copytree(ja_plain, folder)
    page = next(folder.glob("jawiki-*-page.sql.gz"))
    other = tmp_path / page.name.replace("jawiki", "zhwiki")
    shutil.copy(page, other)
    with pytest.raises(UserError, match="is not a jawiki file"):
        run(folder, tmp_path / "out", page_table=other)
