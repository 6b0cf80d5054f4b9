"""`eat eval` refuses unsafe or broken model inputs in one line, and its caches follow the weights."""

from __future__ import annotations

import os
import shutil

import pytest

from eat.errors import UserError
from evaluation.chat_cache import weights_fingerprint
from evaluation.config import EvalRecipe
from evaluation.formats import load_dataset_file, parse_label_map
from evaluation.run import check_model_inputs


def _cfg(tmp_path, **kw) -> EvalRecipe:
    base = {"model": "m", "data": "d.tsv", "lang": "zh", "out": str(tmp_path / "run")}
    return EvalRecipe(**(base | kw))


def test_pickle_adapters_and_wrong_models_are_refused_before_loading(tmp_path, tiny_lm, tiny_t5):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    (adapter / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(UserError, match="safetensors only"):
        check_model_inputs(_cfg(tmp_path, model=str(tiny_lm), adapter=str(adapter)))
    with pytest.raises(UserError, match=r"is a t5 \(seq2seq\) model"):
        check_model_inputs(_cfg(tmp_path, model=str(tiny_t5)))
    with pytest.raises(UserError, match="model folder not found"):
        check_model_inputs(_cfg(tmp_path, model=str(tmp_path / "gone")))
    with pytest.raises(UserError, match=r"model folder not found.*--ner-model"):
        check_model_inputs(_cfg(tmp_path, model=str(tiny_lm), ner_model=str(tmp_path / "no-tagger")))
    check_model_inputs(_cfg(tmp_path, model=str(tiny_lm), ner_model=str(tiny_t5)))


def test_tagger_with_pickle_weights_only_is_refused(tmp_path, tiny_t5):
    from evaluation.english_ner import HFTagger

    binonly = tmp_path / "bin-only"
    shutil.copytree(tiny_t5, binonly)
    for f in binonly.glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    with pytest.raises(UserError, match="safetensors only"):
        HFTagger(str(binonly))


def test_cache_key_changes_when_weights_are_rewritten_in_place(tmp_path, tiny_lm):
    model = tmp_path / "model"
    shutil.copytree(tiny_lm, model)
    before = weights_fingerprint(str(model))
    weights = next(model.glob("*.safetensors"))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # "retrained" into the folder
    assert weights_fingerprint(str(model)) != before
    assert weights_fingerprint("Qwen/Qwen2.5-7B-Instruct") is None  # Hub ids: the name is the key


def test_test_files_that_are_not_utf8_or_are_folders(tmp_path):
    bad = tmp_path / "latin1.tsv"
    bad.write_bytes("Müller\tB-PER\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_dataset_file(bad, lang="de")
    with pytest.raises(UserError, match="is a directory"):
        load_dataset_file(tmp_path, lang="de")


def test_label_map_entries_are_checked():
    assert parse_label_map(["PER.NAM=PER,PER.NOM=", "GPE=LOC"]) == {
        "PER.NAM": "PER",
        "PER.NOM": "",
        "GPE": "LOC",
    }
    for bad in ("=PER", "PER=LOC=ORG", "PER"):
        with pytest.raises(UserError, match="not FROM=TO"):
            parse_label_map([bad])


def test_error_lines_keep_square_brackets(capsys):
    from eat.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["eval", "--model", "m", "--data", "test[bold].tsv", "--lang", "zh", "--out", "o"])
    assert exc.value.code == 2
    assert "test[bold].tsv" in capsys.readouterr().err


def test_devices_that_do_not_exist_here():
    from eat.models import resolve_device as _resolve_device

    with pytest.raises(UserError, match="not a torch device"):
        _resolve_device("banana")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            _resolve_device("cuda")


def test_unknown_language_code_is_refused(tmp_path):
    from evaluation.run import load_sentences

    with pytest.raises(UserError, match=r"unknown --lang 'jp'; known codes: .*\bja\b"):
        load_sentences(_cfg(tmp_path, lang="jp"))
