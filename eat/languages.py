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
