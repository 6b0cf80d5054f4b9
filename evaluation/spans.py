"""Stage 4: snap an alignment answer onto an exact span of the original sentence, and say how.

An LLM asked "which phrase of the sentence is X?" rarely copies it byte for byte: it switches Simplified and
Traditional characters, changes width or case, adds quotes, drops a Korean particle or inflects a Russian
noun. The matchers below go from strict to tolerant and stop at the first that finds a span:

1. `exact`: the answer occurs verbatim.
2. `normalized`: it occurs after width/case/zh-variant/stress normalisation (`wiki_data.normalize`, the same
   converter used when mining), mapped back through the offsets.
3. `lexicon`: a surface form mined for the English entity occurs (exact or normalised).
4. `char-lcs` (Han, kana, hangul: scripts written without spaces between the parts of a name): the longest
   common substring of answer and sentence, ignoring spaces and middle dots, when it covers at least
   `min_overlap` of the answer. Kana is treated exactly like Han, so katakana names are kept.
5. `token`: for scripts with spaces, the longest run of answer words matching consecutive sentence words,
   where a match tolerates attached punctuation, known suffixes (Korean particles, Russian case endings)
   and Arabic proclitics (و ف ب ل ك ال).
6. `english`: the English entity itself occurs in the sentence (Latin-script names inside zh/ja text).

Repeated mentions: spans already taken by other entities of the sentence are avoided when another
occurrence exists, so two English entities aligned to the same string land on two different occurrences.

`place` does stage 4 for a whole sentence: it snaps every answer (longer ones first), widens each span to
the test file's token boundaries, and drops a span that overlaps one placed before it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.entities import Entity, Sentence
from evaluation.records import Alignment, Span
from wiki_data.normalize import normalize_with_offsets

KO_PARTICLES = [
    "은",
    "는",
    "이",
    "가",
    "을",
    "를",
    "의",
    "에",
    "에서",
    "에게",
    "께",
    "께서",
    "으로",
    "로",
    "와",
    "과",
    "도",
    "만",
    "한테",
    "부터",
    "까지",
    "이나",
    "나",
    "랑",
    "이랑",
    "보다",
    "처럼",
    "에는",
    "에서는",
    "으로는",
    "로는",
    "와의",
    "과의",
    "에서의",
    "으로의",
    "로의",
    "이다",
    "였다",
    "이었다",
    "에도",
    "에서도",
    "으로서",
    "로서",
    "으로써",
    "로써",
    "이며",
    "며",
    "이고",
    "고",
    "에의",
    "만의",
]
RU_ENDINGS = [
    "а",
    "я",
    "ы",
    "и",
    "у",
    "ю",
    "е",
    "ё",
    "о",
    "ь",
    "ом",
    "ем",
    "ём",
    "ой",
    "ей",
    "ою",
    "ею",
    "ам",
    "ям",
    "ами",
    "ями",
    "ах",
    "ях",
    "ов",
    "ев",
    "ёв",
    "ий",
    "ый",
    "ой",
    "ая",
    "яя",
    "ое",
    "ее",
    "ие",
    "ые",
    "ого",
    "его",
    "ому",
    "ему",
    "ым",
    "им",
    "ую",
    "юю",
    "ых",
    "их",
    "ую",
    "ию",
    "ии",
    "ия",
    "ие",
    "ья",
    "ье",
    "ью",
    "ьи",
    "ей",
]
AR_PROCLITICS = sorted(
    {c + p + a for c in ("", "و", "ف") for p in ("", "ب", "ل", "ك") for a in ("", "ال")}
    | {"لل", "ولل", "فلل"},
    key=len,
    reverse=True,
)
SUFFIXES = {"ko": KO_PARTICLES, "ru": RU_ENDINGS, "uk": RU_ENDINGS, "be": RU_ENDINGS, "bg": RU_ENDINGS}
PREFIXES = {"ar": AR_PROCLITICS, "fa": ("و",)}

_QUOTES = "\"'“”‘’「」『』《》〈〉【】()（）[]［］<>«»„‚`*"
_SEPARATORS = set(" \t\u3000・·･‧•-‐‑–—_")
# "Answer:", "The phrase is:", "The final result is", "The corresponding Chinese phrase is: ..."
_PREAMBLE = re.compile(
    r"^(?:the\s+)?(?:final\s+)?(?:raw\s+)?(?:[a-z]+\s+){0,2}?(?:result|answer|phrase|output|name)"
    r"(?:\s+is\s*[:：]?|\s*[:：])\s*",
    re.I,
)
# An English gloss after the phrase: "李白 (Li Bai)".
_GLOSS = re.compile(r"\s*[(（][\x20-\x7e]*[)）]$")


@dataclass
class Snap:
    """The outcome of snapping one answer; `start`/`end` are None when it failed (then `reason` says why)."""

    candidate: str
    method: str
    start: int | None = None
    end: int | None = None
    text: str | None = None
    score: float = 0.0
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.start is not None


_PAIRS = dict(zip("「『《〈【(（[［<«", "」』》〉】)）]］>»", strict=True))


def _strip_quotes(text: str) -> str:
    """Quotes and brackets around the phrase; a closing bracket whose opener is in the phrase stays
    ("機動戰士V GUNDAM（凱特・布希）")."""
    while text:
        if text[0] in _QUOTES and not (text[0] in _PAIRS and _PAIRS[text[0]] in text[1:-1]):
            text = text[1:].strip()
        elif text[-1] in _QUOTES and not any(c == text[-1] and o in text for o, c in _PAIRS.items()):
            text = text[:-1].strip()
        else:
            break
    return text


def clean_answer(answer: str) -> str:
    """The phrase inside a model reply: first non-empty line (the next one after a lone 'The phrase is:'),
    no 'Answer:' preamble, no quotes or markdown bold around it, no English gloss after it ("李白 (Li Bai)")."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    for line in lines:  # a preamble alone on its line ("The phrase is:") introduces the next line
        text = _PREAMBLE.sub("", line.replace("**", "").replace("__", "")).strip()
        for _ in range(3):
            if _GLOSS.search(text) and not text.isascii() and _GLOSS.sub("", text).strip(_QUOTES + " "):
                text = _GLOSS.sub("", text)
            text = _strip_quotes(text.strip()).rstrip("。.，,、；;：:!！?？").strip()
        if text:
            return text
    return ""


