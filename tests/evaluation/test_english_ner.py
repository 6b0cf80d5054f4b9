"""Stage 2: reading (TYPE, entity) answers, and the Hugging Face taggers."""

from __future__ import annotations

import pytest

from evaluation.english_ner import HFTagger, map_type, parse_entities


def test_parse_keeps_commas_inside_names():
    text = "(ORGANIZATION, Apple, Inc.)\n(PERSON, Smith, John)\n(LOCATION, Paris)"
    assert parse_entities(text) == [("ORG", "Apple, Inc."), ("PER", "Smith, John"), ("LOC", "Paris")]


def test_parse_variants():
    assert parse_entities("(PER, Marie Curie); (ORG, Foo (band)); (LOC, Paris)") == [
        ("PER", "Marie Curie"),
        ("ORG", "Foo (band)"),
        ("LOC", "Paris"),
    ]
    assert parse_entities("1. (PERSON, Li Bai)\n2. (LOCATION, Suyab)") == [
        ("PER", "Li Bai"),
        ("LOC", "Suyab"),
    ]
    assert parse_entities("(Paris, LOCATION)") == [("LOC", "Paris")]
    assert parse_entities('(PERSON, "Li Bai") (DATE, 1950)') == [("PER", "Li Bai")]
    assert parse_entities('[{"type": "PERSON", "text": "Li Bai"}]') == [("PER", "Li Bai")]
    for empty in ("", "(NONE)", "None", "[]"):
        assert parse_entities(empty) == []


def test_parse_rejects_garbage():
    with pytest.raises(ValueError):
        parse_entities("I could not find any names, sorry")


def test_map_type():
    assert [map_type(x) for x in ("PERSON", "B-LOC", "organization", "GPE", "DATE")] == [
        "PER",
        "LOC",
        "ORG",
        "LOC",
        None,
    ]


def test_seq2seq_tagger_runs_on_tiny_t5(tiny_t5):
    tagger = HFTagger(str(tiny_t5), batch_size=2)
    assert tagger.kind == "seq2seq"
    raw = tagger.tag(["Li Bai was born in Suyab.", "Tokyo is big.", "Hi."], max_new_tokens=4)
    assert len(raw) == 3 and all(isinstance(r, str) for r in raw)
    for r in raw:  # random weights: parse may fail, but only with ValueError (a stage failure)
        try:
            tagger.parse(r)
        except ValueError:
            pass


def test_token_classification_tagger(tmp_path, tiny_t5):
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    tok = AutoTokenizer.from_pretrained(tiny_t5)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4},
        pad_token_id=tok.pad_token_id,
    )
    BertForTokenClassification(config).save_pretrained(tmp_path / "tc")
    tok.save_pretrained(tmp_path / "tc")
    tagger = HFTagger(str(tmp_path / "tc"))
    assert tagger.kind == "token-classification"
    raw = tagger.tag(["Li Bai was born in Suyab."])
    assert all(t in ("PER", "LOC") for t, _ in tagger.parse(raw[0]))


def test_not_a_model_folder(tmp_path):
    from eat.errors import UserError

    with pytest.raises(UserError, match=r"no config\.json"):
        HFTagger(str(tmp_path))
