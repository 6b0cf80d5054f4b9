"""The real-model tier (`pytest -m real`): the real Qwen2.5 0.5B instruct model and spaCy's English pipeline
(fixtures `qwen` and `spacy_en` in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def qwen_backend(qwen):
    """One loaded model for the tier (loading takes ~10 s and 2.4 GB)."""
    from evaluation.backends.hf import HFBackend

    return HFBackend(str(qwen), batch_size=8)
