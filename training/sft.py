"""`kind: sft` runs: LoRA / QLoRA / full chat fine-tuning with TRL's SFTTrainer on pre-tokenised chats.

We hand SFTTrainer `input_ids` + `labels` (built in training.sft_data, loss on assistant tokens only), so it
skips its own chat rendering and only truncates. With `data.packing`, `bfd` packs whole chats into rows whose
position ids restart per chat, so chats never attend to each other (TRL's padding-free mode with flash
attention, our per-row packing otherwise); `wrapped` cuts one stream into rows (chats may see each other).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from eat.chat import use_chat_template
from eat.compat import compact_lm_head_on_cpu, sdpa_swappable
from training.config import SFTRecipe
from training.loading import (
    check_4bit,
    check_lora_targets,
    load_causal_lm,
    load_tokenizer,
    on_gpu,
    resolve_precision,
)
from training.packing import PackedRowsCollator, pack_rows, register_packed_attention, trl_packs
from training.runs import (
    RunCard,
    finish_run,
    preflight,
    refuse_broken_distributed,
    train_and_evaluate,
)
from training.sft_data import dataset_splits, load_sft_splits, tokenize_dataset
from training.trainer_args import build_trainer_args

log = logging.getLogger(__name__)


def peft_lora_config(lora, task_type: str):
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type=task_type,
        bias="none",
    )


def without_missing_default_eval(recipe: SFTRecipe) -> SFTRecipe:
    """A dataset built with `eat wiki sft --val-fraction 0` has no validation split: with the default
    `data.eval_split` the run trains without evaluating (a warning says so); an eval split the recipe names
    explicitly must exist (load_sft_splits says so in one line)."""
    d = recipe.data
    if d.eval_split is None or "eval_split" in d.model_fields_set:
        return recipe
    splits = dataset_splits(d.path)
    if splits is None or d.eval_split in splits:
        return recipe
    log.warning("%s has no %r split: training without evaluation", d.path, d.eval_split)
    return recipe.model_copy(update={"data": d.model_copy(update={"eval_split": None})})


def run_sft(recipe: SFTRecipe, callbacks: list | None = None) -> dict[str, Any]:
    """Train, evaluate and write the output folder; returns the final metrics.

    `callbacks` are extra transformers TrainerCallbacks (tests use them to watch parameters).
    """
    refuse_broken_distributed(recipe.method)
    recipe = without_missing_default_eval(recipe)
    t, d = recipe.training, recipe.data
    # Mistakes in paths are reported before the heavy imports below (seconds) and long before any tokenising.
    if (done := preflight(recipe)) is not None:
        return done

    from accelerate import PartialState
    from transformers import set_seed
    from trl import SFTTrainer

    precision = resolve_precision(t.precision, t.use_cpu)
    # The real SFTConfig first: a value of training.trainer_args that TRL refuses is one line before any
    # data or model loads.
    args = build_trainer_args(recipe, precision)
    gpu = on_gpu(t.use_cpu)
    state = PartialState()
    if recipe.method == "qlora":
        check_4bit("cuda" if gpu else "cpu")
    if not gpu and not compact_lm_head_on_cpu():
        log.warning("this TRL release scores every position through the LM head on CPU (slower, same result)")

    splits = [d.train_split] + ([d.eval_split] if d.eval_split else [])
    data = load_sft_splits(d.path, splits)
    tokenizer = load_tokenizer(recipe.model, padding_side="right")
    use_chat_template(tokenizer, None, recipe.model.name_or_path, "model.chat_template=")
    tokenized = {}
    with state.main_process_first():
        for split, ds in data.items():
            limit = d.max_train_samples if split == d.train_split else d.max_eval_samples
            if limit is not None:
                ds = ds.select(range(min(limit, len(ds))))
            tokenized[split], dropped = tokenize_dataset(
                ds,
                tokenizer,
                train_on=d.train_on,
                max_length=d.max_length,
                name=f"{d.path}:{split}",
                num_proc=d.num_proc,
            )
            if dropped and state.is_main_process:
                log.warning("%s: dropped %d chats whose answer was cut off by max_length", split, dropped)

    set_seed(t.seed)
    device_map = {"": state.local_process_index if gpu else "cpu"}
    model = load_causal_lm(
        recipe.model,
        method=recipe.method,
        precision=precision,
        quant_cfg=recipe.quantization,
        device_map=device_map,
    )
    # Without a KV cache, transformers reads restarting position_ids as packed chats and masks attention
    # between them (with a cache it would let packed chats attend to each other).
    model.config.use_cache = False
    peft_config = None
    if recipe.method in ("lora", "qlora"):
        check_lora_targets(model, recipe.lora.target_modules)
        peft_config = peft_lora_config(recipe.lora, "CAUSAL_LM")

    # bfd packing: TRL's padding-free mode is right for variable-length attention kernels (flash attention);
    # for SDPA/eager we pack rows ourselves so that attention stays within max_length per row.
    collator = None
    restore_attn = None
    if d.packing and not trl_packs(recipe):
        tokenized = {split: pack_rows(ds, d.max_length, t.seed) for split, ds in tokenized.items()}
        if sdpa_swappable(model):
            # SDPA would attend over whole packed rows under a block-diagonal mask (cost ~ row length^2);
            # the packed kernel attends within each chat only (cost ~ chat length^2), same result.
            model.set_attn_implementation(register_packed_attention())
            restore_attn = "sdpa"
        # The packed kernel finds chats by their position ids, so a batch can be one row with no padding.
        collator = PackedRowsCollator(tokenizer.pad_token_id, flatten=restore_attn is not None)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=tokenized[d.train_split],
        eval_dataset=tokenized.get(d.eval_split) if d.eval_split else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        data_collator=collator,
        callbacks=callbacks,
    )
    metrics = train_and_evaluate(trainer, recipe, bool(d.eval_split), "training")
    loss = metrics.get("eval_loss")
    if loss is not None and math.isfinite(loss):
        metrics["eval_perplexity"] = math.exp(min(loss, 50.0))
    if restore_attn:  # the saved model must not name an attention function registered only in this process
        model.set_attn_implementation(restore_attn)
    card = RunCard(
        title=f"{Path(t.output_dir).name}: EAT alignment chat model",
        data_lines=[
            f"dataset: `{d.path}` (train split `{d.train_split}`: {len(tokenized[d.train_split])} chats"
            + (
                f", eval split `{d.eval_split}`: {len(tokenized[d.eval_split])} chats)"
                if d.eval_split
                else ")"
            ),
            f"loss on: {d.train_on.replace('_', ' ')} turn(s); max_length {d.max_length}; "
            f"packing: {d.packing_strategy if d.packing else 'off'}",
            f"precision: {precision}; processes: {state.num_processes}",
        ],
        usage=f"eat train merge --adapter {t.output_dir} --out {t.output_dir}-merged"
        if recipe.method != "full"
        else f"AutoModelForCausalLM.from_pretrained({str(t.output_dir)!r})",
    )
    return finish_run(trainer, tokenizer, recipe, metrics, card)
