"""`eat bench` on small fake run folders, the error breakdown rules, and `eat score` end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eat.errors import UserError
from evaluation.bench import bench
from evaluation.cli import bench as bench_cmd
from evaluation.cli import score as score_cmd
from evaluation.compare import classify_sentence, error_breakdown
from evaluation.entities import Entity
from evaluation.records import PredictionRow, Trace, read_predictions
from evaluation.score import ScoreOptions, run_score

FIX = Path(__file__).parent / "fixtures"


def E(s, e, t, text=""):
    return Entity(s, e, t, text)


def test_error_rules_one_cause_per_missed_entity():
    gold = [E(0, 2, "PER", "张三"), E(3, 5, "LOC", "北京"), E(6, 8, "ORG", "腾讯"), E(9, 11, "PER", "李四")]
    pred = [E(0, 2, "LOC"), E(3, 4, "LOC"), E(20, 22, "ORG")]
    trace = Trace.model_validate(
        {
            "translation": "Zhang San in Beijing ...",
            "english_entities": [{"type": "ORG", "text": "Tencent"}],
            "alignments": [{"english": "Tencent", "answer": "腾讯", "snapped": None}],
        }
    )
    causes, spurious = classify_sentence(gold, pred, trace)
    assert causes == {
        "wrong type": 1,
        "snapped to wrong span": 1,
        "alignment failed": 1,
        "not tagged in English": 1,
    }
    assert spurious == 1
    # the failed alignment goes to the related gold entity, not to the first missed one
    causes, _ = classify_sentence(gold[2:], [], trace)
    assert causes == {"alignment failed": 1, "not tagged in English": 1}
    # empty translation: everything not overlapped is untranslated
    untranslated = Trace.model_validate({"translation": "", "failure": {"stage": 1}})
    causes, _ = classify_sentence(gold, [E(0, 2, "PER")], untranslated)
    assert causes == {"untranslated": 3}
    # no trace at all (score-only run): plain misses
    causes, _ = classify_sentence(gold, [E(0, 2, "PER")], None)
    assert causes == {"missed": 3}
    # correct predictions are not errors
    assert classify_sentence(gold, list(gold), trace) == ({}, 0)


def _make_run(root: Path, name: str, model: str, adapter, lang: str, rows: list[dict], f1: float) -> Path:
    run = root / name
    run.mkdir()
    with open(run / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    metrics = {
        "model": model,
        "adapter": adapter,
        "dataset": f"data/dev-{lang}.tsv",
        "lang": lang,
        "mode": "eat",
        "entity": {"precision": f1, "recall": f1, "f1": f1, "n_gold": 4, "n_pred": 4, "per_type": {}},
        "seqeval": {"precision": f1, "recall": f1, "f1": f1},
        "token_authors": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "label": "authors'"},
    }
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return run


def _row(i, text, gold, pred, trace):
    return {
        "id": str(i),
        "text": text,
        "gold": [e.to_dict() for e in gold],
        "pred": [e.to_dict() for e in pred],
        "trace": trace,
    }


def test_bench_writes_tables_charts_and_breakdown(tmp_path):
    ok = {"translation": "x", "english_entities": [], "alignments": []}
    rows_a = [
        _row(0, "张三在北京", [E(0, 2, "PER", "张三"), E(3, 5, "LOC", "北京")], [E(0, 2, "PER", "张三")], ok),
        _row(1, "李四", [E(0, 2, "PER", "李四")], [], {"translation": "", "failure": {"stage": 1}}),
    ]
    rows_b = [
        _row(
            0,
            "张三在北京",
            [E(0, 2, "PER", "张三"), E(3, 5, "LOC", "北京")],
            [E(0, 2, "ORG"), E(3, 5, "LOC")],
            ok,
        ),
        _row(1, "李四", [E(0, 2, "PER", "李四")], [E(0, 1, "PER")], ok),
    ]
    a = _make_run(tmp_path, "base", "models/Qwen2.5-7B", None, "zh", rows_a, 0.4)
    b = _make_run(tmp_path, "lora", "models/Qwen2.5-7B", "ckpt/lora-500", "zh", rows_b, 0.3333)
    out = tmp_path / "bench"
    result = bench([a, b], out)
    for name in ("summary.md", "summary.csv", "f1.png", "errors.md", "errors.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))
    with open(out / "summary.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_ckpt = {r["checkpoint"]: r for r in rows}
    assert set(by_ckpt) == {"Qwen2.5-7B", "Qwen2.5-7B+lora-500"}
    assert float(by_ckpt["Qwen2.5-7B"]["f1"]) == 0.4
    assert float(by_ckpt["Qwen2.5-7B+lora-500"]["seqeval_f1"]) == 0.3333
    assert float(by_ckpt["Qwen2.5-7B"]["token_authors_f1"]) == 0.85
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "| Qwen2.5-7B | dev-zh.tsv | zh | 40.00 |" in md
    assert "authors' token-level metric, not entity-level" in md
    errs = {r.path.name: r.errors for r in result.runs}
    assert errs["base"].causes["untranslated"] == 1
    assert errs["base"].causes["not tagged in English"] == 1
    assert errs["lora"].causes["wrong type"] == 1 and errs["lora"].causes["snapped to wrong span"] == 1
    assert errs["lora"].correct == 1 and errs["base"].correct == 1
    emd = (out / "errors.md").read_text(encoding="utf-8")
    assert "| base | Qwen2.5-7B | dev-zh.tsv | zh | 3 | 1 | 1 | 1 | 0 | 0 | 0 | 0 | 0 |" in emd
    assert len(bench([a, b, a], tmp_path / "again").rows) == 2  # a run named twice counts once


def test_bench_cli_and_bad_runs(tmp_path):
    run = _make_run(tmp_path, "r", "m", None, "ja", [], 0.5)
    res = CliRunner().invoke(bench_cmd, [str(run), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "summary.csv").is_file()
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no metrics\.json"):
        bench([tmp_path / "empty"], tmp_path / "o2")
    (run / "predictions.jsonl").write_text('{"text": "a", "gold": []}\n{"text": \n', encoding="utf-8")
    with pytest.raises(UserError, match=r"predictions\.jsonl:2: invalid JSON line"):
        read_predictions(run / "predictions.jsonl")
    assert not (tmp_path / "o2").exists()


def test_runs_of_the_same_checkpoint_are_told_apart(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = _make_run(tmp_path / "x", "run", "m", None, "ko", [], 0.5)
    b = _make_run(tmp_path / "y", "run", "m", None, "ko", [], 0.25)
    rows = bench([a, b], tmp_path / "o").rows
    assert [r["checkpoint"] for r in rows] == ["m (x/run)", "m (y/run)"]
    assert "| x/run | m | dev-ko.tsv | ko |" in (tmp_path / "o" / "errors.md").read_text(encoding="utf-8")


def test_error_breakdown_totals():
    rows = [
        PredictionRow(text="ab", gold=[E(0, 1, "PER")], pred=[E(0, 1, "PER"), E(5, 6, "LOC")]),
        PredictionRow(text="abc", gold=[E(0, 1, "PER"), E(2, 3, "ORG")]),
    ]
    e = error_breakdown(rows)
    assert e.gold == 3 and e.correct == 1 and e.spurious == 1 and e.causes["missed"] == 2


def test_score_tag_file_against_gold(tmp_path):
    pred = tmp_path / "pred.txt"
    # same tokens as conll_space.txt; New York typed ORG, Acme missed
    pred.write_text(
        "Maria\tB-PER\nlives\tO\nin\tO\nNew\tB-ORG\nYork\tI-ORG\n.\tO\n\nAcme\tO\nhired\tO\nBo\tB-PER\n",
        encoding="utf-8",
    )
    m = run_score(ScoreOptions(gold=str(FIX / "conll_space.txt"), pred=str(pred), lang="en"))
    assert (m["seqeval"]["n_gold"], m["seqeval"]["n_pred"], m["seqeval"]["n_correct"]) == (4, 3, 2)
    assert m["entity"]["f1"] == m["seqeval"]["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert m["token_authors"]["unit"] == "token"
    bad = tmp_path / "bad.txt"
    bad.write_text("Maria\tB-PER\n", encoding="utf-8")
    with pytest.raises(UserError, match="1 prediction sentences but 2 gold"):
        run_score(ScoreOptions(gold=str(FIX / "conll_space.txt"), pred=str(bad), lang="en"))


def test_score_bmes_and_bioes_files(tmp_path):
    """BMES/BIOES gold scores like the IOB2 tags of the same entities, in both seqeval modes."""
    tokens = ["张", "小", "三", "在", "北", "京", "。", "李", "四", "到", "沪"]
    bmes = ["B-PER", "M-PER", "E-PER", "O", "B-LOC", "E-LOC", "O", "B-PER", "E-PER", "O", "S-LOC"]
    iob2 = ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-PER", "I-PER", "O", "B-LOC"]
    bioes = [t.replace("M-", "I-") for t in bmes]

    def write(name, tags):
        path = tmp_path / name
        path.write_text("".join(f"{w} {t}\n" for w, t in zip(tokens, tags, strict=True)), encoding="utf-8")
        return str(path)

    gold_bmes, gold_bioes, gold_bio = write("g.bmes", bmes), write("g.bioes", bioes), write("g.bio", iob2)
    missed = write("p.bio", [*iob2[:-1], "O"])  # the last LOC missed
    for gold in (gold_bmes, gold_bioes):
        for mode in ("default", "strict"):
            m = run_score(ScoreOptions(gold=gold, pred=gold, lang="zh", mode=mode))
            assert m["seqeval"]["f1"] == m["seqeval_strict"]["f1"] == m["entity"]["f1"] == 1.0
        want = run_score(ScoreOptions(gold=gold_bio, pred=missed, lang="zh"))
        got = run_score(ScoreOptions(gold=gold, pred=missed, lang="zh"))
        assert got["seqeval"]["n_gold"] == 4 and got["seqeval"]["n_correct"] == 3
        assert (got["seqeval"], got["seqeval_strict"]) == (want["seqeval"], want["seqeval_strict"])


def test_score_span_predictions_and_run_file(tmp_path):
    pred = tmp_path / "pred.jsonl"
    pred.write_text(
        json.dumps(
            {"text": "東京大学の田中さん", "entities": [{"name": "東京大学", "span": [0, 4], "type": "ORG"}]}
        )
        + "\n"
        + json.dumps(
            {"text": "ソウルへ行く", "entities": [{"name": "ソウル", "span": [0, 3], "type": "PER"}]}
        )
        + "\n",
        encoding="utf-8",
    )
    m = run_score(ScoreOptions(gold=str(FIX / "spans.jsonl"), pred=str(pred), lang="ja"))
    assert (m["entity"]["n_gold"], m["entity"]["n_pred"], m["entity"]["n_correct"]) == (3, 2, 1)
    assert "seqeval" not in m  # span gold has no tags
    assert m["token_authors"]["unit"] == "character"
    # an eval run's predictions.jsonl carries its own gold
    run = tmp_path / "predictions.jsonl"
    rows = [
        _row(
            "a",
            "東京大学の田中さん",
            [E(0, 4, "ORG", "東京大学"), E(5, 7, "PER", "田中")],
            [E(0, 4, "ORG")],
            {},
        ),
        _row("b", "ソウルへ行く", [E(0, 3, "LOC", "ソウル")], [E(0, 3, "LOC")], {}),
    ]
    run.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "m.json"
    res = CliRunner().invoke(
        score_cmd, ["--pred", str(run), "--lang", "ja", "--out", str(out), "--mode", "strict"]
    )
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["entity"]["n_correct"] == 2 and saved["entity"]["recall"] == 2 / 3
    # texts must agree with the gold
    with pytest.raises(UserError, match="differs from gold"):
        run_score(ScoreOptions(gold=str(FIX / "spans.json"), pred=str(pred)))
