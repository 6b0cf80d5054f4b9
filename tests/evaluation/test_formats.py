"""Test-set loaders on every format, WikiANN `#` handling, label maps, malformed lines, tag conversion."""

from __future__ import annotations

from pathlib import Path

import pytest

from eat.errors import UserError
from evaluation.entities import Entity, Sentence
from evaluation.formats import load_dataset_file, write_columns, write_spans_jsonl
from evaluation.metrics import tag_scores
from evaluation.tags import spans_to_tags

FIX = Path(__file__).parent / "fixtures"


def _ents(sent: Sentence) -> list[tuple[str, str]]:
    return [(e.text, e.type) for e in sent.gold]


def test_conll_columns_docstart_space_separated_no_trailing_blank():
    sents = load_dataset_file(FIX / "conll_space.txt", lang="en")
    assert [s.text for s in sents] == ["Maria lives in New York .", "Acme hired Bo"]
    assert _ents(sents[0]) == [("Maria", "PER"), ("New York", "LOC")]
    # I-PER after O starts an entity (conlleval), the last line has no newline at all
    assert _ents(sents[1]) == [("Acme", "ORG"), ("Bo", "PER")]
    s = sents[0]
    assert s.tokens[3] == "New" and s.text[slice(*s.token_spans[3])] == "New"
    assert s.tags == ["B-PER", "O", "O", "B-LOC", "I-LOC", "O"]
    assert [s.id for s in sents] == ["0", "1"]
    for s in sents:
        for e in s.gold:
            assert s.text[e.start : e.end] == e.text


def test_zh_characters_and_wikiann_hash_tokens():
    sents = load_dataset_file(FIX / "zh_chars.tsv", lang="zh")
    assert len(sents) == 2
    a, b = sents
    # `#` is a space in the text, but stays a token with its own tag
    assert a.text == " 小明在东京" and a.tokens[0] == "#" and a.token_spans[0] == (0, 1)
    assert _ents(a) == [("小明", "PER"), ("东京", "LOC")]
    assert b.text == "约翰 史密斯来了"
    # WikiANN writes "约翰#史密斯" as B I O I I I: the file's tags decide, like seqeval -> two chunks
    assert _ents(b) == [("约翰", "PER"), ("史密斯", "PER")]
    # a predicted single span over the space converts back to exactly the file's tags
    pred = spans_to_tags(b, [Entity(0, 6, "PER", "约翰 史密斯")])
    assert pred == b.tags
    # ... so it scores perfectly in default mode and like the gold in strict mode
    assert tag_scores([b.tags], [pred])["f1"] == 1.0
    assert tag_scores([b.tags], [pred], mode="strict")["f1"] == 1.0
    kept = load_dataset_file(FIX / "zh_chars.tsv", lang="zh", hash_as_space=False)
    assert kept[1].text == "约翰#史密斯来了"


def test_bmes_with_weibo_label_map():
    label_map = {"PER.NAM": "PER", "GPE.NAM": "GPE", "PER.NOM": None}
    sents = load_dataset_file(FIX / "weibo_bmes.txt", lang="zh", label_map=label_map)
    assert sents[0].text == "王五是老师，住在北京市"
    assert _ents(sents[0]) == [("王五", "PER"), ("北京市", "GPE")]  # .NOM dropped
    assert sents[0].tags[3:5] == ["O", "O"]
    assert _ents(sents[1]) == [("张", "PER")]  # S- single
    raw = load_dataset_file(FIX / "weibo_bmes.txt", format="bmes", lang="zh")
    assert ("老师", "PER.NOM") in _ents(raw[0])
    # the same file read as strict bio fails on the first E- tag, naming the line
    with pytest.raises(UserError, match=r"weibo_bmes\.txt:2: bad bio tag 'E-PER.NAM'"):
        load_dataset_file(FIX / "weibo_bmes.txt", format="bio", lang="zh")


def test_bioes_round_trip_through_spans_to_tags():
    sents = load_dataset_file(FIX / "weibo_bmes.txt", lang="zh")
    s = sents[0]
    assert spans_to_tags(s, s.gold, scheme="BMES") == s.tags
    assert spans_to_tags(s, s.gold, scheme="IOBES")[8:11] == ["B-GPE.NAM", "I-GPE.NAM", "E-GPE.NAM"]


