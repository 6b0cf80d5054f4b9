"""`eat demo` on the real models (`pytest -m real`): Qwen2.5 0.5B instruct + spaCy English from
`../shared/tools/real-models`, zh only to keep it short (~5 minutes on 2 CPU cores; zh+ja: see the report).

Skips with the command that makes the models where they are missing; fails instead under
EAT_REQUIRE_REAL_MODELS=1 (CI). The logic is tests/real/conftest.py's, copied: test packages do not import
each other.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

MAKE = "../shared/tools/real-models qwen0.5b spacy-en"


def real_models_dir() -> Path:
    return Path(os.environ.get("EAT_REAL_MODELS") or Path.home() / ".cache" / "eat-ner" / "real-models")


def _need(name: str, marker: str) -> Path:
    path = real_models_dir() / name
    if (path / marker).is_file():
        return path
    message = f"real model folder {path} is missing; make it with `{MAKE}` (about 2.5 minutes, cached)"
    if os.environ.get("EAT_REQUIRE_REAL_MODELS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def test_demo_with_real_models_reports_base_and_tuned(tmp_path):
    qwen = _need("qwen2.5-coder-0.5b-instruct", "config.json")
    pytest.importorskip("spacy", reason="pip install 'eat-ner[spacy]'")
    _need("en_core_web_sm", "config.cfg")
    out = tmp_path / "demo"
    env = {
        **os.environ,
        "EAT_REAL_MODELS": str(real_models_dir()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    cmd = [sys.executable, "-m", "eat", "demo", "--out", str(out), "--langs", "zh"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out / "report.md"
    assert done.stdout.strip().splitlines()[-1] == str(report)
    text = report.read_text(encoding="utf-8")
    assert str(qwen.resolve()) in text and "en_core_web_sm" in text and MAKE in text
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
