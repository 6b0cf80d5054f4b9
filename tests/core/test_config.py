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


# ------------------------------------------------------------------ errors that come from overrides


def test_bad_override_value_blames_the_override_not_the_file(tmp_path):
    path = write(tmp_path, "training:\n  learning_rate: 0.1\n")
    with pytest.raises(UserError) as err:
        load_config(Recipe, path, ["training.learning_rate=abc"])
    msg = str(err.value)
    assert msg.startswith("override training.learning_rate=abc: key 'training.learning_rate'"), msg
    assert str(path) not in msg and "'abc'" in msg


def test_override_typo_blames_the_override_and_suggests(tmp_path):
    path = write(tmp_path, "training:\n  learning_rate: 0.1\n")
    with pytest.raises(UserError) as err:
        load_config(Recipe, path, ["training.learning_rat=1"])
    msg = str(err.value)
    assert msg.startswith("override training.learning_rat=1: unknown key 'training.learning_rat'"), msg
    assert "did you mean 'training.learning_rate'" in msg and str(path) not in msg


def test_file_errors_still_name_the_file_when_overrides_are_given(tmp_path):
    path = write(tmp_path, "epochs: many\n")
    with pytest.raises(UserError) as err:
        load_config(Recipe, path, ["training.learning_rate=0.5", "name=b"])
    msg = str(err.value)
    assert msg.startswith(f"{path}: key 'epochs'"), msg
    assert "override" not in msg


def test_override_that_turns_a_key_into_a_section_is_blamed(tmp_path):
    path = write(tmp_path, "name: a\n")
    with pytest.raises(UserError, match=r"^override epochs\.x=1: key 'epochs'"):
        load_config(Recipe, path, ["epochs.x=1"])


def test_scalar_override_of_a_list_field_is_a_one_item_list(tmp_path):
    path = write(tmp_path, "tags: [a, b]\n")
    assert load_config(Recipe, path, ["tags=none"]).tags == ["none"]
    assert load_config(Recipe, path, ["tags=[x,y]"]).tags == ["x", "y"]
    assert load_config(Recipe, path, ["tags=[]"]).tags == []


class Nested(StrictModel):
    training: Optim = Optim()
    report_to: list[str] | None = None
    ports: list[int] = Field(default_factory=list)
    either: list[str] | str = "x"


def test_scalar_override_is_listed_for_any_list_field_and_only_there(tmp_path):
    path = write(tmp_path, "{}\n")
    cfg = load_config(Nested, path, ["report_to=none", "ports=8000", "either=y"])
    assert cfg.report_to == ["none"] and cfg.ports == [8000] and cfg.either == "y"
    assert load_config(Nested, path, ["report_to=null"]).report_to is None
    with pytest.raises(UserError, match=r"^override ports=abc: key 'ports\.0'"):
        load_config(Nested, path, ["ports=abc"])


