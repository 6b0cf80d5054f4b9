"""predictions.jsonl through `evaluation.records`: rows in the format runs have always written load and are
written back byte for byte; a row that is not one is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eat.errors import UserError
from evaluation.records import PredictionRow, looks_like_predictions, read_predictions, write_predictions

# Rows written by the pipeline before the records were typed: EAT mode with a stage-1 failure, a stage-2
# failure, a dropped overlap and a span widened to the file's tokens; direct mode with and without a failure.
FIRST_FORMAT = Path(__file__).parent / "fixtures" / "predictions_first_format.jsonl"


def test_rows_of_earlier_runs_load_and_write_back_unchanged(tmp_path):
    rows = read_predictions(FIRST_FORMAT)
    out = tmp_path / "predictions.jsonl"
    assert write_predictions(out, rows) == len(rows) == 6
    assert out.read_bytes() == FIRST_FORMAT.read_bytes()
    assert looks_like_predictions(out)

    stage1, stage2, dropped, widened, direct_failed, direct = rows
    assert stage1.trace.untranslated and stage1.trace.failure.stage == 1
    assert stage2.trace.failure.stage == 2 and not stage2.trace.untranslated and stage2.trace.english_ner_raw
    assert [a.dropped for a in dropped.trace.alignments] == [False, True]
    assert dropped.trace.alignments[1].failed and dropped.trace.alignments[1].snapped is not None
    assert any(a.token_aligned for a in widened.trace.alignments)
    assert direct_failed.trace.failure.stage == "direct" and not direct_failed.trace.has_english_stage
    assert direct.trace.direct_replies and all(
        a.english is None and a.replies is None for a in direct.trace.alignments
    )


def test_rows_from_elsewhere_need_only_text():
    row = PredictionRow.model_validate({"id": 7, "text": "ab", "gold": [{"start": 0, "end": 1, "type": "X"}]})
    assert row.id == "7" and row.trace is None and row.pred == [] and row.gold[0].text == ""


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": \n', "invalid JSON line"),
        ('["text"]\n', "bad prediction row: expected an object with `text`"),
        (
            '{"text": "a", "trace": {"alignments": [{"snapped": 3}]}}\n',
            "bad prediction row: trace.alignments.0.snapped",
        ),
        ('{"text": "a", "pred": [{"start": 0}]}\n', "bad prediction row: pred.0.end"),
    ],
)
def test_a_row_that_is_not_one_is_refused_in_one_line(tmp_path, line, message):
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps({"text": "ok"}) + "\n" + line, encoding="utf-8")
    with pytest.raises(UserError, match=rf"predictions\.jsonl:2: {message}") as info:
        read_predictions(path)
    assert "\n" not in str(info.value)
