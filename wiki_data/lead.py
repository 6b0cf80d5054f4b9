"""From an article's wikitext to (surface name, first clean lead sentence, infobox type).

Only the lead (text before the first heading) is parsed: it holds the bold name and the defining sentence,
and it is a small fraction of the article, which is what makes mining fast. Templates are handled
deliberately: language-tagged names keep their text, everything else (infoboxes, references, coordinates,
pronunciation, maintenance tags) is dropped; brackets emptied by the removals are removed too.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)

from eat import languages
from wiki_data.normalize import strip_stress
from wiki_data.typing_rules import infobox_type, normalize_template_name

MAX_LEAD_CHARS = 60_000

HEADING_RE = re.compile(r"^(=+)[^=\n].*?\1[ \t]*(?:<!--.*?-->)?[ \t]*$", re.M)
COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
REF_RE = re.compile(r"<ref\b[^>]*?/>|<ref\b[^>]*>.*?</ref\s*>", re.S | re.I)
BEHAVIOUR_RE = re.compile(r"__[A-ZА-Я_]+__")
_SPACES = re.compile(r"[ \t\u00a0\u2009\u200b\u200e\u200f\u202f\u3000]+")
_EMPTY_BRACKETS = re.compile(r"\s*[(（\[]\s*(?:[,;:，；：、،؛/]\s*|-\s+)*[)）\]]")
_LEADING_SEP = re.compile(r"([(（])\s*(?:[,;:，；：、،؛]\s*)+")
_TRAILING_SEP = re.compile(r"\s*(?:[,;:，；：、،؛]\s*)+([)）])")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?،؛)\]»）」』、。，])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[«（「『])\s+")
_REPEATED_SEP = re.compile(r"([,;])\1+")
_DISAMBIG = re.compile(r"\s*[(（][^()（）]*[)）]\s*$")

# Namespaces of links that are not running text (files, categories), in the languages we mine.
LINK_NAMESPACES = {
    "file", "image", "media", "category", "ファイル", "画像", "カテゴリ", "файл", "изображение",
    "категория", "파일", "그림", "분류", "ملف", "صورة", "تصنيف", "文件", "檔案", "档案", "图像", "圖像", "分类",
    "分類", "wikipedia", "wp", "help", "template", "portal", "special", "user", "wikt", "wiktionary",
}  # fmt: skip
INTERWIKI_RE = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$")

# Templates whose argument is running text: name -> index of the positional argument to keep.
KEEP_ARG = {
    "lang": 1, "langx": 1, "lang2": 1, "llang": 1, "script": 1, "transl": 1, "transliteration": 1,
    "nowrap": 0, "nobr": 0, "nobreak": 0, "small": 0, "big": 0, "noitalic": 0, "nihongo": 0, "nihongo2": 0,
    "nihongo3": 0, "ruby": 0, "ruby-ja": 0, "ruby-zh": 0, "読み仮名": 0, "読み仮名 ruby不使用": 0, "読み仮名_ruby不使用": 0,
    "ruby-en": 0, "lang-ja": 0, "link-en": 0, "link-ja": 0, "link-de": 0, "link-fr": 0, "le": 0, "ill": 0,
    "仮リンク": 0, "interlanguage link": 0, "tsl": 2, "iw": 0, "не переведено": 0, "нп5": 0, "s": 0,
    "abbr": 0, "w": 0, "виктор": 0, "sic": 0, "korean": 0, "문단": 0, "en": 0, "إنج": 0, "بالإنجليزية": 0,
    "chem": 0, "unbulleted list": 0, "ja": 0, "zh": 0, "ko": 0, "ar": 0, "ru": 0, "en-us": 0, "text": 0,
    "bdi": 1, "flag": 0, "flagcountry": 0, "flagu": 0, "native name": 1, "spaces": -1, "繁体字": 0, "簡体字": 0, "扱い": -1, "lang-zh": 0, "lang-ko": 0,
}  # fmt: skip
_KEEP_PREFIX = ("lang-", "lang|", "langue-", "nihongo", "ruby", "link-", "iw")
_DATE_TEMPLATES = (
    "birth date", "death date", "start date", "end date", "birth year", "death year", "dts", "출생일", "사망일",
    "дата рождения", "дата смерти", "生年月日と年齢", "没年月日と没年齢", "出生日期", "逝世日期", "تاريخ الميلاد",
    "تاريخ الوفاة",
)  # fmt: skip


@dataclass
class LeadResult:
    surface: str
    sentence: str
    infobox_type: str | None


class NoSentence(Exception):
    """The lead has no clean sentence containing the name."""


def _lead_prefix(text: str) -> str:
    """A prefix of `text` whose comment-free form holds the article's first heading, or all of `text`.

    Removing comments from a whole article to find a lead of a few hundred characters is most of the cost
    of `lead_wikitext` on long articles. The prefix ends at the end of the first line that looks like a
    heading before comments are removed, when no comment is open there: the comment-free prefix is then
    exactly the start of the comment-free article, line for line, so the first heading found in it (if
    any) is the article's first heading. `lead_wikitext` checks that one is found, else reads everything.
    """
    m = HEADING_RE.search(text)
    if m is None:
        return text
    end = m.end()
    opened = text.rfind("<!--", 0, end)
    if opened >= 0 and text.find("-->", opened + 4, end) < 0:
        return text  # a comment is open at the cut: the heading may be commented out
    return text[:end]


def lead_wikitext(text: str) -> str:
    """The text before the first section heading (comments and refs removed, size capped)."""
    prefix = _lead_prefix(text)
    m = HEADING_RE.search(cleaned := COMMENT_RE.sub("", prefix))
    if m is None and len(prefix) < len(text):
        m = HEADING_RE.search(cleaned := COMMENT_RE.sub("", text))
    if m:
        cleaned = cleaned[: m.start()]
    cleaned = REF_RE.sub("", cleaned)
    cleaned = BEHAVIOUR_RE.sub("", cleaned)
    return cleaned[:MAX_LEAD_CHARS]


@functools.lru_cache(maxsize=1 << 16)
def _template_key(name: str) -> str:
    """normalize_template_name, remembered: the same few hundred template names recur on every page."""
    return normalize_template_name(name)


def _renders_text(name: str) -> bool:
    """Whether the renderer outputs anything for a template of this (normalised) name; all others render ""
    and only their name matters (the infobox type)."""
    return (
        name in KEEP_ARG
        or name.startswith(_KEEP_PREFIX)
        or name in ("spaces", "nbsp", "space", "sp", "convert", "cvt")
        or name.startswith(_DATE_TEMPLATES)
    )


def _template_end(text: str, start: int) -> int | None:
    """Index just past the `}}` that closes the `{{` at `start`; None when it never closes."""
    depth, i = 0, start
    while True:
        opened, closed = text.find("{{", i), text.find("}}", i)
        if closed < 0:
            return None
        if 0 <= opened < closed:
            depth += 1
            i = opened + 2
        else:
            depth -= 1
            i = closed + 2
            if depth == 0:
                return i


def shrink_templates(text: str) -> str:
    """Drop the parameters of every top-level template whose output the renderer discards.

    Infoboxes, citations and navboxes are most of a real lead's markup, and mwparserfromhell spends most of
    its time building their parameters (the profile in bench/mine_bench.py --real). The renderer only reads
    such a template's name, so `{{Infobox person|name=...|...}}` becomes `{{Infobox person}}` before
    parsing: the rendered text and the infobox type are unchanged. Unbalanced braces leave the rest as is.
    """
    out, i = [], 0
    while (j := text.find("{{", i)) >= 0:
        end = _template_end(text, j)
        if end is None:
            break
        out.append(text[i:j])
        name = text[j + 2 : end - 2].split("|", 1)[0]
        if "{" in name or "}" in name or _renders_text(_template_key(name)):
            out.append(text[j:end])
        else:
            out.append("{{" + name + "}}")
        i = end
    out.append(text[i:])
    return "".join(out)


# A link whose title and text are plain characters: no markup can start, end or hide inside it.
_PLAIN = r"[^\[\]{}<>|\n&'~_=:*#;\"]"
_LINK_TOKENS = re.compile(rf"\[\[({_PLAIN}+)(?:\|({_PLAIN}+))?\]\]|\[\[|\]\]")
_UNPARSED_TAG = re.compile(
    r"<\s*/?\s*(?:" + "|".join(mwparserfromhell.definitions.PARSER_BLACKLIST) + r")\b", re.I
)
_URI_SCHEMES = tuple(sorted(mwparserfromhell.definitions.URI_SCHEMES))
_LONGEST_SCHEME = max(map(len, _URI_SCHEMES))


def _has_uri_scheme(text: str) -> bool:
    """Whether a URI scheme and its colon (`http:`, `mailto:`) occur in `text`, in any case: a free URL,
    which may run on through templates, could swallow a link's text."""
    colon = text.find(":")
    while colon >= 0:
        if text[max(0, colon - _LONGEST_SCHEME) : colon].lower().endswith(_URI_SCHEMES):
            return True
        colon = text.find(":", colon + 1)
    return False