def test_span_json_and_jsonl():
    sents = load_dataset_file(FIX / "spans.json", lang="en")
    assert [s.id for s in sents] == ["s1", "1"]
    assert _ents(sents[0]) == [("Anna", "PER"), ("Paris", "LOC")] and sents[1].gold == []
    assert sents[0].tokens is None
    ja = load_dataset_file(FIX / "spans.jsonl", lang="ja")
    assert [_ents(s) for s in ja] == [[("東京大学", "ORG"), ("田中", "PER")], [("ソウル", "LOC")]]
    assert ja[0].lang == "ja"
    mapped = load_dataset_file(FIX / "spans.json", lang="en", label_map={"LOC": "GPE", "PER": None})
    assert _ents(mapped[0]) == [("Paris", "GPE")]


def test_written_files_read_back(tmp_path):
    sents = load_dataset_file(FIX / "zh_chars.tsv", lang="zh")
    write_columns(tmp_path / "out.tsv", sents, [s.tags for s in sents])
    assert (tmp_path / "out.tsv").read_text(encoding="utf-8") == (FIX / "zh_chars.tsv").read_text(
        encoding="utf-8"
    )
    write_spans_jsonl(tmp_path / "out.jsonl", sents, [s.gold for s in sents])
    back = load_dataset_file(tmp_path / "out.jsonl", lang="zh")
    assert [s.gold for s in back] == [s.gold for s in sents]


@pytest.mark.parametrize(
    ("name", "content", "fmt", "line", "message"),
    [
        ("one_col.txt", "a\tO\nb\n", "bio", 2, "expected `token<TAB>tag`"),
        ("bad_tag.txt", "a O\n\nb X-PER\n", "bio", 3, "bad bio tag 'X-PER'"),
        ("bad_prefix.txt", "a\tO\nb\tPER\n", "auto", 2, "bad bio tag 'PER'"),
        ("bad_bmes.txt", "a\tS-PER\nb\tQ-PER\n", "bmes", 2, "bad bmes tag"),
        ("bad.jsonl", '{"text": "ab", "entities": []}\n{"text": \n', "spans", 2, "invalid JSON line"),
        (
            "mismatch.jsonl",
            '{"text": "ab", "entities": []}\n\n{"text": "Anna", "entities": [{"name": "Ann", "span": [0, 4], "type": "PER"}]}\n',
            "spans",
            3,
            "text[0:4] is 'Anna', not 'Ann'",
        ),
        (
            "outside.json",
            '[{"text": "Anna", "entities": [{"name": "Anna", "span": [0, 9], "type": "PER"}]}]',
            "spans",
            1,
            "outside the text",
        ),
        ("broken.json", '[{"text": "a",\n  oops]', "spans", 2, "invalid JSON"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, name, content, fmt, line, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as exc:
        load_dataset_file(path, format=fmt, lang="en")
    text = str(exc.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_dataset_file(tmp_path / "nope.tsv")
    (tmp_path / "x.tsv").write_text("a\tO\n", encoding="utf-8")
    with pytest.raises(UserError, match="unknown format 'conllu'"):
        load_dataset_file(tmp_path / "x.tsv", format="conllu")


def test_spans_to_tags_overlap_and_partial_tokens():
    s = load_dataset_file(FIX / "conll_space.txt", lang="en")[0]  # "Maria lives in New York ."
    # a span covering part of a token tags the whole token; overlapping entities: first one wins
    tags = spans_to_tags(s, [Entity(15, 18, "ORG"), Entity(17, 24, "LOC"), Entity(1, 3, "PER")])
    assert tags == ["B-PER", "O", "O", "B-ORG", "B-LOC", "O"]
    assert spans_to_tags(s, []) == ["O"] * 6
    with pytest.raises(ValueError, match="no tokens"):
        spans_to_tags(Sentence(id="a", text="x", lang="en"), [])


@pytest.mark.parametrize(
    ("lang", "n"), [("zh", 10000), ("ja", 10000), ("ko", 10000), ("ar", 10000), ("ru", 10000), ("hi", 1000)]
)
def test_wikiann_dev_files(shared_data, lang, n):
    sents = load_dataset_file(shared_data / "wikiann-dev" / f"dev-{lang}.tsv", lang=lang)
    assert len(sents) == n
    n_ent = 0
    for s in sents:
        assert len(s.tokens) == len(s.tags) == len(s.token_spans)
        for e in s.gold:
            assert s.text[e.start : e.end] == e.text and e.type in {"PER", "LOC", "ORG"}
        n_ent += len(s.gold)
        if lang in ("zh", "ja"):
            # joined without separator, `#` tokens as spaces (the files also hold a few "None" tokens,
            # an artefact of the redistribution, kept as they are)
            assert s.text == "".join(" " if t == "#" else t for t in s.tokens)
        else:
            assert s.text == " ".join(s.tokens)
    assert n_ent > n
