"""What a training run leaves in its output folder: complete checkpoints, resolved recipe, model card.

Shared by the SFT and NER-tagger trainers so both resume, refuse and document runs the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eat import markdown
from eat.compat import load_checkpoint_weights, restore_train_token_count, skip_checkpoint_model_cards
from eat.errors import UserError
from training.trainer_args import check_trainer_args, hub_push

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


log = logging.getLogger(__name__)


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoints in step order whose trainer_state.json (written last by Trainer) exists."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = _CHECKPOINT.match(child.name)
        if m and child.is_dir() and (child / "trainer_state.json").is_file():
            found.append((int(m.group(1)), child))
    return [p for _, p in sorted(found)]


def resume_checkpoint(output_dir: str | Path, mode: str) -> str | None:
    """The newest complete checkpoint when mode is 'auto' (an interrupted save is skipped), else None."""
    if mode != "auto":
        return None
    done = complete_checkpoints(output_dir)
    return str(done[-1]) if done else None


# Keys that may differ between the runs sharing one output folder: train for longer, log, save or evaluate
# differently. Any other change (data, model, LoRA shape, learning rate ...) makes it a different run.
RESUMABLE_CHANGES = frozenset(
    {
        "training.max_steps",
        "training.num_train_epochs",
        "training.save_steps",
        "training.save_total_limit",
        "training.logging_steps",
        "training.eval_steps",
        "training.per_device_eval_batch_size",
        "training.report_to",
        "training.resume",
        "data.eval_split",
        "data.max_eval_samples",
        "data.num_proc",
    }
)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def recipe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two recipe dumps, as 'key: old -> new'."""
    a, b = _flat(old), _flat(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def check_output_dir(output_dir: str | Path, recipe: Any) -> dict[str, Any] | None:
    """Decide, before anything loads, what an existing output folder allows.

    Returns the stored metrics when it holds this run finished (nothing to train); raises a UserError when it
    holds another run (resuming it would mix two runs, or fail deep in weight loading) or when
    `resume: never` would start a second run among the first one's checkpoints. Otherwise None: train,
    resuming from the newest complete checkpoint if there is one.
    """
    from eat.config import read_yaml

    out = Path(output_dir)
    checkpoints = (
        sorted((p for p in out.glob("checkpoint-*") if _CHECKPOINT.match(p.name)), key=lambda p: _step(p))
        if out.is_dir()
        else []
    )
    finished = (out / "metrics.json").is_file()
    if not checkpoints and not finished:
        return None
    held = checkpoints[-1].name if checkpoints else "metrics.json"
    if recipe.training.resume == "never":
        raise UserError(
            f"already holds a training run ({held}); training.resume=never would start a second run among its "
            "files: choose another training.output_dir, or delete this one",
            path=out,
        )
    if not (out / "recipe.yaml").is_file():
        raise UserError(
            f"holds checkpoints ({held}) but no recipe.yaml, so they cannot be matched to this recipe: "
            "choose another training.output_dir",
            path=out,
        )
    try:
        stored = read_yaml(out / "recipe.yaml")
    except UserError:
        stored = {}
    current = recipe.model_dump(mode="json")
    changed = [c for c in recipe_changes(stored, current) if c.split(":", 1)[0] not in RESUMABLE_CHANGES]
    if changed:
        shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise UserError(
            f"holds a run of a different recipe ({shown}): continue it with its own recipe.yaml, "
            "or choose another training.output_dir",
            path=out,
        )
    if not finished:
        return None
    t = recipe.training
    complete = complete_checkpoints(out)  # a checkpoint cut off while saving does not count
    last_step = _step(complete[-1]) if complete else 0
    longer = (t.max_steps > 0 and last_step < t.max_steps) or (
        t.max_steps <= 0 and t.num_train_epochs > float(_flat(stored).get("training.num_train_epochs") or 0)
    )
    if longer and complete:
        log.info("%s: continuing the finished run from %s up to the new length", out, complete[-1].name)
        return None
    try:
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None  # an unreadable metrics.json: train (resuming) and write it again
    log.info(
        "%s already holds this run, finished (metrics.json); nothing to train. "
        "Use another training.output_dir to train again.",
        out,
    )
    return metrics


def preflight(recipe: Any) -> dict[str, Any] | None:
    """The checks that need no model, GPU or torch: first thing in a run, and once in the parent before
    `--launch` starts N processes (each would otherwise print the same error inside a launcher traceback).
    Returns the stored metrics when the run is already finished (nothing to train)."""
    from eat.io import check_writable
    from eat.models import check_model_kind, check_model_path

    done = check_output_dir(recipe.training.output_dir, recipe)
    if done is not None:
        return done
    check_model_path(recipe.model.name_or_path)
    check_model_kind(
        recipe.model.name_or_path, seq2seq=recipe.kind == "ner_tagger", what=f"kind: {recipe.kind}"
    )
    if recipe.kind == "sft":
        if not Path(recipe.data.path).exists():
            raise UserError("dataset folder not found (build one with `eat wiki sft`)", path=recipe.data.path)
    else:
        for f in (recipe.data.train_file, recipe.data.eval_file):
            if f and not Path(f).is_file():
                raise UserError("CoNLL file not found", path=f)
    check_trainer_args(recipe)
    check_trackers(recipe.training.report_to)
    check_writable(recipe.training.output_dir)  # before minutes of tokenising and loading
    return None


# Tracker name (as transformers' report_to takes it) -> the module it needs.
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}