def is_unspaced_char(ch: str) -> bool:
    """Han, kana (hiragana, katakana incl. the long-vowel mark) and hangul."""
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x31F0 <= code <= 0x31FF  # katakana phonetic extensions
        or 0xFF66 <= code <= 0xFF9F  # half-width katakana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2FA1F
        or 0xAC00 <= code <= 0xD7AF  # hangul syllables
        or 0x1100 <= code <= 0x11FF
        or 0x3130 <= code <= 0x318F
        or code == 0x3005  # 々
    )


def _overlaps(start: int, end: int, taken: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in taken)


def _pick(spans: Sequence[tuple[int, int]], taken: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], bool]:
    """First span not overlapping a taken one (else the first, flagged as a repeat)."""
    for span in spans:
        if not _overlaps(*span, taken):
            return span, False
    return spans[0], True


def _find_all(haystack: str, needle: str) -> list[int]:
    out, i = [], haystack.find(needle)
    while i >= 0 and needle:
        out.append(i)
        i = haystack.find(needle, i + 1)
    return out


def _exact(candidate: str, text: str) -> list[tuple[int, int]]:
    return [(i, i + len(candidate)) for i in _find_all(text, candidate)]


def _normalized(candidate: str, text: str, lang: str) -> list[tuple[int, int]]:
    norm_text, offsets = normalize_with_offsets(text, lang)
    norm_cand = normalize_with_offsets(candidate, lang)[0].strip()
    if not norm_cand:
        return []
    return [(offsets[i], offsets[i + len(norm_cand) - 1] + 1) for i in _find_all(norm_text, norm_cand)]


