"""`eat eval`, `eat score` and `eat bench`."""

from __future__ import annotations

import click

from eat.errors import UserError
from evaluation.score_cli import bench, score

__all__ = ["bench", "eval_command", "score"]


@click.command("eval", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def eval_command(args) -> None:
    """Run the EAT NER pipeline on a labelled test set (issue #6)."""
    raise UserError("`eat eval` is not implemented yet (issue #6)")