def check_trackers(report_to: list[str]) -> None:
    """Unknown trackers, and trackers whose package is missing, are one line before the run (transformers
    would fail at trainer creation, after the data and model have loaded)."""
    import importlib.util

    for name in report_to:
        if name == "none":
            continue
        if name not in TRACKERS:
            raise UserError(
                f"training.report_to: unknown tracker {name!r} (use {', '.join(TRACKERS)} or none)"
            )
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise UserError(
                f"training.report_to: {name} is not installed (pip install {name}), or drop it from report_to"
            )


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-", 1)[1])


def write_recipe_first(output_dir: str | Path, recipe: Any) -> None:
    """recipe.yaml at the start of a run (main process), so that an interrupted run can be matched later."""
    from accelerate import PartialState

    from eat.config import dump_config

    if PartialState().is_main_process:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        dump_config(recipe, Path(output_dir) / "recipe.yaml")


def tensorboard_into(trainer, output_dir: str | Path) -> None:
    """TensorBoard logs go to OUTPUT_DIR/tensorboard (unless TENSORBOARD_LOGGING_DIR says otherwise)."""
    if os.environ.get("TENSORBOARD_LOGGING_DIR"):
        return
    for callback in trainer.callback_handler.callbacks:
        if type(callback).__name__ == "TensorBoardCallback":
            callback.logging_dir = str(Path(output_dir) / "tensorboard")


def refuse_broken_distributed(method: str) -> None:
    """DeepSpeed ZeRO-3 cannot shard bitsandbytes 4-bit weights: point to FSDP-QLoRA instead."""
    if method != "qlora":
        return
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "")
    if deepspeed and stage == "3":
        raise UserError(
            "DeepSpeed ZeRO-3 with 4-bit (method=qlora) weights is not supported; use FSDP-QLoRA: "
            "accelerate launch --config_file recipes/accelerate/fsdp_qlora.yaml -m training RECIPE.yaml "
            "(or eat train RECIPE.yaml --launch fsdp --num-processes N)"
        )