def _compact(text: str, lang: str) -> tuple[str, list[int]]:
    """Normalised text without spaces, middle dots and punctuation, with each char's original index."""
    norm, offsets = normalize_with_offsets(text, lang)
    chars, idx = [], []
    for ch, off in zip(norm, offsets, strict=True):
        if ch in _SEPARATORS or unicodedata.category(ch)[0] in "PZ":
            continue
        chars.append(ch)
        idx.append(off)
    return "".join(chars), idx


def _longest_common_runs(a: Sequence, b: Sequence, same: Callable[[Any, Any], bool]) -> tuple[int, list[int]]:
    """Length of the longest common run of `a` and `b`, and every end index in `b` where one ends.

    Dynamic programming over (answer x sentence); both are short, so O(len(a) * len(b)) is fine.
    """
    best, ends = 0, []
    prev = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        cur = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if same(a[i - 1], b[j - 1]):
                cur[j] = prev[j - 1] + 1
                if cur[j] > best:
                    best, ends = cur[j], [j]
                elif cur[j] == best:
                    ends.append(j)
        prev = cur
    return best, ends


def _char_lcs(candidate: str, text: str, lang: str, taken, min_overlap: float) -> Snap | None:
    cand, _ = _compact(candidate, lang)
    hay, offsets = _compact(text, lang)
    if not cand or not hay:
        return None
    best, ends = _longest_common_runs(cand, hay, str.__eq__)
    score = best / len(cand)
    if best == 0 or score < min_overlap or (best < 2 and len(cand) > 1):
        return Snap(candidate, "char-lcs", score=score, reason=f"longest common substring covers {score:.0%}")
    spans = sorted({(offsets[j - best], offsets[j - 1] + 1) for j in ends})
    (start, end), repeat = _pick(spans, taken)
    return Snap(candidate, "char-lcs", start, end, text[start:end], score, "repeat" if repeat else None)


_WORD = re.compile(r"\S+")


def _core(token: str, start: int) -> tuple[str, int, int]:
    """A whitespace token without the punctuation attached to it, with its span."""
    i, j = 0, len(token)
    while i < j and unicodedata.category(token[i])[0] in "PS":
        i += 1
    while j > i and unicodedata.category(token[j - 1])[0] in "PS":
        j -= 1
    return token[i:j], start + i, start + j


def _words(text: str, lang: str) -> list[tuple[str, int, int]]:
    out = []
    for m in _WORD.finditer(text):
        core, s, e = _core(m.group(), m.start())
        if core:
            out.append((normalize_with_offsets(core, lang)[0], s, e))
    return out


def _stems(word: str, lang: str) -> set[str]:
    forms = {word}
    for pre in PREFIXES.get(lang, ()):
        if pre and word.startswith(pre) and len(word) - len(pre) >= 2:
            forms.add(word[len(pre) :])
    return forms


def words_match(a: str, b: str, lang: str) -> bool:
    """Same word up to known affixes: 서울 ~ 서울에서, Москва ~ Москвы, القاهرة ~ بالقاهرة."""
    if a == b:
        return True
    suffixes = set(SUFFIXES.get(lang, ())) | {""}
    for x in _stems(a, lang):
        for y in _stems(b, lang):
            if x == y:
                return True
            p = 0
            while p < min(len(x), len(y)) and x[p] == y[p]:
                p += 1
            if p >= 2 and p * 2 >= min(len(x), len(y)) and x[p:] in suffixes and y[p:] in suffixes:
                return True
    return False


def _token_match(candidate: str, text: str, lang: str, taken, min_overlap: float) -> Snap | None:
    cand = _words(candidate, lang)
    words = _words(text, lang)
    if not cand or not words:
        return None
    best, ends = _longest_common_runs(cand, words, lambda a, b: words_match(a[0], b[0], lang))
    score = best / len(cand)
    if best == 0 or score < min_overlap:
        return Snap(candidate, "token", score=score, reason=f"matching words cover {score:.0%}")
    spans = sorted({(words[j - best][1], words[j - 1][2]) for j in ends})
    (start, end), repeat = _pick(spans, taken)
    return Snap(candidate, "token", start, end, text[start:end], score, "repeat" if repeat else None)


