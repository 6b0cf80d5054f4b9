"""Chat rendering across template families: templates without a system role get the system text folded
into the first user turn (training and inference alike), and a tokenizer without a template is refused."""

from __future__ import annotations

import logging

import pytest

from eat.chat import accepts_system, fold_system, render, use_chat_template
from eat.errors import UserError

# A Gemma-style template: no system role, raises on one.
NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}<turn>{{ m['role'] }}\n{{ m['content'] }}<end>\n{% endfor %}"
    "{% if add_generation_prompt %}<turn>assistant\n{% endif %}"
)
# A template that silently drops system messages.
DROPS_SYSTEM = (
    "{% for m in messages %}{% if m['role'] != 'system' %}[{{ m['role'] }}] {{ m['content'] }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
)
CHAT = [
    {"role": "system", "content": "You align names."},
    {"role": "user", "content": "English name: Li Bai"},
]


@pytest.fixture
def tokenizer(tiny_lm):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_lm))


def test_fold_system_joins_it_into_the_first_user_turn():
    folded = fold_system(
        [*CHAT, {"role": "assistant", "content": "李白"}, {"role": "user", "content": "again"}]
    )
    assert [m["role"] for m in folded] == ["user", "assistant", "user"]
    assert folded[0]["content"] == "You align names.\n\nEnglish name: Li Bai"
    assert CHAT[1]["content"] == "English name: Li Bai"  # the input is not modified
    assert fold_system([{"role": "system", "content": "S"}]) == [{"role": "user", "content": "S"}]


@pytest.mark.parametrize("template", [NO_SYSTEM, DROPS_SYSTEM])
def test_templates_without_a_system_role_get_it_folded(tokenizer, template):
    tokenizer.chat_template = template
    assert not accepts_system(tokenizer)
    text = render(tokenizer, CHAT, generation_prompt=True)
    assert "You align names.\n\nEnglish name: Li Bai" in text  # not lost, not an exception


def test_chatml_keeps_its_system_turn(tokenizer):
    assert accepts_system(tokenizer)
    assert "<|im_start|>system\nYou align names.<|im_end|>" in render(tokenizer, CHAT, generation_prompt=True)


def test_training_masks_use_the_same_folding(tokenizer):
    from training.sft_data import tokenize_chat

    tokenizer.chat_template = NO_SYSTEM
    row = tokenize_chat(tokenizer, [*CHAT, {"role": "assistant", "content": "李白"}])
    supervised = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100]
    assert tokenizer.decode(supervised).startswith("李白")


def test_a_tokenizer_without_template_is_one_line_naming_the_flag(tokenizer, tmp_path):
    tokenizer.chat_template = None
    with pytest.raises(UserError, match=r"no chat template.*--chat-template FILE\.jinja"):
        use_chat_template(tokenizer, None, "models/base", "--chat-template ")
    path = tmp_path / "t.jinja"
    path.write_text(NO_SYSTEM, encoding="utf-8")
    use_chat_template(tokenizer, str(path), "models/base", "--chat-template ")
    assert tokenizer.chat_template == NO_SYSTEM and not accepts_system(tokenizer)
    with pytest.raises(UserError, match="not found"):
        use_chat_template(tokenizer, str(tmp_path / "missing.jinja"), "models/base", "--chat-template ")


def test_hf_backend_stops_at_the_template_end_of_turn_and_warns_nothing(tiny_lm, caplog):
    """generation_config naming only <|endoftext|> must still stop at <|im_end|>; KV reuse uses the
    current cache keyword (no deprecation warning from transformers)."""
    from evaluation.backends.hf import HFBackend

    backend = HFBackend(str(tiny_lm), batch_size=2)
    im_end = backend.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in backend.stop_ids
    with caplog.at_level(logging.WARNING):
        first = backend.generate([CHAT], 4, {"do_sample": False})[0]
        second = [*CHAT, {"role": "assistant", "content": first}, {"role": "user", "content": "more"}]
        backend.generate([second], 4, {"do_sample": False})
    assert backend.stats["reused_tokens"] > 0
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]
