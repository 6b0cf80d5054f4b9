"""Typed configs: YAML + dotted overrides, one-line errors that name the file, key and closest key."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydantic import Field

from eat.config import StrictModel, load_config, model_from_options, model_options
from eat.errors import UserError


class Optim(StrictModel):
    learning_rate: float = Field(2e-4, description="Peak learning rate.")
    warmup_ratio: float = 0.03


class Recipe(StrictModel):
    name: str = "run"
    epochs: int = 1
    training: Optim = Optim()
    tags: list[str] = Field(default_factory=list)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_are_typed_and_nested(tmp_path):
    path = write(tmp_path, "name: a\ntraining:\n  learning_rate: 0.1\n")
    cfg = load_config(Recipe, path, ["training.learning_rate=1e-4", "epochs=3", "tags=[x, y]"])
    assert cfg.training.learning_rate == pytest.approx(1e-4)
    assert cfg.epochs == 3
    assert cfg.tags == ["x", "y"]
    assert cfg.name == "a"


def test_typo_names_file_key_and_suggestion(tmp_path):
    path = write(tmp_path, "training:\n  learning_rat: 0.1\n")
    with pytest.raises(UserError) as err:
        load_config(Recipe, path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert "'training.learning_rat'" in msg
    assert "did you mean 'training.learning_rate'" in msg


def test_typo_in_override_is_reported_too(tmp_path):
    path = write(tmp_path, "name: a\n")
    with pytest.raises(UserError, match=r"unknown key 'epoch'.*did you mean 'epochs'"):
        load_config(Recipe, path, ["epoch=2"])


def test_wrong_type_names_key_and_value(tmp_path):
    path = write(tmp_path, "epochs: many\n")
    with pytest.raises(UserError, match=r"recipe.yaml: key 'epochs'.*'many'"):
        load_config(Recipe, path)


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_config(Recipe, path)


def test_broken_yaml_gives_line(tmp_path):
    path = write(tmp_path, "name: a\n  epochs: [1\n")
    with pytest.raises(UserError, match=r"recipe.yaml:\d+: invalid YAML"):
        load_config(Recipe, path)


def test_bad_override_syntax(tmp_path):
    path = write(tmp_path, "name: a\n")
    with pytest.raises(UserError, match="key=value"):
        load_config(Recipe, path, ["epochs"])


class Flags(StrictModel):
    lang: str = Field(description="Language code.")
    workers: int = Field(1, description="Worker processes.")
    resume: bool = Field(False, description="Skip finished shards.")
    languages: list[str] = Field(default_factory=list, description="Languages to keep.")


def test_cli_options_come_from_the_model():
    seen = {}

    @click.command()
    @model_options(Flags)
    def cmd(**kwargs):
        seen["cfg"] = model_from_options(Flags, kwargs)

    runner = CliRunner()
    help_text = runner.invoke(cmd, ["--help"]).output
    assert "--workers" in help_text and "Worker processes." in help_text and "--no-resume" in help_text
    result = runner.invoke(cmd, ["--lang", "zh", "--workers", "2", "--resume", "--languages", "zh,ja"])
    assert result.exit_code == 0, result.output
    assert seen["cfg"] == Flags(lang="zh", workers=2, resume=True, languages=["zh", "ja"])
    result = runner.invoke(cmd, ["--workers", "2"])
    assert isinstance(result.exception, UserError) and "--lang" in str(result.exception)
