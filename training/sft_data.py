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


def dataset_splits(path: str | Path) -> list[str] | None:
    """The split names of a `save_to_disk` DatasetDict, read from its dataset_dict.json (None: not one)."""
    import json

    try:
        return list(json.loads((Path(path) / "dataset_dict.json").read_text("utf-8"))["splits"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