_NOT_BEFORE_LINK = "\n'[{&<=|"
# `[[//host x]]` is a protocol-relative external link in brackets to mwparserfromhell, not a wikilink.
_PROTOCOL_RELATIVE = re.compile(r"\[\[\s*//")
# An HTML entity begun before a link or template (`&am[[amp|p]];`) could be completed by what replaces it.
_ENTITY_START = re.compile(r"&[#0-9A-Za-z]*$")


def _entity_open_before(text: str, at: int) -> bool:
    return _ENTITY_START.search(text, max(0, at - 32), at) is not None


# A template name mwparserfromhell surely reads as one, and characters that must not meet when a template
# between them is dropped (markup, or line-start markup).
_PLAIN_NAME = re.compile(r"[^\[\]{}<>|\n&'~_=:#;*!\"]+")
_NOT_BESIDE_DROPPED = set("'[]{}<>&-_~=|!*#:;\" \t")


def prerender_plain_markup(text: str, lang: str, variant: str | None = None) -> str:
    """Plain links and silent templates written as what the renderer makes of them, before parsing.

    Wikilinks and templates are most of the nodes mwparserfromhell builds for a lead (after
    `shrink_templates`). A plain link (`[[Title]]`, `[[Title|text]]`) renders to its text or title, and a
    plain `{{Name}}` that renders nothing and implies no infobox type renders to "": writing that in its
    place roughly halves the parse, with the same rendered lead. Only what cannot parse differently where
    it stands is replaced: top level (not in a template, as `shrink_templates` sees them, nor in a tag or a
    link), a link not at a line start nor next to quote marks, a template not between characters that would
    make markup when joined; and only in a lead with no table, no single bracket (external link), no URI
    scheme (free URL) and no tag whose content mwparserfromhell leaves unparsed (`<nowiki>`, `<pre>`).
    Checked against mwparserfromhell on the real sample pages and on fuzzed leads (tests/wiki_data).
    """
    if (
        "{|" in text
        or "{{{" in text
        or text.count("[") != 2 * text.count("[[")
        or text.count("]") != 2 * text.count("]]")
        or _UNPARSED_TAG.search(text)
        or _PROTOCOL_RELATIVE.search(text)
        or _has_uri_scheme(text)
    ):
        return text
    zh_variant = variant if lang == "zh" else None
    out, i, depth = [], 0, 0  # depth: how deep links nest at text[i]
    while True:
        j = text.find("{{", i)
        gap = text[i:] if j < 0 else text[i:j]
        if "[[" in gap or "]]" in gap:
            gap, depth = _plain_links_in(gap, text, i, depth)
        out.append(gap)
        end = _template_end(text, j) if j >= 0 else None
        if end is None:  # no more templates, or one that never closes: the rest is left as it is
            out.append("" if j < 0 else text[j:])
            rendered = "".join(out)
            # A link's text next to other text must not make a URI scheme (`[[A|mail]]to:x@y`).
            return text if _has_uri_scheme(rendered) else rendered
        if depth or not _droppable_template(text, j, end, lang, zh_variant):
            out.append(text[j:end])
        i = end


