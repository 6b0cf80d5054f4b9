"""Every use of another library's private internals, in one place, with the versions it was checked against.

A patch here degrades to the library's own behaviour when its target moves (training stays correct), and
`tests/core/test_compat.py` checks each symbol against the installed versions, so an upgrade that breaks one
shows up as a failing test rather than as a silent change of behaviour. The upper bounds in pyproject.toml
are the releases these were checked on; raise them only after that test passes on the new release.

Checked on: CPython 3.11; transformers 5.23-5.24; trl 1.16.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# --- concurrent.futures ---------------------------------------------------------------------------------------
# ProcessPoolExecutor._processes (pid -> Process): CPython 3.10-3.13 (checked on 3.11).


def terminate_workers(executor) -> None:
    """Kill a ProcessPoolExecutor's workers at once (Ctrl-C, errors): `shutdown(cancel_futures=True)` only
    stops queued tasks, so a long running task would otherwise keep the interpreter waiting."""
    processes = getattr(executor, "_processes", None)
    if processes is None:
        return  # nothing started, or a Python that renamed it: shutdown() below still stops the pool
    workers = list(processes.values())
    for proc in workers:
        proc.terminate()
    for proc in workers:  # a worker that ignores SIGTERM (inherited SIG_IGN) is killed after a short grace
        proc.join(timeout=2)
        if proc.is_alive():
            proc.kill()


# --- trl: the fused LM head's compact mode ---------------------------------------------------------------------
# trl.trainer.utils._use_triton(device), read by add_fused_lm_head: trl 1.16 (it appeared in 1.16; 1.15 compacts
# on every device, and releases before 1.15 have no fused head, so there is nothing to patch).
#
# TRL's SFTTrainer computes the loss with a fused, chunked LM head. On Triton devices it projects only the
# positions whose next-token label is not -100; elsewhere it projects every position (its reason: on compiled
# backends such as Neuron a varying number of rows recompiles the tiles). On CPU there is nothing to recompile,
# and an alignment chat supervises only its answer (about 4% of the tokens of `eat wiki sft` data): scoring the
# supervised rows only made CPU training 2.3x faster in bench/train_bench.py, with the same loss and gradients
# (tests/training/test_lm_head.py). We wrap the module-level predicate that add_fused_lm_head reads; the kernel
# module keeps its own binding, so the Triton kernels are not affected.

_COMPACT_MARK = "_eat_compact_on_cpu"


def compact_lm_head_on_cpu() -> bool:
    """Make TRL's fused LM head skip unsupervised positions on CPU too (idempotent); True if in effect."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:  # pragma: no cover - trl is a dependency
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or not callable(original):
        log.debug("trl.trainer.utils has no _use_triton; the LM head scores every position on CPU")
        return False
    if getattr(original, _COMPACT_MARK, False):
        return True

    def compact_on(device) -> bool:
        return device.type == "cpu" or original(device)

    setattr(compact_on, _COMPACT_MARK, True)
    trl_utils._use_triton = compact_on
    return True


# --- trl: the model card written with every checkpoint ---------------------------------------------------------
# SFTTrainer._save_checkpoint calls self.create_model_card: trl 1.16.


def skip_checkpoint_model_cards(trainer) -> None:
    """Stop TRL writing its README.md into the output folder at every checkpoint.

    In a run stopped early it would be the only card, and a wrong one (no base model, no data); ours is
    written when the run completes (training.runs.model_card).
    """
    trainer.create_model_card = lambda *args, **kwargs: None


# --- transformers: loading a checkpoint's weights without training -----------------------------------------------
# Trainer._load_from_checkpoint(resume_from_checkpoint, model=None): transformers 5.23-5.24.


def load_checkpoint_weights(trainer, checkpoint: str) -> None:
    """Load a checkpoint's weights (full model or adapter) into the trainer's model, as `train(resume...)`
    would, but without taking a step."""
    trainer._load_from_checkpoint(checkpoint)


# --- transformers: swapping the attention function of a loaded model --------------------------------------------
# config._attn_implementation and PreTrainedModel._can_set_attn_implementation(): transformers 5.23-5.24.


def sdpa_swappable(model) -> bool:
    """True if the model runs SDPA attention and can switch to another registered attention function (the
    public `set_attn_implementation` only warns, and keeps the old function, when it cannot)."""
    return model.config._attn_implementation == "sdpa" and model._can_set_attn_implementation()


# --- trl: the training-token counter across a resume ----------------------------------------------------------
# SFTTrainer._total_train_tokens, the count behind the logged `num_tokens`: trl 1.16. It starts at 0 in every
# process, also when training resumes from a checkpoint, so without this the logged count restarts mid-run.


def restore_train_token_count(trainer, count: int) -> None:
    """Continue TRL's `num_tokens` count from a checkpoint's last logged value."""
    if hasattr(trainer, "_total_train_tokens"):
        trainer._total_train_tokens = count
    else:
        log.warning("this TRL release keeps no _total_train_tokens: num_tokens restarts after a resume")
