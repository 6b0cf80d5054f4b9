"""Model folders, checked before anything loads: a path that is not there, a Hub id on an offline machine,
a model of the wrong family, an adapter without safetensors. Every package that loads models asks here, so
each fault reads the same whichever command meets it."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from eat.errors import UserError


def missing_model(name: str, key: str = "model.name_or_path") -> UserError:
    if not _is_hub_id(name):
        return UserError(f"model folder not found (set {key} to a local model folder or a Hub id)", path=name)
    return UserError(
        f"model {name!r} is neither a local folder nor reachable on the Hugging Face Hub (this machine may be "
        f"offline). Download it where there is internet (`hf download {name} --local-dir DIR`), copy DIR "
        f"here and set {key}=DIR"
    )


def _is_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~"))


def check_model_path(name: str, key: str = "model.name_or_path") -> None:
    """Fail early and clearly for a model path that does not exist (before minutes of tokenisation).

    `key` is how the user set it (a recipe key or a flag such as --base), named in the message.
    """
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError("not a model folder (no config.json)", path=path)
        return
    if not _is_hub_id(name):
        raise missing_model(name, key)
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return  # in the local Hub cache
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_resolves():
        raise missing_model(name, key)


@functools.cache  # a run checks its model path more than once (preflight, tokenizer, weights)
def _hub_resolves() -> bool:
    """Whether the Hub's host name resolves: on an offline machine, fail at once instead of after a minute
    of download retries."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except (OSError, UnicodeError):
        return False
    return True


def check_model_kind(name: str, seq2seq: bool, what: str) -> None:
    """Refuse a local model of the wrong family in one line (transformers lists ~200 classes instead).

    `what` says who needs it, e.g. "kind: sft".
    """
    config = Path(name).expanduser() / "config.json"
    if not config.is_file():
        return  # a Hub id: transformers' own error is caught at load time
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        raise UserError("config.json is not valid JSON", path=config) from None
    is_seq2seq = bool(data.get("is_encoder_decoder"))
    if is_seq2seq != seq2seq:
        family = f"{data.get('model_type', '?')} ({'seq2seq' if is_seq2seq else 'causal LM'})"
        need = "a seq2seq model such as flan-t5" if seq2seq else "a causal LM such as Qwen2.5"
        raise UserError(f"is a {family} model; {what} needs {need}", path=Path(name))


def check_adapter_folder(path: str | Path) -> Path:
    """A LoRA adapter folder with safetensors weights (PEFT would fall back to adapter_model.bin: a pickle,
    which can run code when loaded)."""
    adapter = Path(path)
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(
            "not a LoRA adapter folder (no adapter_config.json): pass a LoRA run folder or its checkpoint-N",
            path=adapter,
        )
    if not (adapter / "adapter_model.safetensors").is_file():
        raise UserError(
            "no adapter_model.safetensors (adapters are loaded from safetensors only)", path=adapter
        )
    return adapter


def resolve_device(device: str | None) -> str:
    """A torch device for inference: the one asked for (checked), else cuda when a GPU is visible, else cpu."""
    import torch

    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise UserError(f"--device {device!r} is not a torch device (cpu, cuda, cuda:1, mps ...)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu")
    return device


_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def resolve_dtype(dtype: str, device: str = "cpu"):
    """The torch dtype for a name (`bfloat16` or `bf16`, ...); `auto` is bf16 on a CUDA device that has it,
    else fp32 (what loading for inference and merging want; training's precision rules add fp16 on top)."""
    import torch

    if dtype == "auto":
        gpu = device.startswith("cuda") and torch.cuda.is_available()
        return torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, _DTYPES.get(dtype, dtype))
