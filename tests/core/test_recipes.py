"""Every shipped recipe validates against its typed config, and the command its header gives would run it."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

from eat.cli import cli
from eat.clitools import DefaultCommandGroup
from eat.recipes import load_recipe, recipe_class, recipes_dir, shipped_recipes

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = shipped_recipes()
# The `eat` sub-command that loads each kind: a header must name the command that accepts its recipe.
COMMAND_OF_KIND = {"sft": "train", "ner_tagger": "train", "eval": "eval"}


def _header(path: Path) -> list[str]:
    """The comment block above the first key, without the `#`."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return lines


def _parse(argv: list[str]) -> tuple[list[str], click.Context]:
    """Resolve `eat ...` through the real CLI down to its leaf command and parse its arguments, as click
    would before running it: (command path, the leaf's context). Unknown commands or flags raise."""
    assert argv[0] == "eat", f"not an eat command: {shlex.join(argv)}"
    command: click.Command = cli
    ctx = click.Context(cli, info_name="eat")
    path, args = ["eat"], argv[1:]
    while isinstance(command, click.Group):
        if isinstance(command, DefaultCommandGroup) and args[0] not in command.commands:
            args = [command.default_command, *args]
        name, sub, args = command.resolve_command(ctx, args)
        assert sub is not None, f"no command {name!r} under {' '.join(path)}"
        path.append(name)
        command = sub
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=name, parent=ctx)
    return path, command.make_context(name, list(args), parent=ctx)


def test_every_recipe_file_is_listed():
    names = {r.name for r in SHIPPED}
    assert names == {p.stem for p in recipes_dir().glob("*.yaml")}
    assert {"tiny_sft_cpu", "tiny_ner_tagger_cpu", "eval_tiny_cpu"} <= names
    assert {r.kind for r in SHIPPED} == set(COMMAND_OF_KIND)


@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda r: r.name)
def test_recipe_validates_against_its_typed_config(shipped):
    recipe = load_recipe(shipped.path)
    assert type(recipe) is recipe_class(shipped.kind)
    assert recipe.kind == shipped.kind
    assert shipped.purpose and not shipped.purpose.startswith(("eat ", "accelerate "))


@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda r: r.name)
def test_recipe_header_gives_the_command_that_runs_it(shipped):
    commands = [line for line in _header(shipped.path) if line.startswith(("eat ", "accelerate "))]
    assert commands, f"{shipped.name}: the header comment must give the exact command"
    argv = shlex.split(commands[0])
    path, ctx = _parse(argv)
    assert path[:2] == ["eat", COMMAND_OF_KIND[shipped.kind]], commands[0]
    given = Path(ctx.params["recipe"])
    assert given.name == shipped.path.name, commands[0]
    # Typed from the checkout (recipes/ links to the shipped folder), it names this very file.
    assert (ROOT / given).resolve() == shipped.path.resolve()
    # Its key=value overrides are recipe keys of the right types.
    overrides = list(ctx.params["overrides"])
    assert type(load_recipe(shipped.path, overrides)) is recipe_class(shipped.kind)