@contextlib.contextmanager
def oom_as_user_error(output_dir: str | Path, what: str) -> Iterator[None]:
    """Turn an out-of-memory crash into one line saying what to lower; finished checkpoints stay valid."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError:
        done = complete_checkpoints(output_dir)
        last = f"; last complete checkpoint: {done[-1]}" if done else ""
        raise UserError(
            f"out of memory while {what}: lower training.per_device_train_batch_size (raise "
            "gradient_accumulation_steps to keep the global batch), lower the sequence length, keep "
            f"training.gradient_checkpointing=true, or use method=qlora{last}"
        ) from None


def model_card(
    *, title: str, recipe: Any, base_model: str, data_lines: list[str], metrics: dict[str, Any], usage: str
) -> str:
    """A README.md for the run: what was trained on what, with which settings, and how it scored."""
    from eat.hub import CARD_TAGS, front_matter

    library = "peft" if getattr(recipe, "method", "full") in ("lora", "qlora") else "transformers"
    lines = [
        front_matter(
            "model",
            base_model=base_model,
            library_name=library,
            tags=[*CARD_TAGS, recipe.kind, getattr(recipe, "method", "full")],
            pipeline_tag="text-generation" if recipe.kind == "sft" else "text2text-generation",
        ).rstrip("\n"),
        "",
        f"# {title}",
        "",
        f"Trained with eat-ner (`kind: {recipe.kind}`, `method: {getattr(recipe, 'method', 'full')}`) from "
        f"`{base_model}`. The full resolved recipe is in `recipe.yaml` next to this file.",
        "",
        "## Data",
        "",
        *[f"- {line}" for line in data_lines],
        "",
        "## Training",
        "",
    ]
    t = recipe.training
    keys = (
        "learning_rate",
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "lr_scheduler_type",
        "seed",
    )
    settings = [(key, getattr(t, key)) for key in keys] + list((t.trainer_args or {}).items())
    if getattr(recipe, "method", "full") in ("lora", "qlora"):
        lora = recipe.lora
        shown = f"r={lora.r}, alpha={lora.alpha}, dropout={lora.dropout}, targets={lora.target_modules}"
        settings.append(("lora", shown))
    lines += markdown.table_lines(["setting", "value"], settings)
    lines += ["", "## Metrics", ""]
    if metrics:
        lines += markdown.table_lines(
            ["metric", "value"],
            ([key, f"{value:.4f}" if isinstance(value, float) else value] for key, value in metrics.items()),
        )
    else:
        lines.append("No evaluation split was configured.")
    lines += ["", "## Use", "", "```", usage, "```", ""]
    return "\n".join(lines)


def write_run_files(output_dir: str | Path, recipe: Any, card: str, metrics: dict[str, Any]) -> None:
    """recipe.yaml, README.md and metrics.json, each written atomically (main process only)."""
    from eat.config import dump_config
    from eat.io import atomic_open, write_json

    out = Path(output_dir)
    dump_config(recipe, out / "recipe.yaml")
    with atomic_open(out / "README.md") as fh:
        fh.write(card)
    write_json(out / "metrics.json", json.loads(json.dumps(metrics, default=float)))


def _logged(checkpoint: Path) -> list[dict[str, Any]]:
    """The log history a checkpoint saved (empty when unreadable: the resume then reports what it can)."""
    try:
        return json.loads((checkpoint / "trainer_state.json").read_text("utf-8")).get("log_history", [])
    except (OSError, ValueError):
        return []


def _last(history: list[dict[str, Any]], key: str) -> Any:
    return next((e[key] for e in reversed(history) if key in e), None)


def _loss_sum(history: list[dict[str, Any]], upto: int) -> float:
    """Sum of the per-step training losses up to step `upto`, from logged interval means (each logged `loss`
    is the mean since the previous log). Exact when a log falls on `upto` (logging_steps divides save_steps);
    otherwise the steps after the last log count at that log's mean."""
    total, prev, last = 0.0, 0, None
    for entry in history:
        if "loss" in entry and entry.get("step", 0) <= upto:
            total += entry["loss"] * (entry["step"] - prev)
            prev, last = entry["step"], entry["loss"]
    if last is not None:
        total += last * (upto - prev)
    return total


def train_and_evaluate(trainer, recipe: Any, evaluate: bool, what: str) -> dict[str, Any]:
    """Train (resuming from the newest complete checkpoint), then evaluate once; the run's metrics.

    Shared by the SFT and NER-tagger trainers so both log, record their recipe, resume, report the same
    keys and handle OOM the same way.
    """
    from accelerate import PartialState

    from eat.io import LOCK_NAME, output_lock

    output_dir = recipe.training.output_dir
    state = PartialState()
    # One `eat train` per output_dir at a time (the main process holds it): two would overwrite each other's
    # checkpoints. A killed run's lock goes with it.
    lock = output_lock(Path(output_dir) / LOCK_NAME) if state.is_main_process else contextlib.nullcontext()
    with lock:
        if state.is_main_process:
            from eat.io import remove_leftovers

            remove_leftovers(output_dir)  # run files a killed run left half-written (.NAME.*.tmp)
        return _train_and_evaluate(trainer, recipe, evaluate, what, state)