def _droppable_template(text: str, j: int, end: int, lang: str, zh_variant: str | None) -> bool:
    """Whether the top-level template text[j:end] renders nothing, implies no infobox type, and can be
    dropped without the text around it joining into markup or an entity."""
    name = text[j + 2 : end - 2]
    if not _PLAIN_NAME.fullmatch(name) or not name.strip():  # a blank name is no template: it stays text
        return False
    if j > 0 and (text[j - 1] in _NOT_BESIDE_DROPPED or _entity_open_before(text, j)):
        return False
    if end < len(text) and text[end] in _NOT_BESIDE_DROPPED:
        return False
    if _inside_tag(text, j):
        return False
    key = _template_key(name)
    return not _renders_text(key) and infobox_type(lang, key, zh_variant) is None


def _inside_tag(text: str, at: int) -> bool:
    """Whether text[at] may be inside a `<...>` tag: after a `<` with no `>` since, or with a `"` since (a
    `>` in a double-quoted attribute). Single quotes are not looked at: the renderer never outputs an
    attribute, so a link inside one renders the same either way."""
    lt = text.rfind("<", 0, at)
    return lt >= 0 and (text.rfind(">", lt, at) < 0 or text.find('"', lt, at) >= 0)


def _plain_links_in(gap: str, text: str, offset: int, depth: int) -> tuple[str, int]:
    """Plain links of `gap` (text[offset:offset + len(gap)], outside any template) as their text, and how
    deep links nest at its end (`depth`: at its start)."""
    out, pos = [], 0
    for m in _LINK_TOKENS.finditer(gap):
        title, label = m.group(1), m.group(2)
        if title is None:  # a link that is not plain: count how deep the links nest
            depth = depth + 1 if m.group() == "[[" else max(depth - 1, 0)
            continue
        start, stop = m.start(), m.end()
        at = offset + start
        if depth or at == 0 or text[at - 1] in _NOT_BEFORE_LINK:
            continue
        if stop < len(gap) and gap[stop] == "'":
            continue
        if _inside_tag(text, at) or _entity_open_before(text, at):
            continue
        out.append(gap[pos:start])
        out.append(label if label is not None else title.strip())
        pos = stop
    out.append(gap[pos:])
    return "".join(out), depth


