"""`eat train merge`: fold a LoRA adapter into a non-quantised base and prove the result answers the same.

For a QLoRA run the adapter is merged into the full-precision base (merging into 4-bit weights would round the
update away). The parity check generates greedily on sample prompts with (a) the adapter on the base it was
trained on (4-bit for QLoRA when bitsandbytes runs here, else the full-precision base) and (b) the merged
model, and reports the share of prompts whose outputs are identical. QLoRA agreement below 100% is the
quantisation error of the training base, not a merge bug; LoRA merges should agree on every prompt.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from eat.errors import UserError
from training.config import MergeConfig

log = logging.getLogger(__name__)


def _find_run_recipe(adapter: Path) -> dict[str, Any] | None:
    for folder in (adapter, adapter.parent):
        path = folder / "recipe.yaml"
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8"))
    return None


def _find_tokenizer_dir(adapter: Path, base: str) -> str:
    for folder in (adapter, adapter.parent):
        if (folder / "tokenizer_config.json").is_file():
            return str(folder)
    return base


def sample_prompts(recipe: dict[str, Any] | None, n: int, seq2seq: bool) -> list[Any]:
    """Chats (or sentences for a seq2seq tagger) to compare outputs on: from the run's eval data if present."""
    if recipe and recipe.get("kind") == "sft":
        data = recipe.get("data", {})
        try:
            import datasets

            dd = datasets.load_from_disk(data["path"])
            split = dd[data.get("eval_split") or data.get("train_split", "train")]
            chats = [row["messages"] for row in split.select(range(min(n, len(split))))]
            # The prompt is the chat up to its last assistant turn.
            return [c[: max(i for i, m in enumerate(c) if m["role"] == "assistant")] for c in chats]
        except Exception as exc:
            log.warning("run data not readable (%s); using built-in sample prompts", exc)
    if seq2seq:
        prefix = (recipe or {}).get("data", {}).get("source_prefix", "ner: ")
        sentences = [
            "Marie Curie worked in Paris .",
            "Angela Merkel visited Siemens in Munich .",
            "The United Nations met in Geneva on Monday .",
            "Toyota opened a plant in Kentucky .",
        ]
        return [prefix + sentences[i % len(sentences)] for i in range(n)]
    from eat.prompts import load_prompts

    prompts = load_prompts()
    examples = [
        ("ja", "東京都は日本の首都である。", "Tokyo"),
        ("zh", "北京大学位于中国北京市海淀区。", "Peking University"),
        ("ko", "서울특별시는 대한민국의 수도이다.", "Seoul"),
        ("ru", "Москва — столица России.", "Moscow"),
        ("ar", "القاهرة هي عاصمة مصر.", "Cairo"),
        ("de", "Die Universität Heidelberg liegt am Neckar.", "Heidelberg University"),
    ]
    return [
        prompts.conversation("align", lang, sentence=s, phrase=p)
        for lang, s, p in (examples[i % len(examples)] for i in range(n))
    ]


