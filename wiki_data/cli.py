"""`eat wiki ...` commands (thin: parse options into typed configs, call the library)."""

from __future__ import annotations

import click

from eat.errors import UserError


@click.group()
def wiki() -> None:
    """Mine Wikipedia dumps and build alignment datasets."""


@wiki.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def mine(args) -> None:
    """Mine interlanguage-linked entity pairs from a dump (issue #3)."""
    raise UserError("`eat wiki mine` is not implemented yet (issue #3)")
