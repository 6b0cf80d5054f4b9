"""`eat score` (metrics only) and `eat bench` (compare runs)."""

from __future__ import annotations

import click

from eat.errors import UserError


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def score(args) -> None:
    """Score predictions against gold (issue #6)."""
    raise UserError("`eat score` is not implemented yet (issue #6)")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args) -> None:
    """Compare evaluation runs (issue #6)."""
    raise UserError("`eat bench` is not implemented yet (issue #6)")
