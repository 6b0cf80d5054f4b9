"""`eat train merge`: LoRA and QLoRA adapters fold into a full-precision base with matching outputs."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from eat.errors import UserError
from tests.training.conftest import make_recipe
from training.config import MergeConfig
from training.merge import merge_adapter
from training.sft import run_sft


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_merge_parity(tiny_lm, sft_dataset, tmp_path, method):
    run = tmp_path / "run"
    run_sft(
        make_recipe(
            tiny_lm, sft_dataset, run, f"method={method}", "training.max_steps=2", "training.save_steps=2"
        )
    )
    out = tmp_path / "merged"
    report = merge_adapter(
        MergeConfig(adapter=str(run / "checkpoint-2"), out=str(out), samples=3, max_new_tokens=8)
    )
    assert report["samples"] == 3
    # The merged weights compute the same function as base + adapter (full precision on both sides).
    assert report["max_abs_logit_diff_vs_unmerged"] < 1e-4
    assert report["agreement_vs_unmerged_full_precision"] == 1.0
    if method == "lora":
        assert report["agreement"] == 1.0
    else:
        assert "4-bit" in report["reference"]  # QLoRA is also compared with the base it was trained on
    assert json.loads((out / "merge_report.json").read_text())["agreeing"] == report["agreeing"]
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert (out / "tokenizer.json").is_file() and not (out / "adapter_config.json").exists()
    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
        assert not any("lora" in k or "quant" in k or "absmax" in k for k in keys)
        assert fh.get_tensor("model.layers.0.self_attn.q_proj.weight").dtype.is_floating_point
    with pytest.raises(UserError, match="exists"):
        merge_adapter(MergeConfig(adapter=str(run), out=str(out)))


def test_merge_needs_an_adapter(tmp_path):
    with pytest.raises(UserError, match=r"no adapter_config\.json"):
        merge_adapter(MergeConfig(adapter=str(tmp_path), out=str(tmp_path / "o")))
