"""`eat demo` end to end (smaller settings than `make demo`): every step runs, a re-run reuses them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_demo_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "eat", "demo", "--out", str(out), "--steps", "4", "--workers", "2"]
    # The tiny models, even where EAT_REAL_MODELS is set (CI sets it for the real tier: tests/e2e/test_demo_real.py).
    env = {k: v for k, v in os.environ.items() if k != "EAT_REAL_MODELS"}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    report = out / "report.md"
    assert first.stdout.strip().splitlines()[-1] == str(report)
    text = report.read_text(encoding="utf-8")
    for png in ("data.png", "loss.png", "stages.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({png})" in text
    # Real work happened at every step.
    for lang in ("zh", "ja"):
        stats = json.loads((out / "pairs" / lang / "stats.json").read_text(encoding="utf-8"))
        assert stats, f"empty mining stats for {lang}"
        metrics = json.loads((out / "eval" / lang / "metrics.json").read_text(encoding="utf-8"))
        assert 0.0 <= metrics["entity"]["f1"] <= 1.0
        preds = (out / "eval" / lang / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(preds) == 10
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert "tiny random-weight" in text and "| zh |" in text and "| zh base |" not in text
    assert (out / "sft" / "train.jsonl").stat().st_size > 0

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    rules = [line for line in second.stderr.splitlines() if "──" in line]
    assert rules and not any("(running)" in line for line in rules)
    assert second.stderr.count("reusing") >= 7
