"""What the toolkit knows about each language, in one table: display name, script spacing, stress marks.

Every stage asks here rather than keeping its own list (the miner, the corpus importer, the dataset builder,
the evaluator's text reconstruction and metric), so two stages cannot disagree about a language. Codes
are Wikipedia/ISO codes; a regional or script suffix (`zh-cn`, `zh_TW`) is ignored.
"""

from __future__ import annotations

NAMES = {
    "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ar": "Arabic", "ru": "Russian", "hi": "Hindi",
    "ka": "Georgian",
    "de": "German", "es": "Spanish", "fr": "French", "nl": "Dutch", "en": "English", "fa": "Persian",
    "he": "Hebrew", "th": "Thai", "uk": "Ukrainian", "el": "Greek",
}  # fmt: skip
# Written without spaces between words: tokens are joined with "" and sentences too.
UNSPACED = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu", "gan", "lzh"})
# Sentence-final marks are the ideographic ones (。！？), with no space after them (the CJK wikis).
CJK_STOPS = frozenset({"zh", "ja", "wuu", "yue", "gan", "lzh", "zh-yue", "zh-classical"})
# Wikipedia marks word stress with a combining accent in these languages (Моско́вский); it is stripped.
STRESS_MARKED = frozenset({"ru", "uk", "be", "bg", "sr", "mk"})
# The EAT authors' token metric labels every character in these languages (their `zh=True` path).
CHARACTER_TOKENS = frozenset({"zh", "ja"})


def base(code: str) -> str:
    """`zh-CN`, `zh_TW` -> `zh`."""
    return code.split("-")[0].split("_")[0].lower()


def name(code: str) -> str:
    """The English name of a language, for prompts (`ja` -> Japanese); the code itself when unknown."""
    return NAMES.get(base(code), code)


def is_unspaced(code: str) -> bool:
    return base(code) in UNSPACED


def joiner(code: str) -> str:
    """What joins two words (or two sentences) of the language: "" for unspaced scripts, else a space."""
    return "" if is_unspaced(code) else " "


def has_stress_marks(code: str) -> bool:
    return base(code) in STRESS_MARKED


def uses_cjk_stops(code: str) -> bool:
    return code in CJK_STOPS or base(code) in CJK_STOPS


# The script a language is written in, by the Unicode ranges it uses (what --lang is checked against).
SCRIPTS = {
    "Han": ((0x4E00, 0x9FFF), (0x3400, 0x4DBF)),
    "Kana": ((0x3040, 0x30FF),),
    "Hangul": ((0xAC00, 0xD7AF), (0x1100, 0x11FF)),
    "Arabic": ((0x0600, 0x06FF), (0x0750, 0x077F)),
    "Cyrillic": ((0x0400, 0x04FF),),
    "Devanagari": ((0x0900, 0x097F),),
    "Georgian": ((0x10A0, 0x10FF),),
    "Hebrew": ((0x0590, 0x05FF),),
    "Greek": ((0x0370, 0x03FF),),
    "Thai": ((0x0E00, 0x0E7F),),
    "Latin": ((0x0041, 0x005A), (0x0061, 0x007A), (0x00C0, 0x024F)),
}
WRITTEN_IN = {
    "zh": {"Han"}, "ja": {"Han", "Kana"}, "ko": {"Hangul", "Han"}, "ar": {"Arabic"}, "fa": {"Arabic"},
    "ru": {"Cyrillic"}, "uk": {"Cyrillic"}, "hi": {"Devanagari"}, "ka": {"Georgian"}, "he": {"Hebrew"},
    "el": {"Greek"}, "th": {"Thai"}, "en": {"Latin"}, "de": {"Latin"}, "es": {"Latin"}, "fr": {"Latin"},
    "nl": {"Latin"},
}  # fmt: skip


def dominant_script(texts) -> str | None:
    """The script most letters of `texts` are written in (None when there are no letters of a known one)."""
    counts: dict[str, int] = {}
    for text in texts:
        for ch in text:
            code = ord(ch)
            for script, ranges in SCRIPTS.items():
                if any(lo <= code <= hi for lo, hi in ranges):
                    counts[script] = counts.get(script, 0) + 1
                    break
    return max(counts, key=counts.get) if counts else None


def script_mismatch(code: str, texts) -> str | None:
    """A one-line warning when the texts are mostly in a script `code` is not written in, else None."""
    expected = WRITTEN_IN.get(base(code))
    found = dominant_script(texts)
    if expected is None or found is None or found in expected:
        return None
    return f"--lang {code} is written in {'/'.join(sorted(expected))}, but the text is mostly {found}: is --lang right?"
