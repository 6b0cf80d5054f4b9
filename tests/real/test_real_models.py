"""The workflow on real models: Qwen2.5 0.5B instruct (real tokenizer and chat template) and spaCy's English
pipeline. Slow for unit tests (about 3 minutes on 2 cores), so a tier of its own: `pytest -m real`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eat.prompts import load_prompts

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]
PROMPTS = load_prompts()


def _align_chats(shared: Path, lang: str, n: int) -> list[dict]:
    """Real align chats from the authors' corpus: records whose phrase occurs in their sentence."""
    records = json.loads((shared / "eat-corpus" / f"corpus_{lang}.json").read_text(encoding="utf-8"))
    rows = []
    for rec in records:
        text, phrase, english = rec["text"], rec["tgt_entity"], rec["eng_entity"]
        if phrase and phrase in text and len(text) < 40:
            messages = PROMPTS.conversation("align", lang, replies=[phrase], sentence=text, phrase=english)
            rows.append(
                {"messages": messages, "task": "align", "lang": lang, "qid": None, "en_title": english}
            )
        if len(rows) == n:
            return rows
    raise AssertionError(f"corpus_{lang}.json has fewer than {n} usable records")


def _mean_loss(model, tokenizer, rows: list[dict]) -> float:
    import torch

    from training.sft_data import tokenize_chat

    losses = []
    with torch.inference_mode():
        for row in rows:
            enc = tokenize_chat(tokenizer, row["messages"])
            ids = torch.tensor([enc["input_ids"]])
            losses.append(float(model(input_ids=ids, labels=torch.tensor([enc["labels"]])).loss))
    return sum(losses) / len(losses)


def test_loss_mask_on_the_real_qwen_template(qwen):
    from transformers import AutoTokenizer

    from training.sft_data import tokenize_chat

    tok = AutoTokenizer.from_pretrained(str(qwen))
    chat = PROMPTS.conversation(
        "align", "zh", replies=["北京大学"], sentence="他毕业于北京大学。", phrase="Peking University"
    )
    row = tokenize_chat(tok, chat)
    supervised = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100]
    assert tok.decode(supervised) == "北京大学<|im_end|>"  # the answer and its end of turn, nothing else
    text = tok.decode(row["input_ids"])
    assert text.startswith(f"<|im_start|>system\n{chat[0]['content']}<|im_end|>")  # our system turn kept
    assert "You are Qwen" not in text  # the template's default system prompt is not added
    assert text.count("<|im_start|>assistant") == 2  # the worked example and the answer


def test_lora_steps_lower_the_loss_and_the_adapter_loads_in_eval(
    qwen, qwen_backend, spacy_en, shared_data, tmp_path
):
    from datasets import Dataset, DatasetDict

    from eat.config import apply_overrides, read_yaml, validate
    from evaluation.backends.hf import HFBackend
    from evaluation.config import EvalRecipe
    from evaluation.run import load_sentences, run_eval
    from training.config import SFTRecipe
    from training.sft import run_sft

    # Training costs ~0.1 s per token here (0.5B, fp32, 2 cores): four short chats, one batch per step.
    train = _align_chats(shared_data, "zh", 2) + _align_chats(shared_data, "ja", 2)
    DatasetDict({"train": Dataset.from_list(train), "validation": Dataset.from_list(train[:2])}).save_to_disk(
        str(tmp_path / "sft")
    )
    raw = apply_overrides(
        read_yaml(REPO / "recipes" / "qwen2.5-0.5b_lora_cpu.yaml"),
        [
            f"model.name_or_path={qwen}",
            f"data.path={tmp_path / 'sft'}",
            f"training.output_dir={tmp_path / 'lora'}",
            "training.max_steps=3",
            "training.save_steps=3",
            "training.learning_rate=1.0e-3",
            "training.per_device_train_batch_size=4",
            "data.packing=false",
            "data.eval_split=null",
        ],
    )
    metrics = run_sft(validate(SFTRecipe, raw, source="recipe"))
    assert metrics["global_step"] == 3
    adapter = tmp_path / "lora"
    assert (adapter / "adapter_model.safetensors").is_file()

    tuned = HFBackend(str(qwen), adapter=str(adapter), batch_size=8, base_too=True)
    tok = qwen_backend.tokenizer
    before, after = _mean_loss(qwen_backend.model, tok, train), _mean_loss(tuned.model, tok, train)
    assert after < before * 0.9, (before, after)

    cfg = EvalRecipe(
        model=str(qwen),
        adapter=str(adapter),
        ner_model=f"spacy:{spacy_en}",
        data=str(shared_data / "wikiann-dev" / "dev-ja.tsv"),
        lang="ja",
        out=str(tmp_path / "eval"),
        limit=1,
        max_new_tokens=64,
    )
    m = run_eval(cfg, backend=tuned, sentences=load_sentences(cfg))
    assert m["adapter"] == str(adapter) and m["counts"]["sentences"] == 1
    # The adapter was trained on align chats only: stage 1 runs on the base model (issue #11: merged into
    # every turn, it forgot how to translate), so the translation is the base model's, word for word.
    base = cfg.model_copy(update={"adapter": None, "out": str(tmp_path / "eval-base")})
    run_eval(base, backend=qwen_backend, sentences=load_sentences(cfg))
    traces = [
        [json.loads(x)["trace"] for x in (tmp_path / run / "predictions.jsonl").read_text().splitlines()]
        for run in ("eval", "eval-base")
    ]
    assert traces[0][0]["translate_replies"] == traces[1][0]["translate_replies"]


def test_eat_mode_with_spacy_on_wikiann(qwen, qwen_backend, spacy_en, shared_data, tmp_path):
    from evaluation.config import EvalRecipe
    from evaluation.formats import load_dataset_file
    from evaluation.run import run_eval

    data = shared_data / "wikiann-dev" / "dev-zh.tsv"
    sentences = [s for s in load_dataset_file(str(data), "auto", "zh", {}) if len(s.text) > 15][:2]
    cfg = EvalRecipe(
        model=str(qwen),
        ner_model=f"spacy:{spacy_en}",
        data=str(data),
        lang="zh",
        out=str(tmp_path / "run"),
        max_new_tokens=96,
    )
    m = run_eval(cfg, backend=qwen_backend, sentences=sentences)
    records = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    translations = [r["trace"]["translation"] for r in records]
    assert sum(bool(t) for t in translations) >= 1, translations
    assert all("English:" not in t and "Names:" not in t for t in translations)  # the answer, not the wrapper
    assert m["counts"]["english_entities"] >= 1  # spaCy tagged the translations
    assert "stage 2" not in m["counts"]["failures"]
    assert m["counts"]["alignments"] == m["counts"]["english_entities"]


def test_greedy_replies_are_identical_run_to_run(qwen_backend):
    chats = [
        PROMPTS.conversation("align", "zh", sentence="鲁迅出生于绍兴。", phrase="Shaoxing"),
        PROMPTS.conversation("translate", "ja", sentence="東京は日本の首都である。"),
    ]
    first = qwen_backend.generate(chats, 24, {"do_sample": False})
    again = qwen_backend.generate(list(reversed(chats)), 24, {"do_sample": False})
    assert first == list(reversed(again)) and all(first)
