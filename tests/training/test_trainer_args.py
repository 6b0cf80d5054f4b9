"""`training.trainer_args`: any other SFTConfig / Seq2SeqTrainingArguments field reaches the trainer, and a
wrong key or value is one line before anything loads."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eat.config import validate
from eat.errors import UserError
from tests.training.conftest import make_recipe
from training.config import NERTaggerRecipe
from training.runs import model_card, preflight, recipe_changes
from training.sft import run_sft
from training.trainer_args import (
    COMMON_OWNED,
    NER_OWNED,
    SFT_OWNED,
    build_trainer_args,
    kind_arguments,
    recipe_arguments,
)

REPO = Path(__file__).resolve().parents[2]

PASSTHROUGH = (
    "training.lr_scheduler_type=cosine_with_min_lr",
    "training.trainer_args.lr_scheduler_kwargs={min_lr_rate: 0.1}",
    "training.trainer_args.neftune_noise_alpha=5",
    "training.trainer_args.optim_args=foreach=False",
)


class _Built(Exception):
    """Raised from the trainer's init callback: the test needs the built args, not a training run."""


def test_passthrough_reaches_the_sft_trainer(tiny_lm, sft_dataset, tmp_path):
    from transformers import TrainerCallback
    from trl import SFTConfig

    class Capture(TrainerCallback):
        def on_init_end(self, args, state, control, **kwargs):
            raise _Built(args)

    recipe = make_recipe(tiny_lm, sft_dataset, tmp_path / "run", *PASSTHROUGH)
    with pytest.raises(_Built) as caught:
        run_sft(recipe, callbacks=[Capture()])
    args = caught.value.args[0]
    assert isinstance(args, SFTConfig)
    assert args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert args.neftune_noise_alpha == 5
    assert args.optim_args == "foreach=False"
    assert args.learning_rate == recipe.training.learning_rate  # the recipe's own keys still apply


def test_passthrough_reaches_seq2seq_arguments():
    from transformers import Seq2SeqTrainingArguments

    recipe = validate(
        NERTaggerRecipe,
        {
            "kind": "ner_tagger",
            "model": {"name_or_path": "t5"},
            "data": {"eval_file": None},
            "training": {
                "report_to": ["none"],
                "trainer_args": {"neftune_noise_alpha": 3, "eval_on_start": False},
            },
        },
        source="test",
    )
    args = build_trainer_args(recipe, "fp32")
    assert isinstance(args, Seq2SeqTrainingArguments)
    assert args.neftune_noise_alpha == 3 and args.predict_with_generate is True
    assert args.eval_strategy == "no" and args.metric_for_best_model is None


def test_owned_keys_are_the_keys_we_set():
    """Every field our mapping sets is refused in trainer_args (a passthrough must not silently override)."""
    recipe = make_recipe("model", "data", "out")
    assert set(recipe_arguments(recipe, "fp32", False)) <= set(COMMON_OWNED)
    assert set(kind_arguments(recipe)) <= set(SFT_OWNED)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "training.trainer_args.neftune_noise_alpa=5",
            "unknown key 'training.trainer_args.neftune_noise_alpa' "
            "(did you mean 'training.trainer_args.neftune_noise_alpha'?): not a field of trl ",
        ),
        (
            "training.trainer_args.learning_rate=1e-3",
            "training.trainer_args.learning_rate: set by training.learning_rate, not through trainer_args",
        ),
        ("training.trainer_args.max_length=64", "training.trainer_args.max_length: set by data.max_length"),
        (
            "training.trainer_args.warmup_ratio=0.1",
            "training.trainer_args.warmup_ratio: set by training.warmup_ratio",
        ),
    ],
)
def test_bad_passthrough_keys_are_one_line_in_preflight(tiny_lm, sft_dataset, tmp_path, override, message):
    recipe = make_recipe(tiny_lm, sft_dataset, tmp_path / "run", override)
    with pytest.raises(UserError) as caught:
        preflight(recipe)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_refused_value_is_one_line_before_anything_loads(tiny_lm, sft_dataset, tmp_path):
    recipe = make_recipe(
        tiny_lm, sft_dataset, tmp_path / "run", "training.trainer_args.logging_strategy=often"
    )
    with pytest.raises(
        UserError, match=r"^training.trainer_args \(logging_strategy\): trl .* refused them: .*often"
    ):
        run_sft(recipe)
    assert not (tmp_path / "run").exists()


def test_cli_prints_a_bad_key_as_one_line(tiny_lm, sft_dataset, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(make_recipe(tiny_lm, sft_dataset, tmp_path / "out").model_dump(mode="json"))
    )
    result = subprocess.run(
        [sys.executable, "-m", "eat", "train", str(path), "training.trainer_args.optim_arg=x"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "EAT_NO_PROGRESS": "1"},
        timeout=300,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip() and "kernels" not in line]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "did you mean 'training.trainer_args.optim_args'?" in lines[0]


def test_runs_from_before_trainer_args_still_match(tmp_path):
    """An output folder whose recipe.yaml predates the key is the same run (an empty passthrough adds none)."""
    recipe = make_recipe("model", "data", tmp_path / "run")
    old = recipe.model_dump(mode="json")
    del old["training"]["trainer_args"]
    assert recipe_changes(old, recipe.model_dump(mode="json")) == []
    changed = make_recipe("model", "data", tmp_path / "run", "training.trainer_args.neftune_noise_alpha=5")
    assert recipe_changes(old, changed.model_dump(mode="json")) == [
        "training.trainer_args.neftune_noise_alpha: None -> 5"
    ]


def test_model_card_lists_the_passthrough(tmp_path):
    recipe = make_recipe("model", "data", tmp_path / "run", "training.trainer_args.neftune_noise_alpha=5")
    card = model_card(title="t", recipe=recipe, base_model="m", data_lines=[], metrics={}, usage="u")
    assert "| neftune_noise_alpha | 5 |" in card


def test_owned_keys_exist_in_the_config_classes():
    """The refusal tables name real fields, so a rename upstream shows up here (warmup_ratio: removed in
    transformers 5, refused so that it points to training.warmup_ratio)."""
    from transformers import Seq2SeqTrainingArguments
    from trl import SFTConfig

    sft = {f.name for f in dataclasses.fields(SFTConfig)}
    seq2seq = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    assert set(COMMON_OWNED) - sft == {"warmup_ratio"}
    assert set(SFT_OWNED) <= sft
    assert set(NER_OWNED) <= seq2seq
