"""Typed recipes for training jobs (the single source of truth for YAML keys and their help).

A recipe is YAML with `kind: sft` (causal-LM chat fine-tuning with TRL's SFTTrainer) or `kind: ner_tagger`
(seq2seq English NER model trained on CoNLL/BIO files). Unknown keys are errors with a did-you-mean hint.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from eat.config import StrictModel


class BaseModelConfig(StrictModel):
    """The `model:` section: the base model to start from."""

    name_or_path: str = Field(description="Hub name or local folder of the base model.")
    trust_remote_code: bool = Field(
        False, description="Run code shipped with the model (off: untrusted input)."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    chat_template: str | None = Field(
        None, description="Jinja chat template file replacing the tokenizer's own (e.g. a Qwen2.5 template)."
    )
    attn_implementation: str | None = Field(
        None, description="Attention kernel: sdpa, eager, flash_attention_2 (None: transformers' default)."
    )


class LoraAdapterConfig(StrictModel):
    """The `lora:` section, turned into a peft.LoraConfig by training.sft.peft_lora_config."""

    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules that get adapters: 'all-linear' or a list of module names."
    )


class QuantizationConfig(StrictModel):
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="bitsandbytes 4-bit data type (QLoRA: nf4).")
    double_quant: bool = Field(
        True, description="Quantise the quantisation constants too (saves ~0.4 bit/param)."
    )
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="dtype of the 4-bit matmuls (auto: bf16 where supported, else fp16, fp32 on CPU)."
    )


class SFTDataConfig(StrictModel):
    path: str = Field("data/sft", description="DatasetDict saved by `eat wiki sft` (save_to_disk folder).")
    train_split: str = Field("train", description="Split to train on.")
    eval_split: str | None = Field("validation", description="Split to evaluate on (None: no evaluation).")
    train_on: Literal["last_assistant", "all_assistant"] = Field(
        "last_assistant",
        description="Which assistant turns carry loss: the final answer only, or every assistant reply.",
    )
    max_length: int = Field(1024, ge=8, description="Tokens per sequence (longer chats are truncated).")
    packing: bool = Field(False, description="Pack several chats into one sequence (no padding waste).")
    packing_strategy: Literal["bfd", "wrapped"] = Field(
        "bfd",
        description="bfd: whole chats packed best-fit decreasing, each sees only itself; wrapped: one stream cut "
        "at max_length (faster to build, chats may attend to each other).",
    )
    max_train_samples: int | None = Field(None, ge=1, description="Use only the first N training rows.")
    max_eval_samples: int | None = Field(None, ge=1, description="Use only the first N evaluation rows.")
    num_proc: int | None = Field(None, ge=1, description="Processes for tokenisation (None: one).")


class TrainingConfig(StrictModel):
    output_dir: str = Field("runs/sft", description="Where checkpoints, adapter and logs go.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    num_train_epochs: float = Field(1.0, gt=0, description="Epochs over the training split.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: use epochs).")
    per_device_train_batch_size: int = Field(4, ge=1, description="Sequences per device per step.")
    per_device_eval_batch_size: int = Field(8, ge=1, description="Sequences per device in evaluation.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    warmup_ratio: float = Field(
        0.03,
        ge=0,
        lt=1,
        description="Share of steps with linear warm-up (TrainingArguments.warmup_steps, which reads a value "
        "below 1 as a share).",
    )
    lr_scheduler_type: str = Field("cosine", description="transformers scheduler name (cosine, linear, ...).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    optim: str = Field(
        "adamw_torch", description="transformers optimizer name (e.g. paged_adamw_8bit on GPU)."
    )
    gradient_checkpointing: bool = Field(
        True,
        description="Recompute activations in backward (less memory); TrainingArguments.activation_checkpointing, "
        "non-reentrant.",
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto",
        description="Mixed precision (auto: bf16 where the GPU has it, else fp16; fp32 on CPU); sets "
        "TrainingArguments.bf16/fp16.",
    )
    seed: int = Field(
        0,
        description="Seed for initialisation, shuffling and dropout (TrainingArguments.seed and data_seed).",
    )
    logging_steps: int = Field(10, ge=1, description="Log loss and learning rate every N steps.")
    eval_steps: int | None = Field(
        None, ge=1, description="Evaluate every N steps (None: once per epoch); sets eval_strategy too."
    )
    save_steps: int = Field(500, ge=1, description="Write a checkpoint every N steps.")
    save_total_limit: int | None = Field(3, ge=1, description="Keep only the newest N checkpoints.")
    resume: Literal["auto", "never"] = Field(
        "auto",
        description="auto: continue from the last checkpoint in output_dir if there is one "
        "(Trainer.train(resume_from_checkpoint=...)).",
    )
    report_to: list[str] = Field(
        default_factory=lambda: ["tensorboard"],
        description="Experiment trackers, as TRL takes them: tensorboard, wandb, mlflow, trackio (or none); each "
        "needs its package installed, checked before anything loads.",
    )
    use_cpu: bool = Field(False, description="Train on CPU even when a GPU is present.")
    trainer_args: dict[str, Any] | None = Field(
        None,
        description="Any other field of TRL's SFTConfig (kind: sft) or transformers' Seq2SeqTrainingArguments "
        "(kind: ner_tagger), passed as is, e.g. {neftune_noise_alpha: 5, lr_scheduler_kwargs: {min_lr_rate: "
        "0.1}} or training.trainer_args.neftune_noise_alpha=5 on the command line. Checked before anything "
        "loads; fields that the keys above set are refused.",
    )

    @field_validator("max_steps")
    @classmethod
    def _steps_or_epochs(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("must be -1 (train for num_train_epochs) or at least 1")
        return value


class SFTRecipe(StrictModel):
    """Chat fine-tuning of a causal LM on an `eat wiki sft` dataset."""

    kind: Literal["sft"] = "sft"
    method: Literal["lora", "qlora", "full"] = Field(
        "lora",
        description="lora: adapters on a bf16/fp32 base; qlora: adapters on a 4-bit base; full: all weights.",
    )
    model: BaseModelConfig
    lora: LoraAdapterConfig = Field(default_factory=LoraAdapterConfig)
    quantization: QuantizationConfig = Field(default_factory=QuantizationConfig)
    data: SFTDataConfig = Field(default_factory=SFTDataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)


class NERDataConfig(StrictModel):
    train_file: str = Field("data/conll2003/train.txt", description="CoNLL/BIO file: token ... tag per line.")
    eval_file: str | None = Field("data/conll2003/valid.txt", description="CoNLL/BIO file for evaluation.")
    max_source_length: int = Field(256, ge=8, description="Tokens of the input sentence (longer are cut).")
    max_target_length: int = Field(128, ge=8, description="Tokens of the entity list (longer are cut).")
    max_train_samples: int | None = Field(None, ge=1, description="Use only the first N training sentences.")
    max_eval_samples: int | None = Field(None, ge=1, description="Evaluate on the first N sentences only.")
    source_prefix: str = Field(
        "ner: ", description="Text put before each sentence (T5 models are trained with task prefixes)."
    )


class NERGenerationConfig(StrictModel):
    max_new_tokens: int = Field(128, ge=1, description="Longest entity list generated in evaluation.")
    num_beams: int = Field(1, ge=1, description="Beam search width (1: greedy).")


class NERTaggerRecipe(StrictModel):
    """Seq2seq (T5-family) English NER tagger emitting `(TYPE, entity); ...` lists."""

    kind: Literal["ner_tagger"] = "ner_tagger"
    method: Literal["full", "lora"] = Field("full", description="full: all weights; lora: adapters only.")
    model: BaseModelConfig
    lora: LoraAdapterConfig = Field(
        default_factory=lambda: LoraAdapterConfig(target_modules=["q", "k", "v", "o", "wi_0", "wi_1", "wo"])
    )
    data: NERDataConfig = Field(default_factory=NERDataConfig)
    generation: NERGenerationConfig = Field(default_factory=NERGenerationConfig)
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(output_dir="runs/ner-tagger"))


class MergeConfig(StrictModel):
    """`eat train merge`: fold a LoRA adapter into its base and check the merged model answers the same."""

    adapter: str = Field(description="Adapter folder: a run's output_dir or one of its checkpoint-N folders.")
    out: str = Field(description="Folder for the merged model (safetensors + tokenizer).")
    base: str | None = Field(
        None, description="Base model folder (default: base_model_name_or_path in adapter_config.json)."
    )
    samples: int = Field(8, ge=1, description="Sample prompts for the greedy-output parity check.")
    max_new_tokens: int = Field(24, ge=1, description="Tokens generated per sample prompt in the check.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="dtype of the merged weights (auto: bf16 on GPU, fp32 on CPU)."
    )
    overwrite: bool = Field(False, description="Replace --out if it exists.")
    push_to_hub: str | None = Field(
        None, description="Also upload the merged model (with its card) to this Hub model repo (ORG/NAME)."
    )
    private: bool = Field(False, description="With --push-to-hub: create the Hub repo as private.")
