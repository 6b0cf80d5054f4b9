"""Loading base models and tokenizers with clear errors, and choosing precision from the hardware."""

from __future__ import annotations

import os

from eat.errors import UserError
from eat.models import check_model_kind, check_model_path, missing_model, resolve_dtype


def on_gpu(use_cpu: bool = False) -> bool:
    import torch

    return torch.cuda.is_available() and not use_cpu


def resolve_precision(precision: str, use_cpu: bool = False) -> str:
    """auto -> bf16 on GPUs that have it, fp16 on older GPUs, fp32 on CPU; explicit choices are checked."""
    import torch

    gpu = on_gpu(use_cpu)
    if precision == "auto":
        if not gpu:
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and not gpu:
        raise UserError("training.precision=fp16 needs a CUDA GPU; use auto, fp32 or bf16 on CPU")
    if precision == "bf16" and gpu and not torch.cuda.is_bf16_supported():
        raise UserError("this GPU has no bf16; set training.precision=fp16 (or auto)")
    return precision


def torch_dtype(precision: str):
    """The torch dtype of a resolved training precision (bf16, fp16, fp32)."""
    return resolve_dtype(precision)


def check_lora_targets(model, targets) -> None:
    """Every name in lora.target_modules must match a module (PEFT only fails when none does)."""
    if isinstance(targets, str):
        return  # "all-linear" or a regular expression: PEFT resolves it
    import torch

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules() if n}
    missing = [
        t for t in targets if t not in names and not any(n.endswith(t) for n, _ in model.named_modules())
    ]
    if missing:
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
        )
        raise UserError(
            f"lora.target_modules: no module named {', '.join(map(repr, missing))} in this model; its linear "
            f"layers are {', '.join(linear)} (or use all-linear)"
        )


def load_tokenizer(model_cfg, padding_side: str | None = None):
    from transformers import AutoTokenizer

    from eat.chat import use_chat_template

    check_model_path(model_cfg.name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(
            model_cfg.name_or_path, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code
        )
    except OSError:
        raise missing_model(model_cfg.name_or_path) from None
    use_chat_template(
        tok, model_cfg.chat_template, model_cfg.name_or_path, "model.chat_template=", required=False
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if padding_side:
        tok.padding_side = padding_side
    return tok


def check_4bit(device: str) -> None:
    """Quantise a small tensor with bitsandbytes on `device`; a clear error where 4-bit cannot run."""
    try:
        import bitsandbytes.functional as bnbf
        import torch

        x = torch.randn(64, 64, device=device, dtype=torch.float32)
        q, state = bnbf.quantize_4bit(x, quant_type="nf4")
        bnbf.dequantize_4bit(q, state)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise UserError(
            f"method=qlora needs bitsandbytes 4-bit on {device}, which failed here ({reason}); "
            "install a bitsandbytes build for this hardware or use method=lora"
        ) from None


def load_causal_lm(model_cfg, *, method: str, precision: str, quant_cfg=None, device_map=None):
    """The base model: 4-bit NF4 for qlora, else in the training dtype (fp32 master weights for full)."""
    import torch
    from transformers import AutoModelForCausalLM

    check_model_path(model_cfg.name_or_path)
    check_model_kind(model_cfg.name_or_path, seq2seq=False, what="kind: sft")
    kwargs = {
        "revision": model_cfg.revision,
        "trust_remote_code": model_cfg.trust_remote_code,
        "use_safetensors": True,
    }
    if model_cfg.attn_implementation:
        kwargs["attn_implementation"] = model_cfg.attn_implementation
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        compute = quant_cfg.compute_dtype
        compute_dtype = torch_dtype(precision) if compute == "auto" else getattr(torch, compute)
        fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quant_cfg.quant_type,
            bnb_4bit_use_double_quant=quant_cfg.double_quant,
            bnb_4bit_compute_dtype=compute_dtype,
            # FSDP shards flat parameters of one dtype: store the 4-bit blocks as the compute dtype.
            bnb_4bit_quant_storage=compute_dtype if fsdp else torch.uint8,
        )
        kwargs["dtype"] = compute_dtype
        if device_map is not None and not fsdp:
            kwargs["device_map"] = device_map
    elif method == "lora":
        # Frozen base in the compute dtype; adapters train in fp32 under autocast.
        kwargs["dtype"] = torch_dtype(precision)
    else:
        kwargs["dtype"] = torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(model_cfg.name_or_path, **kwargs)
    except ValueError as exc:  # e.g. "Unrecognized configuration class" for a Hub model of another family
        raise UserError(
            f"cannot load {model_cfg.name_or_path!r} as a causal LM: {str(exc).splitlines()[0]}"
        ) from None
    except OSError as exc:
        if "safetensors" in str(exc):
            raise UserError(
                f"model {model_cfg.name_or_path!r} has no safetensors weights; convert it first", path=None
            ) from None
        raise missing_model(model_cfg.name_or_path) from None
    if method == "qlora":
        keep_cpu_4bit_trainable(model)
    return model


def keep_cpu_4bit_trainable(model) -> None:
    """bitsandbytes (0.50) repacks CPU 4-bit weights for fast inference the first time a layer runs in eval
    mode and never packs them back, so training after an evaluation fails ("a view of a leaf Variable ... in an
    in-place operation"). Turning that repacking off keeps train -> eval -> train working on CPU."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