def _train_and_evaluate(trainer, recipe: Any, evaluate: bool, what: str, state) -> dict[str, Any]:
    from eat.console import is_quiet

    output_dir, resume_mode = recipe.training.output_dir, recipe.training.resume
    tensorboard_into(trainer, output_dir)
    write_recipe_first(output_dir, recipe)
    skip_checkpoint_model_cards(trainer)  # ours is written when the run completes (finish_run)
    if is_quiet():  # without tqdm, Trainer prints every log dict to stdout
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    resume = resume_checkpoint(output_dir, resume_mode)
    if resume and state.is_main_process:
        log.info("resuming from %s", resume)
    with oom_as_user_error(output_dir, what):
        max_steps = trainer.args.max_steps
        if resume and max_steps > 0 and _step(Path(resume)) >= max_steps:
            # Training had finished but the run was stopped before writing its outputs. Trainer would take
            # one more step past max_steps when resuming mid-epoch, so load the checkpoint instead.
            from transformers import TrainerState

            load_checkpoint_weights(trainer, resume)
            trainer.state = TrainerState.load_from_json(str(Path(resume) / "trainer_state.json"))
            losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
            train_loss, global_step = (
                (sum(losses) / len(losses) if losses else float("nan")),
                trainer.state.global_step,
            )
        else:
            before = _logged(Path(resume)) if resume else []
            if before and (tokens := _last(before, "num_tokens")) is not None:
                restore_train_token_count(trainer, int(tokens))
            result = trainer.train(resume_from_checkpoint=resume)
            train_loss, global_step = result.training_loss, result.global_step
            if (
                resume
            ):  # Trainer averages over the steps of this process only: add the steps before the resume
                done = _step(Path(resume))
                train_loss = (_loss_sum(before, done) + train_loss * (global_step - done)) / max(
                    global_step, 1
                )
        metrics: dict[str, Any] = {
            "train_loss": train_loss,
            "global_step": global_step,
            "epochs": round(float(trainer.state.epoch or 0.0), 3),
            "world_size": state.num_processes,
        }
        if (tokens := _last(trainer.state.log_history, "num_tokens")) is not None:
            metrics["train_tokens"] = int(tokens)
        if evaluate:
            ev = trainer.evaluate()
            # eval_num_tokens is TRL's count of *training* tokens seen so far: not an evaluation result.
            metrics.update({k: v for k, v in ev.items() if k.startswith("eval_") and k != "eval_num_tokens"})
    return metrics


@dataclass(frozen=True)
class RunCard:
    """What a trainer says about its run in the model card (training.runs.model_card writes the rest)."""

    title: str
    data_lines: list[str]
    usage: str


def finish_run(
    trainer,
    tokenizer,
    recipe: Any,
    metrics: dict[str, Any],
    card: RunCard,
    extra_json: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Save the model and tokenizer, then (main process) the model card, recipe.yaml, metrics.json and any
    `extra_json` files; every process waits for the writes. Returns `metrics`."""
    from accelerate import PartialState

    from eat.io import write_json

    output_dir = recipe.training.output_dir
    trainer.save_model(output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(output_dir)
        text = model_card(
            title=card.title,
            recipe=recipe,
            base_model=recipe.model.name_or_path,
            data_lines=card.data_lines,
            metrics=metrics,
            usage=card.usage,
        )
        write_run_files(output_dir, recipe, text, metrics)
        for name, data in (extra_json or {}).items():
            write_json(Path(output_dir) / name, data)
        if (push := hub_push(recipe)) is not None:  # training.trainer_args.push_to_hub, hub_model_id, ...
            from eat.hub import push_folder

            url = push_folder(output_dir, push[0], "model", push[1], "eat train")
            log.info("pushed %s to %s", output_dir, url)
    PartialState().wait_for_everyone()
    return metrics
