"""Recipe files: YAML with a `kind` key naming the typed config that validates them."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from eat.config import apply_overrides, override_for, read_yaml, validate
from eat.errors import UserError

# kind -> "module:Class"; imported only when a recipe of that kind is loaded.
RECIPE_KINDS: dict[str, str] = {
    "sft": "training.config:SFTRecipe",
    "ner_tagger": "training.config:NERTaggerRecipe",
    "eval": "evaluation.config:EvalRecipe",
}

# The command that loads recipes of these kinds, for the "RECIPE must come first" hint.
_COMMANDS = {frozenset({"sft", "ner_tagger"}): "eat train", frozenset({"eval"}): "eat eval"}


def recipe_class(kind: str) -> type[BaseModel]:
    module, attr = RECIPE_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), attr)


def check_recipe_path(path: str | Path, kinds: Iterable[str]) -> Path:
    """Say what went wrong with RECIPE in terms of the command line: an override in its place, a folder."""
    path = Path(path)
    if path.is_dir():
        raise UserError("is a directory, expected a recipe YAML file", path=path)
    if not path.exists() and "=" in str(path):
        allowed = frozenset(kinds)
        command = next((c for ks, c in _COMMANDS.items() if allowed <= ks), "eat train|eval")
        raise UserError(
            f"RECIPE must come first: {command} RECIPE.yaml key=value ... (got {str(path)!r} in its place)"
        )
    return path


def load_recipe(
    path: str | Path, overrides: Iterable[str] = (), kinds: Iterable[str] | None = None
) -> BaseModel:
    """Load a recipe of one of `kinds` (default: any), apply `key=value` overrides and validate it."""
    allowed = list(kinds) if kinds is not None else list(RECIPE_KINDS)
    path = check_recipe_path(path, allowed)
    data = apply_overrides(read_yaml(path), overrides)
    kind = data.get("kind")
    if kind not in allowed:
        message = f"key 'kind' must be one of {', '.join(allowed)} (got {kind!r})"
        override = override_for(["kind"], data.overrides)
        if override is not None:
            raise UserError(f"override {override.text}: {message}")
        raise UserError(message, path=path)
    return validate(recipe_class(kind), data, source=str(path))
