"""LLM backends behind one small protocol, so every stage batches the same way whatever runs the model.

`generate(chats, max_new_tokens, decoding)` takes many chats (lists of {role, content} ending with a user
turn) and returns one reply per chat, in order. `decoding` is a dict: `do_sample`, `temperature`, `top_p`,
`top_k`, `repetition_penalty`, `seed` (see `EvalRecipe.decoding_kwargs`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from evaluation.config import EvalRecipe

Chat = list[dict[str, str]]


@runtime_checkable
class ChatBackend(Protocol):
    name: str

    def generate(self, chats: list[Chat], max_new_tokens: int, decoding: dict) -> list[str]: ...


def make_backend(cfg: EvalRecipe) -> ChatBackend:
    """The backend a config names (heavy imports happen here, not at CLI start-up)."""
    if cfg.backend == "hf":
        from evaluation.backends.hf import HFBackend

        return HFBackend(
            cfg.model,
            adapter=cfg.adapter,
            batch_size=cfg.batch_size,
            device=cfg.device,
            dtype=cfg.dtype,
            trust_remote_code=cfg.trust_remote_code,
            reuse_kv=cfg.kv_cache_gib > 0,
            kv_reuse_bytes=int(cfg.kv_cache_gib * 1024**3),
            chat_template=cfg.chat_template,
            merge_adapter=cfg.merge_adapter,
        )
    if cfg.backend == "openai":
        from evaluation.backends.openai_compat import OpenAIBackend

        if cfg.device or cfg.dtype != "auto":
            logging.getLogger(__name__).warning(
                "--device/--dtype apply to the hf backend; the server decides both"
            )

        return OpenAIBackend(
            cfg.base_url,
            cfg.model,
            api_key_env=cfg.api_key_env,
            concurrency=cfg.concurrency,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
        )
    from evaluation.backends.vllm import VLLMBackend

    return VLLMBackend(cfg.model, adapter=cfg.adapter, seed=cfg.seed, trust_remote_code=cfg.trust_remote_code)
