"""`eat wiki ...` commands (thin: parse options into typed configs, call the library).

Heavy imports (pyarrow, lxml, mwparserfromhell) happen inside the commands so `eat --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from eat.config import model_from_options, model_options
from wiki_data.mine import MineConfig
from wiki_data.sft_cli import register as register_sft_commands
from wiki_data.wikidata import TypesConfig


@click.group()
def wiki() -> None:
    """Mine Wikipedia dumps and build alignment datasets."""


@wiki.command()
@model_options(MineConfig)
def mine(**kwargs) -> None:
    """Mine interlanguage-linked, typed entity pairs from a Wikipedia dump.

    \b
    eat wiki mine --lang zh --dump-dir dumps/ --out pairs/zh --workers 8 --types types.parquet
    Cluster: run with --num-shards N --shard-index I (one per machine), then `eat wiki merge`.
    """
    from wiki_data.mine import mine as run_mine

    run_mine(model_from_options(MineConfig, kwargs))


@wiki.command()
@model_options(TypesConfig)
def types(**kwargs) -> None:
    """Build the qid -> PER/ORG/LOC/MISC table from a Wikidata JSON dump (P31 + P279 closure)."""
    from wiki_data.wikidata import build_types

    build_types(model_from_options(TypesConfig, kwargs))


@wiki.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the merged shards.")
def merge(inputs: tuple[Path, ...], out: Path) -> None:
    """Combine `eat wiki mine` outputs (e.g. one per machine): dedupe by (lang, page_id), sum stats."""
    from wiki_data.shards import merge as run_merge
    from wiki_data.shards import print_summary

    print_summary(run_merge(list(inputs), out))


# Dataset building commands (`sft`, `import-eat`) live with their code in wiki_data/sft_cli.py.
register_sft_commands(wiki)
