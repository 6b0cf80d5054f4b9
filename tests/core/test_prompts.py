"""Prompt sets: defaults, the authors' file, and the chats built for training and inference."""

from __future__ import annotations

import pytest

from eat.errors import UserError
from eat.prompts import TASKS, load_prompts


def test_defaults_define_every_task():
    prompts = load_prompts()
    for task in TASKS:
        chat = prompts.conversation(task, "ja", sentence="東京は首都。", phrase="Tokyo", name="東京")
        assert chat[-1]["role"] == "user"
        assert "{" not in "".join(m["content"] for m in chat)


def test_inference_prefix_equals_training_chat_prefix():
    prompts = load_prompts()
    full = prompts.conversation("align", "zh", replies=["东京"], sentence="我住在东京。", phrase="Tokyo")
    ask = prompts.conversation("align", "zh", sentence="我住在东京。", phrase="Tokyo")
    assert full[:-1] == ask
    assert full[-1] == {"role": "assistant", "content": "东京"}
    assert "Chinese" in ask[-1]["content"] and "我住在东京。" in ask[-1]["content"]


def test_authors_prompts_load_and_fill(shared_data):
    prompts = load_prompts(shared_data / "eat-official" / "prompts.yaml")
    assert prompts.num_turns("translate") == 3 and prompts.num_turns("align") == 3
    chat = prompts.conversation("align", "ja", replies=["a", "b"], sentence="S", phrase="P")
    assert [m["role"] for m in chat] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert chat[3]["content"].startswith("English phrase: P")
    assert (
        "[LOCATION], [PERSON], [ORGANIZATION]"
        in prompts.conversation("translate", "zh", sentence="S")[2]["content"]
    )
    # Tasks the authors' file lacks come from our defaults.
    assert prompts.num_turns("direct") == 1


def test_unknown_placeholder_is_rejected(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("align:\n  turns: ['English: {phrse}']\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"p.yaml: key 'align.turns'.*phrse"):
        load_prompts(path)


def test_worked_example_is_in_the_sentences_language_and_never_answers_first():
    prompts = load_prompts()
    for lang in ("zh", "ja", "ko", "ru", "ar", "hi"):
        chat = prompts.conversation("align", lang, sentence="S", phrase="P")
        example, answer = chat[1]["content"], chat[2]["content"]
        assert prompts.examples[lang].text in example and answer in prompts.examples[lang].text
        assert not prompts.examples[lang].text.startswith(answer)  # the example does not teach "answer first"
        translate = prompts.conversation("translate", lang, sentence="S")
        assert translate[2]["content"].startswith("Names: ") and "\nEnglish: " in translate[2]["content"]
    # A language without its own example borrows the first one rather than leaving a placeholder.
    assert "{" not in "".join(m["content"] for m in prompts.conversation("direct", "th", sentence="S"))


def test_answer_after_label_and_per_turn_budgets():
    prompts = load_prompts()
    translate = prompts.template("translate")
    assert translate.answer("Names: 鲁迅 = Lu Xun\nEnglish: Lu Xun was born.") == "Lu Xun was born."
    assert translate.answer("**English:**\n\nLu Xun was born.") == "Lu Xun was born."
    assert translate.answer("Lu Xun was born.") == "Lu Xun was born."  # no label: the whole reply
    assert prompts.template("align").turn_budget(0, 256) == 32
    assert translate.turn_budget(0, 64) == 64  # the run's max_new_tokens caps every turn
    authors = prompts.template("translate").model_copy(update={"max_new_tokens": None})
    assert authors.turn_budget(2, 256) == 256


def test_bad_turn_budget_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("align:\n  turns: ['{sentence} {phrase}']\n  max_new_tokens: [0]\n", encoding="utf-8")
    with pytest.raises(UserError, match="max_new_tokens"):
        load_prompts(path)
