"""Text normalisation shared by mining (wiki_data) and span snapping (evaluation).

The same converter must be used on both sides: a Traditional-Chinese mention mined as Simplified text has
to snap back onto the Traditional sentence it came from.
"""

from __future__ import annotations

import re
import unicodedata

# Combining acute/grave accents used as stress marks in Russian/Ukrainian dictionaries and Wikipedia leads.
_STRESS = re.compile("[\u0300\u0301]")
ZH_VARIANTS = ("zh", "zh-hans", "zh-hant", "zh-cn", "zh-tw", "zh-hk", "zh-sg", "zh-mo", "zh-my")


def to_variant(text: str, variant: str = "zh-cn", wikitext: bool = False) -> str:
    """Convert Chinese text to one script variant; `wikitext=True` also resolves `-{...}-` markup."""
    from zhconv_rs import zhconv

    if variant.lower() not in ZH_VARIANTS:
        raise ValueError(f"unknown Chinese variant {variant!r}; use one of {', '.join(ZH_VARIANTS)}")
    return zhconv(text, variant, wikitext)


def strip_stress(text: str) -> str:
    """Remove combining stress accents (Моско́вский -> Московский) without touching й or ё."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", _STRESS.sub("", decomposed))


def fold_width(text: str) -> str:
    """Full-width ASCII and ideographic space to half width (ＡＢＣ１ -> ABC1); length-preserving."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        elif code == 0x3000:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def normalize_with_offsets(text: str, lang: str) -> tuple[str, list[int]]:
    """Case/width/variant/stress-insensitive form of `text` and, per output char, its original index.

    Used to compare mentions: a match in the normalised text maps back to an exact span of the original
    through the offsets, even where stress marks were dropped.
    """
    text_w = fold_width(text)
    if lang.startswith("zh"):
        converted = to_variant(text_w, "zh-cn")
        if len(converted) != len(text_w):  # phrase-level conversion changed length: go char by char
            converted = "".join(
                c if len(c) == 1 else o for o, c in ((o, to_variant(o, "zh-cn")) for o in text_w)
            )
        text_w = converted
    out: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text_w):
        if ch in "\u0300\u0301" and lang in ("ru", "uk", "bg", "be", "sr"):
            continue
        folded = ch.casefold()
        out.append(folded if len(folded) == 1 else ch)
        offsets.append(i)
    return "".join(out), offsets


def normalize_for_match(text: str, lang: str) -> str:
    """The normalised text of `normalize_with_offsets` alone."""
    return normalize_with_offsets(text, lang)[0]