def title_base(title: str) -> str:
    """`Mercury (planet)` -> `Mercury`; `Foo_bar` -> `Foo bar`."""
    title = title.replace("_", " ").strip()
    base = _DISAMBIG.sub("", title)
    return base or title


class Renderer:
    """Wikicode -> plain text, remembering the first bold span and the first typed infobox."""

    def __init__(self, lang: str, variant: str | None):
        self.lang = lang
        self.variant = variant
        self.bold: str | None = None
        self.infobox: str | None = None
        self.depth = 0

    def render(self, code) -> str:
        out = []
        skip_line = False  # inside a list item or indented line (hatnotes, lists: not defining prose)
        for node in code.nodes:
            if skip_line:
                if isinstance(node, Text) and "\n" in node.value:
                    skip_line = False
                    out.append(node.value[node.value.index("\n") :])
                continue
            if isinstance(node, Tag) and node.wiki_markup in ("*", "#", ":", ";"):
                skip_line = True
                continue
            if isinstance(node, Text):
                out.append(str(node.value))
            elif isinstance(node, Wikilink):
                out.append(self._link(node))
            elif isinstance(node, Template):
                out.append(self._template(node))
            elif isinstance(node, Tag):
                out.append(self._tag(node))
            elif isinstance(node, HTMLEntity):
                out.append(node.normalize())
            elif isinstance(node, ExternalLink):
                out.append(self.render(node.title) if node.title else "")
            elif isinstance(node, Heading):
                break
            elif isinstance(node, Comment | Argument):
                continue
            else:
                out.append("")
        return "".join(out)

    def _link(self, node: Wikilink) -> str:
        title = str(node.title).strip()
        if ":" in title and not title.startswith(":"):
            prefix = title.split(":", 1)[0].strip().lower()
            if prefix in LINK_NAMESPACES or INTERWIKI_RE.match(prefix):
                return ""
        if node.text is not None:
            return self.render(node.text)
        return title.lstrip(":").split("#", 1)[0]

    def _template(self, node: Template) -> str:
        name = _template_key(str(node.name))
        if self.infobox is None and self.depth == 0:
            self.infobox = infobox_type(self.lang, name, self.variant if self.lang == "zh" else None)
        positional = [p for p in node.params if not p.showkey]
        idx = KEEP_ARG.get(name)
        if idx is None and name.startswith(_KEEP_PREFIX):
            idx = 1 if name in ("lang", "iw") else 0
        if idx is not None and idx >= 0:
            if idx >= len(positional):
                idx = len(positional) - 1
            if idx < 0:
                return ""
            self.depth += 1
            try:
                return self.render(positional[idx].value).strip()
            finally:
                self.depth -= 1
        if name == "spaces" or name in ("nbsp", "space", "sp"):
            return " "
        if name in ("convert", "cvt") and len(positional) >= 2:
            return f"{str(positional[0].value).strip()} {str(positional[1].value).strip()}"
        if name.startswith(_DATE_TEMPLATES):
            parts = [str(p.value).strip() for p in positional if str(p.value).strip().isdigit()]
            return "-".join(parts[:3])
        return ""

    def _tag(self, node: Tag) -> str:
        tag = str(node.tag).lower()
        if tag in ("ref", "references", "table", "gallery", "math", "score", "timeline", "imagemap", "chem",
                   "syntaxhighlight", "source", "templatestyles", "indicator", "mapframe", "graph", "noinclude"):  # fmt: skip
            return ""
        if tag == "br":
            return " "
        if node.self_closing or node.contents is None:
            return ""
        text = self.render(node.contents)
        if tag == "b" and self.bold is None and text.strip():
            self.bold = text.strip()
        return text


