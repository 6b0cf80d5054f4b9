"""The EAT inference pipeline: translate (1), tag English (2), align back (3), snap onto the sentence (4).

Every LLM stage is a multi-turn chat built with `PromptSet.conversation` and run turn by turn, batched
across items: turn 1 of every sentence of a chunk in one batched `generate`, then turn 2 of the same chunk,
and so on (so a backend can carry each chat's KV cache from turn to turn); stage 3 does the same across
all entities of all sentences. Each reply is appended to a per-stage cache
(`RUN/cache/<stage>.jsonl`, one row per item and turn, keyed by a hash of what produced it) as soon as its
chunk finishes, so an interrupted run resumes where it stopped and a re-run with the same settings makes
no model call at all. Anything a model says that cannot be used (empty translation, unparseable entity
list, an answer that snaps nowhere) is a failure of that item, recorded in its trace; the run goes on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from eat.console import make_progress
from eat.errors import UserError
from eat.io import write_json, write_jsonl
from eat.prompts import PromptSet, load_prompts
from evaluation.backends import Chat, ChatBackend
from evaluation.config import EvalRecipe
from evaluation.english_ner import check_tagger_spec, load_tagger, parse_entities
from evaluation.entities import Entity, Sentence
from evaluation.spans import clean_answer, snap
from evaluation.translate import read_translation

log = logging.getLogger(__name__)


class Tagger(Protocol):
    """Stage 2 outside the chat backend: raw answers (cached as text) and their parser."""

    name: str

    def tag(self, texts: list[str]) -> list[str]: ...

    def parse(self, raw: str) -> list[tuple[str, str]]: ...


# ------------------------------------------------------------------------------------------- caching


def digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:20]


class StageCache:
    """Replies of one stage, one JSON line per (item, turn), appended and flushed as chunks finish."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.replies: dict[str, dict[int, str]] = {}
        if path is not None and path.is_file():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                        self.replies.setdefault(row["key"], {})[int(row["turn"])] = row["reply"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut by an interruption: that item is simply redone
        self._fh = None

    def get(self, key: str) -> list[str]:
        turns = self.replies.get(key, {})
        out = []
        while len(out) in turns:
            out.append(turns[len(out)])
        return out

    def add(self, rows: list[tuple[str, str, int, str]]) -> None:
        """rows: (key, item id, turn, reply)."""
        for key, _, turn, reply in rows:
            self.replies.setdefault(key, {})[turn] = reply
        if self.path is None:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        for key, item_id, turn, reply in rows:
            row = {"key": key, "id": item_id, "turn": turn, "reply": reply}
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass
class ChatItem:
    key: str
    id: str
    build: Callable[[list[str]], Chat]  # replies so far -> chat ending with the next user turn


def run_chats(
    backend: ChatBackend,
    items: list[ChatItem],
    turns: int,
    cache: StageCache,
    budget: Callable[[int], int],
    decoding: dict,
    description: str,
    unit: str,
    chunk_size: int = 256,
    stats: Counter | None = None,
) -> dict[str, list[str]]:
    """All items' replies for a `turns`-turn chat, batched across a chunk of items turn by turn, cached
    per turn. `budget(turn)` is the most new tokens of that turn's replies. `stats` counts replies read from
    the cache ('cached') and generated ('computed')."""
    unique = list({it.key: it for it in items}.values())
    replies = {it.key: cache.get(it.key)[:turns] for it in unique}
    stats = stats if stats is not None else Counter()
    stats["cached"] += sum(len(r) for r in replies.values())
    with make_progress() as progress:
        task = progress.add_task(description, total=len(unique) * turns, unit=unit)
        progress.advance(task, sum(len(r) for r in replies.values()))
        # Chunk by chunk, all turns of a chunk back to back: a backend can keep each chat's KV cache from
        # one turn to the next (see HFBackend) while holding only one chunk's worth.
        todo = [it for it in unique if len(replies[it.key]) < turns]
        for b in range(0, len(todo), chunk_size):
            for turn in range(turns):
                chunk = [it for it in todo[b : b + chunk_size] if len(replies[it.key]) == turn]
                if not chunk:
                    continue
                chats = [it.build(replies[it.key]) for it in chunk]
                answers = backend.generate(chats, budget(turn), decoding)
                if len(answers) != len(chats):
                    raise RuntimeError(f"backend returned {len(answers)} replies for {len(chats)} chats")
                rows = []
                for it, answer in zip(chunk, answers, strict=True):
                    replies[it.key].append(answer)
                    rows.append((it.key, it.id, turn, answer))
                cache.add(rows)
                stats["computed"] += len(chunk)
                progress.advance(task, len(chunk))
    return {it.key: replies[it.key] for it in items}


# ------------------------------------------------------------------------------------------ pipeline


@dataclass
class RunResult:
    sentences: list[Sentence]
    records: list[dict]
    preds: list[list[Entity]]
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)


