"""Entity types from data shipped with the package: Wikidata classes and infobox template names.

The mappings are JSON in `wiki_data/data/` so that they can be reviewed and extended without touching code.
"""

from __future__ import annotations

import json
import re
from functools import cache, partial
from importlib import resources

from wiki_data.normalize import to_variant

TYPE_PRIORITY = ("PER", "ORG", "LOC", "MISC")


@cache
def class_types() -> dict[str, str]:
    """Wikidata class QID -> PER/ORG/LOC/MISC (wiki_data/data/wikidata_classes.json)."""
    data = json.loads(resources.files("wiki_data").joinpath("data/wikidata_classes.json").read_text("utf-8"))
    out: dict[str, str] = {}
    for etype in reversed(TYPE_PRIORITY):  # higher-priority types win for a class listed twice
        for qid in data.get(etype, {}):
            out[qid] = etype
    return out


@cache
def _infobox_rules() -> dict:
    return json.loads(resources.files("wiki_data").joinpath("data/infobox_types.json").read_text("utf-8"))


def normalize_template_name(name: str) -> str:
    """`Template:Infobox_Person ` -> `infobox person` (case, underscores, namespace prefix, spacing)."""
    name = name.strip().replace("_", " ")
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix.strip().lower() in ("template", "шаблон", "틀", "قالب", "模板", "テンプレート"):
            name = rest
    return re.sub(r"\s+", " ", name).strip().lower()


@cache
def _lang_rules(lang: str, variant: str | None) -> tuple[tuple[str, ...], dict[str, str], tuple]:
    rules = _infobox_rules()
    entry = rules.get(lang) or rules["en"]
    convert = _converter(variant if (lang == "zh" and variant) else None)

    markers = tuple(convert(m.lower()) for m in entry["markers"])
    exact = {convert(k.strip().lower()): v for k, v in entry["exact"].items()}
    keywords = tuple((convert(k.lower()), v) for k, v in entry["keywords"])
    if lang != "en":  # English infobox names are used on every wiki
        en = rules["en"]
        markers += tuple(en["markers"])
        exact.update({k: v for k, v in en["exact"].items() if k not in exact})
        keywords += tuple((k, v) for k, v in en["keywords"])
    return markers, exact, keywords


def infobox_type(lang: str, template_name: str, variant: str | None = None) -> str | None:
    """The entity type an infobox template name implies on `lang` Wikipedia, or None if it says nothing."""
    name = normalize_template_name(template_name)
    if lang == "zh" and variant:
        name = _converter(variant)(name)
    markers, exact, keywords = _lang_rules(lang, variant)
    if name in exact:
        return exact[name]
    if not any(name.startswith(m) or name.endswith(m) for m in markers):
        return None
    for keyword, etype in keywords:
        if keyword in name:
            return etype
    return None


def _converter(variant: str | None):
    """Chinese variant conversion, or identity when no variant applies."""
    if not variant:
        return str
    return partial(to_variant, variant=variant)
