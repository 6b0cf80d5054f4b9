"""On CPU, TRL's fused LM head scores only supervised positions once `compact_lm_head_on_cpu` is on, with the
same loss and gradients as full logits."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from eat.compat import compact_lm_head_on_cpu
from tests.training.conftest import align_chats
from training.sft_data import IGNORE_INDEX, tokenize_chat


def _batch(tiny_lm):
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    train, _ = align_chats(3, 0)
    rows = [tokenize_chat(tok, r["messages"]) for r in train]
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id)
    labels = torch.full((len(rows), width), IGNORE_INDEX)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_compact_head_scores_supervised_rows_only_with_equal_loss_and_gradients(tiny_lm, monkeypatch):
    import trl.trainer.utils as trl_utils

    assert compact_lm_head_on_cpu() is True
    assert compact_lm_head_on_cpu() is True  # idempotent: wrapping twice would be harmless but pointless
    assert trl_utils._use_triton(torch.device("cpu")) is True

    rows_scored = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *args):
        rows_scored.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting_apply)
    batch = _batch(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    params = [p for p in model.parameters() if p.requires_grad]

    model.zero_grad()
    full = model(**batch)  # the model's own loss over full logits
    full.loss.backward()
    want = [p.grad.clone() for p in params]

    model.zero_grad()
    fused = model(**batch, fused_lm_head=True)
    fused.loss.backward()
    supervised = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert rows_scored == [supervised]
    assert supervised < batch["input_ids"].numel() / 5  # the point: most positions are prompt
    assert fused.loss.item() == pytest.approx(full.loss.item(), rel=1e-5)
    for got, ref in zip((p.grad for p in params), want, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)
