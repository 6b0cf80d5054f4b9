"""`eat wiki sft`: entity pairs -> chat dataset that teaches the alignment skills EAT uses at inference.

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
character 0 and a model learns "answer with the first phrase". `shift_fraction` puts one or two sentences of
other entities of the same split and language in front of that share of align rows, so the answer moves
into the sentence; every row records `answer_start` and the card shows where answers sit per split.
`align_test.jsonl` pairs each validation align row with a shifted copy: a test a first-phrase rule fails.

Rows are split by entity (Wikidata QID, else English title) so no entity is in both splits; duplicates
(same language, task and messages) are dropped; per-language caps and balancing are optional. Every random
choice hashes the seed with the row's content, so the output does not depend on input order or process.
The dataset is written to a temporary folder that replaces `out` only when complete.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

from pydantic import Field, field_validator

from eat.config import StrictModel
from eat.errors import UserError
from eat.io import atomic_dir, check_out

SFT_TASKS = ("align", "to_english")
COLUMNS = ("messages", "task", "lang", "qid", "en_title", "type", "answer_start")
UNSPACED_LANGS = ("zh", "ja")  # sentences are joined without a space in these languages
POSITION_BINS = 5


class SFTConfig(StrictModel):
    """Options of `eat wiki sft` (also usable from Python)."""

    pairs: list[Path] = Field(min_length=1, description="Pairs folder(s) from `eat wiki mine`/`import-eat`.")
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
    shift_fraction: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of align rows with 1-2 other sentences of the same split put in front, so the "
        "answer is not at the start (breaks the first-phrase shortcut).",
    )
    seed: int = Field(0, description="Seed for name variants, capping, shifting and the split.")
    overwrite: bool = Field(False, description="Replace an existing output folder.")

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        bad = [t for t in tasks if t not in SFT_TASKS]
        if bad:
            raise ValueError(f"unknown task {bad[0]!r}; choose from {', '.join(SFT_TASKS)}")
        if not tasks:
            raise ValueError("no tasks given")
        return list(dict.fromkeys(tasks))


# ------------------------------------------------------------------------------------------ output dir


# ------------------------------------------------------------------------------------------- building


def _hash01(*parts: object) -> float:
    """A stable number in [0, 1) for the parts (independent of PYTHONHASHSEED and input order)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def entity_key(row: dict) -> str:
    """What the split groups by: the Wikidata item, else the English title."""
    return f"qid:{row['qid']}" if row.get("qid") else f"en:{row['en_title']}"


def load_pair_rows(dirs: list[Path], languages: list[str]) -> list[dict]:
    """All pairs rows of the folders, filtered by language; UserError when nothing is left."""
    from wiki_data.schema import read_pairs

    rows: list[dict] = []
    for directory in dirs:
        rows.extend(read_pairs(directory).to_pylist())
    where = ", ".join(str(d) for d in dirs)
    if not rows:
        raise UserError(f"no pairs in {where}")
    if languages:
        wanted = set(languages)
        present = sorted({r["lang"] for r in rows})
        rows = [r for r in rows if r["lang"] in wanted]
        if not rows:
            raise UserError(
                f"no pairs for --languages {','.join(languages)} in {where} (languages there: {', '.join(present)})"
            )
    return rows


def build_examples(rows: list[dict], cfg: SFTConfig, prompts) -> tuple[list[dict], Counter]:
    """One chat per (pair, task); `skipped` counts pairs left out and why."""
    from eat.console import track
    from wiki_data.variants import english_variants, pick_variant, strip_disambiguator

    examples: list[dict] = []
    skipped: Counter = Counter()
    for row in track(rows, "building chats", unit="pairs"):
        lang, sentence, surface = row["lang"], row["sentence"] or "", (row["surface"] or "").strip()
        if not surface or surface not in sentence:
            skipped["surface not in sentence"] += 1
            continue
        key = entity_key(row)
        for task in cfg.tasks:
            if task == "align":
                rng = random.Random(f"{cfg.seed}|{lang}|{row['page_id']}|{row['en_title']}|{sentence}")
                variants = english_variants(row["en_title"], row.get("type"), row.get("aliases"), lang)
                name = pick_variant(variants, rng, cfg.canonical_rate)
                answer, values = surface, {"sentence": sentence, "phrase": name}
                start = sentence.find(surface)
            else:
                answer, values = strip_disambiguator(row["en_title"]), {"sentence": sentence, "name": surface}
                start = None  # the English name is not a phrase of the sentence
            replies = [answer] * prompts.num_turns(task)
            examples.append(
                {
                    "messages": prompts.conversation(task, lang, replies=replies, **values),
                    "task": task,
                    "lang": lang,
                    "qid": row.get("qid"),
                    "en_title": row["en_title"],
                    "type": row.get("type"),
                    "answer_start": start,
                    "_entity": key,
                    "_answer": answer,
                    "_values": values,  # the plain record: shifting rebuilds the chat from these
                    "_sentence": sentence,  # the sentence the chat holds now (changes when shifted)
                    "_shifted": False,
                }
            )
    return examples, skipped


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


