"""evaluation.align_eval: exact and snapped scores, plain vs shifted, the first-phrase rule, multi-turn chats."""

from __future__ import annotations

import json

import pytest

from eat.errors import UserError
from eat.prompts import load_prompts
from evaluation.align_eval import (
    AlignItem,
    evaluate_align,
    first_items,
    first_phrase,
    first_phrase_answers,
    load_items,
    score_answers,
)
from evaluation.backends.scripted import ScriptedBackend

PROMPTS = load_prompts()
ECB_ZH = "欧洲中央银行（ECB），总部设在法兰克福。"
PARIS_ZH = "巴黎是法国的首都。"
FUJI_JA = "富士山、静岡県と山梨県にまたがる活火山。"
SONY_JA = "ソニーは東京都港区に本社を置く。"


def item(lang: str, phrase: str, sentence: str, answer: str, followups: list[str] | None = None) -> AlignItem:
    start = sentence.find(answer)
    assert start >= 0
    return AlignItem(
        lang=lang,
        qid=None,
        en_title=phrase,
        phrase=phrase,
        sentence=sentence,
        answer=answer,
        answer_start=start,
        shifted=start > 0,
        messages=PROMPTS.conversation("align", lang, sentence=sentence, phrase=phrase),
        followups=followups or [],
    )


ITEMS = [
    item("zh", "European Central Bank", ECB_ZH, "欧洲中央银行"),
    item("zh", "European Central Bank", PARIS_ZH + ECB_ZH, "欧洲中央银行"),
    item("ja", "Mount Fuji", FUJI_JA, "富士山"),
    item("ja", "Mount Fuji", SONY_JA + FUJI_JA, "富士山"),
]


def user_turn(it: AlignItem) -> str:
    return it.messages[-1]["content"]


def by_group(report) -> dict[tuple[str, bool], tuple[int, float, float]]:
    return {(s.lang, s.shifted): (s.n, s.exact, s.snapped) for s in report.scores()}


def test_first_phrase_rule_fails_shifted_items():
    assert first_phrase(ECB_ZH) == "欧洲中央银行"
    assert first_phrase("Лев Толстой — писатель") == "Лев"
    assert first_phrase("東京都　千代田区") == "東京都"  # an ideographic space ends it too
    report = score_answers(ITEMS, first_phrase_answers(ITEMS), "first_phrase")
    assert by_group(report) == {
        ("zh", False): (1, 1.0, 1.0),
        ("zh", True): (1, 0.0, 0.0),
        ("ja", False): (1, 1.0, 1.0),
        ("ja", True): (1, 0.0, 0.0),
        ("all", False): (2, 1.0, 1.0),
        ("all", True): (2, 0.0, 0.0),
    }
    # The rule's phrase occurs in the shifted sentence, but at the start: its span is not the gold span.
    shifted = [r for r in report.results if r.shifted]
    assert all(r.snap_start == 0 and r.snap_method == "exact" for r in shifted)


def test_scripted_model_exact_and_snapped(tmp_path):
    replies = {
        user_turn(ITEMS[0]): "「欧洲中央银行」",  # quotes are cleaned: exact
        user_turn(ITEMS[1]): "巴黎",  # the shortcut: another phrase of the sentence
        user_turn(ITEMS[2]): "Answer: 富士山",  # preamble cleaned: exact
        user_turn(ITEMS[3]): "富士山頂",  # not exact, but snaps onto the gold span (char overlap)
    }
    backend = ScriptedBackend(replies)
    report = evaluate_align(backend, ITEMS, batch_size=3)
    assert backend.calls == 2 and backend.chats == [it.messages for it in ITEMS]
    assert report.system == "scripted"
    groups = by_group(report)
    assert groups[("zh", False)] == (1, 1.0, 1.0)
    assert groups[("zh", True)] == (1, 0.0, 0.0)
    assert groups[("ja", True)] == (1, 0.0, 1.0)
    assert groups[("all", True)] == (2, 0.0, 0.5)
    assert [r.exact for r in report.results] == [True, False, True, False]
    assert [r.snapped for r in report.results] == [True, False, True, True]

    report.write(tmp_path / "out")
    lines = (tmp_path / "out" / "results.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(x)["reply"] for x in lines] == [replies[user_turn(it)] for it in ITEMS]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text("utf-8"))
    assert (
        metrics["n"] == 4
        and {"lang": "ja", "slice": "shifted", "shifted": True, "n": 1, "exact": 0.0, "snapped": 1.0}
        in (metrics["scores"])
    )


def test_follow_up_turns_get_the_models_own_replies():
    it = item("zh", "ECB", PARIS_ZH + ECB_ZH, "欧洲中央银行", followups=["Check it.", "Final result only."])
    backend = ScriptedBackend({user_turn(it): ["欧洲中央银行总部", "欧洲中央银行总部", "欧洲中央银行"]})
    report = evaluate_align(backend, [it, ITEMS[0]])
    assert backend.calls == 3
    last = backend.chats[-1]
    assert [m["content"] for m in last[-5:]] == [
        user_turn(it),
        "欧洲中央银行总部",
        "Check it.",
        "欧洲中央银行总部",
        "Final result only.",
    ]
    assert report.results[0].reply == "欧洲中央银行" and report.results[0].exact


def test_load_items_and_first_items(tmp_path):
    from dataclasses import asdict

    path = tmp_path / "align_test.jsonl"
    path.write_text("".join(json.dumps(asdict(it), ensure_ascii=False) + "\n" for it in ITEMS), "utf-8")
    assert load_items(path) == ITEMS
    assert first_items(ITEMS, 1) == [ITEMS[0], ITEMS[2]]
    path.write_text('{"lang": "zh"}\n', "utf-8")
    with pytest.raises(UserError, match=r"align_test.jsonl:1: not an align test item"):
        load_items(path)