def _direct(method: str, candidate: str, text: str, lang: str, taken) -> Snap | None:
    for name, finder in (("exact", _exact), ("normalized", lambda c, t: _normalized(c, t, lang))):
        spans = finder(candidate, text)
        if spans:
            (start, end), repeat = _pick(spans, taken)
            label = name if method == "answer" else f"{method}-{name}"
            return Snap(candidate, label, start, end, text[start:end], 1.0, "repeat" if repeat else None)
    return None


def snap(
    answer: str,
    text: str,
    lang: str,
    taken: Sequence[tuple[int, int]] = (),
    english: str | None = None,
    lexicon: Sequence[str] = (),
    min_overlap: float = 0.5,
) -> Snap:
    """Snap an alignment answer onto `text`; see the module docstring for the order of matchers."""
    lang = lang.split("-")[0].lower() if not lang.lower().startswith("zh") else lang.lower()
    candidate = clean_answer(answer)
    if candidate:
        found = _direct("answer", candidate, text, lang, taken)
        if found:
            return found
    for surface in lexicon:
        found = _direct("lexicon", surface, text, lang, taken)
        if found:
            return found
    failures: list[str] = []
    if candidate:
        unspaced = sum(map(is_unspaced_char, candidate)) * 2 >= len(candidate.replace(" ", ""))
        matchers = []
        if lang in SUFFIXES or lang in PREFIXES or not unspaced:
            matchers.append(_token_match)
        if unspaced:
            matchers.append(_char_lcs)
        for matcher in matchers:
            found = matcher(candidate, text, lang, taken, min_overlap)
            if found is not None and found.ok:
                return found
            if found is not None:
                failures.append(f"{found.method}: {found.reason}")
    if english:
        found = _direct("english", english.strip(), text, lang, taken)
        if found:
            return found
    if not candidate:
        reason = "empty answer"
    else:
        reason = "; ".join(failures) or "no match"
    return Snap(candidate, "none", reason=reason)


def align_to_tokens(start: int, end: int, token_spans: list[tuple[int, int]] | None) -> tuple[int, int]:
    """Widen a span to the test file's token boundaries (a Korean word keeps its particle, as in the gold)."""
    if not token_spans:
        return start, end
    covered = [(s, e) for s, e in token_spans if s < end and start < e]
    if not covered:
        return start, end
    return min(start, covered[0][0]), max(end, covered[-1][1])


def place(
    sentence: Sentence,
    wanted: list[tuple[str, str, str | None]],
    lexicon: dict[str, list[str]] | None,
) -> tuple[list[Entity], list[Alignment]]:
    """Stage 4 for one sentence. wanted: (type, answer, english or None) per entity; one alignment each, in
    that order, and the entities kept.

    Longer answers are placed first so that, e.g., "Peking University" takes 北京大学 before "Beijing"
    looks for a free 北京.
    """
    order = sorted(range(len(wanted)), key=lambda i: -len(clean_answer(wanted[i][1])))
    taken: list[tuple[int, int]] = []
    alignments: dict[int, Alignment] = {}
    entities: list[Entity] = []
    for i in order:
        etype, answer, english = wanted[i]
        hints = (lexicon or {}).get(english.casefold(), []) if english else []
        s = snap(answer, sentence.text, sentence.lang, taken=taken, english=english, lexicon=hints)
        a = Alignment(
            english=english,
            type=etype,
            answer=answer,
            method=s.method,
            candidate=s.candidate,
            score=round(s.score, 4),
            reason=s.reason,
        )
        if s.ok:
            start, end = align_to_tokens(s.start, s.end, sentence.token_spans)
            a.snapped = Span(start=start, end=end, text=sentence.text[start:end])
            a.token_aligned = (start, end) != (s.start, s.end)
            if _overlaps(start, end, taken):
                a.reason = "overlaps an entity placed earlier; dropped"
                a.dropped = True
            else:
                taken.append((start, end))
                entities.append(Entity(start, end, etype, sentence.text[start:end]))
        alignments[i] = a
    return sorted(entities), [alignments[i] for i in range(len(wanted))]
