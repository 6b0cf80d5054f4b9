"""Recipe files: YAML with a `kind` key naming the typed config that validates them."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from eat.config import apply_overrides, read_yaml, validate
from eat.errors import UserError

# kind -> "module:Class"; imported only when a recipe of that kind is loaded.
RECIPE_KINDS: dict[str, str] = {
    "sft": "training.config:SFTRecipe",
    "ner_tagger": "training.config:NERTaggerRecipe",
    "eval": "evaluation.config:EvalRecipe",
}


def recipe_class(kind: str) -> type[BaseModel]:
    module, attr = RECIPE_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), attr)


def load_recipe(
    path: str | Path, overrides: Iterable[str] = (), kinds: Iterable[str] | None = None
) -> BaseModel:
    """Load a recipe of one of `kinds` (default: any), apply `key=value` overrides and validate it."""
    data = apply_overrides(read_yaml(path), overrides)
    allowed = list(kinds) if kinds is not None else list(RECIPE_KINDS)
    kind = data.get("kind")
    if kind not in allowed:
        raise UserError(f"key 'kind' must be one of {', '.join(allowed)} (got {kind!r})", path=path)
    return validate(recipe_class(kind), data, source=str(path))
