"""`eat score`: every metric of a prediction file against its gold (no model, no torch: starts instantly).

Predictions are a tag file with the gold's tokens, span JSON/JSONL, or an eval run's predictions.jsonl
(which carries its own gold). Prediction sentences are matched to gold ones by id when all ids match, else
by order, and their texts (or tokens) must agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from eat.config import StrictModel
from eat.errors import UserError
from eat.io import write_json
from evaluation.entities import Entity, Sentence
from evaluation.formats import detect_format, load_dataset_file, map_type, parse_label_map
from evaluation.metrics import score_all
from evaluation.records import looks_like_predictions, read_predictions

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


@dataclass
class Predicted:
    """One sentence of the prediction file: what matches it to its gold sentence, and its entities."""

    id: str
    text: str
    entities: list[Entity]
    tokens: list[str] | None = None
    tags: list[str] | None = None

    @classmethod
    def from_file(cls, sentence: Sentence) -> Predicted:
        """A sentence loaded from a prediction file: the entities the loader calls gold are the predictions."""
        return cls(sentence.id, sentence.text, sentence.gold, sentence.tokens, sentence.tags)


def _parse_label_map(items: list[str]) -> dict[str, str | None] | None:
    return {k: v or None for k, v in parse_label_map(items).items()} or None


def _mapped(entities: list[Entity], label_map: dict[str, str | None] | None) -> list[Entity]:
    return [
        Entity(e.start, e.end, t, e.text) for e in entities if (t := map_type(e.type, label_map)) is not None
    ]


def _align_to_gold(gold: list[Sentence], predicted: list[Predicted], pred_path: Path) -> list[Predicted]:
    """Match prediction sentences to gold: by id when all ids match, else by order; texts must agree."""
    if len(predicted) != len(gold):
        raise UserError(
            f"{len(predicted)} prediction sentences but {len(gold)} gold sentences", path=pred_path
        )
    by_id = {p.id: p for p in predicted}
    if len(by_id) == len(predicted) and all(g.id in by_id for g in gold):
        predicted = [by_id[g.id] for g in gold]
    for n, (g, p) in enumerate(zip(gold, predicted, strict=True), 1):
        if g.text != p.text:
            raise UserError(
                f"sentence {n} (id {g.id!r}): prediction text {p.text[:40]!r} differs from gold {g.text[:40]!r}",
                path=pred_path,
            )
    return predicted


def run_score(cfg: ScoreOptions) -> dict:
    """Load gold and predictions, compute every metric, write --out; return the metrics dict."""
    label_map = _parse_label_map(cfg.label_map)
    pred_path = Path(cfg.pred)
    if not pred_path.is_file():
        raise UserError("prediction file not found", path=pred_path)
    pred_format = cfg.pred_format
    if pred_format == "auto":
        pred_format = "run" if looks_like_predictions(pred_path) else detect_format(pred_path)
    run_rows = read_predictions(pred_path) if pred_format == "run" else None

    if cfg.gold is None:
        if run_rows is None:
            raise UserError("--gold is required unless --pred is an eval run's predictions.jsonl")
        lang = cfg.lang or ((run_rows[0].lang or "xx") if run_rows else "xx")
        gold = [
            Sentence(
                id=row.id if row.id is not None else str(n),
                text=row.text,
                lang=lang,
                gold=_mapped(row.gold, label_map),
            )
            for n, row in enumerate(run_rows)
        ]
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
        if not gold:
            raise UserError("no sentences in the gold file", path=gold_path)
        if cfg.lang is None and gold:
            lang = gold[0].lang

    pred_tags = None
    if run_rows is not None:
        predicted = [
            Predicted(row.id if row.id is not None else str(n), row.text, _mapped(row.pred, label_map))
            for n, row in enumerate(run_rows)
        ]
        predicted = _align_to_gold(gold, predicted, pred_path)
    elif pred_format == "spans":
        predicted = [Predicted.from_file(s) for s in load_dataset_file(pred_path, "spans", lang, label_map)]
        predicted = _align_to_gold(gold, predicted, pred_path)
    else:
        predicted = [
            Predicted.from_file(s) for s in load_dataset_file(pred_path, pred_format, lang, label_map)
        ]
        if len(predicted) != len(gold):
            raise UserError(
                f"{len(predicted)} prediction sentences but {len(gold)} gold sentences", path=pred_path
            )
        for n, (g, p) in enumerate(zip(gold, predicted, strict=True), 1):
            if g.tokens != p.tokens:
                raise UserError(f"sentence {n}: tokens differ from the gold file", path=pred_path)
        if all(g.tags is not None for g in gold):
            pred_tags = [p.tags for p in predicted]

    preds = [p.entities for p in predicted]
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
        write_json(cfg.out, metrics)
    return metrics
