"""The demo's report: one Markdown file with PNG charts, built only from the artefacts on disk."""

from __future__ import annotations

import json
from pathlib import Path

from eat.io import atomic_open, atomic_path


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


def stage_counts(predictions: list[dict]) -> dict[str, int]:
    """How many items survive each stage of the pipeline, from the per-sentence traces."""
    counts = {"sentences": len(predictions), "translated": 0, "english entities": 0, "aligned": 0,
              "snapped": 0, "gold entities": 0, "correct": 0}  # fmt: skip
    for row in predictions:
        trace = row.get("trace") or {}
        counts["translated"] += bool((trace.get("translation") or "").strip())
        counts["english entities"] += len(trace.get("english_entities") or [])
        alignments = trace.get("alignments") or []
        counts["aligned"] += sum(1 for a in alignments if (a.get("answer") or "").strip())
        counts["snapped"] += sum(1 for a in alignments if a.get("snapped"))
        gold = {(g["start"], g["end"], g["type"]) for g in row.get("gold", [])}
        pred = {(p["start"], p["end"], p["type"]) for p in row.get("pred", [])}
        counts["gold entities"] += len(gold)
        counts["correct"] += len(gold & pred)
    return counts


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def write_demo_report(out_dir: Path, pair_dirs, sft: Path, adapter: Path, runs, timings: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["# eat-ner demo report", ""]

    # --- data
    lines += [
        "## 1. Mined entity pairs",
        "",
        "| language | pages seen | with English link | kept |",
        "|---|---|---|---|",
    ]
    data_rows = []
    for pairs in pair_dirs:
        stats = _read_json(pairs / "stats.json")
        flat = {k: v for k, v in stats.items() if isinstance(v, int | float)}
        seen = flat.get("pages_seen", flat.get("pages", 0))
        en = flat.get("with_en_link", flat.get("english_linked", 0))
        kept = flat.get("kept", 0)
        data_rows.append((pairs.name, seen, en, kept))
        lines.append(f"| {pairs.name} | {seen} | {en} | {kept} |")
    train_rows, val_rows = _jsonl(sft / "train.jsonl"), _jsonl(sft / "validation.jsonl")
    lines += ["", f"SFT dataset: {len(train_rows)} training and {len(val_rows)} validation chats "
              f"([dataset card]({(sft / 'README.md').relative_to(out_dir)})).", "", "![data](data.png)", ""]  # fmt: skip
    fig, ax = plt.subplots(figsize=(6, 3))
    labels = [r[0] for r in data_rows]
    for i, (name, idx) in enumerate((("pages seen", 1), ("with English link", 2), ("kept", 3))):
        ax.bar(
            [x + i * 0.25 for x in range(len(labels))], [r[idx] for r in data_rows], width=0.25, label=name
        )
    ax.set_xticks([x + 0.25 for x in range(len(labels))], labels)
    ax.set_title("Mining: pages per language")
    ax.legend()
    _save(fig, out_dir / "data.png")
    plt.close(fig)

    # --- training
    history = training_log(adapter)
    steps = [h["step"] for h in history if "loss" in h]
    losses = [h["loss"] for h in history if "loss" in h]
    lines += ["## 2. LoRA fine-tuning", ""]
    if losses:
        lines += [f"Training loss {losses[0]:.3f} at step {steps[0]} -> {losses[-1]:.3f} at step {steps[-1]}.", "",
                  "![loss](loss.png)", ""]  # fmt: skip
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(steps, losses, marker="o")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title("LoRA fine-tuning")
        _save(fig, out_dir / "loss.png")
        plt.close(fig)
    else:
        lines += ["No training log found.", ""]

    # --- evaluation
    lines += [
        "## 3. EAT evaluation",
        "",
        "| language | P | R | F1 | authors' token-level F1 |",
        "|---|---|---|---|---|",
    ]
    stage_rows = {}
    for run in runs:
        metrics = _read_json(run / "metrics.json")
        ent = metrics.get("entity", {})
        tok = metrics.get("token_authors", {}) or {}
        lines.append(
            f"| {run.name} | {ent.get('precision', 0):.3f} | {ent.get('recall', 0):.3f} | {ent.get('f1', 0):.3f} "
            f"| {tok.get('f1', float('nan')):.3f} |"
        )
        stage_rows[run.name] = stage_counts(_jsonl(run / "predictions.jsonl"))
    lines += ["", "Items surviving each stage (from the traces in predictions.jsonl):", ""]
    names = list(next(iter(stage_rows.values()), {}).keys())
    lines += ["| language | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for lang, counts in stage_rows.items():
        lines.append(f"| {lang} | " + " | ".join(str(counts[n]) for n in names) + " |")
    lines += ["", "![stages](stages.png)", ""]
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / max(len(stage_rows), 1)
    for i, (lang, counts) in enumerate(stage_rows.items()):
        ax.bar(
            [x + i * width for x in range(len(names))], [counts[n] for n in names], width=width, label=lang
        )
    ax.set_xticks([x + width * (len(stage_rows) - 1) / 2 for x in range(len(names))], names, rotation=20)
    ax.set_title("EAT pipeline: items per stage")
    ax.legend()
    _save(fig, out_dir / "stages.png")
    plt.close(fig)

    lines += ["## Timings (seconds)", "", "| step | s |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in timings.items()]
    lines += ["", "With the default tiny random-weight model the scores are near zero by design: the demo shows",
              "the workflow. Run `eat demo --model Qwen/Qwen2.5-7B-Instruct --ner-model PATH` for real numbers.", ""]  # fmt: skip
    report = out_dir / "report.md"
    with atomic_open(report) as fh:
        fh.write("\n".join(lines))
    return report
