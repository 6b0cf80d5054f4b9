"""`kind: ner_tagger` runs: the pipeline's English NER model, a seq2seq (T5-family) model that reads a
sentence and writes its entities as `(TYPE, entity); ...` (format in training.ner_format).

Trained on CoNLL/BIO files; evaluated by generating and scoring entity-level F1 (exact type and text match,
each gold entity matched at most once), not by teacher-forced loss.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from eat.conll import read_columns
from eat.errors import UserError
from training.config import NERTaggerRecipe
from training.loading import (
    check_lora_targets,
    load_tokenizer,
    resolve_precision,
)
from training.ner_format import format_entities, parse_entities, spans_to_entities
from training.runs import RunCard, finish_run, preflight, train_and_evaluate
from training.sft import peft_lora_config
from training.trainer_args import build_trainer_args

log = logging.getLogger(__name__)


def read_conll(path: str | Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL/BIO file as (tokens, tags), tags in IOB2 (`eat.conll` reads the columns).

    Tags must be `O` or `PREFIX-TYPE` (IOB1/IOB2/BIOES prefixes); E-/S- become I-/B-.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("CoNLL file not found", path=path)
    out = []
    for sentence in read_columns(path):
        tags = []
        for tag, number in zip(sentence.tags, sentence.lines, strict=True):
            if tag != "O" and (len(tag) < 3 or tag[1] != "-" or tag[0] not in "BIES"):
                raise UserError(f"tag {tag!r} is not O or B-/I-/E-/S-TYPE", path=path, line=number)
            tags.append("B" + tag[1:] if tag[0] == "S" else "I" + tag[1:] if tag[0] == "E" else tag)
        out.append((sentence.tokens, tags))
    return out


def to_pairs(sentences, prefix: str) -> list[dict[str, str]]:
    return [
        {"source": prefix + " ".join(tokens), "target": format_entities(spans_to_entities(tokens, tags))}
        for tokens, tags in sentences
    ]


def text_entity_scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Micro precision/recall/F1 over (TYPE, entity) pairs parsed from generated and gold texts."""
    tp = n_pred = n_gold = 0
    unparsable = 0
    for pred, gold in zip(predictions, references, strict=True):
        p = Counter(parse_entities(pred))
        g = Counter(parse_entities(gold))
        if not p and pred.strip() not in ("", "(NONE)"):
            unparsable += 1
        tp += sum((p & g).values())
        n_pred += sum(p.values())
        n_gold += sum(g.values())
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "unparsable_rate": unparsable / max(len(predictions), 1),
    }


def run_ner_tagger(recipe: NERTaggerRecipe, callbacks: list | None = None) -> dict[str, Any]:
    """Fine-tune the seq2seq tagger, score entity F1 by generation, and write the output folder."""
    t, d = recipe.training, recipe.data
    # Mistakes in paths are reported before the heavy imports below (seconds).
    if (done := preflight(recipe)) is not None:
        return done

    import numpy as np
    from datasets import Dataset
    from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq, Seq2SeqTrainer, set_seed

    precision = resolve_precision(t.precision, t.use_cpu)
    # The real Seq2SeqTrainingArguments first: a value of training.trainer_args that transformers refuses is
    # one line before any data or model loads.
    args = build_trainer_args(recipe, precision)
    train = read_conll(d.train_file)[: d.max_train_samples]
    evals = read_conll(d.eval_file)[: d.max_eval_samples] if d.eval_file else None
    tokenizer = load_tokenizer(recipe.model)

    def encode(batch):
        enc = tokenizer(batch["source"], max_length=d.max_source_length, truncation=True)
        enc["labels"] = tokenizer(
            text_target=batch["target"], max_length=d.max_target_length, truncation=True
        )["input_ids"]
        return enc

    train_ds = Dataset.from_list(to_pairs(train, d.source_prefix)).map(
        encode, batched=True, remove_columns=["source", "target"]
    )
    eval_pairs = to_pairs(evals, d.source_prefix) if evals else None
    eval_ds = (
        Dataset.from_list(eval_pairs).map(encode, batched=True, remove_columns=["source", "target"])
        if eval_pairs
        else None
    )

    set_seed(t.seed)
    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(
            recipe.model.name_or_path,
            revision=recipe.model.revision,
            trust_remote_code=recipe.model.trust_remote_code,
            use_safetensors=True,
        )
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot load {recipe.model.name_or_path!r} as a seq2seq model: {str(exc).splitlines()[0]}"
        ) from None
    if recipe.method == "lora":
        from peft import get_peft_model

        check_lora_targets(model, recipe.lora.target_modules)
        model = get_peft_model(model, peft_lora_config(recipe.lora, "SEQ_2_SEQ_LM"))

    def compute_metrics(eval_pred) -> dict[str, float]:
        preds, labels = eval_pred
        preds = np.where(preds < 0, tokenizer.pad_token_id, preds)
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        pred_text = tokenizer.batch_decode(preds, skip_special_tokens=True)
        gold_text = tokenizer.batch_decode(labels, skip_special_tokens=True)
        return text_entity_scores(pred_text, gold_text)

    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        processing_class=tokenizer,
        compute_metrics=compute_metrics if eval_ds is not None else None,
        callbacks=callbacks,
    )
    metrics = train_and_evaluate(trainer, recipe, eval_ds is not None, "training the NER tagger")
    card = RunCard(
        title=f"{Path(t.output_dir).name}: English NER tagger",
        data_lines=[
            f"train: `{d.train_file}` ({len(train)} sentences)",
            f"eval: `{d.eval_file}` ({len(evals)} sentences), entity-level F1 by greedy generation"
            if evals
            else "eval: none",
            "output format: `(TYPE, entity); (TYPE, entity)` or `(NONE)`; parse with "
            "`training.ner_format.parse_entities`",
        ],
        usage=f'model.generate(**tokenizer("{d.source_prefix}Marie Curie worked in Paris .", '
        'return_tensors="pt"))',
    )
    # eat_ner_tagger.json: what evaluation.english_ner needs to query the tagger the way it was trained.
    return finish_run(
        trainer,
        tokenizer,
        recipe,
        metrics,
        card,
        extra_json={"eat_ner_tagger.json": {"source_prefix": d.source_prefix}},
    )


def tag_sentences(
    model_dir: str | Path, sentences: list[str], prefix: str = "ner: ", max_new_tokens: int = 128
):
    """Generate entity lists for plain sentences with a trained tagger folder (full model or adapter)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model_dir = Path(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    if (model_dir / "adapter_config.json").is_file():
        from peft import AutoPeftModelForSeq2SeqLM

        model = AutoPeftModelForSeq2SeqLM.from_pretrained(model_dir)
    else:
        model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    model.eval()
    enc = tok([prefix + s for s in sentences], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, max_length=None, do_sample=False)
    return [parse_entities(text) for text in tok.batch_decode(out, skip_special_tokens=True)]
