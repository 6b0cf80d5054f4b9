"""`eat train ...` commands."""

from __future__ import annotations

import click

from eat.clitools import DefaultCommandGroup
from eat.errors import UserError


@click.group(cls=DefaultCommandGroup, default_command="run")
def train() -> None:
    """Fine-tune from a recipe: `eat train RECIPE.yaml [key=value ...]`, or `eat train merge ...`."""


@train.command("run")
@click.argument("recipe", type=click.Path(path_type=str))
@click.argument("overrides", nargs=-1)
def run(recipe: str, overrides: tuple[str, ...]) -> None:
    """Train from RECIPE.yaml with dotted key=value overrides."""
    from eat.recipes import load_recipe

    load_recipe(recipe, overrides, kinds=["sft", "ner_tagger"])
    raise UserError("`eat train` is not implemented yet (issue #5)")
