"""Stage 3 on its own: does a model copy the phrase an English name stands for, wherever it sits?

Training data from lead sentences has the answer at character 0 about 9 times in 10, so a model can score
by answering with the first phrase. `eat wiki sft` writes `align_test.jsonl`: each validation align row
plain and with other sentences put in front (`shifted`). Scoring both apart, next to the `first_phrase`
rule (no model), shows whether a model aligns or only learned the position.

With `--mentions`, `eat wiki sft` also writes `align_test_mentions.jsonl`: link anchors of validation
entities where they are in real sentences (`source: mention`), flagged `at_start` (nothing but spaces and
punctuation before the anchor), `surface_differs` (the anchor is not the target's title) and `multi` (two or
more anchors in the sentence). Its items are scored in the slices `mentions` (all of them), `mentions: not at
start`, `mentions: surface differs` and `mentions: several per sentence` (a mention can be in several);
the first-phrase rule cannot find a not-at-start anchor. Give both files to score them in one run.

Two scores per item: exact match of the cleaned reply (`evaluation.spans.clean_answer`), and the span the
pipeline would keep (`evaluation.spans.snap`, with the English name as fallback) equal to the gold span.

    python -m evaluation.align_eval sft/align_test.jsonl --out runs/align-base --model PATH [--adapter DIR]
    python -m evaluation.align_eval sft/align_test.jsonl --out runs/align-rule --first-phrase
    python -m evaluation.align_eval sft/align_test.jsonl sft/align_test_mentions.jsonl --out runs/align-all ...
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from eat import markdown
from eat.errors import UserError
from evaluation.backends import Chat, ChatBackend
from evaluation.spans import clean_answer, snap
from wiki_data.schema import AlignTestItem

GREEDY = {"do_sample": False}
# The rule's delimiters: brackets, commas, enumeration comma and any space (full-width included).
_FIRST_PHRASE_END = re.compile(r"[「（(，,、\s]")
# The groups scored, in report order: pair items are plain or shifted; a mention item is in "mentions" and
# in every other slice its flags put it in.
SLICES = (
    "plain",
    "shifted",
    "mentions",
    "mentions: not at start",
    "mentions: surface differs",
    "mentions: several per sentence",
)


def item_slices(item: AlignTestItem) -> tuple[str, ...]:
    """The SLICES an item is scored in."""
    if item.source == "pair":
        return ("shifted",) if item.shifted else ("plain",)
    flags = (not item.at_start, item.surface_differs, item.multi)
    return ("mentions", *(name for name, on in zip(SLICES[3:], flags, strict=True) if on))


@dataclass(frozen=True)
class AlignResult:
    """What a system replied for one item and whether it counts."""

    lang: str
    en_title: str
    phrase: str
    answer: str
    answer_start: int
    shifted: bool
    reply: str
    exact: bool
    snapped: bool
    snap_method: str
    snap_start: int | None
    snap_end: int | None
    source: str
    slices: tuple[str, ...]


@dataclass(frozen=True)
class AlignScore:
    """Accuracy of one group of items: a language (`lang="all"` for every language) and a slice of SLICES;
    `shifted` is true for the slice "shifted" (kept for readers of older metrics)."""

    lang: str
    slice: str
    shifted: bool
    n: int
    exact: float
    snapped: float


@dataclass
class AlignReport:
    system: str
    results: list[AlignResult]

    def scores(self) -> list[AlignScore]:
        """Per language and slice (SLICES order, non-empty ones), then the same over all languages."""
        langs = sorted({r.lang for r in self.results})
        out = []
        for lang in [*langs, "all"] if langs else []:
            for name in SLICES:
                group = [r for r in self.results if name in r.slices and lang in ("all", r.lang)]
                if not group:
                    continue
                n = len(group)
                exact, snapped = sum(r.exact for r in group) / n, sum(r.snapped for r in group) / n
                out.append(AlignScore(lang, name, name == "shifted", n, exact, snapped))
        return out

    def metrics(self) -> dict:
        """JSON-ready metrics (the file boundary; code should use `scores()`)."""
        return {"system": self.system, "n": len(self.results), "scores": [asdict(s) for s in self.scores()]}

    def write(self, out: Path) -> None:
        """`results.jsonl` (one line per item) and `metrics.json` in `out`."""
        from eat.io import write_jsonl

        out.mkdir(parents=True, exist_ok=True)
        write_jsonl(out / "results.jsonl", (asdict(r) for r in self.results))
        (out / "metrics.json").write_text(json.dumps(self.metrics(), indent=2) + "\n", encoding="utf-8")


def load_items(path: str | Path) -> list[AlignTestItem]:
    """Items of an align_test.jsonl or align_test_mentions.jsonl; a malformed line is a UserError naming the
    file and line."""
    items = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                items.append(AlignTestItem(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise UserError(f"not an align test item ({exc})", path=path, line=number) from None
    return items


def first_items(items: Sequence[AlignTestItem], per_lang: int) -> list[AlignTestItem]:
    """The first `per_lang` items of each language and source in file order (plain and shifted copies stay
    adjacent; pair and mention items are counted apart)."""
    taken: Counter[tuple[str, str]] = Counter()
    out = []
    for item in items:
        key = (item.lang, item.source)
        if taken[key] < per_lang:
            taken[key] += 1
            out.append(item)
    return out


def first_phrase(sentence: str) -> str:
    """The shortcut as a rule: the sentence up to its first bracket, comma or space."""
    return _FIRST_PHRASE_END.split(sentence, maxsplit=1)[0]


def first_phrase_answers(items: Sequence[AlignTestItem]) -> list[str]:
    return [first_phrase(item.sentence) for item in items]


def score_answers(items: Sequence[AlignTestItem], replies: Sequence[str], system: str) -> AlignReport:
    """Score one reply per item (the last turn's reply for multi-turn chats)."""
    if len(items) != len(replies):
        raise ValueError(f"{len(items)} items but {len(replies)} replies")
    results = []
    for item, reply in zip(items, replies, strict=True):
        found = snap(reply, item.sentence, item.lang, english=item.phrase)
        results.append(
            AlignResult(
                lang=item.lang,
                en_title=item.en_title,
                phrase=item.phrase,
                answer=item.answer,
                answer_start=item.answer_start,
                shifted=item.shifted,
                reply=reply,
                exact=clean_answer(reply) == item.answer,
                snapped=found.ok and (found.start, found.end) == item.span,
                snap_method=found.method,
                snap_start=found.start,
                snap_end=found.end,
                source=item.source,
                slices=item_slices(item),
            )
        )
    return AlignReport(system, results)


def evaluate_align(
    backend: ChatBackend, items: Sequence[AlignTestItem], *, max_new_tokens: int = 32, batch_size: int = 64
) -> AlignReport:
    """Send every item's chat (and its follow-up turns, each after the model's own reply) greedily."""
    chats: list[Chat] = [list(item.messages) for item in items]
    replies = [""] * len(items)
    turns = max((len(item.followups) for item in items), default=0) + 1
    for turn in range(turns):
        todo = [i for i, item in enumerate(items) if turn <= len(item.followups)]
        for b in range(0, len(todo), batch_size):
            idx = todo[b : b + batch_size]
            for i, reply in zip(
                idx, backend.generate([chats[i] for i in idx], max_new_tokens, GREEDY), strict=True
            ):
                replies[i] = reply
                if turn < len(items[i].followups):
                    chats[i] += [
                        {"role": "assistant", "content": reply},
                        {"role": "user", "content": items[i].followups[turn]},
                    ]
    return score_answers(items, replies, backend.name)


def format_scores(reports: Sequence[AlignReport]) -> str:
    """A Markdown table: one row per system and group, exact and snapped accuracy."""
    rows = [
        (report.system, s.lang, s.slice, s.n, f"{s.exact:.0%}", f"{s.snapped:.0%}")
        for report in reports
        for s in report.scores()
    ]
    return markdown.table(("system", "lang", "items", "n", "exact", "snapped"), rows, "lllrrr")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "items",
        type=Path,
        nargs="+",
        help="align_test.jsonl and/or align_test_mentions.jsonl written by `eat wiki sft` (scored together)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for results.jsonl and metrics.json")
    parser.add_argument("--model", help="base model folder (hf backend)")
    parser.add_argument("--adapter", help="LoRA adapter folder")
    parser.add_argument("--first-phrase", action="store_true", help="score the first-phrase rule (no model)")
    parser.add_argument("--per-lang", type=int, help="only the first N items of each language and source")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args(argv)
    if not args.first_phrase and not args.model:
        parser.error("give --model (and optionally --adapter) or --first-phrase")
    items = [item for path in args.items for item in load_items(path)]
    if args.per_lang:
        items = first_items(items, args.per_lang)
    if args.first_phrase:
        report = score_answers(items, first_phrase_answers(items), "first_phrase")
    else:
        from evaluation.backends.hf import HFBackend

        backend = HFBackend(args.model, adapter=args.adapter, batch_size=args.batch_size)
        report = evaluate_align(
            backend, items, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size * 8
        )
        report.system = "adapter" if args.adapter else "base"
    report.write(args.out)
    print(format_scores([report]))


if __name__ == "__main__":
    main()
