"""LLM backends behind one small protocol (`base.ChatBackend`), so every stage batches the same way whatever
runs the model; `make_backend` builds the one a config names."""

from __future__ import annotations

import logging

from evaluation.backends.base import Chat, ChatBackend
from evaluation.config import EvalRecipe

__all__ = ["Chat", "ChatBackend", "make_backend"]


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
            base_too=cfg.adapter_stages != "all",
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
            extra_body=cfg.extra_body,
            served_model_name=cfg.served_model_name,
            adapter_name=cfg.adapter_name,
        )
    from evaluation.backends.vllm import VLLMBackend

    return VLLMBackend(cfg.model, adapter=cfg.adapter, seed=cfg.seed, trust_remote_code=cfg.trust_remote_code)
