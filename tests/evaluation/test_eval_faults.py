"""Faults a user meets around `eat eval` and `eat score`: odd encodings, empty files, a --lang that does not
match the text, two runs into one folder. Each ends in one line, a warning, or the right result."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from eat.errors import UserError
from eat.io import LOCK_NAME, output_lock
from evaluation.config import EvalRecipe
from evaluation.formats import load_dataset_file
from evaluation.run import load_sentences, run_eval
from tests.evaluation.helpers.scripted import ScriptedBackend


def eat(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eat", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_a_utf8_bom_is_not_glued_to_the_first_token(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeff北\tB-LOC\n京\tI-LOC\n是\tO\n".encode())
    (s,) = load_dataset_file(path, "auto", "zh")
    assert (
        s.text == "北京是"
        and s.tokens[0] == "北"
        and [(e.start, e.end, e.type) for e in s.gold] == [(0, 2, "LOC")]
    )
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(
        '\ufeff{"text": "北京", "entities": [{"type": "LOC", "start": 0, "end": 2}]}\n'.encode()
    )
    assert load_dataset_file(jsonl, "auto", "zh")[0].text == "北京"


def test_score_names_a_non_utf8_prediction_file_in_one_line(tmp_path):
    (tmp_path / "gold.tsv").write_text("北\tB-LOC\n京\tI-LOC\n", "utf-8")
    (tmp_path / "pred.tsv").write_bytes(b"\xff\xfe\x00b\tO\n")
    result = eat("score", "--gold", "gold.tsv", "--pred", "pred.tsv", "--lang", "zh", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == "error: pred.tsv: not UTF-8 text (byte 0 cannot be decoded); convert it to UTF-8"
    )


def test_two_empty_files_are_no_sentences(tmp_path):
    (tmp_path / "gold.tsv").write_text("", "utf-8")
    (tmp_path / "pred.tsv").write_text("", "utf-8")
    result = eat(
        "score", "--gold", "gold.tsv", "--pred", "pred.tsv", "--lang", "zh", "--out", "m.json", cwd=tmp_path
    )
    assert (
        result.returncode == 2 and result.stderr.strip() == "error: gold.tsv: no sentences in the gold file"
    )
    assert not (tmp_path / "m.json").exists()


def test_a_lang_that_contradicts_the_script_is_warned_about(tmp_path, caplog):
    path = tmp_path / "zh.tsv"
    path.write_text("北\tB-LOC\n京\tI-LOC\n是\tO\n首\tO\n都\tO\n", "utf-8")
    with caplog.at_level(logging.WARNING):
        load_sentences(EvalRecipe(model="m", data=str(path), lang="en", out=str(tmp_path / "run")))
    assert "--lang en is written in Latin, but the text is mostly Han: is --lang right?" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_sentences(EvalRecipe(model="m", data=str(path), lang="zh", out=str(tmp_path / "run")))
    assert "is --lang right" not in caplog.text


def test_a_second_eval_into_the_same_run_folder_is_refused(tmp_path):
    path = tmp_path / "zh.tsv"
    path.write_text("北\tB-LOC\n京\tI-LOC\n", "utf-8")
    cfg = EvalRecipe(model="scripted", data=str(path), lang="zh", out=str(tmp_path / "run"), mode="direct")
    with (
        output_lock(tmp_path / "run" / LOCK_NAME),
        pytest.raises(UserError, match=r"run: another eat run \(pid"),
    ):
        run_eval(cfg, backend=ScriptedBackend({}))
    assert not (tmp_path / "run" / "predictions.jsonl").exists()
    run_eval(cfg, backend=ScriptedBackend({}))  # once the other run is gone, it goes through
    assert (tmp_path / "run" / "predictions.jsonl").is_file() and (
        tmp_path / "run" / ".eat-output.json"
    ).is_file()


def test_eval_scores_go_to_tensorboard_and_missing_trackers_are_one_line(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = tmp_path / "zh.tsv"
    path.write_text("北\tB-LOC\n京\tI-LOC\n", "utf-8")
    cfg = EvalRecipe(
        model="scripted",
        data=str(path),
        lang="zh",
        out=str(tmp_path / "run"),
        mode="direct",
        report_to=["tensorboard"],
    )
    metrics = run_eval(cfg, backend=ScriptedBackend({}))
    (events,) = (tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert acc.Scalars("eval/entity_f1")[0].value == pytest.approx(metrics["entity"]["f1"])
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    for bad, message in ((["comet"], "unknown tracker 'comet'"), (["wandb"], "wandb is not installed")):
        with pytest.raises(UserError, match=message):
            run_eval(
                cfg.model_copy(update={"report_to": bad, "out": str(tmp_path / "other")}),
                backend=ScriptedBackend({}),
            )


def test_deeply_nested_json_is_one_line(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n", "utf-8")
    with pytest.raises(UserError, match=r"deep\.jsonl: JSON nested too deeply"):
        load_dataset_file(path, "auto", "zh")
