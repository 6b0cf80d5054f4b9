"""Packing whole chats into rows, and the attention kernel that keeps packed chats apart on SDPA.

`data.packing` with `bfd` on a kernel without a variable-length mode (SDPA, eager): `pack_rows` fills rows of
at most max_length tokens best-fit decreasing, `PackedRowsCollator` batches them with position ids that restart
at every chat, and `packed_sdpa_attention` attends within each chat only. With flash attention, or with the
`wrapped` strategy, TRL packs instead (`trl_packs`). TRL's own padding-free bfd works with flash attention
only; this is the CPU/SDPA path, and the place to fork if TRL grows one.
"""

from __future__ import annotations

from typing import Any

from training.sft_data import IGNORE_INDEX


def trl_packs(recipe) -> bool:
    """Whether TRL packs (`wrapped`, or bfd padding-free on a variable-length kernel such as flash attention)
    rather than `pack_rows`, which SDPA/eager need to keep attention within max_length per row."""
    d = recipe.data
    varlen = "flash" in (recipe.model.attn_implementation or "")
    return d.packing and (d.packing_strategy == "wrapped" or varlen)


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