def clean_text(text: str, lang: str) -> str:
    """Whitespace, empty brackets and separators left behind by removed templates."""
    text = _SPACES.sub(" ", text)
    for _ in range(3):
        new = _EMPTY_BRACKETS.sub("", text)
        new = _LEADING_SEP.sub(r"\1", new)
        new = _TRAILING_SEP.sub(r"\1", new)
        if new == text:
            break
        text = new
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _SPACE_AFTER_OPEN.sub(r"\1", text)
    text = _REPEATED_SEP.sub(r"\1", text)
    if languages.has_stress_marks(lang):
        text = strip_stress(text)
    return text.strip()


# ----------------------------------------------------------------------------------- sentence splitting

ABBREVIATIONS = {
    "ru": {
        "г", "гг", "им", "т", "е", "д", "н", "э", "др", "пр", "род", "ум", "с", "р", "ок", "св", "ул", "пер", "обл",
        "руб", "тыс", "млн", "млрд", "араб", "англ", "фр", "франц", "нем", "лат", "греч", "др.-греч", "кит", "яп",
        "итал", "исп", "перс", "тур", "укр", "белор", "каз", "ивр", "санскр", "польск", "венг", "чеш", "швед", "фин",
        "норв", "дат", "нидерл", "порт", "кор", "монг", "азерб", "арм", "груз", "узб", "тат", "башк", "см", "букв",
        "сокр", "ср", "напр", "проф", "акад", "ген", "оз", "о", "п", "пос", "дер", "м", "км", "кв", "вв", "в",
        "мн", "ед", "ч", "стр", "т.е", "т.д", "т.п", "т.н", "н.э", "и.о", "чел", "рус", "церк", "ст", "наст",
        "урожд", "наз", "бывш", "совр", "хр", "гос", "федер", "респ", "долл", "коп", "тж", "т.к",
    },
    "en": {
        "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "vol", "fig", "approx",
        "ca", "c", "b", "d", "fl", "r", "inc", "ltd", "co", "corp", "mt", "ft", "lit", "u.s", "u.k", "gen", "col",
        "lt", "sgt", "capt", "gov", "sen", "rep", "rev", "hon", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
        "sep", "sept", "oct", "nov", "dec", "est", "pop", "ed", "eds", "pp", "op", "cf", "al",
    },
    "ar": {"د", "م", "هـ", "ق", "ص", "ج", "أ", "ت"},
    "ko": {"vs", "etc", "no", "dr", "st", "mr"},
}  # fmt: skip
_OPEN = "([{（［「『《〈«"
_CLOSE = ")]}）］」』》〉»"
_CJK_END = re.compile(r"[。！？!?](?:[」』”’）)\]]*)")
_END = re.compile(r"[.!?؟।…](?:[\"'»”’)\]]*)(?=\s|$)")


