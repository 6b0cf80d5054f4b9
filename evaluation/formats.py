"""Labelled test sets in and out: column files (IOB2/BIO, BMES/BIOES) and span JSON / JSONL.

Column files: one token per line, token in the first column, tag in the LAST column, tab-separated
(a line with a tab is split on tabs only, so a token may contain spaces) or whitespace-separated;
a blank line ends a sentence; `-DOCSTART-` lines are skipped; a missing trailing blank line is fine.

Text reconstruction: for unspaced scripts (zh, ja, th, ...: `eat.languages.UNSPACED`) tokens are joined
with no separator, for all others with one space; `Sentence.token_spans` records where each token sits.

WikiANN `#` tokens (zh/ja): WikiANN replaced a space inside a name by a `#` token tagged `O`. For unspaced
languages a token that is exactly `#` becomes ONE SPACE CHARACTER in `Sentence.text` (so models see the
real sentence), but stays a token (`tokens[i] == "#"`, `token_spans[i]` covers the space) and keeps its
file tag, so token-level metrics line up with the file and gold entities follow the file's tags exactly
(a name written `A#B` with tags `B-X I-X O I-X` gives the same chunks seqeval gives). `spans_to_tags`
mirrors this: a whitespace token inside a predicted span is tagged `O` and the span continues with `I-`.
Pass `hash_as_space=False` to keep `#` literally.

Span JSON: a JSON array, or JSONL with one object a line, of `{"text", "entities": [{"name", "span":
[start, end], "type"}]}` (optional "id", "lang"); `text[start:end]` must equal `name`. Rows in our own
form (`{"id", "text", "gold": [{"start", "end", "type", "text"}]}`, e.g. an eval run's predictions.jsonl)
are read too.

Label map: `{"PER.NAM": "PER", "PER.NOM": None}` renames types; a type mapped to None, "", or "O" is
dropped (its tokens become `O`). Types not in the map are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from eat import languages
from eat.conll import read_columns
from eat.errors import UserError
from evaluation.entities import Entity, Sentence
from evaluation.tags import lenient_chunks, to_iob2

FORMATS = ("auto", "bio", "bmes", "spans")
_TAG_RE = {
    "bio": re.compile(r"^(O|[BI]-.+)$"),
    "bmes": re.compile(r"^(O|[BIMES]-.+)$"),
}


def map_type(type_: str, label_map: Mapping[str, str | None] | None) -> str | None:
    """Apply a label map to one entity type; None means the entity is dropped."""
    if label_map is None or type_ not in label_map:
        return type_
    new = label_map[type_]
    if new is None or new in ("", "O"):
        return None
    return str(new)


def _map_tag(tag: str, label_map: Mapping[str, str | None] | None) -> str:
    if tag == "O" or label_map is None:
        return tag
    new = map_type(tag[2:], label_map)
    return "O" if new is None else f"{tag[:2]}{new}"


def parse_label_map(items) -> dict[str, str]:
    """`--label-map` entries FROM=TO (repeated or comma-separated) -> {FROM: TO}; an empty TO drops the label."""
    out: dict[str, str] = {}
    for item in items:
        for part in str(item).split(","):
            if not part.strip():
                continue
            src, sep, dst = part.partition("=")
            src, dst = src.strip(), dst.strip()
            if not sep or not src or "=" in dst:
                raise UserError(f"--label-map {part.strip()!r} is not FROM=TO (use FROM= to drop a label)")
            out[src] = dst
    return out


def detect_format(path: Path) -> str:
    """auto: .json/.jsonl are spans; column files are bmes when any tag has an M-/E-/S- prefix."""
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl"):
        return "spans"
    try:
        with open(path, encoding="utf-8-sig") as fh:  # -sig: a UTF-8 BOM is not part of the first token
            for line in fh:
                cols = line.rstrip("\r\n").split("\t" if "\t" in line else None)
                if cols and cols[-1][:2] in ("M-", "E-", "S-"):
                    return "bmes"
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None
    return "bio"


def not_utf8(path: Path, exc: UnicodeDecodeError) -> UserError:
    return UserError(f"not UTF-8 text (byte {exc.start} cannot be decoded); convert it to UTF-8", path=path)


def load_dataset_file(
    path: str | Path,
    format: str = "auto",
    lang: str = "xx",
    label_map: Mapping[str, str | None] | None = None,
    hash_as_space: bool | None = None,
) -> list[Sentence]:
    """Read a labelled test file into Sentences (gold spans in character offsets of `text`).

    format: auto | bio | bmes | spans. hash_as_space: default True for unspaced languages (see module doc).
    Raises UserError naming the file and line for anything malformed.
    """
    path = Path(path)
    if format not in FORMATS:
        raise UserError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}", path=path)
    if path.is_dir():
        raise UserError("is a directory, expected a test file", path=path)
    if not path.is_file():
        raise UserError("test file not found", path=path)
    try:
        if format == "auto":
            format = detect_format(path)
        if format == "spans":
            return _load_spans(path, lang, label_map)
        if hash_as_space is None:
            hash_as_space = languages.is_unspaced(lang)
        return _load_columns(path, format, lang, label_map, hash_as_space)
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None


def _load_columns(path: Path, fmt: str, lang: str, label_map, hash_as_space: bool) -> list[Sentence]:
    """Test sentences of a column file (`eat.conll` reads the columns; the tags are checked against `fmt`)."""
    tag_re = _TAG_RE[fmt]
    sentences: list[Sentence] = []
    for n, sentence in enumerate(read_columns(path)):
        for tag, lineno in zip(sentence.tags, sentence.lines, strict=True):
            if not tag_re.match(tag):
                allowed = "O, B-X, I-X" if fmt == "bio" else "O, B-X, I-X, M-X, E-X, S-X"
                raise UserError(f"bad {fmt} tag {tag!r} (allowed: {allowed})", path=path, line=lineno)
        tags = [_map_tag(tag, label_map) for tag in sentence.tags]
        sentences.append(_make_sentence(str(n), sentence.tokens, tags, lang, hash_as_space))
    return sentences


def _make_sentence(sid: str, tokens: list[str], tags: list[str], lang: str, hash_as_space: bool) -> Sentence:
    unspaced = languages.is_unspaced(lang)
    sep = languages.joiner(lang)
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, tok in enumerate(tokens):
        if i and sep:
            parts.append(sep)
            pos += len(sep)
        piece = " " if (hash_as_space and unspaced and tok == "#") else tok
        parts.append(piece)
        spans.append((pos, pos + len(piece)))
        pos += len(piece)
    text = "".join(parts)
    gold = [
        Entity(spans[b][0], spans[e - 1][1], type_, text[spans[b][0] : spans[e - 1][1]])
        for type_, b, e in lenient_chunks(to_iob2(tags))
    ]
    return Sentence(
        id=sid, text=text, lang=lang, gold=gold, tokens=list(tokens), token_spans=spans, tags=list(tags)
    )


def _iter_json_records(path: Path) -> Iterable[tuple[int, object]]:
    """(line or record number, object) from a JSON array or JSONL file."""
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
        except RecursionError:
            raise UserError("JSON nested too deeply to be a test set", path=path) from None
        if isinstance(data, dict):
            data = data.get("data", data.get("sentences", [data]))
        if not isinstance(data, list):
            raise UserError("expected a JSON array of sentences", path=path)
        yield from ((i, rec) for i, rec in enumerate(data, 1))
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"invalid JSON line: {exc.msg}", path=path, line=lineno) from None
        except RecursionError:
            raise UserError("JSON nested too deeply to be a test record", path=path, line=lineno) from None
        yield lineno, record


def parse_span_record(rec: object, where: str, lang: str, label_map=None, key: str | None = None) -> Sentence:
    """One span record -> Sentence. `key` picks the entity list ("entities", "gold" or "pred")."""
    if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
        raise UserError(f"{where}: expected an object with a string `text`")
    text = rec["text"]
    if key is None:
        key = "entities" if "entities" in rec else "gold"
    items = rec.get(key, [])
    if not isinstance(items, list):
        raise UserError(f"{where}: `{key}` must be a list")
    ents: list[Entity] = []
    for k, item in enumerate(items):
        ents_where = f"{where}: {key}[{k}]"
        if not isinstance(item, dict) or "type" not in item:
            raise UserError(f"{ents_where}: expected an object with `type` and `span` or `start`/`end`")
        try:
            if "span" in item:
                start, end = (int(x) for x in item["span"])
                name = item.get("name", item.get("text"))
            else:
                start, end = int(item["start"]), int(item["end"])
                name = item.get("text", item.get("name"))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{ents_where}: `span` must be [start, end] of integers") from None
        if not (0 <= start < end <= len(text)):
            raise UserError(f"{ents_where}: span [{start}, {end}] is outside the text (length {len(text)})")
        if name is not None and name != "" and text[start:end] != name:
            raise UserError(f"{ents_where}: text[{start}:{end}] is {text[start:end]!r}, not {name!r}")
        type_ = map_type(str(item["type"]), label_map)
        if type_ is not None:
            ents.append(Entity(start, end, type_, text[start:end]))
    return Sentence(
        id=str(rec.get("id", "")), text=text, lang=str(rec.get("lang") or lang), gold=sorted(ents)
    )


def _load_spans(path: Path, lang: str, label_map) -> list[Sentence]:
    out = []
    for n, rec in _iter_json_records(path):
        where = f"{path}:{n}"
        sent = parse_span_record(rec, where, lang, label_map)
        if not sent.id:
            sent.id = str(len(out))
        out.append(sent)
    return out


def write_columns(path: str | Path, sentences: Sequence[Sentence], tags: Sequence[Sequence[str]]) -> None:
    """Write `token<TAB>tag` lines (blank line between sentences), atomically."""
    from eat.io import atomic_open

    with atomic_open(path) as fh:
        for sent, seq in zip(sentences, tags, strict=True):
            for tok, tag in zip(sent.tokens or [], seq, strict=True):
                fh.write(f"{tok}\t{tag}\n")
            fh.write("\n")


def write_spans_jsonl(
    path: str | Path, sentences: Sequence[Sentence], entities: Sequence[Sequence[Entity]]
) -> None:
    """Write span JSONL (`{id, text, entities: [{name, span, type}]}`), atomically."""
    from eat.io import write_jsonl

    write_jsonl(
        path,
        (
            {
                "id": s.id,
                "text": s.text,
                "entities": [
                    {"name": e.text or s.text[e.start : e.end], "span": [e.start, e.end], "type": e.type}
                    for e in ents
                ],
            }
            for s, ents in zip(sentences, entities, strict=True)
        ),
    )
