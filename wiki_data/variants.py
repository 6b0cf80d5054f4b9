"""English-name variants: what an English NER tagger outputs for an entity is rarely its Wikipedia title.

At inference the alignment step is asked about names such as "Paris" (title "Paris (Texas)"), "PARIS"
(upper-case news text), "Obama" (last name only) or "EU" (acronym). Training on the title alone would
teach the model a string it never sees at test time, so `sft` draws one of these variants per row.
"""

from __future__ import annotations

import random
import re

_DISAMBIGUATOR = re.compile(r"\s*[(（][^()（）]*[)）]\s*$")
_ASCII_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 .,'&-]*$")
_ORG_STOPWORDS = {"of", "the", "and", "for", "de", "in", "on", "at", "&", "a", "an"}
# Target languages written in Latin script: there an ASCII redirect is usually target-language text.
LATIN_SCRIPT_LANGS = {"de", "es", "fr", "nl", "it", "pt", "pl", "sv", "tr", "id", "vi", "cs", "fi", "en"}


def strip_disambiguator(title: str) -> str:
    """`Paris (Texas)` -> `Paris`; `巴黎 (德州)` -> `巴黎`; a title that is only brackets is kept."""
    stripped = _DISAMBIGUATOR.sub("", title).strip()
    return stripped or title.strip()


def acronym(name: str) -> str | None:
    """Initials of the capitalised words (`European Central Bank` -> `ECB`); None for one-word names."""
    words = [w for w in re.split(r"[\s-]+", name) if w and w.lower() not in _ORG_STOPWORDS]
    if len(words) < 2 or not all(w[0].isalpha() and w[0].isupper() for w in words):
        return None
    return "".join(w[0] for w in words)


def english_variants(
    en_title: str, type_: str | None = None, aliases: list[str] | None = None, lang: str = ""
) -> list[str]:
    """The canonical English name first, then the forms NER output takes, without duplicates.

    Forms: title without disambiguator; without a leading "The"; `Springfield, Illinois` -> `Springfield`
    for places; last name for persons; acronym for organisations; an ASCII redirect alias where the target
    language is not written in Latin script (zhwiki redirects such as "EU"); the upper-case form.
    """
    base = strip_disambiguator(en_title)
    out = [base]
    short: list[str] = []
    if base.lower().startswith("the ") and len(base) > 4:
        short.append(base[4:])
    if type_ == "LOC" and ", " in base:
        short.append(base.split(", ")[0])
    if type_ == "PER":
        words = base.replace(",", " ").split()
        if len(words) >= 2 and words[-1][:1].isupper() and not words[-1].rstrip(".").isupper():
            short.append(words[-1])
    if type_ == "ORG":
        abbr = acronym(base[4:] if base.lower().startswith("the ") else base)
        if abbr and len(abbr) >= 2:
            short.append(abbr)
    if lang.split("-")[0] not in LATIN_SCRIPT_LANGS:
        short.extend(a.strip() for a in aliases or () if _ASCII_NAME.match(a.strip()))
    out.extend(short)
    if any(c.islower() for c in base):
        out.append(base.upper())
    seen: set[str] = set()
    return [v for v in out if v and not (v in seen or seen.add(v))]


def pick_variant(variants: list[str], rng: random.Random, canonical_rate: float) -> str:
    """The canonical form with probability `canonical_rate`, else one of the other forms uniformly."""
    if len(variants) == 1 or rng.random() < canonical_rate:
        return variants[0]
    return rng.choice(variants[1:])
