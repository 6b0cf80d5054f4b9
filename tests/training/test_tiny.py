"""Tiny offline models load through the normal from_pretrained path and our template matches Qwen2.5's."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "東京はどこ？ Где Москва?"},
    {"role": "assistant", "content": "Tokyo is in Japan."},
    {"role": "user", "content": "서울은?"},
]


def test_tiny_lm_loads_generates_and_is_small(tiny_lm):
    assert (tiny_lm / "model.safetensors").is_file()
    assert json.loads((tiny_lm / "config.json").read_text())["model_type"] == "qwen2"
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    n_params = sum(p.numel() for p in model.parameters())
    assert 500_000 < n_params < 5_000_000
    inputs = tok.apply_chat_template(
        MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4 or out[0, -1] == tok.eos_token_id
    # Every script round-trips through the byte-level tokenizer.
    text = "北京 東京 서울 Москва القاهرة दिल्ली"
    assert tok.decode(tok(text)["input_ids"]) == text


def test_our_template_renders_like_qwen25(tiny_lm, shared_data):
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    qwen = (shared_data / "chat-templates" / "qwen2.5-instruct.jinja").read_text(encoding="utf-8")
    for gen in (True, False):
        ours = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=gen)
        theirs = tok.apply_chat_template(
            MESSAGES, tokenize=False, add_generation_prompt=gen, chat_template=qwen
        )
        assert ours == theirs


def test_assistant_mask_covers_assistant_content_only(tiny_lm):
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    out = tok.apply_chat_template(MESSAGES[:3], return_dict=True, return_assistant_tokens_mask=True)
    ids = torch.tensor(out["input_ids"])
    mask = torch.tensor(out["assistant_masks"]).bool()
    assert tok.decode(ids[mask]) == "Tokyo is in Japan.<|im_end|>"


def test_tiny_t5_loads_and_generates(tiny_t5):
    tok = AutoTokenizer.from_pretrained(tiny_t5)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)
    enc = tok(["Marie Curie was born in Warsaw."], return_tensors="pt")
    assert enc["input_ids"][0, -1].item() == tok.eos_token_id
    out = model.generate(**enc, max_new_tokens=3)
    assert out.shape[0] == 1
