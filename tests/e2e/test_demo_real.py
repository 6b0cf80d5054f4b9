"""`eat demo` on the real models (`pytest -m real`): Qwen2.5 0.5B instruct + spaCy English from
`../shared/tools/real-models`, zh only to keep it short (~5 minutes on 2 CPU cores; zh+ja: see the report).

About 5-6 minutes, so it is also marked slow: `make test` runs `-m "real and not slow"`; run it with
`pytest -m real tests/e2e/test_demo_real.py`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import MAKE_REAL_MODELS

pytestmark = [pytest.mark.real, pytest.mark.slow]


def test_demo_with_real_models_reports_base_and_tuned(tmp_path, qwen, spacy_en):
    out = tmp_path / "demo"
    env = {
        **os.environ,
        "EAT_REAL_MODELS": str(qwen.parent),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    cmd = [sys.executable, "-m", "eat", "demo", "--out", str(out), "--langs", "zh"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out / "report.md"
    assert done.stdout.strip().splitlines()[-1] == str(report)
    text = report.read_text(encoding="utf-8")
    assert str(qwen.resolve()) in text and "en_core_web_sm" in text and MAKE_REAL_MODELS in text
    rows = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^\| zh (base|tuned) \| \d\.\d{3} \| \d\.\d{3} \| (\d\.\d{3}) \|", text, re.M)
    }
    assert set(rows) == {"base", "tuned"}, text
    assert max(rows.values()) > 0, f"entity F1 is zero for base and tuned: {rows}"
    # Both runs are real evaluations of the 10 shipped sentences, and the recipe can be re-run by hand.
    for variant in ("base", "tuned"):
        run = next((out / "runs").glob(f"*/eval/{variant}-zh"))
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["entity"]["f1"] == pytest.approx(rows[variant], abs=5e-4)
        assert len((run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()) == 10
    recipe = next((out / "runs").glob("*/demo_recipe.yaml")).read_text(encoding="utf-8")
    assert recipe.startswith("# Written by eat demo. Re-run with:\n#   eat train ")
    assert "| zh base |" in text and "| zh tuned |" in text and "Total wall time" in text
