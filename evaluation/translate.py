"""Stage 1's answer: the English translation inside a model's reply.

Real models wrap it: a list of names before it ("Names: ... / English: ..."; the prompt's `answer_after`
label), a lead-in ("Here is the translation:", "Translation:", any line ending in ':' before another),
list markers ("1. "), markdown emphasis or quotes around it, and notes after it ("Note: ...", "(Note: ...)"). Stage 2 must see the translation alone: an English tagger would tag the
names of the lead-in list or of the notes as well.
"""

from __future__ import annotations

import re

from eat.prompts import LANGUAGE_NAMES, ChatTemplate

# A line that only introduces what follows ("Here is the English translation:", "Translation:").
_LEAD_IN = re.compile(
    r"^(?:here is|here's|sure|the)?[\w\s,'’!]{0,40}(?:translation|english)[^:：]{0,20}[:：]\s*$", re.I
)
# A label in front of the translation on the same line.
_LABEL = re.compile(
    r"^(?:(?:here is|here's)\s+)?(?:the\s+)?(?:english\s+)?(?:translation|translated text|english)"
    r"(?:\s+(?:is|reads))?\s*[:：]\s*",
    re.I,
)
_NOTE = re.compile(r"^[(\[]?\s*(?:note|notes|explanation|translator'?s note)\b", re.I)
_NAMES = re.compile(r"^(?:names?|entities|named entities)\s*[:：]", re.I)
# The source text repeated under its language's name ("Japanese: ...", "Chinese text: ...").
_SOURCE = re.compile(
    rf"^(?:{'|'.join(n for n in LANGUAGE_NAMES.values() if n != 'English')})(?:\s+(?:text|sentence))?\s*[:：]",
    re.I,
)
_MARKER = re.compile(r"^(?:\d+\s*[.)]|[-*•])\s+")  # a list marker in front of a line
_TRAILING_NOTE = re.compile(r"\s*[(\[]\s*(?:note|notes|translator'?s note)\b[^)\]]*[)\]]?\s*$", re.I)
_QUOTES = "\"'“”‘’「」`"


def read_translation(reply: str, template: ChatTemplate) -> str:
    """The translation in `reply` (the last reply of the translate chat); "" when there is none."""
    text = template.answer(reply)
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln.replace("**", "").replace("__", "").strip() for ln in lines if ln.strip()]
    kept = []
    for i, line in enumerate(lines):
        if _NOTE.match(line):
            break  # notes come after the translation, never before it
        if _NAMES.match(line) or _LEAD_IN.match(line) or _SOURCE.match(line):
            continue
        if line.endswith((":", "：")) and i + 1 < len(lines):
            continue  # any other line that introduces the next ("The names in the sentence are:")
        line = _TRAILING_NOTE.sub("", _MARKER.sub("", _LABEL.sub("", line).strip())).strip()
        if line:
            kept.append(line)
    if not kept:
        return ""
    first = kept[0]  # one sentence in, one line out: later lines are alternatives or commentary
    for _ in range(2):
        if len(first) > 1 and first[0] in _QUOTES and first[-1] in _QUOTES:
            first = first[1:-1].strip()
    return first
