"""What every LLM backend is: the chat type and the protocol the stages batch through.

Its own module so that the backends and the factory in `evaluation.backends` both import it and neither
imports the other at load time.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

Chat = list[dict[str, str]]


@runtime_checkable
class ChatBackend(Protocol):
    """`generate(chats, max_new_tokens, decoding)` answers many chats (lists of {role, content} ending with
    a user turn), one reply each, in order. `decoding` is a dict: `do_sample`, `temperature`, `top_p`,
    `top_k`, `repetition_penalty`, `seed` (see `EvalRecipe.decoding_kwargs`). `adapter` says whether this
    call's stage uses the LoRA adapter (`EvalRecipe.adapter_stages`)."""

    name: str
    # Chats per pipeline chunk: every turn of a chunk runs before the next chunk, and replies are cached
    # after each chunk, so this bounds both the KV a backend carries between turns and the work a crash
    # loses.
    chunk_size: int

    def generate(
        self, chats: list[Chat], max_new_tokens: int, decoding: dict, adapter: bool = True
    ) -> list[str]:
        """`adapter=False`: answer with the base model, without the LoRA adapter the backend was given (the
        stages an align-only adapter was not trained for); backends without an adapter ignore it."""
        ...

    def close(self) -> None:
        """Release connections or memory; the run that made the backend calls it when done."""
        ...