def _chunk_size(backend: ChatBackend) -> int:
    return int(getattr(backend, "chunk_size", 256))


def align_to_tokens(start: int, end: int, token_spans: list[tuple[int, int]] | None) -> tuple[int, int]:
    """Widen a span to the test file's token boundaries (a Korean word keeps its particle, as in the gold)."""
    if not token_spans:
        return start, end
    covered = [(s, e) for s, e in token_spans if s < end and start < e]
    if not covered:
        return start, end
    return min(start, covered[0][0]), max(end, covered[-1][1])


def _place(
    sentence: Sentence,
    wanted: list[tuple[str, str, str | None]],
    lexicon: dict[str, list[str]] | None,
) -> tuple[list[Entity], list[dict]]:
    """Stage 4 for one sentence. wanted: (type, answer, english or None) per entity, in trace order.

    Longer answers are placed first so that, e.g., "Peking University" takes 北京大学 before "Beijing"
    looks for a free 北京.
    """
    order = sorted(range(len(wanted)), key=lambda i: -len(clean_answer(wanted[i][1])))
    taken: list[tuple[int, int]] = []
    decisions: list[dict] = [{} for _ in wanted]
    entities: list[Entity] = []
    for i in order:
        etype, answer, english = wanted[i]
        hints = (lexicon or {}).get(english.casefold(), []) if english else []
        s = snap(answer, sentence.text, sentence.lang, taken=taken, english=english, lexicon=hints)
        d = {"method": s.method, "candidate": s.candidate, "score": round(s.score, 4), "reason": s.reason}
        if not s.ok:
            d["snapped"] = None
        else:
            start, end = align_to_tokens(s.start, s.end, sentence.token_spans)
            d["snapped"] = {"start": start, "end": end, "text": sentence.text[start:end]}
            if (start, end) != (s.start, s.end):
                d["token_aligned"] = True
            if any(start < e and b < end for b, e in taken):
                d["reason"] = "overlaps an entity placed earlier; dropped"
                d["dropped"] = True
            else:
                taken.append((start, end))
                entities.append(Entity(start, end, etype, sentence.text[start:end]))
        decisions[i] = d
    return sorted(entities), decisions


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

    def _stage_id(self, stage: str, task: str | None) -> str:
        tpl = self.prompts.template(task).model_dump() if task else None
        return digest(
            stage,
            tpl,
            self.prompts.entity_types,
            self.cfg.model,
            self.cfg.adapter,
            # The weights themselves: a model or adapter retrained into the same folder must not reuse replies.
            weights_fingerprint(self.cfg.model),
            weights_fingerprint(self.cfg.adapter),
            self.cfg.dtype,
            self.cfg.chat_template,
            self.cfg.merge_adapter if self.cfg.adapter else None,
            self.decoding,
            self.cfg.max_new_tokens,
        )

    def _cache(self, name: str) -> StageCache:
        return StageCache(self.cache_dir / f"{name}.jsonl" if self.cache_dir else None)

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
                _chunk_size(self.backend),
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
            raw = {i: out[it.key][0] for i, it in zip(ids, items, strict=True)}
            parse = functools.partial(parse_entities, label_map=self.cfg.ner_label_map)
        else:
            sid = digest("stage2", self.tagger.name, weights_fingerprint(getattr(self.tagger, "path", None)))
            cache = self._cache("stage2")
            keys = {i: digest(sid, texts[i]) for i in ids}
            todo = list({keys[i]: i for i in ids if not cache.get(keys[i])}.values())
            self.replies["cached"] += len(ids) - len(todo)
            self.replies["computed"] += len(todo)
            bs = self.cfg.batch_size
            try:
                with make_progress() as progress:
                    task = progress.add_task("stage 2 English NER", total=len(ids), unit="translations")
                    progress.advance(task, len(ids) - len(todo))
                    for b in range(0, len(todo), bs):
                        chunk = todo[b : b + bs]
                        answers = self.tagger.tag([texts[i] for i in chunk])
                        cache.add([(keys[i], i, 0, a) for i, a in zip(chunk, answers, strict=True)])
                        progress.advance(task, len(chunk))
            finally:
                cache.close()
            raw = {i: cache.get(keys[i])[0] for i in ids}
            parse = self.tagger.parse
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
        t0 = time.perf_counter()
        stage1 = self.translate(sentences)
        translate_tpl = self.prompts.template("translate" if self.cfg.mode == "eat" else "translate_plain")
        align_tpl = self.prompts.template("align")
        timings["stage1_translate"] = time.perf_counter() - t0

        traces: dict[str, dict] = {}
        translations: dict[str, str] = {}
        for s in sentences:
            replies = stage1[s.id]
            translation = read_translation(replies[-1], translate_tpl) if replies else ""
            trace = {
                "translation": translation,
                "translate_replies": replies,
                "english_entities": [],
                "alignments": [],
            }
            if not translation:
                trace["failure"] = {"stage": 1, "reason": "empty translation"}
            else:
                translations[s.id] = translation
            traces[s.id] = trace

        t0 = time.perf_counter()
        tagged = self.tag_english(translations)
        timings["stage2_english_ner"] = time.perf_counter() - t0
        jobs: list[tuple[Sentence, str]] = []
        owners: list[tuple[str, int]] = []
        for s in sentences:
            if s.id not in tagged:
                continue
            raw, ents, failure = tagged[s.id]
            trace = traces[s.id]
            trace["english_ner_raw"] = raw
            if ents is None:
                trace["failure"] = {"stage": 2, "reason": failure}
                continue
            trace["english_entities"] = [{"type": t, "text": n} for t, n in ents]
            for k, (_, name) in enumerate(ents):
                jobs.append((s, name))
                owners.append((s.id, k))

        t0 = time.perf_counter()
        aligned = self.align(jobs)
        timings["stage3_align"] = time.perf_counter() - t0
        answers: dict[str, list[list[str]]] = {}
        for (sid, _), replies in zip(owners, aligned, strict=True):
            answers.setdefault(sid, []).append(replies)

        t0 = time.perf_counter()
        records, preds = [], []
        for s in sentences:
            trace = traces[s.id]
            ents = trace["english_entities"]
            replies_list = answers.get(s.id, [])
            wanted = [
                (e["type"], align_tpl.answer(r[-1]) if r else "", e["text"])
                for e, r in zip(ents, replies_list, strict=True)
            ]
            entities, decisions = _place(s, wanted, self.lexicon)
            trace["alignments"] = [
                {"english": e["text"], "type": e["type"], "answer": w[1], "replies": r, **d}
                for e, w, r, d in zip(ents, wanted, replies_list, decisions, strict=True)
            ]
            records.append(_record(s, entities, trace))
            preds.append(entities)
        timings["stage4_snap"] = time.perf_counter() - t0
        return RunResult(sentences, records, preds, timings, _counts(records, sentences, preds))

    def _run_direct(self, sentences: list[Sentence]) -> RunResult:
        t0 = time.perf_counter()
        replies = self.direct(sentences)
        direct_tpl = self.prompts.template("direct")
        timings = {"direct_tagging": time.perf_counter() - t0}
        t0 = time.perf_counter()
        records, preds = [], []
        for s in sentences:
            reply = direct_tpl.answer(replies[s.id][-1]) if replies[s.id] else ""
            trace: dict = {"direct_replies": replies[s.id], "alignments": []}
            try:
                if not reply.strip():  # nothing generated is a failure, not an answer of "no entities"
                    raise ValueError("empty reply")
                found = parse_entities(reply, self.cfg.ner_label_map)
            except ValueError as exc:
                trace["failure"] = {"stage": "direct", "reason": f"unparseable answer: {exc}"}
                found = []
            wanted = [(t, n, None) for t, n in found]
            entities, decisions = _place(s, wanted, None)
            trace["alignments"] = [
                {"english": None, "type": t, "answer": n, **d}
                for (t, n, _), d in zip(wanted, decisions, strict=True)
            ]
            records.append(_record(s, entities, trace))
            preds.append(entities)
        timings["snap"] = time.perf_counter() - t0
        return RunResult(sentences, records, preds, timings, _counts(records, sentences, preds))


