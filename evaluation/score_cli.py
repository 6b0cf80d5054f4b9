"""`eat score` (metrics only) and `eat bench` (compare runs). No torch imports: both start instantly."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import click
from pydantic import Field

from eat.config import StrictModel, model_from_options, model_options
from eat.errors import UserError

log = logging.getLogger(__name__)


class ScoreOptions(StrictModel):
    gold: str | None = Field(
        None,
        description="Gold test file (BIO/BMES columns or span JSON/JSONL). May be left out when --pred is an "
        "eval run's predictions.jsonl, which holds the gold spans.",
    )
    pred: str = Field(
        description="Predictions: a tag file with the same tokens, span JSON/JSONL, or RUN/predictions.jsonl."
    )
    format: Literal["auto", "bio", "bmes", "spans"] = Field("auto", description="Format of --gold.")
    pred_format: Literal["auto", "bio", "bmes", "spans", "run"] = Field(
        "auto", description="Format of --pred (run: rows with id, text, gold, pred from `eat eval`)."
    )
    lang: str | None = Field(
        None,
        description="Language code; needed for column files (zh/ja/th are joined without spaces, and the "
        "authors' token metric counts characters for zh/ja).",
    )
    mode: Literal["default", "strict"] = Field(
        "default", description="Headline entity metric: seqeval default (conlleval) or strict IOB2."
    )
    label_map: list[str] = Field(
        default_factory=list,
        description="Label renames applied to gold and predictions, FROM=TO (repeat or comma-separate); "
        "an empty TO drops the label, e.g. PER.NAM=PER,PER.NOM=",
    )
    bootstrap: int = Field(0, ge=0, description="Bootstrap resamples for 95% confidence intervals (0: off).")
    seed: int = Field(0, description="Seed of the bootstrap.")
    out: str | None = Field(None, description="Write all metrics to this JSON file (e.g. RUN/metrics.json).")


def _parse_label_map(items: list[str]) -> dict[str, str | None] | None:
    from evaluation.formats import parse_label_map

    return {k: v or None for k, v in parse_label_map(items).items()} or None


def _is_run_file(path: Path) -> bool:
    if path.suffix.lower() != ".jsonl":
        return False
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return False
                return isinstance(row, dict) and "pred" in row
    return False


def _align_to_gold(gold, pred_sents, pred_path: Path) -> list:
    """Match prediction sentences to gold: by id when all ids match, else by order; texts must agree."""
    if len(pred_sents) != len(gold):
        raise UserError(
            f"{len(pred_sents)} prediction sentences but {len(gold)} gold sentences", path=pred_path
        )
    by_id = {p.id: p for p in pred_sents}
    if len(by_id) == len(pred_sents) and all(g.id in by_id for g in gold):
        pred_sents = [by_id[g.id] for g in gold]
    for n, (g, p) in enumerate(zip(gold, pred_sents, strict=True), 1):
        if g.text != p.text:
            raise UserError(
                f"sentence {n} (id {g.id!r}): prediction text {p.text[:40]!r} differs from gold {g.text[:40]!r}",
                path=pred_path,
            )
    return pred_sents


def run_score(cfg: ScoreOptions) -> dict:
    """Load gold and predictions, compute every metric, write --out; return the metrics dict."""
    from evaluation.compare import read_predictions
    from evaluation.entities import Entity, Sentence
    from evaluation.formats import detect_format, load_dataset_file, map_type
    from evaluation.metrics import score_all

    label_map = _parse_label_map(cfg.label_map)
    pred_path = Path(cfg.pred)
    if not pred_path.is_file():
        raise UserError("prediction file not found", path=pred_path)
    pred_format = cfg.pred_format
    if pred_format == "auto":
        pred_format = "run" if _is_run_file(pred_path) else detect_format(pred_path)

    run_rows = None
    if pred_format == "run":
        run_rows = read_predictions(pred_path)

    if cfg.gold is None:
        if run_rows is None:
            raise UserError("--gold is required unless --pred is an eval run's predictions.jsonl")
        lang = cfg.lang or (str(run_rows[0].get("lang") or "xx") if run_rows else "xx")
        gold = []
        for n, row in enumerate(run_rows):
            ents = []
            for e in row["gold"]:
                t = map_type(e.type, label_map)
                if t is not None:
                    ents.append(Entity(e.start, e.end, t, e.text))
            gold.append(Sentence(id=str(row.get("id", n)), text=row["text"], lang=lang, gold=ents))
    else:
        gold_path = Path(cfg.gold)
        gold_format = (
            cfg.format
            if cfg.format != "auto"
            else (detect_format(gold_path) if gold_path.is_file() else "bio")
        )
        if gold_format != "spans" and cfg.lang is None:
            raise UserError("--lang is required for column files (it decides how tokens are joined)")
        lang = cfg.lang or "xx"
        gold = load_dataset_file(gold_path, gold_format, lang, label_map)
        if cfg.lang is None and gold:
            lang = gold[0].lang

    pred_tags = None
    if run_rows is not None:
        pred_sents = [
            Sentence(id=str(r.get("id", n)), text=r["text"], lang=lang, gold=list(r["pred"]))
            for n, r in enumerate(run_rows)
        ]
        for s in pred_sents:
            s.gold = [Entity(e.start, e.end, t, e.text) for e in s.gold if (t := map_type(e.type, label_map))]
        pred_sents = _align_to_gold(gold, pred_sents, pred_path)
    elif pred_format == "spans":
        pred_sents = load_dataset_file(pred_path, "spans", lang, label_map)
        pred_sents = _align_to_gold(gold, pred_sents, pred_path)
    else:
        pred_sents = load_dataset_file(pred_path, pred_format, lang, label_map)
        if len(pred_sents) != len(gold):
            raise UserError(
                f"{len(pred_sents)} prediction sentences but {len(gold)} gold sentences", path=pred_path
            )
        for n, (g, p) in enumerate(zip(gold, pred_sents, strict=True), 1):
            if g.tokens != p.tokens:
                raise UserError(f"sentence {n}: tokens differ from the gold file", path=pred_path)
        if all(g.tags is not None for g in gold):
            pred_tags = [p.tags for p in pred_sents]

    preds = [p.gold for p in pred_sents]
    metrics = {
        "gold": cfg.gold or str(pred_path),
        "pred": str(pred_path),
        "dataset": cfg.gold or str(pred_path),
        "lang": lang,
        "mode": cfg.mode,
        "sentences": len(gold),
        **score_all(gold, preds, pred_tags=pred_tags, lang=lang, bootstrap=cfg.bootstrap, seed=cfg.seed),
    }
    if cfg.mode == "strict" and "seqeval_strict" not in metrics:
        log.warning("--mode strict applies to tag files; these have no tags, so exact spans are scored")
    if cfg.out:
        from eat.io import write_json

        write_json(cfg.out, metrics)
    return metrics


def render_score_table(metrics: dict, mode: str):
    from rich.table import Table

    from evaluation.metrics import headline

    key, head = headline(metrics, mode)
    title = {
        "seqeval": "entity level, seqeval default (conlleval) mode",
        "seqeval_strict": "entity level, seqeval strict IOB2 mode",
        "entity": "entity level, exact character span and type",
    }[key]
    table = Table(title=f"{title} — {metrics['sentences']} sentences ({metrics['lang']})")
    for col in ("type", "precision", "recall", "F1", "gold", "pred", "correct"):
        table.add_column(col, justify="left" if col == "type" else "right")

    def row(name, v, style=None):
        table.add_row(
            name,
            f"{100 * v['precision']:.2f}",
            f"{100 * v['recall']:.2f}",
            f"{100 * v['f1']:.2f}",
            str(v["n_gold"]),
            str(v["n_pred"]),
            str(v["n_correct"]),
            style=style,
        )

    row("micro", head, "bold")
    for t, v in head["per_type"].items():
        row(t, v)
    if key != "entity":
        row("spans (exact)", metrics["entity"], "dim")
    tok = metrics["token_authors"]
    table.add_section()
    table.add_row(
        f"authors' token-level ({tok['unit']}s), not entity-level",
        f"{100 * tok['precision']:.2f}",
        f"{100 * tok['recall']:.2f}",
        f"{100 * tok['f1']:.2f}",
        "",
        "",
        "",
        style="italic",
    )
    if "bootstrap" in metrics:
        b = metrics["bootstrap"]
        table.caption = f"95% bootstrap CI of span F1 ({b['n']} resamples, seed {b['seed']}): " + (
            f"{100 * b['f1'][0]:.2f} - {100 * b['f1'][1]:.2f}"
        )
    return table


@click.command()
@model_options(ScoreOptions)
def score(**kwargs) -> None:
    """Score predictions against gold: entity-level P/R/F1 (seqeval-identical, micro and per type) and the
    authors' token-level metric.

    \b
    eat score --gold dev-zh.tsv --pred pred-zh.tsv --lang zh
    eat score --pred RUN/predictions.jsonl --mode strict --out RUN/metrics-strict.json
    """
    from eat.console import console

    cfg = model_from_options(ScoreOptions, kwargs)
    metrics = run_score(cfg)
    console.print(render_score_table(metrics, cfg.mode))
    if cfg.out:
        console.print(f"metrics written to {cfg.out}")


class BenchOptions(StrictModel):
    out: str = Field(description="Folder for summary.md, summary.csv, f1.png, errors.md and errors.png.")


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_options(BenchOptions)
def bench(runs: tuple[Path, ...], **kwargs) -> None:
    """Compare evaluation RUN folders (checkpoints x datasets x languages): tables, an F1 bar chart and
    a breakdown of why gold entities were lost.

    \b
    eat bench runs/base-zh runs/lora-zh runs/lora-ja --out bench-out
    """
    from eat.console import console
    from evaluation.compare import bench as run_bench

    cfg = model_from_options(BenchOptions, kwargs)
    result = run_bench(list(runs), cfg.out)
    console.print(
        f"{len(result['runs'])} runs compared; wrote summary.md, summary.csv, f1.png, errors.md, errors.png to {cfg.out}"
    )
