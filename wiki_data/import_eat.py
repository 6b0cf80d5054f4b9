"""`eat wiki import-eat`: the EAT authors' `{eng_entity, tgt_entity, text}` corpora -> our pairs schema.

The authors' corpora are noisy: a target written in Simplified Chinese in a Traditional sentence, Russian
texts with stress marks (Москва́), titles with a disambiguator ("X (Y)"), Russian person titles inverted
("Болджер, Джим"). A record is kept only if its target can be located in the text after normalisation, and
then the pair's `surface` is the exact span of the (original) text, so `align` answers stay substrings.

Choices, so the output fits the miner's schema:
- `page_id` is the record's index in the corpus (no page ids are published); `qid` is null; `type` and
  `type_source` are null (the corpora carry no types); `title` is the raw `tgt_entity`; `en_title` is
  `eng_entity` as given (it is NER-output-like already: "BRUSSELS", "EU"); `aliases` is empty;
  `dump_date` is null.
- Russian texts have their stress marks removed (running text and NER test sets have none).
- Chinese text keeps its mixed script: the target and text are compared in Simplified form
  (`normalize_with_offsets`, which uses `to_variant`) and the span is cut from the original text.
- Multi-paragraph texts are cut to the first paragraph that holds the target and is not the bare title
  (the whole text when the name occurs only as a title line).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eat import languages
from eat.errors import UserError
from wiki_data.normalize import normalize_for_match, normalize_with_offsets, strip_stress
from wiki_data.variants import strip_disambiguator

STATS_NAME = "import-stats.json"
KEYS = ("eng_entity", "tgt_entity", "text")


@dataclass
class ImportStats:
    corpus: str
    lang: str
    records: int = 0
    found_verbatim: int = 0
    found_normalised: int = 0
    disambiguators_stripped: int = 0
    names_uninverted: int = 0
    stress_stripped_texts: int = 0
    duplicates: int = 0
    written: int = 0
    examples_not_found: list[dict] = field(default_factory=list)

    @property
    def not_found_verbatim(self) -> int:
        return self.records - self.found_verbatim

    @property
    def not_found_normalised(self) -> int:
        return self.records - self.found_normalised

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "not_found_verbatim": self.not_found_verbatim,
            "not_found_normalised": self.not_found_normalised,
        }


def lang_from_name(path: Path) -> str | None:
    """`corpus_zh.json` -> `zh`."""
    m = re.fullmatch(r"corpus_([a-z]{2,3}(?:-[a-z]+)?)\.json", path.name)
    return m.group(1) if m else None


def read_corpus(path: str | Path) -> list[dict]:
    """The corpus records, validated; any problem is one UserError naming the file (and record index)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("corpus file not found", path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError("not a UTF-8 text file", path=path) from None
    except json.JSONDecodeError as exc:
        raise UserError(
            f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno
        ) from None
    if not isinstance(data, list):
        raise UserError(
            f"expected a JSON array of {{eng_entity, tgt_entity, text}} records, got {type(data).__name__}",
            path=path,
        )
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise UserError(f"record {i}: expected an object, got {type(rec).__name__}", path=path)
        for key in KEYS:
            if not isinstance(rec.get(key), str):
                what = "missing" if key not in rec else f"not a string ({type(rec[key]).__name__})"
                raise UserError(f"record {i}: key {key!r} is {what}", path=path)
    return data


def _norm_index(text: str, lang: str) -> tuple[str, list[int]]:
    """Normalised text and offsets; in zh/ja also without spaces ("吉川 和多留" matches "吉川和多留")."""
    norm, offsets = normalize_with_offsets(text, lang)
    if languages.is_unspaced(lang):
        kept = [(c, o) for c, o in zip(norm, offsets, strict=True) if not c.isspace()]
        norm, offsets = "".join(c for c, _ in kept), [o for _, o in kept]
    return norm, offsets


def locate(text: str, target: str, lang: str) -> tuple[int, int] | None:
    """Span (start, end) of `target` in `text`, comparing case/width/variant/stress-insensitively."""
    if not target.strip():
        return None
    idx = text.find(target)
    if idx >= 0:
        return idx, idx + len(target)
    norm, offsets = _norm_index(text, lang)
    needle = normalize_for_match(target, lang)
    if languages.is_unspaced(lang):
        needle = "".join(c for c in needle if not c.isspace())
    if not needle:
        return None
    i = norm.find(needle)
    if i < 0:
        return None
    return offsets[i], offsets[i + len(needle) - 1] + 1


def _passage(text: str, start: int, end: int) -> tuple[str, int]:
    """The paragraph holding text[start:end] and the span's offset in it (leading spaces dropped)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    para = text[line_start : len(text) if line_end < 0 else line_end]
    lead = len(para) - len(para.lstrip())
    return para.strip(), start - line_start - lead


def _find_in_passage(text: str, target: str, lang: str) -> tuple[str, int, int] | None:
    """(passage, start, end) of the first occurrence not on a bare title line ("欧州連合\n\n欧州連合（...").

    When the name only occurs as a title line, the whole text is the passage (a one-word sentence teaches
    nothing about finding a name in context).
    """
    base = 0
    first = None
    while base < len(text):
        span = locate(text[base:], target, lang)
        if span is None:
            break
        start, end = span[0] + base, span[1] + base
        para, offset = _passage(text, start, end)
        if para != text[start:end].strip():
            return para, offset, offset + end - start
        first = first or (start, end)
        nxt = text.find("\n", end)
        if nxt < 0:
            break
        base = nxt + 1
    if first is None:
        return None
    lead = len(text) - len(text.lstrip())
    return text.strip(), first[0] - lead, first[1] - lead


def convert_record(rec: dict, lang: str, stats: ImportStats) -> dict | None:
    """One corpus record -> one pairs row (None when the target cannot be found in the text)."""
    raw_target, text = rec["tgt_entity"].strip(), rec["text"]
    if raw_target and raw_target in text:
        stats.found_verbatim += 1
    if languages.has_stress_marks(lang):
        stripped = strip_stress(text)
        if stripped != text:
            stats.stress_stripped_texts += 1
        text = stripped
    target = strip_disambiguator(raw_target)
    if target != raw_target:
        stats.disambiguators_stripped += 1
    hit = _find_in_passage(text, target, lang)
    if hit is None and ", " in target:  # "Болджер, Джим" -> "Джим Болджер"
        family, _, given = target.partition(", ")
        hit = _find_in_passage(text, f"{given} {family}", lang)
        if hit is not None:
            stats.names_uninverted += 1
    if hit is None:
        if len(stats.examples_not_found) < 20:
            stats.examples_not_found.append({"tgt_entity": raw_target, "text": text[:160]})
        return None
    stats.found_normalised += 1
    sentence, start, end = hit
    surface = sentence[start:end]
    return {
        "lang": lang,
        "title": raw_target,
        "surface": surface,
        "en_title": rec["eng_entity"].strip(),
        "qid": None,
        "type": None,
        "type_source": None,
        "sentence": sentence,
        "aliases": [],
        "dump_date": None,
    }


def import_eat(corpus: str | Path, lang: str | None, out: str | Path, overwrite: bool = False) -> ImportStats:
    """Convert one corpus file into `out/pairs-00000.parquet` plus `out/import-stats.json`."""
    import pyarrow.parquet as pq

    from eat.console import track
    from eat.io import atomic_dir
    from wiki_data.schema import pairs_table, shard_name

    corpus, out = Path(corpus), Path(out)
    named = lang_from_name(corpus)
    lang = lang or named
    if not lang:
        raise UserError("cannot tell the language from the file name; pass --lang", path=corpus)
    if named and lang != named:
        raise UserError(
            f"--lang {lang} but the file is the authors' {named} corpus (corpus_{named}.json)", path=corpus
        )
    records = read_corpus(corpus)
    if not records:
        raise UserError("the corpus holds no records", path=corpus)
    stats = ImportStats(corpus=str(corpus), lang=lang, records=len(records))
    rows, seen = [], set()
    for i, rec in enumerate(track(records, f"import {corpus.name}", unit="records")):
        row = convert_record(rec, lang, stats)
        if row is None:
            continue
        key = (row["surface"], row["en_title"], row["sentence"])
        if key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        row["page_id"] = i
        rows.append(row)
    stats.written = len(rows)
    with atomic_dir(out, overwrite, [corpus], "eat wiki import-eat") as tmp:
        pq.write_table(pairs_table(rows), tmp / shard_name(0))
        (tmp / STATS_NAME).write_text(
            json.dumps(stats.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    return stats


def stats_table(stats: ImportStats):
    """A rich table of what was found before and after normalisation."""
    from rich.table import Table

    table = Table(title=f"import-eat {stats.corpus} ({stats.lang})")
    table.add_column("")
    table.add_column("records", justify="right")
    table.add_column("share", justify="right")
    n = max(stats.records, 1)
    for label, value in (
        ("records", stats.records),
        ("target found verbatim", stats.found_verbatim),
        ("target NOT found verbatim", stats.not_found_verbatim),
        ("target found after normalisation", stats.found_normalised),
        ("target NOT found after normalisation", stats.not_found_normalised),
        ("disambiguators stripped", stats.disambiguators_stripped),
        ("inverted names restored", stats.names_uninverted),
        ("texts with stress marks removed", stats.stress_stripped_texts),
        ("duplicates dropped", stats.duplicates),
        ("pairs written", stats.written),
    ):
        table.add_row(label, f"{value:,}", f"{value / n:.1%}")
    return table
