"""Typed recipes for training jobs (the single source of truth for YAML keys and their help)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from eat.config import StrictModel


class ModelConfig(StrictModel):
    name_or_path: str = Field(description="Hub name or local folder of the base model.")
    trust_remote_code: bool = Field(
        False, description="Run code shipped with the model (off: untrusted input)."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")


class TrainingConfig(StrictModel):
    output_dir: str = Field("runs/sft", description="Where checkpoints, adapter and logs go.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    num_train_epochs: float = Field(1.0, gt=0, description="Epochs over the training split.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: use epochs).")
    per_device_train_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    seed: int = Field(0, description="Seed for initialisation, shuffling and dropout.")


class SFTRecipe(StrictModel):
    kind: Literal["sft"] = "sft"
    model: ModelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)


class NERTaggerRecipe(StrictModel):
    kind: Literal["ner_tagger"] = "ner_tagger"
    model: ModelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
