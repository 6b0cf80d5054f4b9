"""What an existing output folder allows: finish, continue, or refuse to mix two runs."""

from __future__ import annotations

import json

import pytest

from eat.config import dump_config
from eat.errors import UserError
from tests.training.conftest import make_recipe, write_sft_dataset
from training.runs import check_output_dir


def _finished_folder(tmp_path, *overrides, steps=(2, 4), finished=True):
    """A folder as a run of `make_recipe(... overrides)` leaves it (checkpoints, recipe.yaml, metrics.json)."""
    out = tmp_path / "run"
    recipe = make_recipe("model", "data", out, *overrides)
    for step in steps:
        (out / f"checkpoint-{step}").mkdir(parents=True)
        (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    dump_config(recipe, out / "recipe.yaml")
    if finished:
        (out / "metrics.json").write_text(json.dumps({"train_loss": 1.5, "global_step": steps[-1]}))
    return out


def test_same_run_finished_is_not_trained_again_even_with_other_logging(tmp_path):
    out = _finished_folder(tmp_path, "training.max_steps=4")
    again = make_recipe("model", "data", out, "training.max_steps=4", "training.logging_steps=3")
    assert check_output_dir(out, again) == {"train_loss": 1.5, "global_step": 4}


def test_longer_run_continues_from_the_last_checkpoint(tmp_path):
    out = _finished_folder(tmp_path, "training.max_steps=4")
    assert check_output_dir(out, make_recipe("model", "data", out, "training.max_steps=8")) is None


def test_interrupted_run_resumes(tmp_path):
    out = _finished_folder(tmp_path, "training.max_steps=6", finished=False)
    assert check_output_dir(out, make_recipe("model", "data", out, "training.max_steps=6")) is None


@pytest.mark.parametrize(
    "override,named",
    [
        ("training.learning_rate=5e-4", "training.learning_rate: 0.01 -> 0.0005"),
        ("lora.r=8", "lora.r: 4 -> 8"),  # would fail deep inside weight loading
        ("data.max_length=128", "data.max_length: 512 -> 128"),
    ],
)
def test_a_different_recipe_is_refused_naming_what_changed(tmp_path, override, named):
    out = _finished_folder(tmp_path, "training.max_steps=4", finished=False)
    with pytest.raises(UserError, match="different recipe") as exc:
        check_output_dir(out, make_recipe("model", "data", out, "training.max_steps=4", override))
    assert named in str(exc.value) and str(out) in str(exc.value)


def test_resume_never_does_not_mix_two_runs_in_one_folder(tmp_path):
    out = _finished_folder(tmp_path, "training.max_steps=4")
    with pytest.raises(UserError, match=r"already holds a training run \(checkpoint-4\)"):
        check_output_dir(out, make_recipe("model", "data", out, "training.resume=never"))
    fresh = tmp_path / "fresh"
    assert check_output_dir(fresh, make_recipe("model", "data", fresh, "training.resume=never")) is None


def test_checkpoints_of_an_unknown_run_are_refused(tmp_path):
    out = _finished_folder(tmp_path, finished=False)
    (out / "recipe.yaml").unlink()
    with pytest.raises(UserError, match=r"no recipe\.yaml"):
        check_output_dir(out, make_recipe("model", "data", out))


def test_run_stopped_after_its_last_step_writes_outputs_without_another_step(tiny_lm, tmp_path):
    """Killed after the final checkpoint but before metrics.json: the re-run must not train step N+1."""
    from training.sft import run_sft

    data = write_sft_dataset(tmp_path / "sft", n_train=10, n_val=2)  # 3 steps per epoch: step 4 is mid-epoch
    out = tmp_path / "run"
    recipe = make_recipe(tiny_lm, data, out, "training.max_steps=4", "training.save_steps=2")
    first = run_sft(recipe)
    (out / "metrics.json").unlink()
    adapter = (out / "checkpoint-4" / "adapter_model.safetensors").read_bytes()
    again = run_sft(recipe)
    assert again["global_step"] == first["global_step"] == 4
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert (out / "adapter_model.safetensors").read_bytes() == adapter
    assert (out / "metrics.json").is_file()


def test_interrupted_run_leaves_checkpoints_and_no_model_card(tiny_lm, sft_dataset, tmp_path):
    """A run stopped after a checkpoint keeps it, and no README.md pretends the run is a finished model."""
    from transformers import TrainerCallback

    from training.sft import run_sft

    class Stop(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise KeyboardInterrupt

    out = tmp_path / "run"
    recipe = make_recipe(tiny_lm, sft_dataset, out, "training.max_steps=4", "training.save_steps=2")
    with pytest.raises(KeyboardInterrupt):
        run_sft(recipe, callbacks=[Stop()])
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (out / "README.md").exists() and not (out / "metrics.json").exists()
    assert run_sft(recipe)["global_step"] == 4  # and the re-run finishes it
    assert (out / "README.md").is_file()
