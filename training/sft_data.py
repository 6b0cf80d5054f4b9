"""Chat datasets -> token ids with loss masks, for any chat template.

Why we build the masks ourselves: TRL's `assistant_only_loss` needs `{% generation %}` markers in the chat
template, which Qwen2.5's template (and most others) lacks. Instead each supervised assistant turn is located
by rendering the chat up to that turn with `add_generation_prompt=True` (the prompt the model sees at
inference) and the chat including the turn; the difference is the assistant's answer plus its end-of-turn
token. The text is tokenised segment by segment (prompt, answer, prompt, answer ...), which is exactly how the
tokens look at inference: the prompt is tokenised alone and the answer is generated after it.

`train_on="last_assistant"` (default) supervises only the final answer: multi-turn prompt sets fill the
intermediate assistant replies with copies of the answer, and those should not be learned twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eat.chat import render
from eat.errors import UserError

IGNORE_INDEX = -100


def load_sft_splits(path: str | Path, splits: list[str]):
    """Load the requested splits of a `save_to_disk` DatasetDict, with one-line errors for bad input."""
    import datasets

    path = Path(path)
    if not path.exists():
        raise UserError("dataset folder not found (build one with `eat wiki sft`)", path=path)
    try:
        data = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise UserError(f"not a dataset saved with save_to_disk ({reason})", path=path) from None
    if isinstance(data, datasets.Dataset):
        raise UserError(
            "expected a DatasetDict with splits (train/validation), found a single Dataset", path=path
        )
    out = {}
    for split in splits:
        if split not in data:
            raise UserError(f"no split {split!r}; splits here: {', '.join(data)}", path=path)
        ds = data[split]
        if "messages" not in ds.column_names:
            raise UserError(
                f"split {split!r} has no 'messages' column (columns: {', '.join(ds.column_names)})", path=path
            )
        if len(ds) == 0:
            raise UserError(f"split {split!r} is empty", path=path)
        out[split] = ds
    return out


def _render(tokenizer, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return render(tokenizer, messages, generation_prompt)


def supervised_spans(
    tokenizer, messages: list[dict[str, str]], train_on: str = "last_assistant"
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered chat and the character spans [start, end) that carry loss.

    Each span is an assistant answer plus its end-of-turn marker (trailing whitespace of the turn excluded).
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("the chat must end with an assistant message")
    full = _render(tokenizer, messages, False)
    indices = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if train_on == "last_assistant":
        indices = indices[-1:]
    spans: list[tuple[int, int]] = []
    for i in indices:
        prompt = _render(tokenizer, messages[:i], True)
        upto = _render(tokenizer, messages[: i + 1], False)
        if not (upto.startswith(prompt) and full.startswith(upto)):
            raise ValueError(
                "the chat template renders earlier turns differently once later turns are added; "
                "set model.chat_template to a template without history rewriting"
            )
        end = len(upto.rstrip())
        if end <= len(prompt):
            raise ValueError(f"assistant message {i} renders to nothing")
        spans.append((len(prompt), end))
    return full, spans


def tokenize_chat(
    tokenizer, messages: list[dict[str, str]], train_on: str = "last_assistant", max_length: int | None = None
) -> dict[str, list[int]]:
    """{"input_ids", "labels"} with labels -100 outside the supervised spans; truncated to max_length."""
    text, spans = supervised_spans(tokenizer, messages, train_on)
    input_ids: list[int] = []
    labels: list[int] = []
    pos = 0
    for start, end in [*spans, (len(text), len(text))]:
        for seg, supervised in ((text[pos:start], False), (text[start:end], True)):
            if not seg:
                continue
            ids = tokenizer(seg, add_special_tokens=False)["input_ids"]
            input_ids.extend(ids)
            labels.extend(ids if supervised else [IGNORE_INDEX] * len(ids))
        pos = end
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels}


def tokenize_dataset(dataset, tokenizer, *, train_on: str, max_length: int, name: str, num_proc=None):
    """Map a `messages` dataset to input_ids/labels; rows left with no supervised token are dropped."""

    def encode(row: dict[str, Any], idx: int) -> dict[str, Any]:
        messages = row["messages"]
        try:
            if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in messages
            ):
                raise ValueError("'messages' must be a list of {role, content}")
            out = tokenize_chat(tokenizer, messages, train_on, max_length)
        except ValueError as exc:
            raise UserError(f"{name} row {idx}: {exc}") from None
        out["num_supervised"] = sum(1 for x in out["labels"] if x != IGNORE_INDEX)
        return out

    tokenized = dataset.map(
        encode,
        with_indices=True,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        keep_in_memory=True,  # the dataset folder may be read-only; no cache files next to it
        desc=f"Tokenising {name}",
    )
    kept = tokenized.filter(
        lambda n: n > 0, input_columns="num_supervised", num_proc=num_proc, keep_in_memory=True
    )
    dropped = len(tokenized) - len(kept)
    if len(kept) == 0:
        raise UserError(
            f"{name}: every chat lost its answer to truncation; raise data.max_length (now {max_length})"
        )
    return kept.remove_columns("num_supervised"), dropped


def pack_rows(dataset, max_length: int, seed: int):
    """Best-fit-decreasing packing of whole chats into rows of at most `max_length` tokens.

    Keeps `input_ids`/`labels` and adds `seq_lengths` (the chat lengths inside each row). Used when the
    attention kernel has no variable-length mode: TRL's padding-free bfd then flattens a whole batch into one
    row, and SDPA/eager attend over the full flattened length (quadratic in batch x max_length); per-row
    packing keeps attention within max_length.
    """
    from trl.data_utils import pack_dataset

    return pack_dataset(dataset.shuffle(seed=seed).select_columns(["input_ids", "labels"]), max_length, "bfd")


class PackedRowsCollator:
    """Batches packed rows: right-padded input_ids/labels and position ids that restart at every chat.

    No attention_mask is returned on purpose: transformers then reads the restarting position ids as packed
    sequences and masks attention between chats of a row. Padding sits at the end of a row, where causal
    attention keeps it invisible to real tokens, and it carries no loss.

    `flatten=True` (for `packed_sdpa_attention`, which attends within each chat wherever it sits) joins the
    rows of a batch into one row without padding: the ~5% of a batch that row tails would pad is not computed.
    """

    def __init__(self, pad_token_id: int, flatten: bool = False):
        self.pad_token_id = pad_token_id
        self.flatten = flatten

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        if self.flatten:
            rows = [
                {key: [x for row in rows for x in row[key]] for key in ("input_ids", "labels", "seq_lengths")}
            ]
        width = max(len(r["input_ids"]) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            pos = torch.cat([torch.arange(length) for length in row["seq_lengths"]]) if n else torch.zeros(0)
            position_ids[i, :n] = pos
            position_ids[i, n:] = torch.arange(width - n)
            # The first token of each chat has no previous token to predict it from within its chat.
            starts = torch.cumsum(torch.tensor([0, *row["seq_lengths"][:-1]]), 0)
            labels[i, starts] = IGNORE_INDEX
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


PACKED_ATTENTION = "eat_packed_sdpa"


def packed_sdpa_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Variable-length attention for packed rows on kernels without a varlen mode (CPU SDPA).

    SDPA with a block-diagonal mask still computes every row x row block: its cost grows with the square of the
    packed row (512 tokens) although each chat only attends within itself (~130 tokens). Here the chats of a
    batch (segments found where `position_ids` restart at 0) are sorted by length, gathered into groups of
    similar length, right-padded, and run through causal SDPA group by group: cost ~ sum of chat length^2, and
    no mask is built. Right padding inside a group is only visible to padding queries, whose output is dropped.
    query [B, H, L, D], key/value [B, Hkv, L, D] -> [B, L, H, D], like transformers' sdpa_attention_forward.
    """
    import torch

    position_ids = kwargs.get("position_ids")
    if position_ids is None or attention_mask is not None or query.shape[2] != key.shape[2]:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    batch, heads, length, dim = query.shape
    repeat = heads // key.shape[1]
    q = query.transpose(1, 2).reshape(batch * length, heads, dim)
    k = key.transpose(1, 2).reshape(batch * length, key.shape[1], dim)
    v = value.transpose(1, 2).reshape(batch * length, key.shape[1], dim)
    groups, inverse = _packed_plan(position_ids, batch, length, query.device)
    outputs = []
    for idx, valid in groups:
        qg, kg, vg = (t[idx].transpose(1, 2) for t in (q, k, v))  # [G, H(kv), width, D]
        if repeat > 1:
            kg, vg = kg.repeat_interleave(repeat, 1), vg.repeat_interleave(repeat, 1)
        out = torch.nn.functional.scaled_dot_product_attention(
            qg, kg, vg, dropout_p=dropout if module.training else 0.0, scale=scaling, is_causal=True
        )
        outputs.append(out.transpose(1, 2)[valid])  # [tokens, H, D]
    return torch.cat(outputs)[inverse].reshape(batch, length, heads, dim), None


