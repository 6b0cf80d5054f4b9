"""Loss masks: only assistant answers carry loss, for our tiny template and for Qwen2.5's."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from eat.errors import UserError
from tests.training.conftest import align_chats, write_sft_dataset
from training.sft_data import IGNORE_INDEX, load_sft_splits, tokenize_chat, tokenize_dataset

CHAT = [
    {"role": "system", "content": "You match English names to the exact words of a Japanese sentence."},
    {"role": "user", "content": "English name: Tokyo\nJapanese sentence: 東京都は日本の首都である。"},
    {"role": "assistant", "content": "東京都"},
    {"role": "user", "content": "Reply with that phrase only, once more."},
    {"role": "assistant", "content": "東京都 (Tokyo)"},
]


@pytest.fixture(params=["tiny", "qwen2.5"])
def tokenizer(request, tiny_lm, shared_data):
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    if request.param == "qwen2.5":
        # Qwen2.5's own template: no {% generation %} markers, adds a default system prompt when none is given.
        tok.chat_template = (shared_data / "chat-templates" / "qwen2.5-instruct.jinja").read_text(
            encoding="utf-8"
        )
    return tok


def _supervised_text(tok, out) -> str:
    return tok.decode(
        [i for i, lab in zip(out["input_ids"], out["labels"], strict=True) if lab != IGNORE_INDEX]
    )


def _masked_text(tok, out) -> str:
    return tok.decode(
        [i for i, lab in zip(out["input_ids"], out["labels"], strict=True) if lab == IGNORE_INDEX]
    )


def test_only_last_answer_is_supervised_by_default(tokenizer):
    out = tokenize_chat(tokenizer, CHAT)
    assert len(out["input_ids"]) == len(out["labels"])
    assert _supervised_text(tokenizer, out) == "東京都 (Tokyo)<|im_end|>"
    masked = _masked_text(tokenizer, out)
    # System, user and the intermediate assistant copy are all masked, and so is the assistant header.
    for text in (
        CHAT[0]["content"],
        CHAT[1]["content"],
        CHAT[3]["content"],
        "<|im_start|>assistant\n東京都<|im_end|>",
    ):
        assert text in masked
    # The token sequence is exactly the rendered chat (nothing added or lost at segment boundaries).
    rendered = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert tokenizer.decode(out["input_ids"]) == rendered


def test_all_assistant_turns(tokenizer):
    out = tokenize_chat(tokenizer, CHAT, train_on="all_assistant")
    assert _supervised_text(tokenizer, out) == "東京都<|im_end|>東京都 (Tokyo)<|im_end|>"
    assert CHAT[1]["content"] not in _supervised_text(tokenizer, out)


def test_prompt_tokens_match_inference(tokenizer):
    """The masked prefix is the token sequence inference sends (prompt rendered with a generation prompt)."""
    out = tokenize_chat(tokenizer, CHAT[:3])
    prompt = tokenizer.apply_chat_template(CHAT[:2], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert out["input_ids"][: len(prompt_ids)] == prompt_ids
    assert all(lab == IGNORE_INDEX for lab in out["labels"][: len(prompt_ids)])
    answer = out["labels"][len(prompt_ids) :]
    n = sum(lab != IGNORE_INDEX for lab in answer)
    # The answer is one contiguous supervised run; only the newline after <|im_end|> follows, unsupervised.
    assert n > 0 and all(lab != IGNORE_INDEX for lab in answer[:n])
    assert tokenizer.decode(out["input_ids"][len(prompt_ids) + n :]) == "\n"


def test_truncation_drops_chats_without_answer(tiny_lm, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    data = load_sft_splits(write_sft_dataset(tmp_path / "sft", 4, 1), ["train"])
    kept, dropped = tokenize_dataset(data["train"], tok, train_on="last_assistant", max_length=1024, name="t")
    assert (len(kept), dropped) == (4, 0)
    with pytest.raises(UserError, match=r"raise data\.max_length"):
        tokenize_dataset(data["train"], tok, train_on="last_assistant", max_length=16, name="t")


def test_bad_datasets_are_user_errors(tmp_path):
    from datasets import Dataset, DatasetDict

    with pytest.raises(UserError, match="dataset folder not found"):
        load_sft_splits(tmp_path / "missing", ["train"])
    DatasetDict({"train": Dataset.from_list([{"text": "hello"}])}).save_to_disk(str(tmp_path / "nomsg"))
    with pytest.raises(UserError, match="no 'messages' column"):
        load_sft_splits(tmp_path / "nomsg", ["train"])
    with pytest.raises(UserError, match="no split 'validation'"):
        load_sft_splits(tmp_path / "nomsg", ["validation"])
    (tmp_path / "junk").mkdir()
    with pytest.raises(UserError, match="save_to_disk"):
        load_sft_splits(tmp_path / "junk", ["train"])


def test_row_not_ending_with_assistant_names_the_row(tiny_lm):
    from datasets import Dataset

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    train, _ = align_chats(2, 0)
    train[1]["messages"] = train[1]["messages"][:-1]
    with pytest.raises(UserError, match="row 1: the chat must end with an assistant message"):
        tokenize_dataset(
            Dataset.from_list(train), tok, train_on="last_assistant", max_length=512, name="d:train"
        )
