"""Shared fixtures: tiny local models (built once per session), the real data in ../shared/data, and the
real models of the `-m real` tier (made by ../shared/tools/real-models under $EAT_REAL_MODELS, else
~/.cache/eat-ner/real-models). Where a real model is missing its tests skip with the command that makes it;
with EAT_REQUIRE_REAL_MODELS=1 (set by .ci/run) they fail instead, so CI never passes without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("EAT_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (present on CI and developer machines)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A tiny Qwen2-architecture causal LM with our ChatML tokenizer, saved as safetensors."""
    from training.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "tiny-qwen2")


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A tiny T5 seq2seq model with a byte-level BPE tokenizer, saved as safetensors."""
    from training.tiny import build_tiny_t5

    return build_tiny_t5(tmp_path_factory.mktemp("models") / "tiny-t5")


MAKE_REAL_MODELS = "../shared/tools/real-models qwen0.5b spacy-en"


def real_models_dir() -> Path:
    return Path(os.environ.get("EAT_REAL_MODELS") or Path.home() / ".cache" / "eat-ner" / "real-models")


def need_real_model(name: str, marker: str) -> Path:
    """The folder of a real model (`marker`: a file it must hold), else skip or fail as above."""
    path = real_models_dir() / name
    if (path / marker).is_file():
        return path
    message = (
        f"real model folder {path} is missing; make it with `{MAKE_REAL_MODELS}` (about 2.5 minutes, cached)"
    )
    if os.environ.get("EAT_REQUIRE_REAL_MODELS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def qwen() -> Path:
    """The real Qwen2.5-Coder-0.5B-Instruct folder."""
    return need_real_model("qwen2.5-coder-0.5b-instruct", "config.json")


@pytest.fixture(scope="session")
def spacy_en() -> Path:
    """spaCy's real English pipeline folder."""
    pytest.importorskip("spacy", reason="pip install 'eat-ner[spacy]'")
    return need_real_model("en_core_web_sm", "config.cfg")
