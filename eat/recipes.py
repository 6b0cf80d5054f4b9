"""Recipe files: YAML with a `kind` key naming the typed config that validates them.

The project's recipes ship inside the package (`eat/data/recipes`, with `accelerate/` configs), so they
work after a `pip install` the way torchtune's do: `eat recipes ls` lists them, `eat recipes cp NAME DEST`
copies one to edit, and `eat train NAME` / `eat eval NAME` take a shipped recipe's name where a path is
expected (a file that exists always wins over a name).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from eat.config import apply_overrides, override_for, read_yaml, validate
from eat.errors import UserError

RECIPE_KINDS_GROUP = "eat_ner.recipe_kinds"


def recipe_kinds() -> dict[str, str]:
    """kind -> "module:Class", as the packages register them (pyproject.toml entry points); a class is
    imported only when a recipe of its kind is loaded."""
    from importlib.metadata import entry_points

    kinds = {ep.name: ep.value for ep in entry_points(group=RECIPE_KINDS_GROUP)}
    if not kinds:
        raise UserError(
            "no recipe kinds are registered: eat-ner is not installed (run `pip install -e .` in the checkout)"
        )
    return kinds


# The command that loads recipes of these kinds, for the "RECIPE must come first" hint.
_COMMANDS = {frozenset({"sft", "ner_tagger"}): "eat train", frozenset({"eval"}): "eat eval"}


def recipe_class(kind: str) -> type[BaseModel]:
    module, attr = recipe_kinds()[kind].split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ShippedRecipe:
    name: str  # the file name without .yaml: what `eat train NAME` takes
    kind: str
    purpose: str  # the first line of the header comment
    path: Path


def recipes_dir() -> Path:
    """The folder of shipped recipes inside the installed package."""
    from importlib import resources

    return Path(str(resources.files("eat").joinpath("data", "recipes")))


def accelerate_config(name: str) -> Path:
    """A shipped accelerate config (`ddp`, `fsdp_qlora`, ...), found in the installed package."""
    return recipes_dir() / "accelerate" / f"{name}.yaml"


def shipped_recipes() -> list[ShippedRecipe]:
    """Every shipped recipe, by name, with its kind and the one-line purpose from its header."""
    out = []
    for path in sorted(recipes_dir().glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        header = next((line for line in text.splitlines() if line.startswith("#")), "# ")
        kind = next(
            (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("kind:")), "?"
        )
        out.append(ShippedRecipe(path.stem, kind, header.lstrip("# ").strip(), path))
    return out


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe path as given, or the shipped recipe of that name (`qwen2.5-7b_lora`, with or without .yaml)."""
    path = Path(name_or_path)
    if path.exists() or path.parent != Path("."):
        return path
    shipped = {r.name: r.path for r in shipped_recipes()}
    return shipped.get(path.name.removesuffix(".yaml"), path)


def copy_recipe(name: str, dest: str | Path) -> Path:
    """Copy a shipped recipe to `dest` (a file, or a folder to put NAME.yaml in) to edit; never overwrites."""
    import difflib
    import shutil

    shipped = {r.name: r for r in shipped_recipes()}
    key = name.removesuffix(".yaml")
    if key not in shipped:
        close = difflib.get_close_matches(key, list(shipped), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else "; `eat recipes ls` lists them"
        raise UserError(f"no shipped recipe named {name!r}{hint}")
    dest = Path(dest)
    target = dest / f"{key}.yaml" if dest.is_dir() else dest
    if target.exists():
        raise UserError("exists already; choose another destination", path=target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped[key].path, target)
    return target


def check_recipe_path(path: str | Path, kinds: Iterable[str]) -> Path:
    """Say what went wrong with RECIPE in terms of the command line: an override in its place, a folder."""
    path = find_recipe(path)
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
    allowed = list(kinds) if kinds is not None else list(recipe_kinds())
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