def test_scalar_for_a_list_in_the_file_is_an_error_with_a_hint(tmp_path):
    path = write(tmp_path, "tags: none\n")
    with pytest.raises(UserError) as err:
        load_config(Recipe, path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: key 'tags': Input should be a valid list"), msg
    assert "write [none]" in msg and "\n" not in msg


# ------------------------------------------------------------------------------- recipe files

REPO = Path(__file__).resolve().parents[2]
TINY_SFT = REPO / "recipes" / "tiny_sft_cpu.yaml"


def test_recipe_override_errors_name_the_override():
    from eat.recipes import load_recipe

    with pytest.raises(UserError) as err:
        load_recipe(TINY_SFT, ["training.learning_rate=abc"], kinds=["sft", "ner_tagger"])
    assert str(err.value).startswith("override training.learning_rate=abc: key 'training.learning_rate'")
    with pytest.raises(UserError) as err:
        load_recipe(TINY_SFT, ["training.learning_rat=1"], kinds=["sft", "ner_tagger"])
    msg = str(err.value)
    assert msg.startswith("override training.learning_rat=1: unknown key")
    assert "did you mean 'training.learning_rate'" in msg
    with pytest.raises(UserError, match=r"^override kind=eval: key 'kind' must be one of sft, ner_tagger"):
        load_recipe(TINY_SFT, ["kind=eval"], kinds=["sft", "ner_tagger"])


def test_recipe_report_to_none_override():
    from eat.recipes import load_recipe

    recipe = load_recipe(TINY_SFT, ["training.report_to=none"], kinds=["sft"])
    assert recipe.training.report_to == ["none"]


def test_override_in_place_of_the_recipe_says_recipe_comes_first(tmp_path, monkeypatch):
    from eat.recipes import load_recipe

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as err:
        load_recipe("training.max_steps=5", [str(TINY_SFT)], kinds=["sft", "ner_tagger"])
    msg = str(err.value)
    assert msg.startswith("RECIPE must come first: eat train RECIPE.yaml key=value ..."), msg
    assert "file not found" not in msg and "\n" not in msg
    with pytest.raises(UserError, match=r"^RECIPE must come first: eat eval RECIPE\.yaml"):
        load_recipe("lang=zh", [], kinds=["eval"])


def test_recipe_that_is_a_directory_says_so(tmp_path):
    from eat.recipes import load_recipe

    with pytest.raises(UserError) as err:
        load_recipe(tmp_path, [])
    assert str(err.value) == f"{tmp_path}: is a directory, expected a recipe YAML file"
    with pytest.raises(UserError, match="is a directory, expected a YAML file"):
        load_config(Recipe, tmp_path)


def test_overridden_data_is_still_a_plain_mapping(tmp_path):
    import yaml

    from eat.config import apply_overrides

    data = apply_overrides({"name": "a"}, ["epochs=2"])
    assert data == {"name": "a", "epochs": 2}
    assert yaml.safe_load(yaml.safe_dump(data)) == {"name": "a", "epochs": 2}


def test_max_steps_is_minus_one_or_positive():
    from eat.recipes import load_recipe

    for bad in ("0", "-5"):
        with pytest.raises(UserError, match="must be -1"):
            load_recipe("recipes/tiny_sft_cpu.yaml", [f"training.max_steps={bad}"], kinds=["sft"])
    assert (
        load_recipe("recipes/tiny_sft_cpu.yaml", ["training.max_steps=-1"], kinds=["sft"]).training.max_steps
        == -1
    )


def test_recipe_keys_table_covers_every_key_a_recipe_accepts():
    """`eat train keys` lists exactly the keys of a resolved recipe, with defaults, from the same models."""
    from eat.config import recipe_keys, validate
    from training.config import SFTRecipe

    rows = {key: (kind, default, text) for key, kind, default, text in recipe_keys(SFTRecipe)}
    assert rows["training.learning_rate"][1] == "0.0002" and rows["training.learning_rate"][2]
    assert rows["method"][0] == "lora | qlora | full"
    assert rows["model.name_or_path"][1] == "(required)"

    def leaves(data, prefix=""):
        if isinstance(data, dict):
            return {k for key, value in data.items() for k in leaves(value, f"{prefix}{key}.")}
        return {prefix[:-1]}

    resolved = validate(SFTRecipe, {"kind": "sft", "model": {"name_or_path": "m"}}, "test").model_dump()
    assert set(rows) == leaves(resolved)


def test_quoted_override_keeps_its_string_type():
    from eat.config import parse_override

    assert parse_override("model.revision='20240101'") == (["model", "revision"], "20240101")
    assert parse_override('data.name="007"') == (["data", "name"], "007")
    assert parse_override("training.learning_rate=1e-4") == (["training", "learning_rate"], 1e-4)
    assert parse_override("training.seed=7") == (["training", "seed"], 7)


def test_mapping_flags_take_a_yaml_flow_mapping():
    import click
    from click.testing import CliRunner

    from eat.config import model_from_options, model_options
    from evaluation.config import EvalRecipe

    seen = {}

    @click.command()
    @model_options(EvalRecipe)
    def cmd(**kwargs):
        seen["cfg"] = model_from_options(EvalRecipe, kwargs)

    base = ["--model", "m", "--data", "d", "--lang", "zh", "--out", "o"]
    assert (
        CliRunner().invoke(cmd, [*base, "--extra-body", "{top_k: 20, guided_choice: [a, b]}"]).exit_code == 0
    )
    assert seen["cfg"].extra_body == {"top_k": 20, "guided_choice": ["a", "b"]}
    bad = CliRunner().invoke(cmd, [*base, "--extra-body", "20"])
    assert bad.exit_code != 0 and "expected a mapping" in str(bad.exception)
