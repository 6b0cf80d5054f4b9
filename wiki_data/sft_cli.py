"""`eat wiki sft` and `eat wiki import-eat` (thin: options -> typed config -> library call).

`register(group)` adds both commands to the `eat wiki` click group. No torch/datasets import at module level.
"""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import Field

from eat.config import StrictModel, model_from_options, model_options
from wiki_data.sft import SFTDatasetConfig


class ImportEatConfig(StrictModel):
    """Options of `eat wiki import-eat`."""

    corpus: Path = Field(description="The authors' corpus JSON ([{eng_entity, tgt_entity, text}, ...]).")
    out: Path = Field(description="Output pairs folder (pairs-00000.parquet + import-stats.json).")
    lang: str | None = Field(None, description="Target language code (default: from corpus_{lang}.json).")
    overwrite: bool = Field(False, description="Replace an existing output folder.")


@click.command("sft")
@model_options(SFTDatasetConfig)
def sft(**kwargs) -> None:
    """Build a chat dataset (align, to_english) from entity pairs and/or link mentions for alignment
    fine-tuning."""
    from eat.console import report
    from wiki_data.sft import build_sft, summary_table

    cfg = model_from_options(SFTDatasetConfig, kwargs)
    splits = build_sft(cfg)
    report(summary_table(splits))
    report(f"wrote {cfg.out} ({', '.join(f'{s} {len(r):,}' for s, r in splits.items())} rows)")
    if cfg.push_to_hub:
        from eat.hub import push_folder

        report(f"pushed to {push_folder(cfg.out, cfg.push_to_hub, 'dataset', cfg.private, 'eat wiki sft')}")


@click.command("import-eat")
@model_options(ImportEatConfig)
def import_eat(**kwargs) -> None:
    """Convert the EAT authors' entity corpus into the pairs schema (with a found-in-text report)."""
    from eat.console import report
    from wiki_data.import_eat import import_eat as run_import
    from wiki_data.import_eat import stats_table

    cfg = model_from_options(ImportEatConfig, kwargs)
    stats = run_import(cfg.corpus, cfg.lang, cfg.out, overwrite=cfg.overwrite)
    report(stats_table(stats))
    report(f"wrote {stats.written:,} pairs to {cfg.out}")


def register(group: click.Group) -> None:
    """Add `sft` and `import-eat` to a click group (the lead calls this from wiki_data/cli.py)."""
    group.add_command(sft)
    group.add_command(import_eat)
