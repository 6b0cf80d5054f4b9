"""The `eat` command. Sub-commands live in their packages and are imported lazily (torch is slow to import)."""

from __future__ import annotations

import sys

import click

from eat import __version__
from eat.clitools import LazyGroup
from eat.errors import UserError, environment_error

_state = {"debug": False}


@click.group(
    cls=LazyGroup,
    lazy={
        "wiki": ("wiki_data.cli:wiki", "Mine Wikipedia dumps and build alignment datasets."),
        "train": ("training.cli:train", "Fine-tune LoRA/QLoRA/full models and the English NER tagger."),
        "eval": ("evaluation.cli:eval_command", "Run the EAT NER pipeline on a labelled test set."),
        "score": ("evaluation.cli:score", "Score predictions against gold (entity- and token-level)."),
        "bench": ("evaluation.cli:bench", "Compare evaluation runs: tables, charts, error breakdown."),
        "demo": ("demo.workflow:demo", "Run the whole pipeline offline on embedded data in minutes."),
        "recipes": ("eat.cli:recipes", "List the shipped recipes, or copy one to edit."),
    },
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(__version__, "--version", "-V", prog_name="eat")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for library debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only, no progress bars.")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
def cli(verbose: int, quiet: bool, debug: bool) -> None:
    """eat-ner: zero-shot cross-lingual NER by entity-aligned translation.

    \b
    Typical flow:
      eat wiki mine   -> entity pairs from a Wikipedia dump
      eat wiki sft    -> chat dataset for alignment fine-tuning
      eat train       -> LoRA/QLoRA adapter
      eat eval        -> EAT pipeline scores on a test set
    """
    from eat.console import setup_logging

    _state["debug"] = debug
    setup_logging(-1 if quiet else verbose)


@click.group()
def recipes() -> None:
    """The recipes that ship with eat-ner (`eat train NAME` runs one by name)."""


@recipes.command("ls")
def recipes_ls() -> None:
    """List the shipped recipes: name, kind and purpose."""
    from eat.recipes import shipped_recipes

    rows = shipped_recipes()
    width = max(len(r.name) for r in rows)
    for r in rows:
        click.echo(f"{r.name:<{width}}  {r.kind:<10}  {r.purpose}")


@recipes.command("cp")
@click.argument("name")
@click.argument("dest", type=click.Path())
def recipes_cp(name: str, dest: str) -> None:
    """Copy the shipped recipe NAME to DEST (a file or a folder) to edit it."""
    from eat.recipes import copy_recipe

    click.echo(f"copied {name} to {copy_recipe(name, dest)}")


def _exit_now(code: int) -> None:
    """Exit without waiting for worker threads still blocked in I/O (an HTTP request to a silent server would
    hold a normal exit for its whole timeout). Everything finished is already on disk: writes are atomic."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _one_line(exc: UserError) -> None:
    from rich.markup import escape

    from eat.console import console

    # escape: a message may hold [brackets] (pip extras, file names) that rich would read as markup
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True, emoji=False)
    sys.exit(UserError.exit_code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2; --debug shows the traceback."""
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    try:
        # Outside standalone mode click *returns* the code of a `click.exceptions.Exit` raised by a command
        # (e.g. `eat train --launch` passing on its launcher's status) instead of exiting with it.
        rc = cli.main(args=args, prog_name="eat", standalone_mode=False)
        if isinstance(rc, int) and not isinstance(rc, bool) and rc != 0:
            sys.exit(rc)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # Ctrl-C while click had control
        click.echo("aborted; finished work is kept, re-run to resume", err=True)
        _exit_now(130)
    except UserError as exc:
        if _state["debug"]:
            raise
        _one_line(exc)
    except OSError as exc:  # a full disk, a read-only mount...: one line; any other OSError is a bug
        if _state["debug"] or (user := environment_error(exc)) is None:
            raise
        _one_line(user)
    except KeyboardInterrupt:
        click.echo("interrupted; finished work is kept, re-run to resume", err=True)
        _exit_now(130)


if __name__ == "__main__":
    main()
