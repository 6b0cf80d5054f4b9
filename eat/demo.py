"""`eat demo`: the whole pipeline offline on embedded data (issue #7)."""

from __future__ import annotations

import click

from eat.errors import UserError


@click.command()
def demo() -> None:
    """Run the whole pipeline offline on embedded defaults."""
    raise UserError("`eat demo` is not implemented yet (issue #7)")
