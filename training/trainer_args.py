"""The trainer config a recipe builds: TRL's `SFTConfig` (kind: sft) or transformers'
`Seq2SeqTrainingArguments` (kind: ner_tagger).

The recipe's own keys are mapped here, in one place; every other field of those classes is reachable through
`training.trainer_args`, passed as is. Preflight checks the passthrough's keys (an unknown key, or one that the
recipe already sets, is one line naming it), and each run builds the real config first thing, before any data
or model loads, so a value the class refuses is one line too. A key the recipe sets is refused rather than
overridden so that one setting has one home (and the resume check in training.runs sees it).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from typing import Any

from eat.errors import UserError
from training.loading import on_gpu
from training.packing import trl_packs

# Trainer fields that the recipe sets, with the key that sets them (or why they are fixed). Deprecated aliases
# are listed too: transformers ignores an alias when the new name is set, so it would be silently dropped.
COMMON_OWNED: dict[str, str] = {
    "output_dir": "training.output_dir",
    "learning_rate": "training.learning_rate",
    "num_train_epochs": "training.num_train_epochs",
    "max_steps": "training.max_steps",
    "per_device_train_batch_size": "training.per_device_train_batch_size",
    "per_device_eval_batch_size": "training.per_device_eval_batch_size",
    "gradient_accumulation_steps": "training.gradient_accumulation_steps",
    "warmup_steps": "training.warmup_ratio",
    "warmup_ratio": "training.warmup_ratio",
    "lr_scheduler_type": "training.lr_scheduler_type",
    "weight_decay": "training.weight_decay",
    "max_grad_norm": "training.max_grad_norm",
    "optim": "training.optim",
    "activation_checkpointing": "training.gradient_checkpointing",
    "activation_checkpointing_kwargs": "training.gradient_checkpointing",
    "gradient_checkpointing": "training.gradient_checkpointing",
    "gradient_checkpointing_kwargs": "training.gradient_checkpointing",
    "disable_tqdm": "--quiet (EAT_NO_PROGRESS=1)",
    "bf16": "training.precision",
    "fp16": "training.precision",
    "use_cpu": "training.use_cpu",
    "seed": "training.seed",
    "data_seed": "training.seed",
    "logging_steps": "training.logging_steps",
    "logging_first_step": "eat-ner (always on)",
    "eval_strategy": "training.eval_steps and the eval split",
    "eval_steps": "training.eval_steps",
    "save_strategy": "training.save_steps",
    "save_steps": "training.save_steps",
    "save_total_limit": "training.save_total_limit",
    "report_to": "training.report_to",
    "resume_from_checkpoint": "training.resume",
    "ddp_find_unused_parameters": "eat-ner (every adapter weight is used)",
    "remove_unused_columns": "eat-ner (the tokenised columns are the inputs)",
}
SFT_OWNED: dict[str, str] = {
    "max_length": "data.max_length",
    "packing": "data.packing",
    "packing_strategy": "data.packing_strategy",
    "eval_packing": "data.packing",
    "completion_only_loss": "data.train_on (the loss masks are built before SFTTrainer)",
    "assistant_only_loss": "data.train_on (the loss masks are built before SFTTrainer)",
    "dataset_num_proc": "data.num_proc",
    "chat_template_path": "model.chat_template",
}
NER_OWNED: dict[str, str] = {
    "predict_with_generate": "eat-ner (evaluation scores generated entity lists)",
    "generation_max_length": "generation.max_new_tokens",
    "generation_num_beams": "generation.num_beams",
    "metric_for_best_model": "eat-ner (f1)",
}


def owned_keys(kind: str) -> dict[str, str]:
    """Trainer fields a recipe of `kind` sets itself -> the recipe key (or reason) behind each."""
    return {**COMMON_OWNED, **(SFT_OWNED if kind == "sft" else NER_OWNED)}


def recipe_arguments(recipe, precision: str, has_eval: bool) -> dict[str, Any]:
    """TrainingArguments fields shared by both recipe kinds, from the recipe's own keys.

    Renames: `training.warmup_ratio` -> `warmup_steps` (transformers 5 reads a value below 1 as a share of the
    steps), `training.gradient_checkpointing` -> `activation_checkpointing` (its name since transformers 5.23).
    """
    t = recipe.training
    return {
        "output_dir": t.output_dir,
        "learning_rate": t.learning_rate,
        "num_train_epochs": t.num_train_epochs,
        "max_steps": t.max_steps,
        "per_device_train_batch_size": t.per_device_train_batch_size,
        "per_device_eval_batch_size": t.per_device_eval_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "warmup_steps": t.warmup_ratio,
        "lr_scheduler_type": t.lr_scheduler_type,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "optim": t.optim,
        "activation_checkpointing": t.gradient_checkpointing,
        "activation_checkpointing_kwargs": {"use_reentrant": False} if t.gradient_checkpointing else None,
        "disable_tqdm": os.environ.get("EAT_NO_PROGRESS") == "1" or None,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": t.use_cpu or not on_gpu(),
        "seed": t.seed,
        "data_seed": t.seed,
        "logging_steps": t.logging_steps,
        "logging_first_step": True,
        "eval_strategy": ("steps" if t.eval_steps else "epoch") if has_eval else "no",
        "eval_steps": t.eval_steps,
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "report_to": [r for r in t.report_to if r != "none"] or "none",
        "ddp_find_unused_parameters": False,
        "remove_unused_columns": True,
    }


def kind_arguments(recipe) -> dict[str, Any]:
    """The fields of SFTConfig / Seq2SeqTrainingArguments beyond TrainingArguments that the recipe sets."""
    if recipe.kind == "sft":
        d, packs = recipe.data, trl_packs(recipe)
        return {
            "max_length": d.max_length,
            "packing": packs,
            "packing_strategy": d.packing_strategy,
            "eval_packing": packs,
            "completion_only_loss": False,
            "assistant_only_loss": False,
            "dataset_num_proc": d.num_proc,
        }
    g = recipe.generation
    return {
        "predict_with_generate": True,
        "generation_max_length": g.max_new_tokens,
        "generation_num_beams": g.num_beams,
        "metric_for_best_model": "f1" if has_eval(recipe) else None,
    }


def has_eval(recipe) -> bool:
    """Whether the run evaluates: an eval split (sft) or an eval file (ner_tagger) is configured."""
    return recipe.data.eval_split is not None if recipe.kind == "sft" else bool(recipe.data.eval_file)


def config_class(kind: str) -> type:
    """SFTConfig for kind: sft, Seq2SeqTrainingArguments for kind: ner_tagger."""
    if kind == "sft":
        from trl import SFTConfig

        return SFTConfig
    from transformers import Seq2SeqTrainingArguments

    return Seq2SeqTrainingArguments


def check_passthrough_keys(kind: str, passthrough: dict[str, Any], cls: type) -> None:
    """One line for the first key of `training.trainer_args` that is not a field of `cls` or that the recipe
    sets itself."""
    fields = sorted(f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_"))
    owned = owned_keys(kind)
    for key in passthrough:
        where = f"training.trainer_args.{key}"
        if key in owned:
            raise UserError(f"{where}: set by {owned[key]}, not through trainer_args")
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
            hint = f" (did you mean 'training.trainer_args.{close[0]}'?)" if close else ""
            raise UserError(f"unknown key {where!r}{hint}: not a field of {_class_name(cls)}")


def build_trainer_args(recipe, precision: str):
    """The trainer config of this recipe (`precision` as resolved by training.loading.resolve_precision): its
    own keys, the kind's keys, then `training.trainer_args`. A mistake in the passthrough is one UserError
    line naming the key."""
    passthrough = recipe.training.trainer_args or {}
    cls = config_class(recipe.kind)
    check_passthrough_keys(recipe.kind, passthrough, cls)
    kwargs = {**recipe_arguments(recipe, precision, has_eval(recipe)), **kind_arguments(recipe)}
    # The Hub upload happens once, with the finished run's card (training.runs.finish_run, eat.hub), not from
    # inside Trainer at every save; hub_model_id and hub_private_repo still say where.
    passthrough = {**passthrough, "push_to_hub": False} if "push_to_hub" in passthrough else passthrough
    try:
        return cls(**kwargs, **passthrough)
    except (TypeError, ValueError) as exc:
        if not passthrough:
            raise  # our own mapping is wrong: a bug, keep the traceback
        reason = " ".join(str(exc).split())
        reason = reason if len(reason) <= 300 else reason[:297] + "..."
        keys = ", ".join(passthrough)
        raise UserError(
            f"training.trainer_args ({keys}): {_class_name(cls)} refused them: {reason}"
        ) from None


def check_trainer_args(recipe) -> None:
    """Preflight for `training.trainer_args`: its keys only (nothing to do, and nothing imported, when empty).

    The values are checked by building the real config (`build_trainer_args`), which each run does first
    thing: not here, because preflight also runs in the parent of `--launch`, and building a TrainingArguments
    sets up a device (a GPU context that process would hold for the whole run).
    """
    passthrough = recipe.training.trainer_args
    if passthrough:
        check_passthrough_keys(recipe.kind, passthrough, config_class(recipe.kind))
    if hub_push(recipe) is not None:  # an offline machine learns it now, not after the training
        from eat.hub import check_repo_id, hub_reachable

        repo, _ = hub_push(recipe)
        if not repo:
            raise UserError(
                "training.trainer_args.push_to_hub needs training.trainer_args.hub_model_id=ORG/NAME (the repo)"
            )
        check_repo_id(repo)
        if not hub_reachable():
            raise UserError(
                f"training.trainer_args.push_to_hub: the Hugging Face Hub is not reachable from here (for {repo})"
            )


def hub_push(recipe) -> tuple[str, bool] | None:
    """(repo id, private) when the recipe asks for its run to be pushed to the Hub, else None."""
    passthrough = recipe.training.trainer_args or {}
    if not passthrough.get("push_to_hub"):
        return None
    return str(passthrough.get("hub_model_id") or ""), bool(passthrough.get("hub_private_repo"))


def _class_name(cls: type) -> str:
    from importlib.metadata import PackageNotFoundError, version

    module = cls.__module__.split(".")[0]
    try:
        return f"{module} {version(module)} {cls.__name__}"
    except PackageNotFoundError:  # a source checkout without metadata: the name alone is enough
        return f"{module} {cls.__name__}"
