"""The text format of entity lists the NER tagger is trained to emit, and its parser.

Format: `(TYPE, entity)` items joined by `"; "` on one line, in sentence order, e.g.
`(PER, Marie Curie); (ORG, Apple, Inc.); (LOC, Paris)`; a sentence without entities is `(NONE)`.

Why one line: T5 sentencepiece tokenizers turn newlines into spaces, so a newline-separated target would not
survive tokenisation. Commas inside a name stay parseable because the type never contains a comma: the
entity is everything after the first `", "` up to the `")"` that ends the item (a `)` followed by `;`, a
newline or the end of the text), so `(ORG, Foo (band))` also round-trips. The parser also accepts one item per
line, which is what the LLM prompts ask for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NONE = "(NONE)"
SEPARATOR = "; "

# An item: "(" TYPE ", " entity ")" where the closing paren is followed by a separator or the end.
_ITEM = re.compile(r"\(\s*([A-Za-z][A-Za-z_\-]*)\s*,\s*(.+?)\)(?=\s*(?:;|\n|$))", re.DOTALL)


def format_entities(entities: Iterable[tuple[str, str]]) -> str:
    """[(type, text), ...] -> "(TYPE, text); (TYPE, text)" ("(NONE)" for an empty list)."""
    items = [f"({etype}, {text})" for etype, text in entities]
    return SEPARATOR.join(items) if items else NONE


def parse_entities(text: str) -> list[tuple[str, str]]:
    """Inverse of `format_entities`; tolerant of newlines between items and of stray text around them.

    Returns (TYPE, entity) pairs in order; duplicates are kept (a name can occur twice in a sentence).
    """
    out: list[tuple[str, str]] = []
    for match in _ITEM.finditer(text.strip()):
        etype, entity = match.group(1).strip(), match.group(2).strip()
        if etype.upper() == "NONE" or not entity:
            continue
        out.append((etype, entity))
    return out


def spans_to_entities(tokens: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """BIO/IOB1/IOB2 tags -> [(TYPE, "token token"), ...] joined with spaces, in order."""
    entities: list[tuple[str, str]] = []
    current: list[str] = []
    ctype: str | None = None
    for token, tag in zip(tokens, tags, strict=True):
        prefix, _, etype = tag.partition("-")
        if tag == "O" or not etype:
            if ctype is not None:
                entities.append((ctype, " ".join(current)))
            current, ctype = [], None
            continue
        if prefix == "B" or etype != ctype:
            if ctype is not None:
                entities.append((ctype, " ".join(current)))
            current, ctype = [token], etype
        else:
            current.append(token)
    if ctype is not None:
        entities.append((ctype, " ".join(current)))
    return entities
