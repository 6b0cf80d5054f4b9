"""Typed config of `eat eval`: the single source of truth for recipe keys (`kind: eval`) and CLI flags."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from eat.config import StrictModel

# The sampling settings of the authors' code (Qwen2.5-Instruct's generation_config), used by `--decoding paper`.
PAPER_DECODING = {
    "do_sample": True,
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
    "repetition_penalty": 1.05,
}


class EvalRecipe(StrictModel):
    kind: Literal["eval"] = "eval"
    model: str = Field(
        description="LLM for translation and alignment: local folder, hub name, or served model name."
    )
    adapter: str | None = Field(None, description="LoRA adapter folder, loaded on top of --model.")
    adapter_stages: Literal["align", "all"] = Field(
        "align",
        description="Stages the adapter applies to: align (stage 3 only; translation, LLM English NER and "
        "direct tagging run on the base model, as an adapter trained on align chats knows nothing else) or "
        "all (every LLM turn, for an adapter trained on every task).",
    )
    adapter_name: str | None = Field(
        None,
        description="Name the server serves the LoRA adapter under (backend openai, e.g. vLLM's --lora-modules "
        "NAME=PATH): the stages of --adapter-stages ask for it, the others for --model.",
    )
    reuse_replies: list[str] = Field(
        default_factory=list,
        description="Other eat eval run folders whose cached replies this run reuses where they match "
        "exactly (keys cover model, adapter where it applies, prompts and decoding), e.g. the base run's "
        "translations for an align-only adapter; reused replies are copied into this run's cache.",
    )
    ner_model: str = Field(
        "llm",
        description="English NER: a seq2seq tagger folder, a token-classification model folder, "
        "spacy:PIPELINE (a spaCy pipeline folder or installed package, e.g. spacy:en_core_web_sm), or 'llm' "
        "(the LLM answers with the english_ner_instruction).",
    )
    ner_label_map: dict[str, str] = Field(
        default_factory=dict,
        description="English NER label -> test-set type, on top of the defaults (PERSON/PER->PER; GPE, LOC, "
        "FAC, LOCATION->LOC; ORG, ORGANIZATION->ORG; others dropped), e.g. NORP: MISC; map to '' to drop.",
    )
    data: str = Field(description="Labelled test file (BIO/BMES columns or span JSON).")
    format: Literal["auto", "bio", "bmes", "spans"] = Field(
        "auto", description="Format of --data (auto: from the extension and content)."
    )
    lang: str = Field(description="Language code of the test sentences (zh, ja, ko, ru, ar, ...).")
    out: str = Field(description="Run folder: predictions.jsonl, metrics.json, report.md and stage caches.")
    report_to: list[str] = Field(
        default_factory=list,
        description="Also send the scores to these trackers: tensorboard (RUN/tensorboard), wandb, mlflow, trackio.",
    )
    backend: Literal["hf", "openai", "vllm"] = Field("hf", description="How the LLM is run.")
    serve: Literal["vllm"] | None = Field(
        None,
        description="Serve the model for the run: vllm starts `vllm serve MODEL` (--adapter as a LoRA module "
        "named --adapter-name, default 'adapter') on a free local port, evaluates through backend openai "
        "(implied) and stops the server afterwards; its log is RUN/vllm-serve.log.",
    )
    mode: Literal["eat", "translate-test", "direct"] = Field(
        "eat",
        description="eat: entity-aware translation; translate-test: plain translation; direct: the LLM tags "
        "the source sentence itself.",
    )
    prompts: str | None = Field(None, description="Prompt file (default: eat-ner's own prompts).")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N sentences.")
    batch_size: int = Field(16, ge=1, description="Chats per generate call (hf, vllm) and NER batch size.")
    max_new_tokens: int = Field(256, ge=1, description="Most tokens generated per reply.")
    decoding: Literal["greedy", "paper"] = Field(
        "greedy",
        description="greedy (reproducible, also across resumes and batch sizes) or paper (do_sample, "
        "temperature 0.7, top_p 0.8, top_k 20, repetition_penalty 1.05, seeded: the same run twice gives the "
        "same replies, but samples depend on the batch a chat shares, so a resumed run or another "
        "--batch-size may differ).",
    )
    seed: int = Field(0, description="Seed for sampled decoding.")
    label_map: dict[str, str] = Field(
        default_factory=dict,
        description="Gold label renames, e.g. PER.NAM: PER; map a label to '' to drop it (PER.NOM: '').",
    )
    lexicon: str | None = Field(
        None,
        description="Mined pairs parquet (en_title, surface, aliases) used as snapping hint and fallback.",
    )
    base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="OpenAI-compatible server (backend openai)."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="Environment variable holding the API key (backend openai); never logged.",
    )
    concurrency: int = Field(8, ge=1, description="Requests in flight at once (backend openai).")
    timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds to wait for one reply before retrying (backend openai); a warning "
        "comes after 5 s without any reply.",
    )
    max_retries: int = Field(
        4,
        ge=0,
        description="Retries per request (backend openai): backoff, Retry-After honoured (each wait "
        "at most 60 s); 4xx other than 408/409/429 are not retried.",
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra request fields for vLLM/SGLang servers (backend openai), e.g. {top_k: 20, "
        "repetition_penalty: 1.05, guided_choice: [...]}.",
    )
    served_model_name: str | None = Field(
        None, description="Name the server knows the model by (backend openai; default: --model)."
    )
    device: str | None = Field(
        None, description="torch device for hf models (default: cuda if available, else cpu)."
    )
    kv_cache_gib: float = Field(
        2.0,
        ge=0,
        description="Most GiB of KV cache the hf backend keeps between a chat's turns, so a later turn "
        "does not re-read its history (0: keep none; same replies either way).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype (hf)."
    )
    merge_adapter: bool = Field(
        True,
        description="Merge the LoRA adapter into the weights at load (hf backend): the same function, "
        "faster; off runs it unmerged, exactly as trained (replies may differ in rare near-ties).",
    )
    chat_template: str | None = Field(
        None,
        description="Jinja chat template file for a model whose tokenizer has none (hf backend), e.g. the "
        "template the model was fine-tuned with.",
    )
    trust_remote_code: bool = Field(
        False, description="Run code shipped with the model (off: untrusted input)."
    )

    @model_validator(mode="before")
    @classmethod
    def _serve_implies_openai(cls, data: Any) -> Any:
        """A served model is evaluated through backend openai (another backend given with it is refused in
        run_eval, with one line)."""
        if isinstance(data, dict) and data.get("serve") and data.get("backend") is None:
            data = {**data, "backend": "openai"}
        return data

    def decoding_kwargs(self) -> dict:
        """Generation settings shared by all backends (greedy unless the paper preset is chosen)."""
        if self.decoding == "paper":
            return {**PAPER_DECODING, "seed": self.seed}
        return {"do_sample": False, "seed": self.seed}
