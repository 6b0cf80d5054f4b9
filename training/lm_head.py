"""Project only the supervised positions through the LM head when training on CPU.

TRL's SFTTrainer computes the loss with a fused, chunked LM head (`trl.trainer.utils.add_fused_lm_head`). On
Triton devices it projects only the positions whose next-token label is not -100; everywhere else it projects
every position (its reason: on compiled backends such as Neuron a varying number of rows recompiles the tiles).
On CPU there is nothing to recompile, and an alignment chat supervises only its answer: about 4% of the tokens
in `eat wiki sft` data. Projecting the other 96% through a vocab-sized head and a log-softmax is wasted work:
scoring the supervised rows only made CPU training 2.3x faster in `bench/train_bench.py` (same loss, same
gradients; tests/training/test_sft_train.py checks both).

TRL makes the choice with one module-level predicate (`_use_triton(device)`, used only for that choice in
`trl.trainer.utils`; the kernel module keeps its own binding, so the Triton kernels are not affected). We wrap
it so that CPU also answers "compact". If a TRL release moves the predicate, `compact_lm_head_on_cpu` returns
False, training stays correct (just slower on CPU), and a test fails to tell us.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_MARK = "_eat_compact_on_cpu"


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
    if getattr(original, _MARK, False):
        return True

    def compact_on(device) -> bool:
        return device.type == "cpu" or original(device)

    setattr(compact_on, _MARK, True)
    trl_utils._use_triton = compact_on
    return True