def _record(s: Sentence, entities: list[Entity], trace: dict) -> dict:
    return {
        "id": s.id,
        "text": s.text,
        "lang": s.lang,
        "gold": [e.to_dict() for e in s.gold],
        "pred": [e.to_dict() for e in entities],
        "trace": trace,
    }


def _counts(records: list[dict], sentences: list[Sentence], preds: list[list[Entity]]) -> dict:
    methods: Counter = Counter()
    failures: Counter = Counter()
    n_align = 0
    for rec in records:
        trace = rec["trace"]
        if "failure" in trace:
            failures[f"stage {trace['failure']['stage']}"] += 1
        for a in trace["alignments"]:
            n_align += 1
            methods[a["method"]] += 1
            if a.get("snapped") is None:
                failures["snap"] += 1
            elif a.get("dropped"):
                failures["overlap dropped"] += 1
    return {
        "sentences": len(sentences),
        "gold_entities": sum(len(s.gold) for s in sentences),
        "pred_entities": sum(len(p) for p in preds),
        "english_entities": sum(len(r["trace"].get("english_entities", [])) for r in records),
        "alignments": n_align,
        "snap_methods": dict(methods.most_common()),
        "failures": dict(failures.most_common()),
    }


# ------------------------------------------------------------------------------------------- scoring


