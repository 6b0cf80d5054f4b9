"""Tag sequences: the chunking rules seqeval counts entities by, scheme conversion, and spans as tags.

Both the loaders (`formats`: a column file's tags become gold spans) and the metrics (`metrics`: tags become
the entities seqeval would count) read tags through this module, so they chunk them the same way.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from eat.errors import UserError
from evaluation.entities import Entity, Sentence

MODES = ("default", "strict")


def _split_tag(chunk: str, suffix: bool) -> tuple[str, str]:
    """(prefix letter, type) the way seqeval's default mode reads a tag."""
    if suffix:
        return chunk[-1], chunk[:-1].rsplit("-", maxsplit=1)[0] or "_"
    return chunk[0], chunk[1:].split("-", maxsplit=1)[-1] or "_"


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_tag != "." and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and tag != "." and prev_type != type_


def lenient_chunks(seq: Sequence[str], suffix: bool = False) -> list[tuple[str, int, int]]:
    """conlleval/seqeval-default chunks of one flat tag sequence: (type, start, end) with end EXCLUSIVE."""
    prev_tag, prev_type = "O", ""
    begin = 0
    chunks: list[tuple[str, int, int]] = []
    for i, chunk in enumerate([*seq, "O"]):
        if not chunk:
            chunk = "O"
        tag, type_ = _split_tag(chunk, suffix)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


_STRICT_PREFIXES = frozenset("BIO")


def strict_chunks(seq: Sequence[str], suffix: bool = False) -> list[tuple[str, int, int]]:
    """seqeval strict IOB2 entities of one sentence: B-X then the longest run of I-X (end exclusive)."""
    parsed = []
    for tok in seq:
        prefix = tok[-1] if suffix else tok[0]
        if prefix not in _STRICT_PREFIXES:
            raise UserError(f"tag {tok!r} is not IOB2 (strict mode allows B-, I- and O only)")
        parsed.append((prefix, (tok[:-1] if suffix else tok[1:]).strip("-") or "_"))
    chunks = []
    i, n = 0, len(parsed)
    while i < n:
        prefix, type_ = parsed[i]
        if prefix == "B":
            j = i + 1
            while j < n and parsed[j][0] == "I" and parsed[j][1] == type_:
                j += 1
            chunks.append((type_, i, j))
            i = j
        else:
            i += 1
    return chunks


def tags_to_chunks(
    sequences: Sequence[Sequence[str]], mode: str = "default", suffix: bool = False
) -> list[list[tuple[str, int, int]]]:
    """Per sentence: (type, start token, end token exclusive), as seqeval would count them in `mode`."""
    if mode == "strict":
        return [strict_chunks(s, suffix) for s in sequences]
    if mode != "default":
        raise UserError(f"unknown metric mode {mode!r}; use one of {', '.join(MODES)}")
    # seqeval flattens all sentences with an "O" between them; chunking across that boundary is
    # (almost) impossible, but we reproduce it exactly and map offsets back to sentences.
    flat: list[str] = []
    starts: list[int] = []
    for s in sequences:
        starts.append(len(flat))
        flat.extend(s)
        flat.append("O")
    out: list[list[tuple[str, int, int]]] = [[] for _ in sequences]
    si = 0
    for type_, b, e in lenient_chunks(flat[:-1] if flat else flat, suffix):
        while si + 1 < len(starts) and starts[si + 1] <= b:
            si += 1
        out[si].append((type_, b - starts[si], e - starts[si]))
    return out


def to_iob2(tags: Sequence[str]) -> list[str]:
    """BMES / BIOES / IOBES tags as IOB2 (S- -> B-, M-/E- -> I-); IOB2 tags are returned unchanged.

    Lossless for well-formed sequences: the same entities, in the one scheme the tag metrics chunk.
    """
    return [("B" + t[1:]) if t[:2] == "S-" else ("I" + t[1:]) if t[:2] in ("M-", "E-") else t for t in tags]


def spans_to_tags(sentence: Sentence, entities: Sequence[Entity], scheme: str = "IOB2") -> list[str]:
    """One tag per token of `sentence` for character-span `entities` (IOB2 or IOBES/BIOES).

    A token belongs to an entity when their character spans overlap; when entities overlap, the one
    that starts first (then the longer) wins the token. Whitespace tokens (WikiANN `#`) are tagged `O`
    and the entity continues with `I-` after them, mirroring the WikiANN convention.
    """
    if sentence.tokens is None or sentence.token_spans is None:
        raise ValueError(f"sentence {sentence.id!r} has no tokens; token-level tags need a token-based file")
    scheme = scheme.upper()
    if scheme not in ("IOB2", "BIO", "IOBES", "BIOES", "BMES"):
        raise ValueError(f"unknown tag scheme {scheme!r}")
    n = len(sentence.token_spans)
    owner: list[int] = [-1] * n
    ents = sorted(entities, key=lambda e: (e.start, -(e.end - e.start)))
    spans = sentence.token_spans
    text = sentence.text
    starts = [s for s, _ in spans]  # increasing: binary search for each entity's first token
    for k, e in enumerate(ents):
        i = max(bisect.bisect_right(starts, e.start) - 1, 0)
        while i < n and spans[i][0] < e.end:
            t = spans[i][1]
            if t > e.start and owner[i] == -1:
                owner[i] = k
            i += 1
    tags = ["O"] * n
    last = -1  # owner of the last non-whitespace token
    for i in range(n):
        k = owner[i]
        s, t = spans[i]
        if k == -1:
            last = -1
        elif text[s:t].strip():
            tags[i] = ("I-" if last == k else "B-") + ents[k].type
            last = k
    if scheme in ("IOBES", "BIOES", "BMES"):
        mid = "M-" if scheme == "BMES" else "I-"
        for i, tag in enumerate(tags):
            if tag == "O":
                continue
            nxt = tags[i + 1] if i + 1 < n else "O"
            cont = nxt[:2] == "I-" and nxt[2:] == tag[2:]
            if tag[:2] == "B-":
                tags[i] = tag if cont else "S-" + tag[2:]
            else:
                tags[i] = (mid if cont else "E-") + tag[2:]
    return tags
