"""Every recipe shipped in recipes/ validates against its typed config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eat.recipes import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRAINING_RECIPES = sorted(p for p in RECIPES.rglob("*.yaml") if "accelerate" not in p.parts)


@pytest.mark.parametrize("path", TRAINING_RECIPES, ids=lambda p: p.name)
def test_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.kind == yaml.safe_load(path.read_text(encoding="utf-8"))["kind"]


@pytest.mark.parametrize("path", TRAINING_RECIPES, ids=lambda p: p.name)
def test_recipe_has_command_header(path):
    head = path.read_text(encoding="utf-8").splitlines()[:6]
    assert any(line.lstrip("# ").startswith(("eat ", "accelerate ")) for line in head), (
        f"{path.name}: the header comment must give the exact command"
    )
