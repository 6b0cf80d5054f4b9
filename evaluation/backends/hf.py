"""transformers backend: one model in memory, chats batched by length with left padding.

A LoRA adapter is loaded unmerged (PeftModel.from_pretrained), exactly as trained; prompts are rendered with
the tokenizer's own chat template. Only safetensors weights are read, and remote code is off by default.
"""

from __future__ import annotations

import logging
from pathlib import Path

from eat.errors import UserError
from evaluation.backends import Chat

log = logging.getLogger(__name__)


def _resolve_device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _torch_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return (
            torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        )
    return getattr(torch, dtype)


def generation_kwargs(decoding: dict, max_new_tokens: int) -> dict:
    """transformers `generate` kwargs for a decoding dict (greedy unless do_sample)."""
    kwargs: dict = {"max_new_tokens": max_new_tokens, "do_sample": bool(decoding.get("do_sample"))}
    if kwargs["do_sample"]:
        for key in ("temperature", "top_p", "top_k", "repetition_penalty"):
            if key in decoding:
                kwargs[key] = decoding[key]
    else:
        # Override sampling defaults a model's generation_config may carry, so greedy means greedy.
        kwargs.update(temperature=None, top_p=None, top_k=None)
        if "repetition_penalty" in decoding:
            kwargs["repetition_penalty"] = decoding["repetition_penalty"]
    return kwargs


class HFBackend:
    name = "hf"

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        batch_size: int = 16,
        device: str | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.batch_size = batch_size
        self.chunk_size = batch_size * 8  # chats per pipeline chunk: enough to sort by length, cached after
        self.device = _resolve_device(device)
        if Path(model).exists() and not (Path(model) / "config.json").is_file():
            raise UserError("not a model folder (no config.json)", path=model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_pretrained(
                model,
                dtype=_torch_dtype(dtype, self.device),
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
            )
        except OSError as exc:
            raise UserError(f"cannot load model: {str(exc).splitlines()[0]}", path=model) from None
        if adapter is not None:
            from peft import PeftModel

            if not (Path(adapter) / "adapter_config.json").is_file():
                raise UserError("not a LoRA adapter folder (no adapter_config.json)", path=adapter)
            self.model = PeftModel.from_pretrained(self.model, adapter, is_trainable=False)
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise UserError("the tokenizer has no chat template", path=model)
        self._torch = torch

    def render(self, chat: Chat) -> str:
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def generate(self, chats: list[Chat], max_new_tokens: int, decoding: dict) -> list[str]:
        torch = self._torch
        texts = [self.render(chat) for chat in chats]
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        kwargs = generation_kwargs(decoding, max_new_tokens)
        if kwargs["do_sample"]:
            torch.manual_seed(int(decoding.get("seed", 0)))
        out: list[str] = [""] * len(chats)
        pad_id = self.tokenizer.pad_token_id
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            batch = self.tokenizer.pad(
                {"input_ids": [ids[i] for i in idx]}, padding=True, return_tensors="pt"
            )
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with torch.inference_mode():
                gen = self.model.generate(**batch, pad_token_id=pad_id, **kwargs)
            new = gen[:, batch["input_ids"].shape[1] :]
            for i, text in zip(idx, self.tokenizer.batch_decode(new, skip_special_tokens=True), strict=True):
                out[i] = text.strip()
        return out
