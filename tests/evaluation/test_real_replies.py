"""The parsers of every stage on replies recorded from real models (tests/evaluation/fixtures/real_replies,
see its README), each with the parse judged correct by hand, plus hand-written shapes real models produce
that the recordings do not cover. Rows with `known_issue` are snapping problems (not the parsers'):
strict xfails, so a fix shows up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eat.prompts import load_prompts
from evaluation.english_ner import parse_ner_reply
from evaluation.spans import clean_answer, snap
from evaluation.translate import read_translation

FIXTURES = Path(__file__).parent / "fixtures" / "real_replies"
AUTHORS = Path(__file__).resolve().parents[3] / "shared/data/eat-official/prompts.yaml"
OURS = load_prompts()
# "older" rows were recorded with an earlier 3-turn version of our prompts without an answer label: read
# like the authors' chats (whole last reply). The authors' file is only needed for its templates.
PROMPTS = {"ours": OURS, "older": OURS, "authors": load_prompts(AUTHORS) if AUTHORS.is_file() else None}


def _rows():
    for path in sorted(FIXTURES.glob("*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            row = json.loads(line)
            marks = (
                [pytest.mark.xfail(reason=row["known_issue"], strict=True)] if row.get("known_issue") else []
            )
            yield pytest.param(row, id=f"{path.stem}-{i}-{row['task']}", marks=marks)


def _template(row, task):
    prompts = PROMPTS[row["prompts"]]
    if prompts is None:
        pytest.skip("the authors' prompts file is not here")
    tpl = prompts.template(task)
    if row["prompts"] == "older":
        tpl = tpl.model_copy(update={"answer_after": None})
    return tpl


def parse_row(row):
    task, reply = row["task"], row["reply"]
    if task == "translate":
        return read_translation(reply, _template(row, "translate"))
    if task in ("ner", "direct"):
        answer = _template(row, "direct").answer(reply) if task == "direct" else reply
        try:
            return [list(item) for item in parse_ner_reply(answer)]
        except ValueError:
            return None
    answer = _template(row, "align").answer(reply)
    found = snap(answer, row["sentence"], row["lang"], english=row["phrase"])
    return {"answer": clean_answer(answer), "span": [found.start, found.end] if found.ok else None}


def test_fixtures_are_judged():
    rows = [p.values[0] for p in _rows()]
    assert len(rows) >= 50
    assert all(r["expected"] != "TODO" for r in rows)
    assert {r["task"] for r in rows} == {"translate", "ner", "direct", "align"}


@pytest.mark.parametrize("row", _rows())
def test_recorded_reply(row):
    assert parse_row(row) == row["expected"]


# ------------------------------------------------------------------ shapes the recordings do not cover

PER_LOC = [("PER", "Li Bai"), ("LOC", "Chang'an")]


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("1. **Li Bai** (PERSON)\n2. **Chang'an** (LOCATION)", PER_LOC),
        ("- PERSON: Li Bai\n- LOCATION: Chang'an", PER_LOC),
        ("Li Bai - PERSON\nChang'an - LOCATION", PER_LOC),
        ("**PERSON**: Li Bai\n**LOCATION**: Chang'an", PER_LOC),
        ("(**PERSON**, **Li Bai**)\n(LOCATION, Chang'an)", PER_LOC),
        ("Here are the entities:\n\n* Li Bai (PERSON)\n* Chang'an (LOCATION)", PER_LOC),
        ("PERSON: Li Bai, Du Fu", [("PER", "Li Bai"), ("PER", "Du Fu")]),
        (
            "PERSON: Li Bai, Du Fu\nORGANIZATION: Apple, Inc.",
            [("PER", "Li Bai"), ("PER", "Du Fu"), ("ORG", "Apple, Inc.")],
        ),
        ("PERSON：李白、杜甫", [("PER", "李白"), ("PER", "杜甫")]),
        ("1. Jean-Paul Sartre - PERSON", [("PER", "Jean-Paul Sartre")]),
        ("PERSON: Lu Xun\nLOCATION: None\nORGANIZATION: N/A", [("PER", "Lu Xun")]),
        ("Li Bai (PERSON)\n1725 (DATE)", [("PER", "Li Bai")]),
        ("(NONE)", []),
        ("None", []),
        ("None.", []),
        ("There are no named entities.", []),
        ("There are no named entities in the sentence.", []),
        ("No entities found.", []),
        ("PERSON: None\nLOCATION: None", []),
    ],
)
def test_ner_shapes(reply, expected):
    assert parse_ner_reply(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "PERSON, LOCATION, ORGANIZATION",  # the type list echoed (recorded from Qwen2.5-Coder-0.5B)
        "PERSON, LOCATION",
        "PERSON: LOCATION, ORGANIZATION",
        "Types: PERSON, LOCATION, ORGANIZATION",
        "The entity in the sentence is Li Bai.",
        "Li Bai was born in Suyab.",
    ],
)
def test_ner_unparseable(reply):
    with pytest.raises(ValueError):
        parse_ner_reply(reply)


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Names: 李白 = Li Bai\nEnglish: **Li Bai was born in Suyab.**", "Li Bai was born in Suyab."),
        (
            "Names: 李白 = Li Bai\nEnglish: Li Bai was born in Suyab. (Note: Suyab is in Kyrgyzstan.)",
            "Li Bai was born in Suyab.",
        ),
        (
            'Names: 李白 = Li Bai\nEnglish: "Li Bai was born in Suyab."\n\nNote: 碎叶 is Suyab.',
            "Li Bai was born in Suyab.",
        ),
        ("Here is the translation:\n\nLi Bai was born in Suyab.", "Li Bai was born in Suyab."),
        ("Chinese text: 李白出生于碎叶。\nEnglish: Li Bai was born in Suyab.", "Li Bai was born in Suyab."),
        ("The names in the sentence are:\n\n1. Li Bai", "Li Bai"),
        ("Names: 李白 = Li Bai", ""),
    ],
)
def test_translation_shapes(reply, expected):
    assert read_translation(reply, OURS.template("translate")) == expected


SENTENCE = "李白出生于碎叶城，后来在长安为唐玄宗效力。"


@pytest.mark.parametrize(
    "reply",
    [
        "The phrase is: 「李白」",
        "**李白**",
        "李白 (Li Bai)",
        "李白（Li Bai）",
        '"李白"',
        "The phrase is:\n李白",
        "The corresponding Chinese phrase is: 李白",
        "Answer: 李白。",
    ],
)
def test_align_shapes(reply):
    assert clean_answer(reply) == "李白"
    found = snap(reply, SENTENCE, "zh", english="Li Bai")
    assert (found.start, found.end) == (0, 2)


def test_align_copies_the_english():
    """A reply that copies the English phrase has no span in a Han sentence (recorded: most Qwen replies)."""
    assert not snap("Li Bai", SENTENCE, "zh", english="Li Bai").ok


def test_align_keeps_brackets_of_the_phrase():
    text = " 機動戰士V GUNDAM（凱特・布希）"
    assert clean_answer("機動戰士V GUNDAM（凱特・布希）") == "機動戰士V GUNDAM（凱特・布希）"
    assert snap("「機動戰士V GUNDAM（凱特・布希）」", text, "zh").text == text.strip()