_GROUP = 8  # chats per SDPA call: fewer calls vs less padding inside a group
_plan_cache: list = [None, None]  # (position_ids, plan) of the last batch: every layer reuses it


def _packed_plan(position_ids, batch: int, length: int, device):
    """Gather indices [G, width] and validity masks per group of chats, and the permutation back.

    Chats are runs of positions 0, 1, 2, ... (a row's padding tail forms one too); rows always start one.
    """
    import torch

    if _plan_cache[0] is position_ids:
        return _plan_cache[1]
    first = position_ids.reshape(batch, length) == 0
    first[:, 0] = True
    starts_t = torch.nonzero(first.reshape(-1)).flatten()
    ends = torch.cat([starts_t[1:], torch.tensor([batch * length], device=starts_t.device)])
    starts, lengths = starts_t.tolist(), (ends - starts_t).tolist()
    order = sorted(range(len(starts)), key=lambda i: lengths[i])
    groups, taken = [], []
    for g in range(0, len(order), _GROUP):
        members = order[g : g + _GROUP]
        offsets = torch.arange(lengths[members[-1]])
        seg_len = torch.tensor([lengths[i] for i in members])
        # Right padding repeats the chat's last token: only padding queries (dropped) can see it.
        idx = torch.tensor([starts[i] for i in members])[:, None] + torch.minimum(
            offsets[None], seg_len[:, None] - 1
        )
        valid = offsets[None, :] < seg_len[:, None]
        groups.append((idx.to(device), valid.to(device)))
        taken.append(idx[valid])
    inverse = torch.empty(batch * length, dtype=torch.long)
    inverse[torch.cat(taken)] = torch.arange(batch * length)
    plan = (groups, inverse.to(device))
    _plan_cache[:] = [position_ids, plan]
    return plan


def register_packed_attention() -> str:
    """Register `packed_sdpa_attention` with transformers (idempotent); returns its attn_implementation name."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_ATTENTION, packed_sdpa_attention)
    return PACKED_ATTENTION