def _generate(model, tokenizer, prompts: list[Any], max_new_tokens: int, seq2seq: bool) -> list[list[int]]:
    import torch

    outputs = []
    device = next(model.parameters()).device
    for prompt in prompts:
        if seq2seq:
            enc = tokenizer(prompt, return_tensors="pt")
        else:
            enc = tokenizer.apply_chat_template(
                prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        enc = {k: v.to(device) for k, v in enc.items()}
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,  # EOS suppressed: every prompt compares the same number of tokens
                max_length=None,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        start = 0 if seq2seq else enc["input_ids"].shape[1]
        outputs.append(out[0, start:].tolist())
    return outputs


def _probe_inputs(tokenizer, prompt, seq2seq: bool) -> dict:
    """One forward pass worth of inputs for the logit comparison."""
    if seq2seq:
        enc = tokenizer(prompt, return_tensors="pt")
        enc["decoder_input_ids"] = enc["input_ids"][:, :4]
        return dict(enc)
    return dict(
        tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    )


def merge_adapter(cfg: MergeConfig) -> dict[str, Any]:
    """Merge, check parity, save atomically; returns the report (also written as merge_report.json)."""
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from eat.io import check_out
    from eat.models import check_adapter_folder, check_model_path, resolve_dtype
    from training.loading import check_4bit

    adapter = check_adapter_folder(cfg.adapter)
    from eat.io import check_writable

    check_writable(Path(cfg.out).resolve().parent)  # before minutes of loading and merging
    out = Path(cfg.out)
    check_out(out, cfg.overwrite)  # before minutes of loading, not only when writing
    try:
        peft_cfg = PeftConfig.from_pretrained(str(adapter))
    except (ValueError, TypeError, OSError) as exc:  # json.JSONDecodeError is a ValueError
        reason = " ".join(str(exc).split())[:160]
        raise UserError(f"adapter_config.json cannot be read ({reason})", path=adapter) from None
    base = cfg.base or peft_cfg.base_model_name_or_path
    if not base:
        raise UserError("adapter_config.json names no base model; pass --base", path=adapter)
    check_model_path(base, key="--base")
    seq2seq = str(peft_cfg.task_type) in ("SEQ_2_SEQ_LM", "TaskType.SEQ_2_SEQ_LM")
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    gpu = torch.cuda.is_available()
    dtype = resolve_dtype(cfg.dtype, "cuda" if gpu else "cpu")
    device_map = {"": 0} if gpu else {"": "cpu"}
    recipe = _find_run_recipe(adapter)
    tokenizer = AutoTokenizer.from_pretrained(_find_tokenizer_dir(adapter, base))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    prompts = sample_prompts(recipe, cfg.samples, seq2seq)
    if len(prompts) < cfg.samples:
        log.info(
            "parity checked on %d sample prompts (%d asked; the run's data has no more)",
            len(prompts),
            cfg.samples,
        )

    # (a) the adapter on the base it was trained on.
    reference = "adapter on the full-precision base"
    quantized = bool(recipe and recipe.get("method") == "qlora")
    if quantized:
        try:
            check_4bit("cuda" if gpu else "cpu")
        except UserError as exc:
            log.warning("%s; comparing against the full-precision base instead", exc)
            quantized = False
    if quantized:
        from transformers import BitsAndBytesConfig

        from training.loading import keep_cpu_4bit_trainable

        q = recipe.get("quantization", {})
        compute = q.get("compute_dtype", "auto")
        compute_dtype = dtype if compute == "auto" else getattr(torch, compute)
        base_q = auto.from_pretrained(
            base,
            quantization_config=BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=q.get("quant_type", "nf4"),
                bnb_4bit_use_double_quant=q.get("double_quant", True),
                bnb_4bit_compute_dtype=compute_dtype,
            ),
            dtype=compute_dtype,
            device_map=device_map,
            use_safetensors=True,
        )
        keep_cpu_4bit_trainable(base_q)
        ref_model = PeftModel.from_pretrained(base_q, str(adapter)).eval()
        reference = "adapter on the 4-bit NF4 base it was trained on"
        ref_out = _generate(ref_model, tokenizer, prompts, cfg.max_new_tokens, seq2seq)
        del ref_model, base_q

    # (b) the merged model: the same adapter folded into the full-precision base.
    model = auto.from_pretrained(base, dtype=dtype, device_map=device_map, use_safetensors=True)
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    fp_out = _generate(model, tokenizer, prompts, cfg.max_new_tokens, seq2seq)
    if not quantized:
        ref_out = fp_out
    probe = _probe_inputs(tokenizer, prompts[0], seq2seq)
    with torch.no_grad():
        unmerged_logits = model(**probe).logits.float()
    merged = model.merge_and_unload()
    with torch.no_grad():
        logit_diff = (merged(**probe).logits.float() - unmerged_logits).abs().max().item()
    merged_out = _generate(merged, tokenizer, prompts, cfg.max_new_tokens, seq2seq)
    agree = sum(a == b for a, b in zip(ref_out, merged_out, strict=True))
    report = {
        "adapter": str(adapter),
        "base": base,
        "reference": reference,
        "samples": len(prompts),
        "agreeing": agree,
        "agreement": agree / len(prompts),
        "agreement_vs_unmerged_full_precision": sum(a == b for a, b in zip(fp_out, merged_out, strict=True))
        / len(prompts),
        "max_abs_logit_diff_vs_unmerged": logit_diff,
        "dtype": str(dtype).removeprefix("torch."),
        "examples": [
            {
                "reference": tokenizer.decode(a, skip_special_tokens=True),
                "merged": tokenizer.decode(b, skip_special_tokens=True),
            }
            for a, b in list(zip(ref_out, merged_out, strict=True))[:3]
        ],
    }
    from eat.io import atomic_dir

    # Written into a temp folder beside `out` and renamed: never a half-written model folder.
    with atomic_dir(out, cfg.overwrite, [cfg.adapter], "eat train merge") as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "merge_report.json").write_text(
            json.dumps(report, ensure_ascii=False, indent=2) + "\n", "utf-8"
        )
        (tmp / "README.md").write_text(merged_card(base, cfg.adapter, report), "utf-8")
    return report


def merged_card(base: str, adapter: str, report: dict[str, Any]) -> str:
    """The merged model's README.md: Hub metadata, where it came from, and the parity check it passed."""
    from eat.hub import CARD_TAGS, front_matter

    head = front_matter(
        "model", base_model=base, library_name="transformers", tags=[*CARD_TAGS, "merged-lora"],
        pipeline_tag="text-generation",
    )  # fmt: skip
    return (
        f"{head}\n# {Path(adapter).name} merged into {base}\n\n"
        f"A LoRA adapter trained with eat-ner (`{adapter}`) folded into its base model by `eat train merge`, "
        f"saved as {report['dtype']} safetensors.\n\n"
        f"Greedy outputs on {report['samples']} sample prompts agree with the reference on {report['agreeing']} "
        f"({report['agreement']:.0%}); max logit difference vs the unmerged adapter: "
        f"{report['max_abs_logit_diff_vs_unmerged']:.2g}. Details: `merge_report.json`.\n"
    )
