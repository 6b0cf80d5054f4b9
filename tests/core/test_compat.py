"""Each private symbol that eat/compat.py relies on still exists, and still means what it did, on the
installed versions; and those versions are inside the ranges pyproject.toml pins. A failure here names the
symbol that moved: re-check the patch in eat/compat.py before raising a pin."""

from __future__ import annotations

import inspect
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path

import pytest

from eat.compat import compact_lm_head_on_cpu, terminate_workers

REPO = Path(__file__).resolve().parents[2]


def test_process_pool_keeps_its_workers_in_processes():
    import multiprocessing as mp

    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))  # as the miner's pool
    try:
        future = pool.submit(time.sleep, 60)
        deadline = time.monotonic() + 60  # a loaded machine can take a while to start the worker
        while not future.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert isinstance(pool._processes, dict) and pool._processes, "ProcessPoolExecutor._processes moved"
        worker = next(iter(pool._processes.values()))
        terminate_workers(pool)
        worker.join(timeout=30)
        assert not worker.is_alive()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def test_trl_fused_lm_head_reads_use_triton():
    import trl.trainer.utils as trl_utils

    assert callable(getattr(trl_utils, "_use_triton", None)), "trl.trainer.utils._use_triton moved"
    source = inspect.getsource(trl_utils.add_fused_lm_head)
    assert "_use_triton(" in source, "add_fused_lm_head no longer asks _use_triton whether to compact"
    assert compact_lm_head_on_cpu() is True


def test_trl_writes_its_card_through_create_model_card():
    from trl import SFTTrainer

    assert "self.create_model_card(" in inspect.getsource(SFTTrainer._save_checkpoint), (
        "SFTTrainer._save_checkpoint no longer calls create_model_card: skip_checkpoint_model_cards is moot"
    )


def test_trl_counts_training_tokens_in_total_train_tokens():
    from trl import SFTTrainer

    source = inspect.getsource(SFTTrainer)
    assert (
        "self._total_train_tokens = 0" in source
        and 'self._metrics[mode]["num_tokens"] = [self._total_train_tokens]' in source
    )


def test_trainer_loads_checkpoints_through_load_from_checkpoint():
    from transformers import Trainer

    params = list(inspect.signature(Trainer._load_from_checkpoint).parameters)
    assert params[:2] == ["self", "resume_from_checkpoint"], "Trainer._load_from_checkpoint changed"


def test_models_say_whether_their_attention_can_be_swapped():
    from transformers import PretrainedConfig, PreTrainedModel

    assert callable(getattr(PreTrainedModel, "_can_set_attn_implementation", None)), (
        "PreTrainedModel._can_set_attn_implementation moved"
    )
    assert isinstance(inspect.getattr_static(PretrainedConfig, "_attn_implementation"), property), (
        "PretrainedConfig._attn_implementation moved"
    )


@pytest.mark.parametrize("package", ["transformers", "trl", "peft"])
def test_installed_versions_are_inside_the_pins(package):
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (spec,) = [Requirement(d) for d in deps if Requirement(d).name == package]
    assert spec.specifier.contains(version(package)), f"{package} {version(package)} is outside {spec}"
    assert any(s.operator == "<" for s in spec.specifier), f"{package} has no tested upper bound"