def score(result: RunResult) -> dict:
    """Entity-level scores on character spans, seqeval-exact tag scores where the file has tags, and the
    authors' token-level metric (labelled as such): `eat score`'s metrics, without the bootstrap."""
    from evaluation.metrics import score_all

    sentences = result.sentences
    return score_all(sentences, result.preds, lang=sentences[0].lang if sentences else None)


# ------------------------------------------------------------------------------------------ the run


def load_lexicon(path: str, lang: str | None = None) -> dict[str, list[str]]:
    """English title (casefolded) -> surface forms and aliases (longest first), from mined pairs
    (a pairs Parquet file or the output folder of `eat wiki mine`), restricted to `lang` when given."""
    from wiki_data.schema import read_pairs

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
    from eat.prompts import LANGUAGE_NAMES

    if code.split("-")[0].lower() not in LANGUAGE_NAMES:
        raise UserError(f"unknown --lang {code!r}; known codes: {', '.join(sorted(LANGUAGE_NAMES))}")


def load_sentences(cfg: EvalRecipe) -> list[Sentence]:
    from evaluation.formats import load_dataset_file

    check_lang(cfg.lang)
    label_map = {k: (v or None) for k, v in cfg.label_map.items()}
    sentences = load_dataset_file(cfg.data, cfg.format, cfg.lang, label_map)
    if cfg.limit is not None:
        sentences = sentences[: cfg.limit]
    if not sentences:
        raise UserError("no sentences in the test file", path=cfg.data)
    ids = Counter(s.id for s in sentences)
    dup = next((i for i, n in ids.items() if n > 1), None)
    if dup is not None:
        raise UserError(f"sentence id {dup!r} occurs more than once", path=cfg.data)
    return sentences


def weights_fingerprint(path: str | None) -> list | None:
    """(name, size, mtime) of a local model or adapter folder's weight and config files; None otherwise.

    Cheap (no hashing of GBs) and changes whenever a run writes new weights into the folder.
    """
    if not path or not Path(path).is_dir():
        return None
    files = sorted(p for p in Path(path).iterdir() if p.suffix in (".safetensors", ".json") and p.is_file())
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]


