"""`eat eval` from a recipe to a run folder: check the inputs, load them and the models, run the pipeline,
score it, and write RUN/predictions.jsonl, metrics.json, config.yaml and report.md.

Everything that can be checked without a model (test file, language, model and adapter folders, the NER
spec) is checked before the first model loads, which takes minutes for an LLM.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from eat import languages
from eat.config import dump_config
from eat.errors import UserError
from eat.io import (
    LOCK_NAME,
    atomic_open,
    check_writable,
    output_lock,
    remove_leftovers,
    write_json,
    write_manifest,
)
from eat.languages import NAMES as LANGUAGE_NAMES
from evaluation.backends import make_backend
from evaluation.backends.base import ChatBackend
from evaluation.config import EvalRecipe
from evaluation.english_ner import Tagger, check_tagger_spec, load_tagger
from evaluation.entities import Sentence
from evaluation.formats import load_dataset_file
from evaluation.metrics import score_all
from evaluation.pipeline import Pipeline
from evaluation.records import write_predictions
from evaluation.report import render_report
from evaluation.tracking import check_report_to
from evaluation.tracking import report as report_to_trackers

log = logging.getLogger(__name__)


def load_lexicon(path: str, lang: str | None = None) -> dict[str, list[str]]:
    """English title (casefolded) -> surface forms and aliases (longest first), from mined pairs
    (a pairs Parquet file or the output folder of `eat wiki mine`), restricted to `lang` when given."""
    from wiki_data.schema import read_pairs  # pyarrow

    table = read_pairs(path, columns=["lang", "en_title", "surface", "aliases"])
    out: dict[str, list[str]] = {}
    rows = zip(
        *(table.column(c).to_pylist() for c in ("lang", "en_title", "surface", "aliases")), strict=True
    )
    for row_lang, title, surface, aliases in rows:
        if not title or (lang and row_lang and row_lang.split("-")[0] != lang.split("-")[0]):
            continue
        forms = out.setdefault(str(title).casefold(), [])
        for form in [surface, *(aliases or [])]:
            if form and form not in forms:
                forms.append(form)
    for forms in out.values():
        forms.sort(key=len, reverse=True)
    return out


def check_lang(code: str) -> None:
    """The prompts name the language and tokens join by its script: an unknown code (a typo such as 'jp')
    would run with the code itself as the language name."""
    if code.split("-")[0].lower() not in LANGUAGE_NAMES:
        raise UserError(f"unknown --lang {code!r}; known codes: {', '.join(sorted(LANGUAGE_NAMES))}")


def load_sentences(cfg: EvalRecipe) -> list[Sentence]:
    check_lang(cfg.lang)
    label_map = {k: (v or None) for k, v in cfg.label_map.items()}
    sentences = load_dataset_file(cfg.data, cfg.format, cfg.lang, label_map)
    if cfg.limit is not None:
        sentences = sentences[: cfg.limit]
    if not sentences:
        raise UserError("no sentences in the test file", path=cfg.data)
    if (warning := languages.script_mismatch(cfg.lang, (s.text for s in sentences[:200]))) is not None:
        log.warning("%s: %s", cfg.data, warning)
    ids = Counter(s.id for s in sentences)
    dup = next((i for i, n in ids.items() if n > 1), None)
    if dup is not None:
        raise UserError(f"sentence id {dup!r} occurs more than once", path=cfg.data)
    return sentences


def check_model_inputs(cfg: EvalRecipe) -> None:
    """Local model, adapter and NER-model folders checked before anything loads (an LLM takes minutes)."""
    if cfg.mode != "direct":
        check_tagger_spec(cfg.ner_model)
    if cfg.serve is not None:
        from evaluation.serve import find_vllm

        find_vllm()
    if cfg.backend != "hf":
        return
    from eat.models import check_adapter_folder, check_model_kind, check_model_path

    check_model_path(cfg.model, key="--model")
    check_model_kind(cfg.model, seq2seq=False, what="the EAT pipeline's --model")
    if cfg.adapter is not None:
        check_adapter_folder(cfg.adapter)


def make_tagger(cfg: EvalRecipe) -> Tagger | None:
    if cfg.mode == "direct" or cfg.ner_model == "llm":
        return None
    return load_tagger(
        cfg.ner_model,
        batch_size=cfg.batch_size,
        device=cfg.device,
        trust_remote_code=cfg.trust_remote_code,
        label_map=cfg.ner_label_map,
    )


def run_eval(
    cfg: EvalRecipe,
    backend: ChatBackend | None = None,
    tagger: Tagger | None = None,
    sentences: list[Sentence] | None = None,
) -> dict:
    """The whole `eat eval`: load, run stages 1-4 with caches under RUN/cache, score, write RUN files.

    A backend passed in stays open (its caller owns it); one made here is closed when the stages are done.
    """
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError("run folder is a file", path=out)
    for run in cfg.reuse_replies:
        if not (Path(run) / "cache").is_dir():
            raise UserError("--reuse-replies: not an eat eval run folder (no cache/ in it)", path=run)
    if cfg.serve is not None and cfg.backend != "openai":
        raise UserError(f"--serve {cfg.serve} evaluates through backend openai, not {cfg.backend}")
    sentences = sentences if sentences is not None else load_sentences(cfg)
    if backend is None:
        check_model_inputs(cfg)
    check_writable(out)  # before the models load
    check_report_to(cfg.report_to)
    # One `eat eval` per run folder at a time: two would interleave their stage caches.
    with output_lock(out / LOCK_NAME):
        remove_leftovers(out)
        remove_leftovers(out / "cache")
        write_manifest(out, "eat eval")
        if cfg.serve is not None and backend is None:
            from evaluation.serve import vllm_backend

            with vllm_backend(cfg, out / "vllm-serve.log") as served:  # stopped however the run ends
                return _run_locked(cfg, out, sentences, served, tagger)
        return _run_locked(cfg, out, sentences, backend, tagger)


def _run_locked(cfg: EvalRecipe, out: Path, sentences, backend, tagger) -> dict:
    lexicon = load_lexicon(cfg.lexicon, cfg.lang) if cfg.lexicon else None
    t_start = time.perf_counter()
    made_backend = backend is None
    if backend is None:
        backend = make_backend(cfg)
    try:
        if tagger is None:
            tagger = make_tagger(cfg)
        t_load = time.perf_counter() - t_start
        pipeline = Pipeline(cfg, backend, tagger, lexicon=lexicon, cache_dir=out / "cache")
        t0 = time.perf_counter()
        result = pipeline.run(sentences)
        elapsed = time.perf_counter() - t0
    finally:
        if made_backend:
            backend.close()
    scores = score_all(sentences, result.preds, lang=sentences[0].lang if sentences else None)
    metrics = {
        "model": cfg.model,
        "adapter": cfg.adapter or cfg.adapter_name,
        "adapter_stages": cfg.adapter_stages if cfg.adapter or cfg.adapter_name else None,
        "ner_model": cfg.ner_model if cfg.mode != "direct" else None,
        "dataset": cfg.data,
        "lang": cfg.lang,
        "mode": cfg.mode,
        "backend": cfg.backend,
        "decoding": cfg.decoding,
        "prompts": pipeline.prompts.path,
        **scores,
        "counts": result.counts,
        "timings": {"load_models": round(t_load, 3), **{k: round(v, 3) for k, v in result.timings.items()}},
        "elapsed_s": round(elapsed, 3),
        # A resumed run reads earlier replies from RUN/cache: its time covers only what it computed.
        "replies": {"from_cache": pipeline.replies["cached"], "computed": pipeline.replies["computed"]},
        "sentences_per_s": round(len(sentences) / elapsed, 3) if elapsed > 0 else None,
    }
    write_predictions(out / "predictions.jsonl", result.records)
    write_json(out / "metrics.json", metrics)
    # Written with the results, so config.yaml always describes the predictions and metrics beside it
    # (a re-run with other settings that fails leaves the folder as the last complete run wrote it).
    dump_config(cfg, out / "config.yaml")
    with atomic_open(out / "report.md") as fh:
        fh.write(render_report(metrics))
    if cfg.report_to:
        sent = report_to_trackers(metrics, cfg.report_to, out, out.name)
        log.info("scores sent to %s", ", ".join(sent))
    return metrics