_BRACKETS = re.compile("[" + re.escape(_OPEN + _CLOSE) + "]")


def _depth_reader(text: str):
    """depth(i): how many brackets are open at text[i] (after it, when it is one), for increasing i; only
    the brackets are visited, not every character."""
    brackets = [(m.start(), m.group() in _OPEN) for m in _BRACKETS.finditer(text)]
    state = [0, 0]  # next bracket, depth

    def depth(i: int) -> int:
        k, d = state
        while k < len(brackets) and brackets[k][0] <= i:
            if brackets[k][1]:
                d += 1
            elif d > 0:
                d -= 1
            k += 1
        state[0], state[1] = k, d
        return d

    return depth


def split_sentences(text: str, lang: str) -> list[str]:
    """Sentences of one paragraph: CJK full stops, or abbreviation- and bracket-aware stops elsewhere."""
    text = text.strip()
    if not text:
        return []
    depth = _depth_reader(text)
    cut_points = []
    if languages.uses_cjk_stops(lang):
        for m in _CJK_END.finditer(text):
            if depth(m.start()) == 0:
                cut_points.append(m.end())
    else:
        abbrevs = ABBREVIATIONS.get(lang, set()) | ABBREVIATIONS["en"]
        for m in _END.finditer(text):
            start = m.start()
            if depth(start) != 0:
                continue
            if text[start] == ".":
                word_m = re.search(r"([\w.\-]+)$", text[:start])
                word = word_m.group(1).lower() if word_m else ""
                if word and (word in abbrevs or word.split(".")[-1] in abbrevs or len(word) == 1):
                    continue
                if word and word[-1].isdigit() and lang in ("de", "fi", "cs", "sk", "pl", "hu"):
                    continue
                nxt = text[m.end() :].lstrip()
                if nxt and nxt[0].islower():
                    continue
            cut_points.append(m.end())
    out, prev = [], 0
    for cut in cut_points:
        piece = text[prev:cut].strip()
        if piece:
            out.append(piece)
        prev = cut
    tail = text[prev:].strip()
    if tail:
        out.append(tail)
    return out


# ----------------------------------------------------------------------------------------- the page


def in_variant(text: str, lang: str, variant: str | None, wikitext: bool = False) -> str:
    """`text` in the output script variant (zh only; other languages are returned as they are)."""
    if lang != "zh" or not variant:
        return text
    from wiki_data.normalize import to_variant

    return to_variant(text, variant, wikitext=wikitext)


def render_lead(
    wikitext: str, lang: str, variant: str | None = None
) -> tuple[list[str], str | None, str | None]:
    """Cleaned paragraphs of the lead, its first bold span and the type its infobox implies."""
    lead = lead_wikitext(wikitext)
    lead = shrink_templates(in_variant(lead, lang, variant, wikitext=True))
    lead = prerender_plain_markup(lead, lang, variant)
    renderer = Renderer(lang, variant)
    text = renderer.render(mwparserfromhell.parse(lead, skip_style_tags=False))
    text = html.unescape(text)
    paragraphs = [clean_text(p, lang) for p in re.split(r"\n\s*\n|\n", text)]
    bold = clean_text(renderer.bold, lang) if renderer.bold else None
    return [p for p in paragraphs if p], bold, renderer.infobox


def process_page(title: str, wikitext: str, lang: str, variant: str | None = None) -> LeadResult:
    """Surface, sentence and infobox type of one article; raises NoSentence when there is no usable sentence."""
    paragraphs, bold, itype = render_lead(wikitext, lang, variant)
    base = in_variant(title_base(title), lang, variant)
    candidates = []
    if bold and len(bold) <= 100:
        candidates.append(bold)
    if base not in candidates:
        candidates.append(base)
    sentences = [s for p in paragraphs for s in split_sentences(p, lang)]
    for surface in candidates:
        for sentence in sentences:
            if surface in sentence and len(sentence) > len(surface):
                return LeadResult(surface, sentence, itype)
    raise NoSentence(title)