def _joiner(lang: str) -> str:
    return "" if lang.split("-")[0].lower() in UNSPACED_LANGS else " "


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
    fits (a tiny pool).
    """
    sentence, answer = ex["_values"]["sentence"], ex["_answer"]
    join = _joiner(ex["lang"])
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


def align_test_items(valid: list[dict], seed: int, prompts) -> list[dict]:
    """The shortcut-proof align test: every validation align row plain and with validation sentences in
    front. Fillers come from validation only, so no training sentence is seen at test time.

    `messages` is the chat up to the first user turn (what inference sends first); a multi-turn prompt set's
    later user turns are in `followups`: filling earlier assistant turns with the answer would give it away.
    """
    pools = _filler_pools(valid)
    turns = prompts.num_turns("align")
    items = []
    for ex in valid:
        if ex["task"] != "align":
            continue
        if ex["_shifted"]:
            raise ValueError("align_test_items needs the plain rows: call it before shift_split")
        variants = [(ex["_values"]["sentence"], ex["answer_start"], False)]
        found = shifted_sentence(ex, pools[ex["lang"]], random.Random(f"{seed}|test|{ex['_key']}"))
        if found is not None:
            variants.append((*found, True))
        for sentence, start, shifted in variants:
            values = {**ex["_values"], "sentence": sentence}
            first = prompts.conversation("align", ex["lang"], **values)
            full = prompts.conversation("align", ex["lang"], replies=[ex["_answer"]] * (turns - 1), **values)
            items.append(
                {
                    "lang": ex["lang"],
                    "qid": ex["qid"],
                    "en_title": ex["en_title"],
                    "phrase": values["phrase"],
                    "sentence": sentence,
                    "answer": ex["_answer"],
                    "answer_start": start,
                    "shifted": shifted,
                    "messages": first,
                    "followups": [m["content"] for m in full[len(first) :] if m["role"] == "user"],
                }
            )
    return items


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
        }
    )


def _public(ex: dict) -> dict:
    return {k: ex[k] for k in COLUMNS}


def position_table(splits: dict[str, list[dict]]) -> list[str]:
    """Where align answers start, per split: a dataset whose answers sit at char 0 teaches a shortcut."""
    names = list(splits)
    lines = ["| align answers | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    stats: dict[str, dict[str, str]] = {}
    for s, rows in splits.items():
        align = [ex for ex in rows if ex["task"] == "align"]
        n = len(align)
        rel = [ex["answer_start"] / max(len(ex["_sentence"]), 1) for ex in align]

        def share(k: int, n: int = n) -> str:
            return f"{k / n:.0%}" if n else "-"

        hist = Counter(min(int(r * POSITION_BINS), POSITION_BINS - 1) for r in rel)
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
        lines.append(f"| {label} | " + " | ".join(stats[s][label] for s in names) + " |")
    return [*lines, ""]


def dataset_card(
    splits: dict[str, list[dict]],
    cfg: SFTConfig,
    prompts_source: str,
    info: dict,
    test_items: list[dict] | None = None,
) -> str:
    """README.md of the dataset: what it is, how it was made, counts per language, task and type."""
    names = list(splits)

    def table(title: str, field_name: str) -> list[str]:
        counts = {s: Counter(ex[field_name] or "unknown" for ex in rows) for s, rows in splits.items()}
        keys = sorted(set().union(*counts.values()))
        lines = [f"### By {title}", "", f"| {title} | " + " | ".join(names) + " | total |"]
        lines.append("|---|" + "---:|" * (len(names) + 1))
        for k in keys:
            vals = [counts[s][k] for s in names]
            lines.append(f"| {k} | " + " | ".join(f"{v:,}" for v in vals) + f" | {sum(vals):,} |")
        totals = [len(splits[s]) for s in names]
        lines.append("| **all** | " + " | ".join(f"{v:,}" for v in totals) + f" | {sum(totals):,} |")
        return [*lines, ""]

    entities = {s: len({ex["_entity"] for ex in rows}) for s, rows in splits.items()}
    lines = [
        "# Entity-alignment instruction dataset",
        "",
        "Chat rows (`messages`: list of `{role, content}`) built by `eat wiki sft` from entity pairs. "
        "Task `align`: English name + target-language sentence -> the exact phrase of the sentence. "
        "Task `to_english`: target-language name in its sentence -> its English name. "
        "With multi-turn prompts every assistant turn holds the answer; the last one is supervised.",
        "",
        f"- pairs: {', '.join(str(p) for p in cfg.pairs)}",
        f"- prompts: {prompts_source}",
        f"- tasks: {', '.join(cfg.tasks)}; seed {cfg.seed}; val_fraction {cfg.val_fraction}; "
        f"max_per_lang {cfg.max_per_lang}; balance {cfg.balance}; canonical_rate {cfg.canonical_rate}; "
        f"shift_fraction {cfg.shift_fraction}",
        "- entities: "
        + ", ".join(f"{s} {n:,}" for s, n in entities.items())
        + " (split by entity: disjoint)",
        f"- pairs read: {info['pairs']:,}; duplicates dropped: {info['duplicates']:,}; "
        + (", ".join(f"{k}: {v:,}" for k, v in info["skipped"].items()) or "no pairs skipped"),
        "",
        "Load with `datasets.load_from_disk(path)`; the same rows are in `train.jsonl` and `validation.jsonl`.",
        "",
        "## Counts",
        "",
        *table("language", "lang"),
        *table("task", "task"),
        *table("type", "type"),
        "## Answer position (align)",
        "",
        "Lead sentences start with their subject, so most align answers sit at character 0 and a model can "
        "score by answering with the first phrase. `answer_start` (a column) is the answer's character offset "
        "in the sentence; relative start = answer_start / sentence length. `--shift-fraction` puts one or two "
        "sentences of other entities of the same split in front of that share of rows.",
        "",
        *position_table(splits),
    ]
    if test_items is not None:
        count = Counter((it["lang"], it["shifted"]) for it in test_items)
        langs = sorted({lang for lang, _ in count})
        lines += [
            "## Shortcut-proof align test (`align_test.jsonl`)",
            "",
            "Built from validation entities only: each validation align row as is (`shifted: false`) and with "
            "one or two other validation sentences in front (`shifted: true`; the answer does not occur in "
            "them). Fields: lang, qid, en_title, phrase (the English name asked), sentence, answer, "
            "answer_start, shifted, messages (the chat up to the first user turn, built with "
            "`PromptSet.conversation`), followups (later user turns of a multi-turn prompt set). "
            "A first-phrase rule fails the shifted items; score with `evaluation.align_eval`.",
            "",
            "| language | plain | shifted |",
            "|---|---:|---:|",
            *(f"| {lang} | {count[(lang, False)]:,} | {count[(lang, True)]:,} |" for lang in langs),
            "",
        ]
    return "\n".join(lines)


def build_sft(cfg: SFTConfig) -> dict[str, list[dict]]:
    """Build and write the dataset described by `cfg`; returns the rows per split."""
    import datasets
    from datasets import Dataset, DatasetDict

    from eat.config import dump_config
    from eat.io import write_jsonl
    from eat.prompts import load_prompts

    check_out(cfg.out, cfg.overwrite)
    prompts = load_prompts(cfg.prompts)
    rows = load_pair_rows(cfg.pairs, cfg.languages)
    examples, skipped = build_examples(rows, cfg, prompts)
    examples, duplicates = dedupe(examples)
    if not examples:
        raise UserError(f"no usable pairs in {', '.join(map(str, cfg.pairs))} ({dict(skipped)})")
    examples = cap_languages(examples, cfg.max_per_lang, cfg.balance, cfg.seed)
    train, valid = split_by_entity(examples, cfg.val_fraction, cfg.seed)
    test_items = align_test_items(valid, cfg.seed, prompts)  # from the plain rows, before shifting
    splits = {"train": train, "validation": valid}
    for split_rows in splits.values():  # fillers from the row's own split: no sentence crosses the split
        shift_split(split_rows, cfg.shift_fraction, cfg.seed, prompts)
    info = {"pairs": len(rows), "duplicates": duplicates, "skipped": dict(skipped)}
    features = _features()
    with atomic_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
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
        card = dataset_card(splits, cfg, prompts.path, info, test_items)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        dump_config(cfg, tmp / "sft-config.yaml")
    return splits


def summary_table(splits: dict[str, list[dict]]):
    """Rows per language and task for the console."""
    from rich.table import Table

    table = Table(title="eat wiki sft")
    for col in ("lang", "task", *splits):
        table.add_column(col, justify="right" if col in splits else "left")
    keys = sorted({(ex["lang"], ex["task"]) for rows in splits.values() for ex in rows})
    counts = {s: Counter((ex["lang"], ex["task"]) for ex in rows) for s, rows in splits.items()}
    for lang, task in keys:
        table.add_row(lang, task, *(f"{counts[s][(lang, task)]:,}" for s in splits))
    return table
