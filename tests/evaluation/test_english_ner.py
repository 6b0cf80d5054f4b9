"""Stage 2: reading (TYPE, entity) answers, the one label map, and the Hugging Face and spaCy taggers."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from eat.errors import UserError
from evaluation.english_ner import (
    HFTagger,
    SpacyTagger,
    check_tagger_spec,
    label_table,
    load_tagger,
    normalize_label,
    parse_ner_reply,
)


def test_parse_keeps_commas_inside_names():
    text = "(ORGANIZATION, Apple, Inc.)\n(PERSON, Smith, John)\n(LOCATION, Paris)"
    assert parse_ner_reply(text) == [("ORG", "Apple, Inc."), ("PER", "Smith, John"), ("LOC", "Paris")]


def test_parse_variants():
    assert parse_ner_reply("(PER, Marie Curie); (ORG, Foo (band)); (LOC, Paris)") == [
        ("PER", "Marie Curie"),
        ("ORG", "Foo (band)"),
        ("LOC", "Paris"),
    ]
    assert parse_ner_reply("1. (PERSON, Li Bai)\n2. (LOCATION, Suyab)") == [
        ("PER", "Li Bai"),
        ("LOC", "Suyab"),
    ]
    assert parse_ner_reply("(Paris, LOCATION)") == [("LOC", "Paris")]
    assert parse_ner_reply('(PERSON, "Li Bai") (DATE, 1950)') == [("PER", "Li Bai")]
    assert parse_ner_reply('[{"type": "PERSON", "text": "Li Bai"}]') == [("PER", "Li Bai")]
    for empty in ("", "(NONE)", "None", "[]"):
        assert parse_ner_reply(empty) == []


def test_parse_rejects_garbage():
    with pytest.raises(ValueError):
        parse_ner_reply("I could not find any names, sorry")


def test_map_type():
    assert [normalize_label(x) for x in ("PERSON", "B-LOC", "organization", "GPE", "DATE")] == [
        "PER",
        "LOC",
        "ORG",
        "LOC",
        None,
    ]


def test_default_label_map_keeps_only_per_loc_org():
    assert [
        normalize_label(x) for x in ("PER", "person", "GPE", "FAC", "LOCATION", "ORGANIZATION", "I-ORG")
    ] == [
        "PER",
        "PER",
        "LOC",
        "LOC",
        "LOC",
        "ORG",
        "ORG",
    ]
    # WikiANN has no MISC: a predicted MISC would only be a false positive, so it is dropped by default
    assert [normalize_label(x) for x in ("MISC", "NORP", "DATE", "CARDINAL", "WORK_OF_ART")] == [None] * 5


def test_label_map_overrides_add_rename_and_drop():
    overrides = {"norp": "MISC", "FAC": "", "MISC": "MISC", "LOCATION": "GEO", "ORG": "O"}
    table = label_table(overrides)
    assert table["NORP"] == "MISC" and table["FAC"] is None and table["ORG"] is None
    assert table["PERSON"] == "PER" and table["GPE"] == "LOC"  # defaults stay under the overrides
    assert normalize_label("B-NORP", overrides) == "MISC" and normalize_label("FAC", overrides) is None
    text = "(NORP, Germans)\n(FAC, Golden Gate Bridge)\n(LOCATION, Paris)\n(ORG, Tang court)\n(MISC, Tang)"
    # renamed once: LOCATION -> GEO is not looked up again (GEO is no known label)
    assert parse_ner_reply(text, overrides) == [("MISC", "Germans"), ("GEO", "Paris"), ("MISC", "Tang")]
    assert parse_ner_reply(text) == [("LOC", "Golden Gate Bridge"), ("LOC", "Paris"), ("ORG", "Tang court")]
    assert parse_ner_reply('[{"type": "NORP", "text": "Germans"}]', {"NORP": "MISC"}) == [("MISC", "Germans")]
    assert parse_ner_reply("(Germans, NORP)", {"NORP": "MISC"}) == [("MISC", "Germans")]


def test_cli_ner_label_map_flag(tmp_path, monkeypatch, capsys):
    from eat.cli import main

    seen = []

    def fake_run_eval(cfg):
        seen.append(cfg)
        e = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        return {"entity": e, "counts": {"sentences": 0}, "sentences_per_s": 0}

    monkeypatch.setattr("evaluation.run.run_eval", fake_run_eval)
    base = ["eval", "--model", "m", "--data", "d.tsv", "--lang", "zh", "--out", str(tmp_path / "run")]
    main([*base, "--ner-label-map", "NORP=MISC,FAC=", "--ner-label-map", "WORK_OF_ART=MISC"])
    assert seen[-1].ner_label_map == {"NORP": "MISC", "FAC": "", "WORK_OF_ART": "MISC"}
    assert seen[-1].label_map == {}
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "kind: eval\nmodel: m\ndata: d.tsv\nlang: zh\nout: run\nner_label_map: {NORP: MISC, GPE: LOC}\n",
        encoding="utf-8",
    )
    main(["eval", str(recipe), "--ner-label-map", "GPE="])
    assert seen[-1].ner_label_map == {"NORP": "MISC", "GPE": ""}
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--ner-label-map", "NORP"])
    assert exit_info.value.code == 2
    assert "--ner-label-map 'NORP' is not FROM=TO" in capsys.readouterr().err


def test_seq2seq_tagger_runs_on_tiny_t5(tiny_t5):
    tagger = HFTagger(str(tiny_t5), batch_size=2)
    assert tagger.kind == "seq2seq"
    assert tagger.parse("(PERSON, Li Bai); (NORP, Tang); (DATE, 701)") == [("PER", "Li Bai")]
    mapped = HFTagger(str(tiny_t5), label_map={"NORP": "MISC", "PERSON": "PER"})
    assert mapped.parse("(PERSON, Li Bai); (NORP, Tang); (DATE, 701)") == [
        ("PER", "Li Bai"),
        ("MISC", "Tang"),
    ]
    raw = tagger.tag(["Li Bai was born in Suyab.", "Tokyo is big.", "Hi."], max_new_tokens=4)
    assert len(raw) == 3 and all(isinstance(r, str) for r in raw)
    for r in raw:  # random weights: parse may fail, but only with ValueError (a stage failure)
        try:
            tagger.parse(r)
        except ValueError:
            pass


def _token_classifier(out: Path, tiny_t5: Path, labels: list[str], bias: list[float] | None = None) -> Path:
    """A tiny BERT token classifier with `labels`, saved to `out`; `bias` fixes its answer (zero weights)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    tok = AutoTokenizer.from_pretrained(tiny_t5)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label=dict(enumerate(labels)),
        label2id={x: i for i, x in enumerate(labels)},
        pad_token_id=tok.pad_token_id,
    )
    model = BertForTokenClassification(config)
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_token_classification_tagger(tmp_path, tiny_t5):
    path = _token_classifier(tmp_path / "tc", tiny_t5, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    tagger = HFTagger(str(path))
    assert tagger.kind == "token-classification"
    raw = tagger.tag(["Li Bai was born in Suyab."])
    assert all(t in ("PER", "LOC") for t, _ in tagger.parse(raw[0]))


@pytest.fixture(scope="module")
def gpe_token_classifier(tmp_path_factory, tiny_t5) -> Path:
    """A token-classification model that tags every word B-GPE (zero weights, one large bias)."""
    labels = ["O", "B-GPE", "I-GPE", "B-NORP", "I-NORP"]
    out = tmp_path_factory.mktemp("models") / "tc-gpe"
    return _token_classifier(out, tiny_t5, labels, bias=[0.0, 10.0, 0.0, 0.0, 0.0])


def test_token_classification_maps_gpe_to_loc_at_parse_time(gpe_token_classifier):
    tagger = load_tagger(
        str(gpe_token_classifier), batch_size=2, device=None, trust_remote_code=False, label_map={}
    )
    assert isinstance(tagger, HFTagger) and tagger.kind == "token-classification"
    raw = tagger.tag(["Suyab Changan", "Paris"])
    assert {item["type"] for r in raw for item in json.loads(r)} == {"GPE"}  # cached with its own label
    assert [t for t, _ in tagger.parse(raw[0])] and {t for r in raw for t, _ in tagger.parse(r)} == {"LOC"}
    dropped = HFTagger(str(gpe_token_classifier), label_map={"GPE": ""})
    assert dropped.parse(raw[0]) == []


def test_not_a_model_folder(tmp_path):
    from eat.errors import UserError

    with pytest.raises(UserError, match=r"no config\.json"):
        HFTagger(str(tmp_path))


# ------------------------------------------------------------------------------------------------ spaCy

PATTERNS = [
    {"label": "PERSON", "pattern": "Li Bai"},
    {"label": "GPE", "pattern": "Suyab"},
    {"label": "FAC", "pattern": "Daming Palace"},
    {"label": "NORP", "pattern": "Sogdians"},
    {"label": "ORG", "pattern": [{"LOWER": "tang"}, {"LOWER": "court"}]},
]


def _save_pipeline(folder: Path, *components: str, name: str = "ruler_test", version: str = "1.2.3") -> Path:
    import spacy

    nlp = spacy.blank("en")
    for component in components:
        pipe = nlp.add_pipe(component)
        if component == "entity_ruler":
            pipe.add_patterns(PATTERNS)
    nlp.meta["name"], nlp.meta["version"] = name, version
    nlp.to_disk(folder)
    return folder


@pytest.fixture(scope="module")
def ruler_pipeline(tmp_path_factory) -> Path:
    """A blank English pipeline with a sentencizer (not needed for NER) and an entity_ruler."""
    return _save_pipeline(tmp_path_factory.mktemp("spacy") / "ruler", "sentencizer", "entity_ruler")


def test_spacy_tagger_runs_only_ner_components_in_batches(ruler_pipeline, monkeypatch):
    from evaluation.chat_cache import weights_fingerprint

    tagger = load_tagger(
        f"spacy:{ruler_pipeline}", batch_size=2, device=None, trust_remote_code=False, label_map={}
    )
    assert isinstance(tagger, SpacyTagger)
    assert tagger.nlp.component_names == ["entity_ruler"]  # the sentencizer was excluded, not just disabled
    assert "en_ruler_test-1.2.3" in tagger.name and tagger.path == str(ruler_pipeline)
    assert "meta.json" in [f[0] for f in weights_fingerprint(tagger.path)]
    calls = []
    real_pipe = tagger.nlp.pipe

    def counting_pipe(texts, batch_size=None, **kw):
        texts = list(texts)
        calls.append((len(texts), batch_size))
        return real_pipe(texts, batch_size=batch_size, **kw)

    monkeypatch.setattr(tagger.nlp, "pipe", counting_pipe)
    texts = [
        "Li Bai was born in Suyab.",
        "The Sogdians traded with the Tang court.",
        "He wrote at the Daming Palace.",
        "Nothing here.",
        "",
    ]
    raw = tagger.tag(texts)
    assert calls == [(5, 2)]  # one nlp.pipe over all texts, batch_size passed on
    assert json.loads(raw[0]) == [{"type": "PERSON", "text": "Li Bai"}, {"type": "GPE", "text": "Suyab"}]
    assert json.loads(raw[1])[0] == {"type": "NORP", "text": "Sogdians"}  # spaCy's own labels are cached
    assert [tagger.parse(r) for r in raw] == [
        [("PER", "Li Bai"), ("LOC", "Suyab")],
        [("ORG", "Tang court")],
        [("LOC", "Daming Palace")],
        [],
        [],
    ]
    remapped = SpacyTagger(str(ruler_pipeline), label_map={"NORP": "MISC", "FAC": ""})
    assert remapped.name == tagger.name  # the map applies at parse time: cached answers stay valid
    assert remapped.parse(raw[1]) == [("MISC", "Sogdians"), ("ORG", "Tang court")]
    assert remapped.parse(raw[2]) == []


def test_spacy_pipeline_name_and_version_key_the_cache(ruler_pipeline, tmp_path):
    other = tmp_path / "ruler"
    shutil.copytree(ruler_pipeline, other)
    meta = json.loads((other / "meta.json").read_text(encoding="utf-8"))
    (other / "meta.json").write_text(json.dumps({**meta, "version": "1.2.4"}), encoding="utf-8")
    assert "en_ruler_test-1.2.4" in SpacyTagger(str(other)).name


def test_spacy_ner_keeps_the_encoder_it_listens_to(tmp_path, ruler_pipeline):
    from evaluation.english_ner import _resolve_spacy

    folder = tmp_path / "listening"
    folder.mkdir()
    shutil.copy(ruler_pipeline / "meta.json", folder / "meta.json")
    (folder / "config.cfg").write_text(
        '[nlp]\nlang = "en"\npipeline = ["tok2vec","tagger","ner","lemmatizer"]\n\n'
        '[components]\n\n[components.tok2vec]\nfactory = "tok2vec"\n\n'
        '[components.tagger]\nfactory = "tagger"\n\n[components.tagger.model.tok2vec]\n'
        '@architectures = "spacy.Tok2VecListener.v1"\nupstream = "tok2vec"\n\n'
        '[components.ner]\nfactory = "ner"\n\n[components.ner.model.tok2vec]\n'
        '@architectures = "spacy.Tok2VecListener.v1"\nwidth = ${components.tok2vec.model.width}\n'
        'upstream = "*"\n\n[components.lemmatizer]\nfactory = "lemmatizer"\n',
        encoding="utf-8",
    )
    found = _resolve_spacy(str(folder))
    assert found.keep == ["tok2vec", "ner"] and found.exclude == ["tagger", "lemmatizer"]


def test_spacy_installed_package_by_name(ruler_pipeline, tmp_path, monkeypatch):
    """A pipeline package the way `spacy package` lays it out: meta.json beside __init__.py, data below."""
    package = tmp_path / "site" / "en_ruler_pkg"
    shutil.copytree(ruler_pipeline, package / "en_ruler_test-1.2.3")
    shutil.copy(ruler_pipeline / "meta.json", package / "meta.json")
    (package / "__init__.py").write_text(
        "from spacy.util import load_model_from_init_py\n\n\n"
        "def load(**overrides):\n    return load_model_from_init_py(__file__, **overrides)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    check_tagger_spec("spacy:en_ruler_pkg")
    tagger = load_tagger(
        "spacy:en_ruler_pkg", batch_size=4, device=None, trust_remote_code=False, label_map={}
    )
    assert tagger.path == str(package) and tagger.nlp.component_names == ["entity_ruler"]
    assert tagger.parse(tagger.tag(["Li Bai was born in Suyab."])[0]) == [("PER", "Li Bai"), ("LOC", "Suyab")]
    monkeypatch.delitem(sys.modules, "en_ruler_pkg")  # imported by spaCy's loader; not for later tests


def test_load_tagger_llm_is_none_and_checks_pass(ruler_pipeline, tiny_t5):
    assert load_tagger("llm", batch_size=1, device=None, trust_remote_code=False, label_map={}) is None
    for spec in ("llm", f"spacy:{ruler_pipeline}", str(tiny_t5)):
        check_tagger_spec(spec)


def _bad(spec: str, match: str) -> str:
    """check_tagger_spec and load_tagger refuse `spec` with the same one-line message."""
    with pytest.raises(UserError, match=match) as checked:
        check_tagger_spec(spec)
    with pytest.raises(UserError, match=match) as loaded:
        load_tagger(spec, batch_size=1, device=None, trust_remote_code=False, label_map={})
    assert str(checked.value) == str(loaded.value) and "\n" not in str(checked.value)
    return str(checked.value)


def test_spacy_bad_inputs(tmp_path, ruler_pipeline):
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = _bad(f"spacy:{empty}", r"not a spaCy pipeline \(no config\.cfg and meta\.json\)")
    assert msg.startswith(str(empty))
    assert _bad(f"spacy:{tmp_path / 'gone'}", "no such spaCy pipeline folder").startswith(str(tmp_path))
    msg = _bad("spacy:en_core_web_nosuchpipeline", "no spaCy pipeline folder or installed package")
    assert (
        msg.startswith("en_core_web_nosuchpipeline:") and "spacy download en_core_web_nosuchpipeline" in msg
    )
    _bad("spacy:", "needs a pipeline folder or package")
    no_ner = _save_pipeline(tmp_path / "no-ner", "sentencizer")
    msg = _bad(f"spacy:{no_ner}", r"without an ner or entity_ruler component \(pipeline: sentencizer\)")
    assert msg.startswith(str(no_ner))
    # a spaCy folder given as a Hugging Face model says how to ask for it
    _bad(str(ruler_pipeline), f"use --ner-model spacy:{ruler_pipeline}")


def test_spacy_version_mismatch_names_both_versions(tmp_path, ruler_pipeline):
    import spacy

    old = tmp_path / "old"
    shutil.copytree(ruler_pipeline, old)
    meta = json.loads((old / "meta.json").read_text(encoding="utf-8"))
    (old / "meta.json").write_text(json.dumps({**meta, "spacy_version": ">=3.2.0,<3.3.0"}), encoding="utf-8")
    msg = _bad(f"spacy:{old}", "needs spaCy >=3.2.0,<3.3.0")
    assert f"installed is {spacy.__version__}" in msg and msg.startswith(str(old / "meta.json"))


def test_spacy_not_installed(monkeypatch, tmp_path, ruler_pipeline, capsys):
    from eat.cli import main

    monkeypatch.setitem(sys.modules, "spacy", None)  # find_spec -> None, import -> ImportError
    _bad(f"spacy:{ruler_pipeline}", r"spaCy is not installed: pip install 'eat-ner\[spacy\]'")

    def fake_run_eval(cfg):
        check_tagger_spec(cfg.ner_model)

    monkeypatch.setattr("evaluation.run.run_eval", fake_run_eval)
    argv = ["eval", "--model", "m", "--data", "d.tsv", "--lang", "zh", "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--ner-model", "spacy:en_core_web_sm"])
    assert exit_info.value.code == 2
    assert "pip install 'eat-ner[spacy]'" in capsys.readouterr().err  # rich kept the [spacy]


@pytest.mark.real
def test_real_en_core_web_sm_finds_li_bai(spacy_en):
    tagger = load_tagger(
        f"spacy:{spacy_en}", batch_size=8, device=None, trust_remote_code=False, label_map={}
    )
    assert tagger.nlp.component_names == [
        "ner"
    ]  # en_core_web_sm's ner has its own tok2vec: nothing else loads
    raw = tagger.tag(["Li Bai was born in Suyab and worked for the Tang court in Chang'an."])
    assert {"type": "PERSON", "text": "Li Bai"} in json.loads(raw[0])
    found = tagger.parse(raw[0])
    assert ("PER", "Li Bai") in found and {t for t, _ in found} <= {"PER", "LOC", "ORG"}
