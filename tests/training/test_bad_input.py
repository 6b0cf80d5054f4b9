"""User mistakes deep in a training run stop before any work with one line that says what to fix."""

from __future__ import annotations

import json

import pytest

from eat.errors import UserError
from tests.training.conftest import make_recipe
from training.merge import MergeConfig, merge_adapter
from training.sft import run_sft


def test_a_seq2seq_model_for_sft_and_a_causal_lm_for_the_tagger(
    tiny_lm, tiny_t5, sft_dataset, conll_file, tmp_path
):
    from eat.config import validate
    from training.config import NERTaggerRecipe
    from training.ner_tagger import run_ner_tagger

    with pytest.raises(UserError, match=r"is a t5 \(seq2seq\) model; kind: sft needs a causal LM"):
        run_sft(make_recipe(tiny_t5, sft_dataset, tmp_path / "a"))
    tagger = validate(
        NERTaggerRecipe,
        {
            "kind": "ner_tagger",
            "model": {"name_or_path": str(tiny_lm)},
            "data": {"train_file": str(conll_file), "eval_file": None},
            "training": {"output_dir": str(tmp_path / "b")},
        },
        source="test",
    )
    with pytest.raises(UserError, match=r"is a qwen2 \(causal LM\) model; kind: ner_tagger needs a seq2seq"):
        run_ner_tagger(tagger)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_lora_target_typo_names_the_real_layers(tiny_lm, sft_dataset, tmp_path):
    recipe = make_recipe(tiny_lm, sft_dataset, tmp_path / "run", "lora.target_modules=[q_proj,qproj]")
    with pytest.raises(UserError, match=r"no module named 'qproj'.*q_proj") as exc:
        run_sft(recipe)
    assert "down_proj" in str(exc.value)  # the linear layers to choose from
    assert not (tmp_path / "run" / "checkpoint-1").exists()


def test_merge_of_a_broken_adapter_folder(tiny_lm, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{", encoding="utf-8")
    with pytest.raises(UserError, match=r"no adapter_model\.safetensors"):
        merge_adapter(MergeConfig(adapter=str(adapter), out=str(tmp_path / "o")))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match=r"adapter_config\.json cannot be read"):
        merge_adapter(MergeConfig(adapter=str(adapter), out=str(tmp_path / "o")))
    (adapter / "adapter_config.json").write_text(
        json.dumps(
            {"peft_type": "LORA", "base_model_name_or_path": str(tmp_path / "gone"), "task_type": "CAUSAL_LM"}
        ),
        encoding="utf-8",
    )
    with pytest.raises(UserError, match=r"model folder not found \(set --base"):
        merge_adapter(MergeConfig(adapter=str(adapter), out=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_hub_id_on_an_offline_machine_fails_at_once(monkeypatch):
    """Not in the local cache and the Hub's host does not resolve: one line now, not a minute of retries."""
    import socket

    from eat.models import check_model_path

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def no_dns(*args, **kwargs):
        raise socket.gaierror("Name or service not known")

    from eat.models import _hub_resolves

    _hub_resolves.cache_clear()  # remembered per process: start from no answer
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(UserError, match=r"may be offline.*hf download some-org/some-model"):
        check_model_path("some-org/some-model")
    monkeypatch.undo()
    _hub_resolves.cache_clear()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [("ok",)])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    check_model_path("some-org/some-model")  # reachable: left to from_pretrained
    _hub_resolves.cache_clear()


def test_trackers_are_checked_before_anything_loads(monkeypatch):
    import importlib.util

    from training.runs import check_trackers

    check_trackers(["tensorboard", "none"])
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(
        UserError, match=r"training.report_to: mlflow is not installed \(pip install mlflow\)"
    ):
        check_trackers(["mlflow"])
    with pytest.raises(UserError, match="unknown tracker 'comet'"):
        check_trackers(["comet"])
