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
