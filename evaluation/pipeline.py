"""The EAT inference pipeline: translate (1), tag English (2), align back (3), snap onto the sentence (4).

Every LLM stage is a multi-turn chat built with `PromptSet.conversation`, run turn by turn and batched
across items through the stage caches of `chat_cache` (stage 3 batches across all entities of all
sentences); a tagger in stage 2 goes through the same cached runner. Anything a model says that cannot be
used (empty translation, unparseable entity list, an answer that snaps nowhere) is a failure of that item,
recorded in its trace (`records.Trace`); the run goes on.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from eat.errors import UserError
from eat.prompts import PromptSet, load_prompts
from evaluation.backends.base import ChatBackend
from evaluation.chat_cache import ChatItem, StageCache, digest, run_chats, run_turns, weights_fingerprint
from evaluation.config import EvalRecipe
from evaluation.english_ner import Tagger, parse_ner_reply
from evaluation.entities import Entity, Sentence
from evaluation.records import EnglishEntity, Failure, PredictionRow, Trace
from evaluation.spans import place
from evaluation.translate import read_translation


@dataclass
class RunResult:
    sentences: list[Sentence]
    records: list[PredictionRow]
    preds: list[list[Entity]]
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - t0


class Pipeline:
    """One configured run: prompts, backend, optional tagger and lexicon; `run(sentences)` does stages 1-4."""

    def __init__(
        self,
        cfg: EvalRecipe,
        backend: ChatBackend,
        tagger: Tagger | None = None,
        prompts: PromptSet | None = None,
        lexicon: dict[str, list[str]] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.backend = backend
        self.tagger = tagger
        self.prompts = prompts or load_prompts(cfg.prompts)
        self.lexicon = lexicon
        self.cache_dir = cache_dir
        self.decoding = cfg.decoding_kwargs()
        # Replies of all stages: 'cached' (read from cache_dir) and 'computed'.
        self.replies: Counter = Counter()

    def _uses_adapter(self, task: str | None) -> bool:
        """Whether `task`'s turns run with the LoRA adapter (None: the LLM English NER instruction)."""
        has = self.cfg.adapter is not None or self.cfg.adapter_name is not None
        return has and (self.cfg.adapter_stages == "all" or task == "align")

    def _stage_id(self, stage: str, task: str | None) -> str:
        tpl = self.prompts.template(task).model_dump() if task else None
        # A stage that runs without the adapter gives the base model's replies, and is keyed like them.
        adapter = self._uses_adapter(task)
        served = (self.cfg.adapter_name,) if adapter and self.cfg.adapter_name else ()
        return digest(
            stage,
            tpl,
            self.prompts.entity_types,
            self.cfg.model,
            self.cfg.adapter if adapter else None,
            # The weights themselves: a model or adapter retrained into the same folder must not reuse replies.
            weights_fingerprint(self.cfg.model),
            weights_fingerprint(self.cfg.adapter) if adapter else None,
            self.cfg.dtype,
            self.cfg.chat_template,
            self.cfg.merge_adapter if adapter and self.cfg.adapter else None,
            self.decoding,
            self.cfg.max_new_tokens,
            *served,
        )

    def _cache(self, name: str) -> StageCache:
        borrow = [Path(run) / "cache" / f"{name}.jsonl" for run in self.cfg.reuse_replies]
        return StageCache(self.cache_dir / f"{name}.jsonl" if self.cache_dir else None, borrow)

    def _chats(self, items, task, cache_name, desc, unit) -> dict[str, list[str]]:
        """Run `task`'s chat (None: the one-turn English NER instruction) for every item."""
        cache = self._cache(cache_name)
        cap = self.cfg.max_new_tokens
        tpl = self.prompts.template(task) if task else None
        try:
            return run_chats(
                self.backend,
                items,
                len(tpl.turns) if tpl else 1,
                cache,
                (lambda turn: tpl.turn_budget(turn, cap)) if tpl else (lambda turn: cap),
                self.decoding,
                desc,
                unit,
                self.replies,
                adapter=self._uses_adapter(task),
            )
        finally:
            cache.close()

    def _tagged(self, tagger: Tagger, items: list[ChatItem[str]]) -> dict[str, list[str]]:
        """Run a stage-2 tagger on every item's text, in batches of --batch-size, cached like a chat."""
        cache = self._cache("stage2")
        try:
            return run_turns(
                items,
                1,
                cache,
                lambda texts, turn: tagger.tag(texts),
                "stage 2 English NER",
                "translations",
                self.cfg.batch_size,
                self.replies,
            )
        finally:
            cache.close()

    # -- stage 1
    def translate(self, sentences: list[Sentence]) -> dict[str, list[str]]:
        task = "translate" if self.cfg.mode == "eat" else "translate_plain"
        sid = self._stage_id("stage1", task)
        prompts = self.prompts
        items = [
            ChatItem(
                digest(sid, s.id, s.text),
                s.id,
                lambda r, s=s: prompts.conversation(task, s.lang, replies=r, sentence=s.text),
            )
            for s in sentences
        ]
        out = self._chats(items, task, "stage1", "stage 1 translate", "turns")
        return {s.id: out[it.key] for s, it in zip(sentences, items, strict=True)}

    # -- stage 2
    def tag_english(
        self, texts: dict[str, str]
    ) -> dict[str, tuple[str, list[tuple[str, str]] | None, str | None]]:
        """id -> (raw answer, entities or None, failure reason)."""
        ids = list(texts)
        parse: Callable[[str], list[tuple[str, str]]]
        if self.tagger is None:  # the LLM with the english_ner_instruction
            instruction = self.prompts.english_ner_instruction or ""
            variables = self.prompts.variables("en")
            try:
                head = instruction.format_map(variables)
            except (KeyError, ValueError) as exc:
                raise UserError(
                    f"english_ner_instruction: bad placeholder {exc}", path=self.prompts.path
                ) from None
            sid = self._stage_id("stage2-llm", None) + digest(head)
            items = [
                ChatItem(
                    digest(sid, texts[i]), i, lambda r, t=texts[i]: [{"role": "user", "content": head + t}]
                )
                for i in ids
            ]
            out = self._chats(items, None, "stage2", "stage 2 English NER", "translations")
            parse = functools.partial(parse_ner_reply, label_map=self.cfg.ner_label_map)
        else:
            sid = digest("stage2", self.tagger.name, weights_fingerprint(self.tagger.path))
            items = [ChatItem(digest(sid, texts[i]), i, lambda r, t=texts[i]: t) for i in ids]
            out = self._tagged(self.tagger, items)
            parse = self.tagger.parse
        raw = {i: out[it.key][0] for i, it in zip(ids, items, strict=True)}
        result = {}
        for i in ids:
            try:
                result[i] = (raw[i], parse(raw[i]), None)
            except (ValueError, KeyError, TypeError) as exc:
                result[i] = (raw[i], None, f"unparseable English NER answer: {exc}")
        return result

    # -- stage 3
    def align(self, jobs: list[tuple[Sentence, str]]) -> list[list[str]]:
        """Replies of the align chat for each (sentence, English entity)."""
        sid = self._stage_id("stage3", "align")
        prompts = self.prompts
        items = [
            ChatItem(
                digest(sid, s.text, phrase),
                s.id,
                lambda r, s=s, p=phrase: prompts.conversation(
                    "align", s.lang, replies=r, phrase=p, sentence=s.text
                ),
            )
            for s, phrase in jobs
        ]
        out = self._chats(items, "align", "stage3", "stage 3 align", "turns")
        return [out[it.key] for it in items]

    # -- direct mode
    def direct(self, sentences: list[Sentence]) -> dict[str, list[str]]:
        sid = self._stage_id("direct", "direct")
        prompts = self.prompts
        items = [
            ChatItem(
                digest(sid, s.id, s.text),
                s.id,
                lambda r, s=s: prompts.conversation("direct", s.lang, replies=r, sentence=s.text),
            )
            for s in sentences
        ]
        out = self._chats(items, "direct", "direct", "direct tagging", "turns")
        return {s.id: out[it.key] for s, it in zip(sentences, items, strict=True)}

    def run(self, sentences: list[Sentence]) -> RunResult:
        if self.cfg.mode == "direct":
            return self._run_direct(sentences)
        timings: dict[str, float] = {}
        with _timed(timings, "stage1_translate"):
            stage1 = self.translate(sentences)
        translate_tpl = self.prompts.template("translate" if self.cfg.mode == "eat" else "translate_plain")
        align_tpl = self.prompts.template("align")

        traces: dict[str, Trace] = {}
        translations: dict[str, str] = {}
        for s in sentences:
            replies = stage1[s.id]
            translation = read_translation(replies[-1], translate_tpl) if replies else ""
            trace = Trace(translation=translation, translate_replies=replies, english_entities=[])
            if not translation:
                trace.failure = Failure(stage=1, reason="empty translation")
            else:
                translations[s.id] = translation
            traces[s.id] = trace

        with _timed(timings, "stage2_english_ner"):
            tagged = self.tag_english(translations)
        jobs: list[tuple[Sentence, str]] = []
        for s in sentences:
            if s.id not in tagged:
                continue
            raw, ents, failure = tagged[s.id]
            trace = traces[s.id]
            trace.english_ner_raw = raw
            if ents is None:
                trace.failure = Failure(stage=2, reason=failure)
                continue
            trace.english_entities = [EnglishEntity(type=t, text=n) for t, n in ents]
            jobs.extend((s, name) for _, name in ents)

        with _timed(timings, "stage3_align"):
            aligned = iter(self.align(jobs))  # in job order: sentence by sentence, entity by entity

        with _timed(timings, "stage4_snap"):
            records, preds = [], []
            for s in sentences:
                trace = traces[s.id]
                english = trace.english_entities or []
                replies_list = [next(aligned) for _ in english]
                wanted = [
                    (e.type, align_tpl.answer(r[-1]) if r else "", e.text)
                    for e, r in zip(english, replies_list, strict=True)
                ]
                entities, alignments = place(s, wanted, self.lexicon)
                for a, r in zip(alignments, replies_list, strict=True):
                    a.replies = r
                trace.alignments = alignments
                records.append(PredictionRow.of(s, entities, trace))
                preds.append(entities)
        return RunResult(sentences, records, preds, timings, _counts(records, sentences, preds))

    def _run_direct(self, sentences: list[Sentence]) -> RunResult:
        timings: dict[str, float] = {}
        with _timed(timings, "direct_tagging"):
            replies = self.direct(sentences)
        direct_tpl = self.prompts.template("direct")
        with _timed(timings, "snap"):
            records, preds = [], []
            for s in sentences:
                reply = direct_tpl.answer(replies[s.id][-1]) if replies[s.id] else ""
                trace = Trace(direct_replies=replies[s.id])
                try:
                    if not reply.strip():  # nothing generated is a failure, not an answer of "no entities"
                        raise ValueError("empty reply")
                    found = parse_ner_reply(reply, self.cfg.ner_label_map)
                except ValueError as exc:
                    trace.failure = Failure(stage="direct", reason=f"unparseable answer: {exc}")
                    found = []
                entities, trace.alignments = place(s, [(t, n, None) for t, n in found], None)
                records.append(PredictionRow.of(s, entities, trace))
                preds.append(entities)
        return RunResult(sentences, records, preds, timings, _counts(records, sentences, preds))


def _counts(records: list[PredictionRow], sentences: list[Sentence], preds: list[list[Entity]]) -> dict:
    methods: Counter = Counter()
    failures: Counter = Counter()
    n_align = 0
    n_english = 0
    for rec in records:
        trace = rec.trace or Trace()
        if trace.failure is not None:
            failures[f"stage {trace.failure.stage}"] += 1
        n_english += len(trace.english_entities or [])
        for a in trace.alignments:
            n_align += 1
            methods[a.method] += 1
            if a.snapped is None:
                failures["snap"] += 1
            elif a.dropped:
                failures["overlap dropped"] += 1
    return {
        "sentences": len(sentences),
        "gold_entities": sum(len(s.gold) for s in sentences),
        "pred_entities": sum(len(p) for p in preds),
        "english_entities": n_english,
        "alignments": n_align,
        "snap_methods": dict(methods.most_common()),
        "failures": dict(failures.most_common()),
    }
