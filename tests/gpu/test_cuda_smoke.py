"""On a CUDA GPU: `eat train` (LoRA bf16, QLoRA 4-bit) and `eat eval` run end to end on the tiny models.

Skipped without CUDA (the development machine has none); `bench/gpu_check.sh` runs them when a GPU is lent.
"""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory):
    from tests.training.conftest import write_sft_dataset

    return write_sft_dataset(tmp_path_factory.mktemp("data") / "sft")


@pytest.mark.parametrize("recipe", ["tiny_sft_cpu", "tiny_sft_qlora_cpu"])
def test_train_on_cuda(recipe, tiny_lm, sft_data, tmp_path):
    from eat.recipes import load_recipe
    from training.sft import run_sft

    out = tmp_path / recipe
    cfg = load_recipe(
        recipe,
        [f"model.name_or_path={tiny_lm}", f"data.path={sft_data}", f"training.output_dir={out}",
         "training.use_cpu=false", "training.precision=bf16", "training.max_steps=3", "training.save_steps=3",
         "data.max_length=512"],
        kinds=["sft"],
    )  # fmt: skip
    metrics = run_sft(cfg)
    assert math.isfinite(metrics["train_loss"]) and (out / "adapter_model.safetensors").is_file()
    card = (out / "README.md").read_text("utf-8")
    assert "bf16" in card


def test_eval_on_cuda(tiny_lm, shared_data, tmp_path):
    from eat.recipes import load_recipe
    from evaluation.run import run_eval

    out = tmp_path / "eval"
    cfg = load_recipe(
        "eval_tiny_cpu",
        [f"model={tiny_lm}", f"data={shared_data / 'wikiann-dev' / 'dev-zh.tsv'}", f"out={out}", "device=cuda",
         "limit=4"],
        kinds=["eval"],
    )  # fmt: skip
    run_eval(cfg)
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert metrics["counts"]["sentences"] == 4
    assert sum(1 for _ in (out / "predictions.jsonl").open()) == 4
