"""`eat wiki import-eat`: the authors' corpora -> pairs, with found-in-text statistics."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from eat.errors import UserError
from wiki_data.import_eat import STATS_NAME, import_eat, locate
from wiki_data.schema import read_pairs
from wiki_data.sft_cli import register


@click.group()
def group() -> None:
    """Stand-in for `eat wiki`."""


register(group)


def run(*args):
    return CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=True)


def corpus(shared_data: Path, lang: str) -> Path:
    return shared_data / "eat-corpus" / f"corpus_{lang}.json"


@pytest.mark.parametrize("lang", ["zh", "ja", "ru"])
def test_authors_corpus(shared_data, tmp_path, lang):
    path = corpus(shared_data, lang)
    records = json.loads(path.read_text("utf-8"))
    out = tmp_path / "pairs"
    result = run("import-eat", "--corpus", path, "--out", out)  # language from the file name
    assert result.exit_code == 0, (result.output, result.exception)
    stats = json.loads((out / STATS_NAME).read_text("utf-8"))
    rows = read_pairs(out).to_pylist()
    assert stats["records"] == len(records)
    assert stats["found_verbatim"] == sum(r["tgt_entity"].strip() in r["text"] for r in records)
    assert stats["not_found_verbatim"] + stats["found_verbatim"] == len(records)
    assert stats["found_normalised"] >= stats["found_verbatim"]
    assert stats["found_normalised"] / len(records) > 0.8
    assert stats["written"] == len(rows) == stats["found_normalised"] - stats["duplicates"]
    assert {r["lang"] for r in rows} == {lang}
    assert len({r["page_id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["surface"] and row["surface"] in row["sentence"]
        assert row["sentence"] != row["surface"] or "\n" not in records[row["page_id"]]["text"].strip()
        assert row["en_title"] == records[row["page_id"]]["eng_entity"].strip()
        assert row["qid"] is None and row["type"] is None
    if lang == "zh":
        # ~30% of zh targets differ from the text in script only: normalisation recovers most of them.
        assert stats["found_verbatim"] / len(records) < 0.75
        assert stats["found_normalised"] - stats["found_verbatim"] > 300
    if lang == "ru":
        assert stats["stress_stripped_texts"] > 1000 and stats["names_uninverted"] > 100
        assert not any("\u0301" in r["sentence"] for r in rows)
        assert stats["found_normalised"] > 2 * stats["found_verbatim"]


def test_normalisations_on_own_records(tmp_path):
    records = [
        {
            "eng_entity": "Hong Kong",
            "tgt_entity": "香港特别行政区",
            "text": "香港特別行政區是中國的特別行政區。",
        },
        {
            "eng_entity": "Kyoto (city)",
            "tgt_entity": "京都市 (日本)",
            "text": "京都市\n\n京都市は日本の都市。",
        },
        {
            "eng_entity": "Leo Tolstoy",
            "tgt_entity": "Толстой, Лев",
            "text": "Лев Толсто́й — русский писатель.",
        },
        {"eng_entity": "Moscow", "tgt_entity": "Москва", "text": "Моска́ва — не Москва́."},
        {"eng_entity": "Nobody", "tgt_entity": "無名", "text": "誰もいない。"},
    ]
    src = tmp_path / "corpus_mixed.json"
    src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    rows = {}
    for i, lang in [(0, "zh"), (1, "ja"), (2, "ru"), (3, "ru"), (4, "ja")]:
        one = tmp_path / f"c{i}.json"
        one.write_text(json.dumps([records[i]], ensure_ascii=False), encoding="utf-8")
        stats = import_eat(one, lang, tmp_path / f"p{i}")
        got = read_pairs(tmp_path / f"p{i}").to_pylist()
        rows[i] = (stats, got[0] if got else None)
    assert rows[0][1]["surface"] == "香港特別行政區" and rows[0][0].found_verbatim == 0
    assert rows[1][1]["surface"] == "京都市" and rows[1][1]["sentence"] == "京都市は日本の都市。"
    assert rows[1][1]["title"] == "京都市 (日本)" and rows[1][0].disambiguators_stripped == 1
    assert rows[2][1]["surface"] == "Лев Толстой" and rows[2][0].names_uninverted == 1
    assert rows[3][1]["surface"] == "Москва" and rows[3][1]["sentence"] == "Москава — не Москва."
    assert rows[4][1] is None and rows[4][0].not_found_normalised == 1
    assert json.loads((tmp_path / "p4" / STATS_NAME).read_text("utf-8"))["examples_not_found"]


def test_locate_maps_back_to_original_text():
    assert locate("東京 大学は", "東京大学", "ja") == (0, 5)
    assert locate("La Guerre froide", "guerre froide", "fr") == (3, 16)
    assert locate("no match here", "absent", "en") is None


def test_import_then_sft(shared_data, tmp_path):
    from datasets import load_from_disk

    pairs = tmp_path / "pairs"
    assert (
        run("import-eat", "--corpus", corpus(shared_data, "ja"), "--lang", "ja", "--out", pairs).exit_code
        == 0
    )
    ds = tmp_path / "ds"
    prompts = shared_data / "eat-official" / "prompts.yaml"
    result = run("sft", "--pairs", pairs, "--out", ds, "--max-per-lang", "200", "--prompts", prompts)
    assert result.exit_code == 0, (result.output, result.exception)
    dd = load_from_disk(str(ds))
    assert len(dd["train"]) + len(dd["validation"]) == 200
    for row in dd["train"]:
        if row["task"] == "align":
            assert row["messages"][-1]["content"] in row["messages"][3]["content"]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[{"eng_entity": "A", "tgt_entity": "B", "text": "B"},\n  oops]', [":2: not valid JSON"]),
        ('{"eng_entity": "A"}', ["expected a JSON array", "dict"]),
        ('[{"eng_entity": "A", "tgt_entity": "B", "text": "B"}, 3]', ["record 1:", "expected an object"]),
        (
            '[{"eng_entity": "A", "tgt_entity": "B", "text": "B"}, {}, {"eng_entity": "A", "text": "B"}]',
            ["record 1:", "'eng_entity' is missing"],
        ),
        (
            '[{"eng_entity": "A", "tgt_entity": 7, "text": "B"}]',
            ["record 0:", "'tgt_entity' is not a string"],
        ),
        ("[]", ["holds no records"]),
    ],
)
def test_bad_corpus_exit_2_nothing_written(tmp_path, text, fragments):
    path = tmp_path / "corpus_zh.json"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "pairs"
    result = run("import-eat", "--corpus", path, "--out", out)
    assert isinstance(result.exception, UserError), (result.output, result.exception)
    message = str(result.exception)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert not out.exists() and not list(tmp_path.glob(".pairs.*"))


def test_missing_corpus_and_unknown_language(tmp_path):
    result = run("import-eat", "--corpus", tmp_path / "corpus_zh.json", "--out", tmp_path / "o")
    assert isinstance(result.exception, UserError) and "not found" in str(result.exception)
    odd = tmp_path / "entities.json"
    odd.write_text("[]", encoding="utf-8")
    result = run("import-eat", "--corpus", odd, "--out", tmp_path / "o")
    assert isinstance(result.exception, UserError) and "--lang" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_lang_that_contradicts_the_corpus_name(tmp_path):
    path = tmp_path / "corpus_zh.json"
    path.write_text('[{"eng_entity": "A", "tgt_entity": "B", "text": "B"}]', encoding="utf-8")
    result = run("import-eat", "--corpus", path, "--lang", "ja", "--out", tmp_path / "o")
    assert isinstance(result.exception, UserError) and "authors' zh corpus" in str(result.exception)
    assert not (tmp_path / "o").exists()
