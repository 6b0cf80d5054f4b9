"""`eat wiki sft`: entity pairs and link mentions -> chat dataset that teaches the alignment skills EAT uses.

Sources
- pairs (`--pairs`, `pairs-*.parquet`): one row per article, its name in the first lead sentence. They give
  `align` and `to_english` chats; the answer nearly always opens the sentence.
- mentions (`--mentions`, `mentions-*.parquet` of `eat wiki mine --mentions`): one row per link anchor in a
  sentence; the answer is the anchor (`sentence[start:end]`), which sits anywhere and often differs from the
  target's title. They give `align` chats only, built exactly like a pair's (same prompts, English-name
  variants of the target's `en_title`). A missing `type` (and the aliases the variants use) comes from the
  target's pairs row (same language, `page_id == target_page_id`) in the mentions folder itself.

Tasks
- `align` (EAT's back-alignment step): the English name of an entity and a target-language sentence in,
  the exact phrase of the sentence out. Only pairs whose `surface` is a substring of `sentence` are used.
  The English name is a variant drawn per row (see wiki_data.variants): the title without disambiguator
  most of the time, otherwise an upper-case, short, acronym or redirect form, as English NER output has.
- `to_english`: the target-language name in its sentence in, the English name (title without
  disambiguator) out.

Chats are built with `eat.prompts.PromptSet.conversation`, the same function the evaluation pipeline
calls, so a row's messages up to its last user turn are exactly what inference sends. With a multi-turn
prompt set (the authors' align chat has three user turns: answer, check, "final result only") every
assistant turn is filled with the answer: the answer is correct at each step, and the training code computes
the loss on the last assistant turn only, which is the supervised answer.

The first-phrase shortcut: lead sentences start with their subject, so about 9 align answers in 10 sit at
character 0 and a model learns "answer with the first phrase". Three remedies, all optional:
`mentions` (answers where links are), `shift_fraction` (one or two sentences of other entities of the same
split and language put in front of that share of align rows) and `balance_positions` (align rows dropped so
every answer-position bin holds as many rows as the smallest non-empty one). Every row records
`answer_start` and `source`; the card shows where answers sit per split and per source.
`align_test.jsonl` pairs each validation align row from pairs with a shifted copy: a test a first-phrase
rule fails; `align_test_mentions.jsonl` holds every mention of a validation entity (before the mix and the
caps) with flags (`at_start`, `surface_differs`, `multi`) for the slices `evaluation.align_eval` reports.

Order of the steps: build chats, drop duplicates, mix the sources (`mention_fraction`), cap languages
(`max_per_lang`, `balance`), split by entity, write the test items (from the plain validation rows), shift
(`shift_fraction`), balance positions. Rows are split by entity (Wikidata QID, else English title; the same
key for pairs and mentions) so no entity is in both splits. Every random choice hashes the seed with the
row's content, so the output does not depend on input order or process. The dataset is written to a
temporary folder that replaces `out` only when complete.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from eat import languages, markdown
from eat.config import StrictModel
from eat.errors import UserError

if TYPE_CHECKING:
    from wiki_data.schema import AlignTestItem
from eat.io import atomic_dir, check_out, check_writable

SFT_TASKS = ("align", "to_english")
SOURCES = ("pair", "mention")
COLUMNS = ("messages", "task", "lang", "qid", "en_title", "type", "answer_start", "source")
POSITION_BINS = 5
MENTION_TEST_FILE = "align_test_mentions.jsonl"


class SFTDatasetConfig(StrictModel):
    """Options of `eat wiki sft` (also usable from Python)."""

    pairs: list[Path] = Field(
        default_factory=list,
        description="Pairs folder(s) from `eat wiki mine`/`import-eat` (give --pairs, --mentions or both).",
    )
    mentions: list[Path] = Field(
        default_factory=list,
        description="Mentions folder(s) from `eat wiki mine --mentions` (mentions-*.parquet; may be a --pairs "
        "folder): align chats whose answer is a link anchor anywhere in its sentence; a missing type comes "
        "from the target's pairs row in the same folder.",
    )
    out: Path = Field(description="Output dataset folder (datasets.DatasetDict + jsonl + README.md).")
    tasks: list[str] = Field(default_factory=lambda: list(SFT_TASKS), description="Tasks: align,to_english.")
    val_fraction: float = Field(0.02, ge=0.0, lt=1.0, description="Share of entities put in validation.")
    max_per_lang: int | None = Field(None, ge=1, description="At most this many rows per language.")
    balance: bool = Field(False, description="Cap every language at the smallest language's row count.")
    languages: list[str] = Field(default_factory=list, description="Keep only these languages (default all).")
    prompts: str | None = Field(None, description="Prompt set YAML (default: eat-ner's own prompts).")
    canonical_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of align rows that use the canonical English name."
    )
    mention_fraction: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Needs --pairs and --mentions. Share F of each language's align rows taken from mentions. "
        "Per language, of P pair and M mention align rows (after duplicates): if P*F <= M*(1-F) all P pair "
        "rows and round-half-up(P*F/(1-F)) mention rows are kept, else all M mention rows and "
        "round-half-up(M*(1-F)/F) pair rows; rows picked by a seeded hash; a language with align rows from "
        "one source keeps them all; done before caps and the split (default: keep every row of both).",
    )
    shift_fraction: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of align rows with 1-2 other sentences of the same split put in front, so the "
        "answer is not at the start (breaks the first-phrase shortcut).",
    )
    balance_positions: bool = Field(
        False,
        description="Last step, per split and language: drop align rows (seeded hash) so that every non-empty "
        f"answer-position bin (relative start answer_start/len(sentence) in {POSITION_BINS} equal bins, as "
        "in the card) keeps exactly as many rows as the smallest non-empty bin; empty bins stay empty; "
        "to_english rows are kept.",
    )
    seed: int = Field(
        0, description="Seed for name variants, mixing, capping, shifting, balancing and the split."
    )
    overwrite: bool = Field(False, description="Replace an existing output folder.")
    push_to_hub: str | None = Field(
        None,
        description="Also upload the dataset folder, with its card, to this Hub dataset repo (ORG/NAME).",
    )
    private: bool = Field(False, description="With --push-to-hub: create the Hub repo as private.")

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        bad = [t for t in tasks if t not in SFT_TASKS]
        if bad:
            raise ValueError(f"unknown task {bad[0]!r}; choose from {', '.join(SFT_TASKS)}")
        if not tasks:
            raise ValueError("no tasks given")
        return list(dict.fromkeys(tasks))


# ------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class SourceRow:
    """One input record chats are built from: a pairs row (an article's name in its lead sentence) or a
    mention (a link anchor in a sentence). `surface` is the align answer and starts at `start`."""

    source: str  # "pair" or "mention"
    lang: str
    qid: str | None
    en_title: str
    type: str | None
    aliases: tuple[str, ...]
    sentence: str
    surface: str
    start: int
    seed_text: str  # the content the English-name variant draw hashes
    match: str | None = None  # mentions: "title", "alias" or "differs"
    n_in_sentence: int | None = None  # mentions: anchors kept in the sentence

    @property
    def entity(self) -> str:
        return entity_key(self.qid, self.en_title)


@dataclass(frozen=True)
class TargetInfo:
    """What a mention borrows from its target's pairs row."""

    type: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class MixCount:
    """The `mention_fraction` mix of one language's align rows: available and kept per source."""

    lang: str
    pairs: int
    mentions: int
    kept_pairs: int
    kept_mentions: int


@dataclass(frozen=True)
class PositionCut:
    """What `balance_positions` did to one split and language: align rows per bin before, and the cap."""

    split: str
    lang: str
    bins: tuple[int, ...]
    per_bin: int

    @property
    def dropped(self) -> int:
        return sum(max(0, n - self.per_bin) for n in self.bins)


@dataclass
class BuildInfo:
    """What happened on the way, for the card."""

    pairs_read: int = 0
    mentions_read: int = 0
    types_filled: int = 0
    duplicates: int = 0
    skipped: Counter = field(default_factory=Counter)
    mix: list[MixCount] = field(default_factory=list)
    position_cuts: list[PositionCut] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- reading


def _hash01(*parts: object) -> float:
    """A stable number in [0, 1) for the parts (independent of PYTHONHASHSEED and input order)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def entity_key(qid: str | None, en_title: str) -> str:
    """What the split groups by: the Wikidata item, else the English title (pairs and mentions alike)."""
    return f"qid:{qid}" if qid else f"en:{en_title}"


def _where(dirs: list[Path]) -> str:
    return ", ".join(str(d) for d in dirs)


def load_pair_rows(dirs: list[Path]) -> list[dict]:
    """All pairs rows of the folders; UserError when there are none."""
    from wiki_data.schema import read_pairs

    rows: list[dict] = []
    for directory in dirs:
        rows.extend(read_pairs(directory).to_pylist())
    if dirs and not rows:
        raise UserError(f"no pairs in {_where(dirs)}")
    return rows


def load_mention_rows(dirs: list[Path]) -> list[tuple[dict, TargetInfo | None]]:
    """All mentions rows of the folders, each with its target's pairs row when the same folder has one
    (same language, `page_id == target_page_id`: the same mining run, so the page ids agree). UserError when
    a folder has no mentions shards, or none has rows."""
    from wiki_data.schema import read_mentions, read_pairs, shard_paths

    out: list[tuple[dict, TargetInfo | None]] = []
    for directory in dirs:
        rows = read_mentions(directory).to_pylist()
        targets: dict[tuple[str, int], TargetInfo] = {}
        if Path(directory).is_dir() and shard_paths(directory):
            for pair in read_pairs(directory, columns=["lang", "page_id", "type", "aliases"]).to_pylist():
                targets[(pair["lang"], pair["page_id"])] = TargetInfo(pair["type"], tuple(pair["aliases"]))
        out.extend((row, targets.get((row["lang"], row["target_page_id"]))) for row in rows)
    if dirs and not out:
        raise UserError(f"no mentions in {_where(dirs)} (its mentions shards have no rows)")
    return out


_LANG_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*$")


def schema_problem(row: dict) -> str | None:
    """Why a pairs or mentions row is outside the schema's values (never passed into chats), or None."""
    if not isinstance(row.get("lang"), str) or not _LANG_CODE.match(row["lang"].lower()):
        return "language code outside the schema"
    from wiki_data.schema import ENTITY_TYPES  # pyarrow: kept off `eat wiki --help`

    if row.get("type") is not None and row["type"] not in ENTITY_TYPES:
        return "entity type outside PER/LOC/ORG/MISC"
    if not (row.get("en_title") or "").strip():
        return "no English title"
    return None


def pair_source(row: dict) -> SourceRow | str:
    """A pairs row as a SourceRow, or why it is left out."""
    if (problem := schema_problem(row)) is not None:
        return problem
    sentence, surface = row["sentence"] or "", (row["surface"] or "").strip()
    if not surface or surface not in sentence:
        return "surface not in sentence"
    return SourceRow(
        source="pair",
        lang=row["lang"],
        qid=row.get("qid"),
        en_title=row["en_title"],
        type=row.get("type"),
        aliases=tuple(row.get("aliases") or ()),
        sentence=sentence,
        surface=surface,
        start=sentence.find(surface),
        seed_text=f"{row['page_id']}|{row['en_title']}|{sentence}",
    )


def mention_source(row: dict, target: TargetInfo | None) -> SourceRow | str:
    """A mentions row as a SourceRow (answer: the anchor, spaces trimmed), or why it is left out."""
    if (problem := schema_problem(row)) is not None:
        return f"mentions: {problem}"
    sentence, surface, start = row["sentence"] or "", row["surface"] or "", row["start"]
    if not surface.strip():
        return "mentions: empty anchor"
    if start < 0 or sentence[start : row["end"]] != surface:
        return "mentions: sentence[start:end] is not the surface"
    start += len(surface) - len(surface.lstrip())
    return SourceRow(
        source="mention",
        lang=row["lang"],
        qid=row["qid"],
        en_title=row["en_title"],
        type=row["type"] or (target.type if target else None),
        aliases=target.aliases if target else (),
        sentence=sentence,
        surface=surface.strip(),
        start=start,
        seed_text=f"mention|{row['page_id']}|{row['sentence_no']}|{start}|{row['en_title']}|{sentence}",
        match=row["match"],
        n_in_sentence=row["n_in_sentence"],
    )


def load_sources(cfg: SFTDatasetConfig) -> tuple[list[SourceRow], BuildInfo]:
    """The usable records of every --pairs and --mentions folder in the wanted languages: pairs in input
    order, then mentions in content order; UserError when nothing is left."""
    info = BuildInfo()
    pair_rows = load_pair_rows(cfg.pairs)
    mention_rows = load_mention_rows(cfg.mentions)
    info.pairs_read, info.mentions_read = len(pair_rows), len(mention_rows)
    if cfg.languages:
        wanted = set(cfg.languages)
        present = sorted({r["lang"] for r in pair_rows} | {r["lang"] for r, _ in mention_rows})
        pair_rows = [r for r in pair_rows if r["lang"] in wanted]
        mention_rows = [(r, t) for r, t in mention_rows if r["lang"] in wanted]
        if not pair_rows and not mention_rows:
            what = " or ".join(n for n, d in (("pairs", cfg.pairs), ("mentions", cfg.mentions)) if d)
            raise UserError(
                f"no {what} for --languages {','.join(cfg.languages)} in {_where([*cfg.pairs, *cfg.mentions])} "
                f"(languages there: {', '.join(present)})"
            )
    sources: list[SourceRow] = []
    mentions: list[SourceRow] = []
    for row in pair_rows:
        found = pair_source(row)
        if isinstance(found, str):
            info.skipped[found] += 1
        else:
            sources.append(found)
    for row, target in mention_rows:
        found = mention_source(row, target)
        if isinstance(found, str):
            info.skipped[found] += 1
            continue
        mentions.append(found)
        info.types_filled += row["type"] is None and found.type is not None
    mentions.sort(key=lambda s: (s.lang, s.sentence, s.start, s.en_title, s.qid or "", s.seed_text))
    return sources + mentions, info


# ------------------------------------------------------------------------------------------- building


def build_examples(sources: list[SourceRow], cfg: SFTDatasetConfig, prompts) -> list[dict]:
    """One chat per (record, task): align for every record, to_english for pairs only."""
    from eat.console import track
    from wiki_data.variants import english_variants, pick_variant, strip_disambiguator

    examples: list[dict] = []
    for src in track(sources, "building chats", unit="rows"):
        lang, sentence = src.lang, src.sentence
        for task in cfg.tasks:
            if task == "align":
                rng = random.Random(f"{cfg.seed}|{lang}|{src.seed_text}")
                variants = english_variants(src.en_title, src.type, list(src.aliases), lang)
                name = pick_variant(variants, rng, cfg.canonical_rate)
                answer, values = src.surface, {"sentence": sentence, "phrase": name}
                start = src.start
            elif src.source == "pair":
                answer, values = (
                    strip_disambiguator(src.en_title),
                    {"sentence": sentence, "name": src.surface},
                )
                start = None  # the English name is not a phrase of the sentence
            else:
                continue  # mentions teach alignment only
            replies = [answer] * prompts.num_turns(task)
            examples.append(
                {
                    "messages": prompts.conversation(task, lang, replies=replies, **values),
                    "task": task,
                    "lang": lang,
                    "qid": src.qid,
                    "en_title": src.en_title,
                    "type": src.type,
                    "answer_start": start,
                    "source": src.source,
                    "_src": src,
                    "_entity": src.entity,
                    "_answer": answer,
                    "_values": values,  # the plain record: shifting rebuilds the chat from these
                    "_sentence": sentence,  # the sentence the chat holds now (changes when shifted)
                    "_shifted": False,
                }
            )
    return examples


def dedupe(examples: list[dict]) -> tuple[list[dict], int]:
    seen: set[str] = set()
    out = []
    for ex in examples:
        key = json.dumps([ex["lang"], ex["task"], ex["messages"]], ensure_ascii=False)
        if key in seen:
            continue
        seen.add(key)
        ex["_key"] = key
        out.append(ex)
    return out, len(examples) - len(out)


def mix_counts(n_pairs: int, n_mentions: int, fraction: float) -> tuple[int, int]:
    """(pair rows, mention rows) to keep for a mention share F: the source that is scarcer for F is kept
    whole and the other is cut to match, rounded half up: all P pair rows and floor(P*F/(1-F) + 1/2)
    mention rows when P*F <= M*(1-F), else all M mention rows and floor(M*(1-F)/F + 1/2) pair rows (F = 0:
    pairs only; F = 1: mentions only). F is taken as the decimal written (0.2 is 1/5)."""
    f = Fraction(str(fraction))
    if f <= 0:
        return n_pairs, 0
    if f >= 1:
        return 0, n_mentions
    if n_pairs * f <= n_mentions * (1 - f):
        return n_pairs, min(n_mentions, floor(n_pairs * f / (1 - f) + Fraction(1, 2)))
    return min(n_pairs, floor(n_mentions * (1 - f) / f + Fraction(1, 2))), n_mentions


def mix_sources(examples: list[dict], fraction: float | None, seed: int) -> tuple[list[dict], list[MixCount]]:
    """Keep `mix_counts` align rows of each source per language (lowest seeded hash first); languages with
    align rows from one source only, and to_english rows, are kept whole. `fraction` None keeps everything."""
    if fraction is None:
        return examples, []
    by_lang: dict[str, dict[str, list[dict]]] = {}
    for ex in examples:
        if ex["task"] == "align":
            by_lang.setdefault(ex["lang"], {s: [] for s in SOURCES})[ex["source"]].append(ex)
    keep: set[int] = set()
    counts = []
    for lang in sorted(by_lang):
        pairs, mentions = by_lang[lang]["pair"], by_lang[lang]["mention"]
        if pairs and mentions:
            n_pairs, n_mentions = mix_counts(len(pairs), len(mentions), fraction)
        else:
            n_pairs, n_mentions = len(pairs), len(mentions)
        for rows, n in ((pairs, n_pairs), (mentions, n_mentions)):
            ranked = sorted(rows, key=lambda ex: _hash01(seed, "mix", ex["_key"]))
            keep.update(id(ex) for ex in ranked[:n])
        counts.append(MixCount(lang, len(pairs), len(mentions), n_pairs, n_mentions))
    return [ex for ex in examples if ex["task"] != "align" or id(ex) in keep], counts


def cap_languages(examples: list[dict], max_per_lang: int | None, balance: bool, seed: int) -> list[dict]:
    """Keep a seeded random subset per language (at most `max_per_lang`, or the smallest language's size)."""
    by_lang: dict[str, list[dict]] = {}
    for ex in examples:
        by_lang.setdefault(ex["lang"], []).append(ex)
    cap = max_per_lang
    if balance and by_lang:
        smallest = min(len(v) for v in by_lang.values())
        cap = smallest if cap is None else min(cap, smallest)
    if cap is None:
        return examples
    out = []
    for lang in sorted(by_lang):
        ranked = sorted(by_lang[lang], key=lambda ex: _hash01(seed, "cap", ex["_key"]))
        out.extend(ranked[:cap])
    return out


def split_by_entity(examples: list[dict], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Whole entities go to validation by a seeded hash; at least one when there are two or more."""
    entities = sorted({ex["_entity"] for ex in examples})
    score = {e: _hash01(seed, "split", e) for e in entities}
    val = {e for e in entities if score[e] < val_fraction}
    if not val and val_fraction > 0 and len(entities) >= 2:
        val = {min(entities, key=score.__getitem__)}
    if len(val) == len(entities) and len(entities) >= 2:
        val.discard(max(val, key=score.__getitem__))
    train = [ex for ex in examples if ex["_entity"] not in val]
    valid = [ex for ex in examples if ex["_entity"] in val]
    order = lambda ex: _hash01(seed, "order", ex["_key"])  # noqa: E731
    return sorted(train, key=order), sorted(valid, key=order)


# ------------------------------------------------------------------------------------------ shifting


def _filler_pools(examples: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """Per language, the distinct (sentence, entity) of the align rows given, sorted (input order free)."""
    pools: dict[str, set[tuple[str, str]]] = {}
    for ex in examples:
        if ex["task"] == "align":
            pools.setdefault(ex["lang"], set()).add((ex["_values"]["sentence"], ex["_entity"]))
    return {lang: sorted(pool) for lang, pool in pools.items()}


def shifted_sentence(ex: dict, pool: list[tuple[str, str]], rng: random.Random) -> tuple[str, int] | None:
    """The row's plain sentence after one or two fillers from `pool`, and the answer's offset in it.

    A filler is a sentence of another entity that does not contain the answer, and the joint must not form
    an earlier occurrence either, so the answer's first occurrence is the record's own. None when no filler
    fits (a tiny pool, or an answer that occurs earlier in its own sentence).
    """
    sentence, answer = ex["_values"]["sentence"], ex["_answer"]
    join = languages.joiner(ex["lang"])
    wanted = 1 + (rng.random() < 0.5)
    chosen: list[str] = []
    for _ in range(32):
        if len(chosen) == wanted or not pool:
            break
        filler, entity = pool[rng.randrange(len(pool))]
        if entity == ex["_entity"] or filler == sentence or filler in chosen or answer in filler:
            continue
        text = join.join([*chosen, filler, sentence])
        if text.find(answer) == len(text) - len(sentence) + ex["answer_start"]:
            chosen.append(filler)
    if not chosen:
        return None
    text = join.join([*chosen, sentence])
    return text, len(text) - len(sentence) + ex["answer_start"]


def shift_split(examples: list[dict], fraction: float, seed: int, prompts) -> int:
    """Shift `fraction` of the split's align rows (seeded hash per row) with fillers from the same split;
    rebuilds their chats in place and returns how many were shifted."""
    if fraction <= 0:
        return 0
    pools = _filler_pools(examples)
    shifted = 0
    for ex in examples:
        if ex["task"] != "align" or _hash01(seed, "shift", ex["_key"]) >= fraction:
            continue
        found = shifted_sentence(ex, pools[ex["lang"]], random.Random(f"{seed}|shift|{ex['_key']}"))
        if found is None:
            continue
        sentence, start = found
        replies = [ex["_answer"]] * prompts.num_turns("align")
        values = {**ex["_values"], "sentence": sentence}
        ex.update(
            messages=prompts.conversation("align", ex["lang"], replies=replies, **values),
            answer_start=start,
            _sentence=sentence,
            _shifted=True,
        )
        shifted += 1
    return shifted


# -------------------------------------------------------------------------------- answer positions


def position_bin(ex: dict) -> int:
    """The card's answer-position bin of an align row: answer_start / len(sentence) in POSITION_BINS bins."""
    rel = ex["answer_start"] / max(len(ex["_sentence"]), 1)
    return min(int(rel * POSITION_BINS), POSITION_BINS - 1)


def balance_split_positions(
    split: str, examples: list[dict], seed: int
) -> tuple[list[dict], list[PositionCut]]:
    """Per language, cut every non-empty answer-position bin of the align rows to the smallest non-empty
    bin's size (lowest seeded hash kept); other rows and the order are kept."""
    bins: dict[str, list[list[dict]]] = {}
    for ex in examples:
        if ex["task"] == "align":
            bins.setdefault(ex["lang"], [[] for _ in range(POSITION_BINS)])[position_bin(ex)].append(ex)
    drop: set[int] = set()
    cuts = []
    for lang in sorted(bins):
        sizes = tuple(len(b) for b in bins[lang])
        per_bin = min(n for n in sizes if n)
        for rows in bins[lang]:
            ranked = sorted(rows, key=lambda ex: _hash01(seed, "positions", ex["_key"]))
            drop.update(id(ex) for ex in ranked[per_bin:])
        cuts.append(PositionCut(split, lang, sizes, per_bin))
    return [ex for ex in examples if id(ex) not in drop], cuts


# ---------------------------------------------------------------------------------------- test items


def _test_chats(ex: dict, sentence: str, prompts) -> tuple[list[dict[str, str]], list[str]]:
    """The chat up to the first user turn, and the later user turns of a multi-turn prompt set (filling
    earlier assistant turns with the answer would give it away)."""
    values = {**ex["_values"], "sentence": sentence}
    first = prompts.conversation("align", ex["lang"], **values)
    turns = prompts.num_turns("align")
    full = prompts.conversation("align", ex["lang"], replies=[ex["_answer"]] * (turns - 1), **values)
    return first, [m["content"] for m in full[len(first) :] if m["role"] == "user"]


def align_test_items(valid: list[dict], seed: int, prompts) -> list[dict]:
    """The shortcut-proof align test: every validation align row from pairs plain and with validation
    sentences in front. Fillers come from validation only, so no training sentence is seen at test time.

    `messages` is the chat up to the first user turn (what inference sends first); a multi-turn prompt set's
    later user turns are in `followups`.
    """
    pools = _filler_pools(valid)
    items = []
    for ex in valid:
        if ex["task"] != "align" or ex["source"] != "pair":
            continue
        if ex["_shifted"]:
            raise ValueError("align_test_items needs the plain rows: call it before shift_split")
        variants = [(ex["_values"]["sentence"], ex["answer_start"], False)]
        found = shifted_sentence(ex, pools[ex["lang"]], random.Random(f"{seed}|test|{ex['_key']}"))
        if found is not None:
            variants.append((*found, True))
        for sentence, start, shifted in variants:
            messages, followups = _test_chats(ex, sentence, prompts)
            items.append(
                {
                    "lang": ex["lang"],
                    "qid": ex["qid"],
                    "en_title": ex["en_title"],
                    "phrase": ex["_values"]["phrase"],
                    "sentence": sentence,
                    "answer": ex["_answer"],
                    "answer_start": start,
                    "shifted": shifted,
                    "messages": messages,
                    "followups": followups,
                }
            )
    return items


def anchor_at_start(sentence: str, start: int) -> bool:
    """The anchor opens the sentence: nothing but spaces and punctuation before it."""
    return not any(c.isalnum() for c in sentence[:start])


def mention_test_items(
    rows: list[dict], val_entities: set[str], seed: int, prompts
) -> tuple[list[AlignTestItem], int]:
    """The mention align test: every mention align row of `rows` (all mention rows after duplicates, before
    mixing and caps) whose entity is in validation, in its own sentence (unshifted), with flags for the
    slices of `evaluation.align_eval`, in a seeded order (so a first-N sample is a random one). Rows whose
    answer also occurs earlier in the sentence are left out (the gold span would be ambiguous). Returns the
    items and how many were left out."""
    from wiki_data.schema import AlignTestItem  # pyarrow: kept off `eat wiki --help`

    items = []
    ambiguous = 0
    chosen = [ex for ex in rows if ex["_entity"] in val_entities]
    for ex in sorted(chosen, key=lambda ex: _hash01(seed, "order", ex["_key"])):
        if ex["task"] != "align" or ex["source"] != "mention":
            continue
        if ex["_shifted"]:
            raise ValueError("mention_test_items needs the plain rows: call it before shift_split")
        src: SourceRow = ex["_src"]
        if src.sentence.find(src.surface) != src.start:
            ambiguous += 1
            continue
        messages, followups = _test_chats(ex, src.sentence, prompts)
        items.append(
            AlignTestItem(
                lang=src.lang,
                qid=src.qid,
                en_title=src.en_title,
                phrase=ex["_values"]["phrase"],
                sentence=src.sentence,
                answer=src.surface,
                answer_start=src.start,
                shifted=False,
                messages=messages,
                followups=followups,
                source="mention",
                match=src.match,
                n_in_sentence=src.n_in_sentence,
                at_start=anchor_at_start(src.sentence, src.start),
                surface_differs=src.match != "title",
                multi=(src.n_in_sentence or 1) >= 2,
            )
        )
    return items, ambiguous


# -------------------------------------------------------------------------------------------- writing


def _features():
    from datasets import Features, List, Value

    return Features(
        {
            "messages": List({"role": Value("string"), "content": Value("string")}),
            "task": Value("string"),
            "lang": Value("string"),
            "qid": Value("string"),
            "en_title": Value("string"),
            "type": Value("string"),
            "answer_start": Value("int32"),
            "source": Value("string"),
        }
    )


def _public(ex: dict) -> dict:
    return {k: ex[k] for k in COLUMNS}


def position_table(splits: dict[str, list[dict]]) -> list[str]:
    """Where align answers start, per column (a split, or a split's rows of one source): a dataset whose
    answers sit at char 0 teaches a shortcut."""
    names = list(splits)
    lines = markdown.header(["align answers", *names], "l" + "r" * len(names))
    stats: dict[str, dict[str, str]] = {}
    for s, rows in splits.items():
        align = [ex for ex in rows if ex["task"] == "align"]
        n = len(align)
        rel = [ex["answer_start"] / max(len(ex["_sentence"]), 1) for ex in align]

        def share(k: int, n: int = n) -> str:
            return f"{k / n:.0%}" if n else "-"

        hist = Counter(position_bin(ex) for ex in align)
        stats[s] = {
            "rows": f"{n:,}",
            "shifted (fillers in front)": share(sum(ex["_shifted"] for ex in align)),
            "answer at char 0": share(sum(ex["answer_start"] == 0 for ex in align)),
            "answer after char 0, in the first 10%": share(sum(0 < r < 0.1 for r in rel)),
            "answer later (from 10% on)": share(sum(r >= 0.1 for r in rel)),
            **{
                f"relative start {b / POSITION_BINS:.1f}-{(b + 1) / POSITION_BINS:.1f}": share(hist[b])
                for b in range(POSITION_BINS)
            },
        }
    for label in next(iter(stats.values()), {}):
        lines.append(markdown.row([label, *(stats[s][label] for s in names)]))
    return [*lines, ""]


def source_columns(splits: dict[str, list[dict]], sources: list[str]) -> dict[str, list[dict]]:
    """The rows of each split and source, as `position_table` columns named "train / pairs" etc."""
    return {
        f"{s} / {src}s": [ex for ex in rows if ex["source"] == src]
        for s, rows in splits.items()
        for src in sources
    }


def _mix_section(cfg: SFTDatasetConfig, info: BuildInfo) -> list[str]:
    if not info.mix:
        return []
    lines = [
        "## Mixing pairs and mentions (align)",
        "",
        f"`--mention-fraction {cfg.mention_fraction}` (F, the share of align rows from mentions): in each "
        "language with align rows from both sources (P pair rows, M mention rows, after duplicates were "
        "dropped) the source that is scarcer for F is kept whole and the other is cut to match, rounded half "
        "up: all P pair rows and floor(P*F/(1-F) + 1/2) mention rows when P*F <= M*(1-F), else all M mention "
        "rows and floor(M*(1-F)/F + 1/2) pair rows; the rows with the lowest hash of (seed, row) are kept. A "
        "language with align rows from one source keeps them all; to_english rows are not counted. Caps, the "
        "split and `--balance-positions` come after, so the final shares (tables below) can drift from F.",
        "",
        *markdown.header(
            ["language", "pair rows", "mention rows", "kept pairs", "kept mentions", "mention share"],
            "lrrrrr",
        ),
    ]
    for c in info.mix:
        kept = c.kept_pairs + c.kept_mentions
        share = f"{c.kept_mentions / kept:.0%}" if kept else "-"
        counts = (c.pairs, c.mentions, c.kept_pairs, c.kept_mentions)
        lines.append(markdown.row([c.lang, *(f"{n:,}" for n in counts), share]))
    return [*lines, ""]


def _balance_section(cfg: SFTDatasetConfig, info: BuildInfo) -> list[str]:
    if not cfg.balance_positions:
        return []
    lines = [
        "### Position balancing (`--balance-positions`)",
        "",
        f"Last step, in each split and language: the align rows are put in the {POSITION_BINS} relative-start "
        "bins above, and every non-empty bin is cut to the size of the smallest non-empty bin (rows with the "
        "lowest hash of (seed, row) kept), so the non-empty bins hold equal counts; an empty bin stays empty "
        "(shifting fills later bins). to_english rows are not touched.",
        "",
        *markdown.header(
            ["split", "language", "align rows per bin before", "kept per non-empty bin", "dropped"], "lllrr"
        ),
    ]
    for c in info.position_cuts:
        before = " / ".join(f"{n:,}" for n in c.bins)
        lines.append(markdown.row([c.split, c.lang, before, f"{c.per_bin:,}", f"{c.dropped:,}"]))
    return [*lines, ""]


def _mention_test_section(items: list[AlignTestItem], ambiguous: int) -> list[str]:
    langs = sorted({it.lang for it in items})
    lines = [
        f"## Mention align test (`{MENTION_TEST_FILE}`)",
        "",
        "Every mention of a validation entity (all mention rows after duplicates were dropped, also those "
        "`--mention-fraction` or the caps left out of the validation split; never a training entity), in its "
        "own sentence, in a seeded order, built like `align_test.jsonl` (messages up to the first user turn, "
        "followups) with `shifted: false` and `source: mention`; rows whose answer also occurs earlier in the "
        f"sentence are left out ({ambiguous:,} here: the gold span would be ambiguous). The sentence may also "
        "hold other entities, of either split. "
        "Flags: `at_start`: nothing but spaces and punctuation before the anchor (a first-phrase rule can only "
        "hit these); `surface_differs`: the anchor is not the target's title without disambiguator (`match` is "
        "alias or differs); `multi`: the sentence holds two or more kept anchors (`n_in_sentence` >= 2). "
        "`evaluation.align_eval` reports the slices all / not at start / surface differs / several per "
        "sentence.",
        "",
        *markdown.header(
            ["language", "items", "not at start", "surface differs", "several per sentence"], "lrrrr"
        ),
    ]
    for lang in [*langs, "all"]:
        group = [it for it in items if lang in ("all", it.lang)]
        counts = (
            len(group),
            sum(not it.at_start for it in group),
            sum(it.surface_differs for it in group),
            sum(it.multi for it in group),
        )
        lines.append(markdown.row([lang, *(f"{n:,}" for n in counts)]))
    return [*lines, ""]


def dataset_card(
    splits: dict[str, list[dict]],
    cfg: SFTDatasetConfig,
    prompts_source: str,
    info: BuildInfo,
    test_items: list[dict] | None = None,
    mention_items: tuple[list[AlignTestItem], int] | None = None,
) -> str:
    """README.md of the dataset: what it is, how it was made, counts, answer positions, the test files."""
    names = list(splits)

    def table(title: str, field_name: str) -> list[str]:
        counts = {s: Counter(ex[field_name] or "unknown" for ex in rows) for s, rows in splits.items()}
        keys = sorted(set().union(*counts.values()))
        per_key = [(k, [counts[s][k] for s in names]) for k in keys]
        per_key.append(("**all**", [len(splits[s]) for s in names]))
        body = ([k, *(f"{v:,}" for v in [*vals, sum(vals)])] for k, vals in per_key)
        return [
            f"### By {title}",
            "",
            *markdown.table_lines([title, *names, "total"], body, "l" + "r" * (len(names) + 1)),
            "",
        ]

    sources = [src for src, dirs in (("pair", cfg.pairs), ("mention", cfg.mentions)) if dirs]
    entities = {s: len({ex["_entity"] for ex in rows}) for s, rows in splits.items()}
    read = [f"pairs read: {info.pairs_read:,}"] if cfg.pairs else []
    read += [f"mentions read: {info.mentions_read:,}"] if cfg.mentions else []
    from eat.hub import CARD_TAGS, front_matter

    langs = sorted({ex["lang"] for rows in splits.values() for ex in rows})
    lines = [
        front_matter(
            "dataset",
            language=langs,
            tags=[*CARD_TAGS, "entity-alignment"],
            task_categories=["text-generation"],
            pretty_name="EAT entity-alignment chats",
        ).rstrip("\n"),
        "",
        "# Entity-alignment instruction dataset",
        "",
        "Chat rows (`messages`: list of `{role, content}`) built by `eat wiki sft` from entity pairs"
        + (" and link mentions" if cfg.mentions else "")
        + ". Task `align`: English name + target-language sentence -> the exact phrase of the sentence. "
        "Task `to_english`: target-language name in its sentence -> its English name. "
        "With multi-turn prompts every assistant turn holds the answer; the last one is supervised. "
        "Column `source`: `pair` (an article's name in its lead sentence; align and to_english) or `mention` "
        "(a link anchor anywhere in a sentence, answer = the anchor; align only).",
        "",
        *([f"- pairs: {', '.join(str(p) for p in cfg.pairs)}"] if cfg.pairs else []),
        *([f"- mentions: {', '.join(str(p) for p in cfg.mentions)}"] if cfg.mentions else []),
        f"- prompts: {prompts_source}",
        f"- tasks: {', '.join(cfg.tasks)}; seed {cfg.seed}; val_fraction {cfg.val_fraction}; "
        f"max_per_lang {cfg.max_per_lang}; balance {cfg.balance}; canonical_rate {cfg.canonical_rate}; "
        f"mention_fraction {cfg.mention_fraction}; shift_fraction {cfg.shift_fraction}; "
        f"balance_positions {cfg.balance_positions}",
        "- entities: "
        + ", ".join(f"{s} {n:,}" for s, n in entities.items())
        + " (split by entity, Wikidata QID else English title, for pairs and mentions alike: disjoint)",
        f"- {'; '.join(read)}; duplicates dropped: {info.duplicates:,}; "
        + (", ".join(f"{k}: {v:,}" for k, v in info.skipped.items()) or "no rows skipped"),
        *(
            [f"- mention types taken from the target's pairs row: {info.types_filled:,}"]
            if cfg.mentions
            else []
        ),
        "",
        "Load with `datasets.load_from_disk(path)`; the same rows are in `train.jsonl` and `validation.jsonl`.",
        "",
        *_mix_section(cfg, info),
        "## Counts",
        "",
        *table("language", "lang"),
        *table("task", "task"),
        *table("source", "source"),
        *table("type", "type"),
        "## Answer position (align)",
        "",
        "Lead sentences start with their subject, so most align answers sit at character 0 and a model can "
        "score by answering with the first phrase. `answer_start` (a column) is the answer's character offset "
        "in the sentence; relative start = answer_start / sentence length. `--shift-fraction` puts one or two "
        "sentences of other entities of the same split in front of that share of rows.",
        "",
        *position_table(splits),
        "### By source",
        "",
        "The same figures for the rows of each source: pairs carry the shortcut, mentions much less.",
        "",
        *position_table(source_columns(splits, sources)),
        *_balance_section(cfg, info),
    ]
    if test_items is not None:
        count = Counter((it["lang"], it["shifted"]) for it in test_items)
        langs = sorted({lang for lang, _ in count})
        lines += [
            "## Shortcut-proof align test (`align_test.jsonl`)",
            "",
            "Built from validation entities only: each validation align row from pairs as is (`shifted: false`) "
            "and with one or two other validation sentences in front (`shifted: true`; the answer does not occur "
            "in them). Fields: lang, qid, en_title, phrase (the English name asked), sentence, answer, "
            "answer_start, shifted, messages (the chat up to the first user turn, built with "
            "`PromptSet.conversation`), followups (later user turns of a multi-turn prompt set). "
            "A first-phrase rule fails the shifted items; score with `evaluation.align_eval`.",
            "",
            *markdown.table_lines(
                ["language", "plain", "shifted"],
                ((lang, f"{count[(lang, False)]:,}", f"{count[(lang, True)]:,}") for lang in langs),
                "lrr",
            ),
            "",
        ]
    if mention_items is not None:
        lines += _mention_test_section(*mention_items)
    return "\n".join(lines)


def build_sft(cfg: SFTDatasetConfig) -> dict[str, list[dict]]:
    """Build and write the dataset described by `cfg`; returns the rows per split."""
    import datasets
    from datasets import Dataset, DatasetDict

    from eat.config import dump_config
    from eat.io import write_jsonl
    from eat.prompts import load_prompts

    if not cfg.pairs and not cfg.mentions:
        raise UserError("no input: give --pairs, --mentions or both")
    if cfg.mention_fraction is not None and not (cfg.pairs and cfg.mentions):
        raise UserError("--mention-fraction needs both --pairs and --mentions")
    check_out(cfg.out, cfg.overwrite, [*cfg.pairs, *cfg.mentions])
    check_writable(cfg.out.parent)  # before the build, not when the finished dataset is written
    if cfg.push_to_hub:  # before the work: a typo or an offline machine is one line now, not after the build
        from eat.hub import check_repo_id, hub_reachable

        check_repo_id(cfg.push_to_hub)
        if not hub_reachable():
            raise UserError(
                f"--push-to-hub {cfg.push_to_hub}: the Hugging Face Hub is not reachable from here"
            )
    prompts = load_prompts(cfg.prompts)
    sources, info = load_sources(cfg)
    examples, info.duplicates = dedupe(build_examples(sources, cfg, prompts))
    if not examples:
        where = _where([*cfg.pairs, *cfg.mentions])
        raise UserError(f"no usable rows for --tasks {','.join(cfg.tasks)} in {where} ({dict(info.skipped)})")
    all_mentions = [ex for ex in examples if ex["source"] == "mention"]  # the mention test draws from all
    examples, info.mix = mix_sources(examples, cfg.mention_fraction, cfg.seed)
    examples = cap_languages(examples, cfg.max_per_lang, cfg.balance, cfg.seed)
    train, valid = split_by_entity(examples, cfg.val_fraction, cfg.seed)
    if not train:
        raise UserError(
            f"the train split is empty after the split by entity (--val-fraction {cfg.val_fraction} of "
            f"{len({ex['_entity'] for ex in examples})} entities); lower --val-fraction"
        )
    # both tests from the plain rows, before shifting
    test_items = align_test_items(valid, cfg.seed, prompts)
    val_entities = {ex["_entity"] for ex in valid}
    mention_items = (
        mention_test_items(all_mentions, val_entities, cfg.seed, prompts) if cfg.mentions else None
    )
    # --val-fraction 0: no validation split at all (training then runs without evaluation).
    splits = {"train": train, "validation": valid} if cfg.val_fraction > 0 else {"train": train}
    for name, split_rows in splits.items():  # fillers from the row's own split: no sentence crosses the split
        shift_split(split_rows, cfg.shift_fraction, cfg.seed, prompts)
        if cfg.balance_positions:
            splits[name], cuts = balance_split_positions(name, split_rows, cfg.seed)
            info.position_cuts.extend(cuts)
    features = _features()
    with atomic_dir(cfg.out, cfg.overwrite, [*cfg.pairs, *cfg.mentions], "eat wiki sft") as tmp:
        dd = DatasetDict(
            {s: Dataset.from_list([_public(ex) for ex in r], features=features) for s, r in splits.items()}
        )
        bars_on = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # our own progress bars and summary say what happens
        try:
            dd.save_to_disk(str(tmp))
        finally:
            if bars_on:
                datasets.enable_progress_bars()
        for name, split_rows in splits.items():
            write_jsonl(tmp / f"{name}.jsonl", (_public(ex) for ex in split_rows))
        write_jsonl(tmp / "align_test.jsonl", test_items)
        if mention_items is not None:
            write_jsonl(tmp / MENTION_TEST_FILE, (asdict(it) for it in mention_items[0]))
        card = dataset_card(splits, cfg, prompts.path, info, test_items, mention_items)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        dump_config(cfg, tmp / "sft-config.yaml")
    return splits


def summary_table(splits: dict[str, list[dict]]):
    """Rows per language, task and source for the console."""
    from rich.table import Table

    table = Table(title="eat wiki sft")
    for col in ("lang", "task", "source", *splits):
        table.add_column(col, justify="right" if col in splits else "left")
    keys = sorted({(ex["lang"], ex["task"], ex["source"]) for rows in splits.values() for ex in rows})
    counts = {s: Counter((ex["lang"], ex["task"], ex["source"]) for ex in rows) for s, rows in splits.items()}
    for key in keys:
        table.add_row(*key, *(f"{counts[s][key]:,}" for s in splits))
    return table
