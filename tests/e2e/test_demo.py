"""`eat demo` end to end (smaller settings than `make demo`): every step runs and leaves the files a user opens,
with counts that agree with each other and with the report; a re-run reuses them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eat.recipes import load_recipe

STEPS = 4
LANGS = ("zh", "ja")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _row(text: str, after: str, first: str) -> list[str]:
    """The cells of the first report table row starting with `first` below the line starting with `after`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    row = next(line for line in lines[start:] if line.startswith(f"| {first} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def _check_mining(out: Path, lang: str, text: str) -> None:
    import pyarrow.parquet as pq

    stats = json.loads((out / "pairs" / lang / "stats.json").read_text(encoding="utf-8"))
    pages = stats["pages"]
    assert pages["pages_seen"] >= pages["with_en_link"] >= pages["kept"] > 0, pages
    shards = sorted((out / "pairs" / lang).glob("pairs-*.parquet"))
    types = [t for shard in shards for t in pq.read_table(shard, columns=["type"]).column("type").to_pylist()]
    assert len(types) == pages["kept"]  # one pair per kept page
    assert {"PER", "LOC", "ORG"} <= set(types)  # the sample Wikidata types every kind
    counts = [str(pages[k]) for k in ("pages_seen", "with_en_link", "kept")]
    counts += [str(types.count(t)) for t in ("PER", "LOC", "ORG", None)]
    assert _row(text, "## 1. Mined", lang)[1:8] == counts


def _check_eval(out: Path, lang: str, text: str) -> None:
    run = out / "eval" / lang
    for name in ("predictions.jsonl", "metrics.json", "report.md", "config.yaml"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    test_set = _jsonl(Path(metrics["dataset"]))  # the shipped test set the demo scored
    preds = _jsonl(run / "predictions.jsonl")
    assert [p["text"] for p in preds] == [s["text"] for s in test_set] and len(preds) == 10
    entity = metrics["entity"]
    assert entity["n_gold"] == sum(len(s["entities"]) for s in test_set) == sum(len(p["gold"]) for p in preds)
    assert entity["n_pred"] == sum(len(p["pred"]) for p in preds)
    assert metrics["counts"]["sentences"] == len(test_set)
    # F1 from the counts it reports (2c / (gold + pred)), as the report shows it.
    expected_f1 = 2 * entity["n_correct"] / (entity["n_gold"] + entity["n_pred"])
    assert abs(entity["f1"] - expected_f1) < 1e-12
    scores = _row(text, "## 3. EAT evaluation", lang)
    ours = [f"{entity[k]:.3f}" for k in ("precision", "recall", "f1")]
    assert scores[1:4] == ours, "the report's score row and metrics.json disagree"
    # The stage table: every sentence and gold entity accounted for; every lost item has a reason.
    stage_row = _row(text, "Items surviving each stage", lang)
    assert stage_row[1] == "10" and stage_row[6] == str(entity["n_gold"])
    assert any(line.startswith(f"- {lang}: ") for line in text.splitlines())


def _check_artefacts(out: Path) -> None:
    text = (out / "report.md").read_text(encoding="utf-8")
    for png in ("data.png", "loss.png", "stages.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({png})" in text
    assert "tiny random-weight" in text and "| zh base |" not in text
    for lang in LANGS:
        _check_mining(out, lang, text)
        _check_eval(out, lang, text)
    # The SFT dataset, its card, and the counts the report gives.
    train, val = _jsonl(out / "sft" / "train.jsonl"), _jsonl(out / "sft" / "validation.jsonl")
    assert train and val and all(row["messages"] for row in train)
    assert f"SFT dataset: {len(train)} training and {len(val)} validation chats" in text
    assert (out / "sft" / "README.md").is_file()
    # The adapter, trained for exactly --steps steps, and the recipe that re-trains it by hand.
    adapter = out / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    state = json.loads(next(adapter.rglob("trainer_state.json")).read_text(encoding="utf-8"))
    assert state["global_step"] == STEPS
    assert f"at step {STEPS}." in text
    recipe = load_recipe(out / "demo_recipe.yaml")
    assert recipe.training.max_steps == STEPS and Path(recipe.training.output_dir) == adapter


@pytest.mark.slow
def test_demo_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "eat", "demo", "--out", str(out), "--steps", str(STEPS), "--workers", "2"]
    # The tiny models, even where EAT_REAL_MODELS is set (CI sets it for the real tier: tests/e2e/test_demo_real.py).
    env = {k: v for k, v in os.environ.items() if k != "EAT_REAL_MODELS"}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.strip().splitlines()[-1] == str(out / "report.md")
    _check_artefacts(out)

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    rules = [line for line in second.stderr.splitlines() if "──" in line]
    assert rules and not any("(running)" in line for line in rules)
    assert second.stderr.count("reusing") >= 7
    _check_artefacts(out)  # the report is rebuilt from the same files
