"""A few real optimizer steps of LoRA, QLoRA (CPU bitsandbytes) and full SFT on the tiny model; resume."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import yaml
from transformers import TrainerCallback

from tests.training.conftest import make_recipe, write_sft_dataset
from training.sft import run_sft


class WatchParams(TrainerCallback):
    """Snapshots of the trainable parameters at the start and end of training, and the start step."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start_step = state.global_step
        self.before = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.after = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def one_batch(tmp_path_factory):
    """Four training chats: with batch size 4 every step sees the same batch."""
    return write_sft_dataset(tmp_path_factory.mktemp("data") / "sft4", n_train=4, n_val=2)


def losses(out_dir):
    files = sorted(
        out_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1])
    )
    state = json.loads(files[-1].read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


def check_learns(watch, out_dir):
    assert watch.before, "no trainable parameters"
    unchanged = [n for n in watch.before if torch.equal(watch.before[n], watch.after[n])]
    assert not unchanged, f"parameters that did not change: {unchanged[:5]}"
    curve = losses(out_dir)
    assert all(math.isfinite(x) for x in curve)
    assert curve[-1] < curve[0], curve


@pytest.mark.slow
@pytest.mark.parametrize(
    "method,extra",
    [("qlora", ["training.gradient_checkpointing=true"]), ("full", ["training.learning_rate=3.0e-3"])],
)
def test_qlora_and_full_steps_learn(tiny_lm, one_batch, tmp_path, method, extra):
    out = tmp_path / "run"
    watch = WatchParams()
    recipe = make_recipe(tiny_lm, one_batch, out, f"method={method}", "training.save_steps=6", *extra)
    metrics = run_sft(recipe, callbacks=[watch])
    assert metrics["global_step"] == 6
    check_learns(watch, out)
    if method == "qlora":
        assert (out / "adapter_model.safetensors").is_file()
        # Only LoRA matrices train on top of the 4-bit base.
        assert all("lora_" in n for n in watch.before)
    else:
        assert (out / "model.safetensors").is_file()
        assert len(watch.before) == sum(1 for _ in torch.nn.Module.parameters(_tiny_model(tiny_lm)))


def _tiny_model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


def test_lora_run_folder_and_resume(tiny_lm, one_batch, tmp_path):
    out = tmp_path / "run"
    watch = WatchParams()
    recipe = make_recipe(
        tiny_lm, one_batch, out, "training.max_steps=4", "training.save_steps=2", "data.eval_split=validation",
        "training.report_to=[tensorboard]",
    )  # fmt: skip
    metrics = run_sft(recipe, callbacks=[watch])
    check_learns(watch, out)
    assert watch.start_step == 0 and metrics["global_step"] == 4
    assert math.isfinite(metrics["eval_loss"]) and metrics["world_size"] == 1
    assert metrics["epochs"] == 4.0 and "eval_num_tokens" not in metrics  # 4 steps over one batch of 4 chats
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "recipe.yaml",
        "README.md",
    ):
        assert (out / name).is_file(), name
    assert yaml.safe_load((out / "recipe.yaml").read_text())["training"]["max_steps"] == 4
    card = (out / "README.md").read_text()
    assert str(one_batch) in card and "eval_loss" in card and "| learning_rate | 0.01 |" in card
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))

    # A checkpoint cut off while saving (no trainer_state.json) is skipped; training goes on from step 4.
    shutil.copytree(out / "checkpoint-4", out / "checkpoint-9")
    (out / "checkpoint-9" / "trainer_state.json").unlink()
    first = losses(out)
    resumed = WatchParams()
    recipe = make_recipe(tiny_lm, one_batch, out, "training.max_steps=6", "training.save_steps=2")
    metrics = run_sft(recipe, callbacks=[resumed])
    assert resumed.start_step == 4 and metrics["global_step"] == 6
    assert (out / "checkpoint-6").is_dir()
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert [e["loss"] for e in state["log_history"] if "loss" in e][:4] == first

    # Re-running the finished command trains nothing and keeps the run's files as they are.
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = WatchParams()
    assert run_sft(recipe, callbacks=[again]) == json.loads((out / "metrics.json").read_text())
    assert not hasattr(again, "before")  # training never started
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == kept


def test_a_resumed_run_reports_what_an_uninterrupted_one_does(tiny_lm, one_batch, tmp_path):
    """metrics.json after kill-and-resume: the same train_loss (over every step, not only those after the
    resume) and the same count of training tokens as one uninterrupted run."""
    whole = run_sft(
        make_recipe(tiny_lm, one_batch, tmp_path / "whole", "training.max_steps=4", "training.save_steps=2")
    )
    cut = tmp_path / "cut"
    run_sft(make_recipe(tiny_lm, one_batch, cut, "training.max_steps=4", "training.save_steps=2"))
    # As if killed after the checkpoint at step 2: later checkpoints and the final files never written.
    shutil.rmtree(cut / "checkpoint-4")
    for name in ("metrics.json", "README.md", "adapter_model.safetensors"):
        (cut / name).unlink(missing_ok=True)
    resumed = run_sft(make_recipe(tiny_lm, one_batch, cut, "training.max_steps=4", "training.save_steps=2"))
    assert resumed["global_step"] == whole["global_step"] == 4
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-3)
    assert resumed["train_tokens"] == whole["train_tokens"] > 0


def test_a_second_train_into_the_same_output_dir_is_refused(tiny_lm, one_batch, tmp_path):
    from eat.errors import UserError
    from eat.io import LOCK_NAME, output_lock

    out = tmp_path / "run"
    recipe = make_recipe(tiny_lm, one_batch, out, "training.max_steps=1", "training.save_steps=1")
    with output_lock(out / LOCK_NAME), pytest.raises(UserError, match=r"run: another eat run \(pid \d+\)"):
        run_sft(recipe)
    assert not (out / "adapter_model.safetensors").exists()
