"""Evaluation runs side by side: each RUN folder's metrics.json (from `eat eval` or `eat score`) and, from
its predictions.jsonl (rows of `evaluation.records`), why each lost gold entity was lost.

Error breakdown: every gold entity that is not predicted with exactly its span and type gets ONE cause,
decided by the first rule that applies:
1. wrong type — a prediction has exactly its span with another type;
2. snapped to wrong span — a prediction overlaps it with other boundaries;
3. untranslated — the sentence's translation is empty or stage 1 failed (trace `failure.stage == 1`);
4. alignment failed — an English entity's back-alignment could not be snapped (trace alignment with
   `snapped` null) or was dropped as overlapping; each such failure explains one missed gold entity of
   the sentence, preferring the gold entity whose text contains the alignment's answer or vice versa;
5. not tagged in English — otherwise: the English NER did not produce it (also when stage 2 failed).
Runs without a trace (direct mode has no English stage; score-only runs have no trace at all) use
rules 1-2, then "alignment failed" for failed snaps, then "missed".
Spurious predictions (matching no gold span exactly and overlapping none) are counted separately.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from eat.errors import UserError
from evaluation.entities import Entity
from evaluation.records import PredictionRow, Trace, read_predictions

CAUSES = (
    "untranslated",
    "not tagged in English",
    "alignment failed",
    "snapped to wrong span",
    "wrong type",
    "missed",
)


@dataclass
class ErrorBreakdown:
    """Totals over a run: gold entities, those predicted exactly, one count per cause of CAUSES (in that
    order) for the others, and predictions overlapping no gold entity."""

    gold: int
    correct: int
    causes: dict[str, int]
    spurious: int


@dataclass
class Run:
    """One RUN folder: its metrics.json, and its error breakdown when it has a predictions.jsonl."""

    path: Path
    metrics: dict
    errors: ErrorBreakdown | None


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("file not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise UserError("expected a JSON object", path=path)
    return data


def load_run(run: str | Path) -> Run:
    """metrics.json (required) plus the error breakdown from predictions.jsonl when present."""
    run = Path(run)
    if not run.is_dir():
        raise UserError("run folder not found", path=run)
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        raise UserError(
            "no metrics.json in this run folder (run `eat eval` or `eat score --out` first)", path=run
        )
    metrics = read_json(metrics_path)
    if not isinstance(metrics.get("entity"), dict) or "f1" not in metrics["entity"]:
        raise UserError("missing `entity` scores (with f1)", path=metrics_path)
    pred_path = run / "predictions.jsonl"
    errors = error_breakdown(read_predictions(pred_path)) if pred_path.is_file() else None
    return Run(run, metrics, errors)


def _overlap(a: Entity, b: Entity) -> bool:
    return a.start < b.end and b.start < a.end


def _related(a: str, b: str) -> bool:
    a, b = a.strip().casefold(), b.strip().casefold()
    return bool(a and b) and (a in b or b in a)


def classify_sentence(gold: list[Entity], pred: list[Entity], trace: Trace | None) -> tuple[Counter, int]:
    """Causes of the missed gold entities of one sentence (see module doc), and its spurious predictions."""
    causes: Counter = Counter()
    exact = {(e.start, e.end, e.type) for e in pred}
    missed = [g for g in gold if (g.start, g.end, g.type) not in exact]
    gold_keys = {(e.start, e.end, e.type) for e in gold}
    spurious = sum(
        1 for p in pred if (p.start, p.end, p.type) not in gold_keys and not any(_overlap(p, g) for g in gold)
    )
    alignments = trace.alignments if trace is not None else []
    failed_alignments = [a.answer or a.english or "" for a in alignments if a.failed]
    english_stage = trace is not None and trace.has_english_stage
    untranslated = trace is not None and trace.untranslated
    rest: list[Entity] = []
    for g in missed:
        if any(p.start == g.start and p.end == g.end for p in pred):
            causes["wrong type"] += 1
        elif any(_overlap(p, g) for p in pred):
            causes["snapped to wrong span"] += 1
        elif untranslated:
            causes["untranslated"] += 1
        else:
            rest.append(g)
    # failed alignments explain the remaining misses: related texts first, then in order
    assigned: set[int] = set()
    for answer in failed_alignments:
        pick = next((i for i, g in enumerate(rest) if i not in assigned and _related(answer, g.text)), None)
        if pick is None:
            pick = next((i for i in range(len(rest)) if i not in assigned), None)
        if pick is None:
            break
        assigned.add(pick)
        causes["alignment failed"] += 1
    left = len(rest) - len(assigned)
    if left:
        causes["not tagged in English" if english_stage else "missed"] += left
    return causes, spurious


def error_breakdown(rows: list[PredictionRow]) -> ErrorBreakdown:
    """Totals over a run's rows (see `ErrorBreakdown`)."""
    total: Counter = Counter()
    n_gold = n_ok = n_spurious = 0
    for row in rows:
        gold, pred = row.gold, row.pred
        n_gold += len(gold)
        n_ok += len({(e.start, e.end, e.type) for e in gold} & {(e.start, e.end, e.type) for e in pred})
        causes, spurious = classify_sentence(gold, pred, row.trace)
        total.update(causes)
        n_spurious += spurious
    return ErrorBreakdown(n_gold, n_ok, {c: total.get(c, 0) for c in CAUSES}, n_spurious)
