"""evaluation.align_eval: exact and snapped scores, plain vs shifted, mention slices, the first-phrase rule,
multi-turn chats."""

from __future__ import annotations

import json

import pytest

from eat.errors import UserError
from eat.prompts import load_prompts
from evaluation.align_eval import (
    evaluate_align,
    first_items,
    first_phrase,
    first_phrase_answers,
    format_scores,
    item_slices,
    load_items,
    score_answers,
)
from tests.evaluation.helpers.scripted import ScriptedBackend
from wiki_data.schema import AlignTestItem

PROMPTS = load_prompts()
ECB_ZH = "欧洲中央银行（ECB），总部设在法兰克福。"
PARIS_ZH = "巴黎是法国的首都。"
FUJI_JA = "富士山、静岡県と山梨県にまたがる活火山。"
SONY_JA = "ソニーは東京都港区に本社を置く。"


def item(
    lang: str, phrase: str, sentence: str, answer: str, followups: list[str] | None = None
) -> AlignTestItem:
    start = sentence.find(answer)
    assert start >= 0
    return AlignTestItem(
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


def user_turn(it: AlignTestItem) -> str:
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


def mention_item(
    lang: str, phrase: str, sentence: str, answer: str, *, match: str = "title", n: int = 1
) -> AlignTestItem:
    """An item of align_test_mentions.jsonl, flagged the way `eat wiki sft` flags it."""
    start = sentence.find(answer)
    assert start >= 0
    return AlignTestItem(
        lang=lang,
        qid=None,
        en_title=phrase,
        phrase=phrase,
        sentence=sentence,
        answer=answer,
        answer_start=start,
        shifted=False,
        messages=PROMPTS.conversation("align", lang, sentence=sentence, phrase=phrase),
        source="mention",
        match=match,
        n_in_sentence=n,
        at_start=not any(c.isalnum() for c in sentence[:start]),
        surface_differs=match != "title",
        multi=n >= 2,
    )


MENTIONS = [
    mention_item("zh", "Paris", "埃菲尔铁塔位于巴黎的战神广场。", "巴黎"),  # not at start
    mention_item(
        "zh", "European Central Bank", "欧洲央行（ECB）的总部设在法兰克福。", "欧洲央行", match="alias", n=2
    ),
    mention_item(
        "zh", "Frankfurt", "欧洲央行（ECB）的总部设在法兰克福。", "法兰克福", n=2
    ),  # not at start, several
    mention_item("zh", "Marie Curie", "1903年，居里获得诺贝尔物理学奖。", "居里", match="differs"),
    mention_item("ja", "Mount Fuji", "静岡県から見える富士山は美しい。", "富士山"),
    mention_item("ja", "Natsume Sōseki", "「漱石」は作家である。", "漱石", match="alias"),  # a bracket first
]


def test_mention_items_fall_into_slices():
    assert [item_slices(it) for it in MENTIONS] == [
        ("mentions", "mentions: not at start"),
        ("mentions", "mentions: surface differs", "mentions: several per sentence"),
        ("mentions", "mentions: not at start", "mentions: several per sentence"),
        ("mentions", "mentions: not at start", "mentions: surface differs"),
        ("mentions", "mentions: not at start"),
        ("mentions", "mentions: surface differs"),
    ]
    assert [item_slices(it) for it in ITEMS] == [("plain",), ("shifted",), ("plain",), ("shifted",)]
    # every item right except the Frankfurt one: each slice's score counts only its own items
    replies = [it.answer for it in MENTIONS]
    replies[2] = "欧洲央行"
    report = score_answers([*ITEMS, *MENTIONS], [*(it.answer for it in ITEMS), *replies], "scripted")
    scores = [(s.lang, s.slice, s.n, s.exact) for s in report.scores()]
    assert scores == [
        ("ja", "plain", 1, 1.0),
        ("ja", "shifted", 1, 1.0),
        ("ja", "mentions", 2, 1.0),
        ("ja", "mentions: not at start", 1, 1.0),
        ("ja", "mentions: surface differs", 1, 1.0),
        ("zh", "plain", 1, 1.0),
        ("zh", "shifted", 1, 1.0),
        ("zh", "mentions", 4, 0.75),
        ("zh", "mentions: not at start", 3, 2 / 3),
        ("zh", "mentions: surface differs", 2, 1.0),
        ("zh", "mentions: several per sentence", 2, 0.5),
        ("all", "plain", 2, 1.0),
        ("all", "shifted", 2, 1.0),
        ("all", "mentions", 6, 5 / 6),
        ("all", "mentions: not at start", 4, 0.75),
        ("all", "mentions: surface differs", 3, 1.0),
        ("all", "mentions: several per sentence", 2, 0.5),
    ]
    assert all(s.shifted == (s.slice == "shifted") for s in report.scores())
    table = format_scores([report])
    assert "| scripted | all | mentions: not at start | 4 | 75% | 75% |" in table
    assert "| scripted | zh | shifted | 1 | 100% | 100% |" in table


def test_first_phrase_rule_scores_zero_on_mentions_not_at_start():
    report = score_answers(MENTIONS, first_phrase_answers(MENTIONS), "first_phrase")
    scores = {(s.lang, s.slice): (s.n, s.exact, s.snapped) for s in report.scores()}
    assert scores[("all", "mentions: not at start")] == (4, 0.0, 0.0)
    # it can only find an anchor that opens its sentence and ends at one of its delimiters
    assert scores[("all", "mentions: surface differs")] == (3, 1 / 3, 1 / 3)
    by_answer = {r.answer: r.exact for r in report.results}
    assert by_answer == {
        "巴黎": False,
        "欧洲央行": True,
        "法兰克福": False,
        "居里": False,
        "富士山": False,
        "漱石": False,
    }


def test_mention_items_load_and_main_scores_both_files(tmp_path, capsys):
    from dataclasses import asdict

    from evaluation.align_eval import main

    plain, mentions = tmp_path / "align_test.jsonl", tmp_path / "align_test_mentions.jsonl"
    for path, items in ((plain, ITEMS), (mentions, MENTIONS)):
        path.write_text("".join(json.dumps(asdict(it), ensure_ascii=False) + "\n" for it in items), "utf-8")
    assert load_items(mentions) == MENTIONS
    # --per-lang counts pair and mention items apart, in file order
    assert first_items([*ITEMS, *MENTIONS], 1) == [ITEMS[0], ITEMS[2], MENTIONS[0], MENTIONS[4]]

    main([str(plain), str(mentions), "--out", str(tmp_path / "rule"), "--first-phrase"])
    metrics = json.loads((tmp_path / "rule" / "metrics.json").read_text("utf-8"))
    assert metrics["n"] == len(ITEMS) + len(MENTIONS)
    got = {(s["lang"], s["slice"]): (s["n"], s["exact"]) for s in metrics["scores"]}
    assert got[("all", "shifted")] == (2, 0.0) and got[("all", "mentions: not at start")] == (4, 0.0)
    assert "| first_phrase | all | mentions: not at start | 4 | 0% | 0% |" in capsys.readouterr().out
    results = [json.loads(x) for x in (tmp_path / "rule" / "results.jsonl").read_text("utf-8").splitlines()]
    assert [r["source"] for r in results] == ["pair"] * 4 + ["mention"] * 6
    assert results[-1]["slices"] == ["mentions", "mentions: surface differs"]

    # one file as before: the plain/shifted report is unchanged
    main([str(plain), "--out", str(tmp_path / "old"), "--first-phrase"])
    metrics = json.loads((tmp_path / "old" / "metrics.json").read_text("utf-8"))
    assert [(s["lang"], s["slice"], s["shifted"]) for s in metrics["scores"]] == [
        ("ja", "plain", False),
        ("ja", "shifted", True),
        ("zh", "plain", False),
        ("zh", "shifted", True),
        ("all", "plain", False),
        ("all", "shifted", True),
    ]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"source": "wiki"}, "source must be one of pair, mention"),
        ({"at_start": None}, "needs at_start, surface_differs and multi"),
    ],
)
def test_bad_mention_item_is_one_line_error(tmp_path, change, fragment):
    from dataclasses import asdict

    path = tmp_path / "align_test_mentions.jsonl"
    path.write_text(json.dumps({**asdict(MENTIONS[0]), **change}, ensure_ascii=False) + "\n", "utf-8")
    with pytest.raises(UserError, match=r"align_test_mentions.jsonl:1: not an align test item") as err:
        load_items(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
