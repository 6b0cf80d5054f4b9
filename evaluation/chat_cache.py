"""Per-stage reply caches and the turn-by-turn runner every model stage of the pipeline goes through.

A stage's items are run in chunks: turn 1 of every item of a chunk in one batched call, then turn 2 of the
same chunk, and so on (so a backend can carry each chat's KV cache from turn to turn). Each reply is
appended to the stage's cache (`RUN/cache/<stage>.jsonl`, one row per item and turn, keyed by a hash of
everything that produced it) as soon as its chunk finishes, so an interrupted run resumes where it stopped
and a re-run with the same settings makes no model call at all.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from eat.console import make_progress
from evaluation.backends.base import Chat, ChatBackend

Request = TypeVar("Request")


def digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:20]


def weights_fingerprint(path: str | None) -> list | None:
    """(name, size, mtime) of a local model or adapter folder's weight and config files; None otherwise.

    Part of every cache key: a model retrained into the same folder must not reuse replies. Cheap (no hashing
    of GBs) and changes whenever a run writes new weights into the folder.
    """
    if not path or not Path(path).is_dir():
        return None
    files = sorted(p for p in Path(path).iterdir() if p.suffix in (".safetensors", ".json") and p.is_file())
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]


def _read_cache(path: Path, ids: dict[str, str] | None = None) -> dict[str, dict[int, str]]:
    """key -> {turn: reply} of one cache file; `ids` gets each key's item id."""
    replies: dict[str, dict[int, str]] = {}
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                    replies.setdefault(row["key"], {})[int(row["turn"])] = row["reply"]
                    if ids is not None:
                        ids[row["key"]] = str(row.get("id", ""))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by an interruption: that item is simply redone
    return replies


class StageCache:
    """Replies of one stage, one JSON line per (item, turn), appended and flushed as chunks finish.

    `borrow`: the same stage's caches of other runs, read only. Keys cover everything that decides a reply
    (model, adapter where it applies, prompts, decoding), so only identical turns match; a borrowed reply is
    copied into this cache when used, so the run folder stays complete without the other run."""

    def __init__(self, path: Path | None, borrow: list[Path] | None = None) -> None:
        self.path = path
        self.replies: dict[str, dict[int, str]] = _read_cache(path) if path is not None else {}
        self.borrowed: dict[str, dict[int, str]] = {}
        self._borrowed_ids: dict[str, str] = {}
        for other in borrow or []:
            for key, turns in _read_cache(other, self._borrowed_ids).items():
                self.borrowed.setdefault(key, {}).update(turns)
        self._fh = None

    def get(self, key: str) -> list[str]:
        own = self.replies.get(key, {})
        turns = {**self.borrowed.get(key, {}), **own}
        out = []
        while len(out) in turns:
            out.append(turns[len(out)])
        copied = [(key, self._borrowed_ids.get(key, ""), t, out[t]) for t in range(len(out)) if t not in own]
        if copied:
            self.add(copied)
        return out

    def add(self, rows: list[tuple[str, str, int, str]]) -> None:
        """rows: (key, item id, turn, reply)."""
        for key, _, turn, reply in rows:
            self.replies.setdefault(key, {})[turn] = reply
        if self.path is None:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        for key, item_id, turn, reply in rows:
            row = {"key": key, "id": item_id, "turn": turn, "reply": reply}
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass
class ChatItem(Generic[Request]):
    """One item of a stage: its cache key, the sentence it belongs to, and its next request from its replies
    so far (a chat ending with a user turn for an LLM; the text itself for a tagger)."""

    key: str
    id: str
    build: Callable[[list[str]], Request]


def run_turns(
    items: list[ChatItem[Request]],
    turns: int,
    cache: StageCache,
    answer: Callable[[list[Request], int], list[str]],
    description: str,
    unit: str,
    chunk_size: int,
    stats: Counter | None = None,
) -> dict[str, list[str]]:
    """All items' replies for `turns` turns: `answer(requests, turn)` answers a chunk of items' requests of
    one turn, and every turn of a chunk runs before the next chunk. Items with the same key run once. `stats`
    counts replies read from the cache ('cached') and generated ('computed')."""
    unique = list({it.key: it for it in items}.values())
    replies = {it.key: cache.get(it.key)[:turns] for it in unique}
    stats = stats if stats is not None else Counter()
    stats["cached"] += sum(len(r) for r in replies.values())
    with make_progress() as progress:
        task = progress.add_task(description, total=len(unique) * turns, unit=unit)
        progress.advance(task, sum(len(r) for r in replies.values()))
        # Chunk by chunk, all turns of a chunk back to back: a backend can keep each chat's KV cache from
        # one turn to the next (see HFBackend) while holding only one chunk's worth.
        todo = [it for it in unique if len(replies[it.key]) < turns]
        for b in range(0, len(todo), chunk_size):
            for turn in range(turns):
                chunk = [it for it in todo[b : b + chunk_size] if len(replies[it.key]) == turn]
                if not chunk:
                    continue
                requests = [it.build(replies[it.key]) for it in chunk]
                answers = answer(requests, turn)
                if len(answers) != len(requests):
                    raise RuntimeError(f"backend returned {len(answers)} replies for {len(requests)} chats")
                rows = []
                for it, reply in zip(chunk, answers, strict=True):
                    replies[it.key].append(reply)
                    rows.append((it.key, it.id, turn, reply))
                cache.add(rows)
                stats["computed"] += len(chunk)
                progress.advance(task, len(chunk))
    return {it.key: replies[it.key] for it in items}


def run_chats(
    backend: ChatBackend,
    items: list[ChatItem[Chat]],
    turns: int,
    cache: StageCache,
    budget: Callable[[int], int],
    decoding: dict,
    description: str,
    unit: str,
    stats: Counter | None = None,
    adapter: bool = True,
) -> dict[str, list[str]]:
    """`run_turns` on a chat backend, in chunks of its `chunk_size`; `budget(turn)` is the most new tokens
    of that turn's replies; `adapter`: whether these chats run with the backend's LoRA adapter."""
    return run_turns(
        items,
        turns,
        cache,
        lambda chats, turn: backend.generate(chats, budget(turn), decoding, adapter=adapter),
        description,
        unit,
        backend.chunk_size,
        stats,
    )
