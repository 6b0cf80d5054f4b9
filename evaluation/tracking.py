"""`eat eval` metrics sent to the experiment trackers training uses (`report_to`: tensorboard, wandb, mlflow,
trackio), so a checkpoint's training curves and its EAT scores sit in one place.

Only the scalar results go out (entity P/R/F1 overall and per type, the authors' token metric, failures per
stage, sentences/s) with the run's settings; predictions stay in the run folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from eat.errors import UserError

TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio")


def check_report_to(report_to: list[str]) -> None:
    """Unknown or missing trackers are one line before any model loads."""
    for name in report_to:
        if name == "none":
            continue
        if name not in TRACKERS:
            raise UserError(f"--report-to: unknown tracker {name!r} (use {', '.join(TRACKERS)} or none)")
        if importlib.util.find_spec(name) is None:
            raise UserError(f"--report-to: {name} is not installed (pip install {name}), or drop it")


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers worth plotting, flattened to `eval/...` names."""
    out: dict[str, float] = {}
    entity = metrics.get("entity") or {}
    for key in ("precision", "recall", "f1"):
        if isinstance(entity.get(key), int | float):
            out[f"eval/entity_{key}"] = float(entity[key])
    for type_, scores in (entity.get("per_type") or {}).items():
        if isinstance(scores, dict) and isinstance(scores.get("f1"), int | float):
            out[f"eval/entity_f1_{type_}"] = float(scores["f1"])
    token = metrics.get("token_authors") or {}
    if isinstance(token.get("f1"), int | float):
        out["eval/token_authors_f1"] = float(token["f1"])
    for stage, n in ((metrics.get("counts") or {}).get("failures") or {}).items():
        out[f"eval/failures_{stage}"] = float(n)
    if isinstance(metrics.get("sentences_per_s"), int | float):
        out["eval/sentences_per_s"] = float(metrics["sentences_per_s"])
    return out


def report(metrics: dict[str, Any], report_to: list[str], out: Path, name: str) -> list[str]:
    """Send the run's scalars and settings to each tracker; returns the trackers written to."""
    values = scalars(metrics)
    params = {
        k: str(metrics.get(k))
        for k in ("model", "adapter", "ner_model", "dataset", "lang", "mode", "backend")
    }
    done = []
    for tracker in report_to:
        if tracker == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            with SummaryWriter(log_dir=str(out / "tensorboard")) as writer:
                for key, value in values.items():
                    writer.add_scalar(key, value, 0)
                writer.add_text("eval/settings", "\n".join(f"{k}: {v}" for k, v in params.items()), 0)
        elif tracker == "wandb":
            import wandb

            run = wandb.init(project="eat-ner", name=name, config=params, dir=str(out), reinit=True)
            run.log(values)
            run.finish()
        elif tracker == "mlflow":
            import mlflow

            with mlflow.start_run(run_name=name):
                mlflow.log_params(params)
                mlflow.log_metrics({k.replace("/", "_"): v for k, v in values.items()})
        elif tracker == "trackio":
            import trackio

            trackio.init(project="eat-ner", name=name, config=params)
            trackio.log(values)
            trackio.finish()
        else:
            continue
        done.append(tracker)
    return done