def check_model_inputs(cfg: EvalRecipe) -> None:
    """Local model, adapter and NER-model folders checked before anything loads (an LLM takes minutes)."""
    if cfg.mode != "direct":
        check_tagger_spec(cfg.ner_model)
    if cfg.backend != "hf":
        return
    from training.loading import check_adapter_folder, check_model_kind, check_model_path

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
    """The whole `eat eval`: load, run stages 1-4 with caches under RUN/cache, score, write RUN files."""
    from eat.config import dump_config
    from evaluation.backends import make_backend

    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError("run folder is a file", path=out)
    sentences = sentences if sentences is not None else load_sentences(cfg)
    if backend is None:
        check_model_inputs(cfg)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the run folder ({exc.strerror})", path=out) from None
    lexicon = load_lexicon(cfg.lexicon, cfg.lang) if cfg.lexicon else None
    t_start = time.perf_counter()
    if backend is None:
        backend = make_backend(cfg)
    if tagger is None:
        tagger = make_tagger(cfg)
    t_load = time.perf_counter() - t_start
    pipeline = Pipeline(cfg, backend, tagger, lexicon=lexicon, cache_dir=out / "cache")
    t0 = time.perf_counter()
    result = pipeline.run(sentences)
    elapsed = time.perf_counter() - t0
    scores = score(result)
    metrics = {
        "model": cfg.model,
        "adapter": cfg.adapter,
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
    write_jsonl(out / "predictions.jsonl", result.records)
    write_json(out / "metrics.json", metrics)
    # Written with the results, so config.yaml always describes the predictions and metrics beside it
    # (a re-run with other settings that fails leaves the folder as the last complete run wrote it).
    dump_config(cfg, out / "config.yaml")
    from eat.io import atomic_open

    with atomic_open(out / "report.md") as fh:
        fh.write(render_report(metrics))
    return metrics


def _resumed_note(replies: dict | None) -> str:
    if not replies or not replies.get("from_cache"):
        return ""
    total = replies["from_cache"] + replies["computed"]
    return (
        f"; resumed: {replies['from_cache']} of {total} model replies were read from the run's cache, "
        "so this time and rate cover only the rest"
    )


def render_report(m: dict) -> str:
    e = m["entity"]
    lines = [
        f"# eat eval: {m['mode']} on {Path(m['dataset']).name} ({m['lang']})",
        "",
        f"- model: `{m['model']}`" + (f" + adapter `{m['adapter']}`" if m.get("adapter") else ""),
        f"- English NER: `{m['ner_model']}`" if m.get("ner_model") else "- English NER: none (direct mode)",
        f"- backend: {m['backend']}, decoding: {m['decoding']}, prompts: {m['prompts']}",
        f"- {m['counts']['sentences']} sentences in {m['elapsed_s']} s ({m['sentences_per_s']} sentences/s)"
        + _resumed_note(m.get("replies")),
        "",
        "## Entity-level (exact span and type)",
        "",
        "| type | precision | recall | F1 | gold | pred |",
        "|---|---|---|---|---|---|",
        f"| **micro** | {e['precision']:.4f} | {e['recall']:.4f} | {e['f1']:.4f} | {e.get('n_gold', '')} | "
        f"{e.get('n_pred', '')} |",
    ]
    for t, v in e.get("per_type", {}).items():
        lines.append(
            f"| {t} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v.get('n_gold', '')} | "
            f"{v.get('n_pred', '')} |"
        )
    if "seqeval" in m:
        lines += [
            "",
            f"seqeval (conlleval mode) F1 {m['seqeval']['f1']:.4f}, strict IOB2 F1 "
            f"{m['seqeval_strict']['f1']:.4f}.",
        ]
    ta = m.get("token_authors")
    if ta:
        label = ta.get("label", "authors' token-level metric")
        lines += [
            "",
            f"{label[0].upper()}{label[1:]}: micro F1 {ta['f1']:.4f} over {ta.get('sentences', '?')} "
            "sentences with gold entities.",
        ]
    c = m["counts"]
    lines += [
        "",
        "## Pipeline",
        "",
        f"- English entities: {c['english_entities']}, alignments: {c['alignments']}, predicted: {c['pred_entities']}, "
        f"gold: {c['gold_entities']}",
        f"- snap methods: {', '.join(f'{k} {v}' for k, v in c['snap_methods'].items()) or 'none'}",
        f"- failures: {', '.join(f'{k} {v}' for k, v in c['failures'].items()) or 'none'}",
        f"- timings (s): {', '.join(f'{k} {v}' for k, v in m['timings'].items())}",
        "",
        "Per-sentence traces (translation, English entities, every alignment answer and how it was snapped or "
        "why not) are in `predictions.jsonl`.",
        "",
    ]
    return "\n".join(lines)
