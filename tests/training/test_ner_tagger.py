"""The English NER tagger: CoNLL reading, the (TYPE, entity) format, training and generation that parses."""

from __future__ import annotations

import pytest

from eat.config import validate
from eat.errors import UserError
from training.config import NERTaggerRecipe
from training.ner_format import format_entities, parse_entities, spans_to_entities
from training.ner_tagger import read_conll, run_ner_tagger, tag_sentences, text_entity_scores


def test_format_round_trips_commas_and_parentheses():
    ents = [("ORG", "Apple, Inc."), ("MISC", "Foo (band)"), ("PER", "Marie Curie"), ("LOC", "Paris")]
    text = format_entities(ents)
    assert text == "(ORG, Apple, Inc.); (MISC, Foo (band)); (PER, Marie Curie); (LOC, Paris)"
    assert parse_entities(text) == ents
    assert format_entities([]) == "(NONE)" and parse_entities("(NONE)") == []
    # One item per line (what the LLM prompts ask for) parses too, and stray text is ignored.
    assert parse_entities("(PERSON, Li Bai)\n(LOCATION, Beijing)") == [
        ("PERSON", "Li Bai"),
        ("LOCATION", "Beijing"),
    ]
    assert parse_entities("garbage ( no entity") == []


def test_bio_spans():
    tokens = ["Angela", "Merkel", "met", "Apple", ",", "Inc.", "in", "Bonn", "Bonn"]
    tags = ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "I-ORG", "O", "B-LOC", "B-LOC"]
    assert spans_to_entities(tokens, tags) == [
        ("PER", "Angela Merkel"),
        ("ORG", "Apple , Inc."),
        ("LOC", "Bonn"),
        ("LOC", "Bonn"),
    ]
    # IOB1: an entity may start with I-.
    assert spans_to_entities(["in", "Paris"], ["O", "I-LOC"]) == [("LOC", "Paris")]


def test_read_conll_and_errors(conll_file, tmp_path):
    sentences = read_conll(conll_file)
    assert len(sentences) == 4  # -DOCSTART- skipped
    assert sentences[0] == (
        ["Marie", "Curie", "worked", "in", "Paris", "."],
        ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],
    )
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris B-LOC\nlonely\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.conll:2: expected `token<TAB>tag`"):
        read_conll(bad)
    bad.write_text("Paris LOCATION\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.conll:1: tag 'LOCATION'"):
        read_conll(bad)
    with pytest.raises(UserError, match="not found"):
        read_conll(tmp_path / "missing.conll")


def test_entity_scores_count_duplicates_once_each():
    scores = text_entity_scores(["(LOC, Bonn); (LOC, Bonn); (PER, X)"], ["(LOC, Bonn); (ORG, Y)"])
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 2)


@pytest.mark.slow
def test_tagger_trains_and_generates_parsable_lists(tiny_t5, conll_file, tmp_path):
    out = tmp_path / "tagger"
    recipe = validate(
        NERTaggerRecipe,
        {
            "kind": "ner_tagger",
            "model": {"name_or_path": str(tiny_t5)},
            "data": {"train_file": str(conll_file), "eval_file": str(conll_file), "max_target_length": 48},
            "generation": {"max_new_tokens": 40},
            "training": {
                "output_dir": str(out),
                "max_steps": 40,
                "learning_rate": 5.0e-3,
                "per_device_train_batch_size": 4,
                "warmup_ratio": 0.0,
                "lr_scheduler_type": "constant",
                "logging_steps": 10,
                "eval_steps": 1000,
                "save_steps": 1000,
                "gradient_checkpointing": False,
                "report_to": ["none"],
            },
        },
        source="test",
    )
    metrics = run_ner_tagger(recipe)
    # Scored by generating: the F1 keys come from parsing generated text, not from the loss.
    assert {"eval_f1", "eval_precision", "eval_recall", "eval_unparsable_rate"} <= set(metrics)
    assert metrics["eval_loss"] < metrics["train_loss"]
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    # The evaluation pipeline queries the tagger with the prefix it was trained with.
    from evaluation.english_ner import _tagger_prefix

    assert _tagger_prefix(str(out)) == recipe.data.source_prefix
    tagged = tag_sentences(
        out, ["Marie Curie worked in Paris .", "Angela Merkel visited Siemens in Munich ."]
    )
    found = [e for sent in tagged for e in sent]
    assert found, tagged
    assert all(etype in {"PER", "LOC", "ORG"} and text for etype, text in found)
