"""Packing is exact: packed chats give the loss (and gradients) of the chats run one by one, on TRL's bfd
with the padding-free collator and on our per-row packing with SDPA or the packed kernel."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.training.conftest import align_chats
from training.packing import PackedRowsCollator, pack_rows, register_packed_attention
from training.sft_data import IGNORE_INDEX, tokenize_chat


def test_bfd_packing_gives_the_same_loss_as_separate_chats(tiny_lm):
    """Packed chats (TRL bfd + padding-free collator) do not attend to each other: same summed loss."""
    from datasets import Dataset
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    model.config.use_cache = False  # as run_sft does
    rows = [tokenize_chat(tok, r["messages"]) for r in align_chats(3, 0)[0]]
    packed = pack_dataset(Dataset.from_list(rows), seq_length=2048, strategy="bfd")
    assert len(packed) == 1  # all three in one sequence
    collator = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)
    batch = collator([packed[0]])
    assert batch["input_ids"].shape[0] == 1
    assert batch["position_ids"][0].tolist().count(0) == 3  # positions restart at each chat
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        packed_loss = torch.nn.functional.cross_entropy(
            logits[0, :-1], batch["labels"][0, 1:], ignore_index=IGNORE_INDEX, reduction="sum"
        )
        separate = 0.0
        for r in rows:
            ids, labels = torch.tensor([r["input_ids"]]), torch.tensor(r["labels"])
            lg = model(input_ids=ids).logits
            separate += torch.nn.functional.cross_entropy(
                lg[0, :-1], labels[1:], ignore_index=IGNORE_INDEX, reduction="sum"
            ).item()
    assert packed_loss.item() == pytest.approx(separate, rel=1e-4)


@pytest.mark.parametrize("attn", ["sdpa", "eat_packed_sdpa"])
def test_per_row_packing_gives_the_same_loss_as_separate_chats(tiny_lm, attn):
    """Our per-row bfd packing (used without flash attention): two rows, chats masked from each other.

    `sdpa` masks other chats with a block-diagonal mask; `eat_packed_sdpa` (what run_sft uses) attends within
    each chat only. Both must give the loss of the chats run one by one.
    """
    from datasets import Dataset

    register_packed_attention()
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, attn_implementation=attn).eval()
    assert model.config._attn_implementation == attn
    model.config.use_cache = False
    rows = [tokenize_chat(tok, r["messages"]) for r in align_chats(5, 0)[0]]
    longest = max(len(r["input_ids"]) for r in rows)
    packed = pack_rows(Dataset.from_list(rows), max_length=2 * longest + 1, seed=0)
    assert 2 <= len(packed) < len(rows)
    batch = PackedRowsCollator(tok.pad_token_id)(list(packed))
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == len(packed)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        packed_loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            batch["labels"][:, 1:].reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        separate = 0.0
        for r in rows:
            lg = model(input_ids=torch.tensor([r["input_ids"]])).logits
            separate += torch.nn.functional.cross_entropy(
                lg[0, :-1], torch.tensor(r["labels"][1:]), ignore_index=IGNORE_INDEX, reduction="sum"
            ).item()
    assert packed_loss.item() == pytest.approx(separate, rel=1e-4)


@pytest.mark.parametrize("flatten", [False, True], ids=["rows", "one-row"])
def test_packed_attention_matches_separate_chats_in_loss_and_gradients(tiny_lm, flatten):
    """Mean loss of a packed batch (eat_packed_sdpa) = mean over the chats' supervised tokens run separately,
    and so are the gradients; rows of unequal fill (padding tails) or one padding-free row of all chats."""
    from datasets import Dataset

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, attn_implementation=register_packed_attention())
    model.config.use_cache = False
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # grouped-query path covered
    train, _ = align_chats(11, 0)
    rows = [tokenize_chat(tok, r["messages"]) for r in train]
    # Varied lengths (cut chats, every token supervised) and whole chats (answer-only loss).
    rows = [
        {"input_ids": r["input_ids"][: 20 + 7 * i], "labels": r["input_ids"][: 20 + 7 * i]}
        for i, r in enumerate(rows[:6])
    ] + rows[6:]
    packed = pack_rows(
        Dataset.from_list(rows), max_length=max(len(r["input_ids"]) for r in rows) + 30, seed=1
    )
    batch = PackedRowsCollator(tok.pad_token_id, flatten=flatten)(list(packed))
    if flatten:
        assert batch["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows))
    else:
        assert batch["input_ids"].shape[0] >= 3 and (batch["input_ids"] == tok.pad_token_id).any()
    params = [p for p in model.parameters() if p.requires_grad]

    model.zero_grad()
    model(**batch).loss.backward()
    packed_grads = [p.grad.clone() for p in params]
    packed_loss = model(**batch).loss.item()

    model.zero_grad()
    total = sum(sum(x != IGNORE_INDEX for x in r["labels"][1:]) for r in rows)
    separate = 0.0
    for r in rows:
        out = model(input_ids=torch.tensor([r["input_ids"]]))
        loss = torch.nn.functional.cross_entropy(
            out.logits[0, :-1], torch.tensor(r["labels"][1:]), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        (loss / total).backward()
        separate += loss.item() / total
    assert packed_loss == pytest.approx(separate, rel=1e-5)
    for got, want in zip(packed_grads, (p.grad for p in params), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_sft_with_packing_uses_packed_attention_and_saves_sdpa(tiny_lm, tmp_path):
    """`data.packing: true` on SDPA trains with the packed kernel, and the saved model names plain sdpa."""
    from transformers import TrainerCallback

    from tests.training.conftest import make_recipe, write_sft_dataset
    from training.sft import run_sft

    seen = []

    class Watch(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            seen.append(model.config._attn_implementation)

    data = write_sft_dataset(tmp_path / "sft", 12, 2)
    recipe = make_recipe(
        tiny_lm, data, tmp_path / "run", "method=full", "data.packing=true", "training.max_steps=2"
    )
    metrics = run_sft(recipe, callbacks=[Watch()])
    assert seen == ["eat_packed_sdpa"] * 2 and metrics["global_step"] == 2
    import json

    assert json.loads((tmp_path / "run" / "config.json").read_text()).get("_attn_implementation") in (
        None,
        "sdpa",
    )
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "run")
    assert reloaded.config._attn_implementation == "sdpa"
