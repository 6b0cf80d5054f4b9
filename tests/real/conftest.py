"""The real-model tier (`pytest -m real`): the real Qwen2.5 0.5B instruct model and spaCy's English pipeline,
made offline from registry wheels by `../shared/tools/real-models` (folders under $EAT_REAL_MODELS, else
~/.cache/eat-ner/real-models).

Where they are missing, these tests skip with the command that makes them; with EAT_REQUIRE_REAL_MODELS=1
(set by .ci/run) they fail instead, so CI never passes without having run them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MAKE = "../shared/tools/real-models qwen0.5b spacy-en"


def real_models_dir() -> Path:
    return Path(os.environ.get("EAT_REAL_MODELS") or Path.home() / ".cache" / "eat-ner" / "real-models")


def _need(name: str, marker: str) -> Path:
    path = real_models_dir() / name
    if (path / marker).is_file():
        return path
    message = f"real model folder {path} is missing; make it with `{MAKE}` (about 2.5 minutes, cached)"
    if os.environ.get("EAT_REQUIRE_REAL_MODELS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def qwen() -> Path:
    return _need("qwen2.5-coder-0.5b-instruct", "config.json")


@pytest.fixture(scope="session")
def spacy_en() -> Path:
    pytest.importorskip("spacy", reason="pip install 'eat-ner[spacy]'")
    return _need("en_core_web_sm", "config.cfg")


@pytest.fixture(scope="session")
def qwen_backend(qwen):
    """One loaded model for the tier (loading takes ~10 s and 2.4 GB)."""
    from evaluation.backends.hf import HFBackend

    return HFBackend(str(qwen), batch_size=8)
