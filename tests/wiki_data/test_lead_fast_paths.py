"""The lead's shortcuts give what the plain path gives: `lead_wikitext` reading only the article's head,
`prerender_plain_markup` writing plain links and silent templates as text before parsing, the bracket depth
of `split_sentences` and the marker walk of `mentions._unmark`; on the real jawiki sample and on fuzzed
wikitext made of the pieces where they could go wrong."""

from __future__ import annotations

import html
import random
from collections import Counter
from dataclasses import astuple

import mwparserfromhell
import pytest

from wiki_data import lead
from wiki_data.lead import (
    BEHAVIOUR_RE,
    COMMENT_RE,
    HEADING_RE,
    MAX_LEAD_CHARS,
    REF_RE,
    Renderer,
    prerender_plain_markup,
    shrink_templates,
)
from wiki_data.mentions import CLOSE, INDEX_BASE, OPEN, Anchor, _unmark
from wiki_data.pages import iter_raw_pages, parse_page

SAMPLE = "jawiki-20230501-pages-articles-sample238.xml.bz2"


def lead_wikitext_whole(text: str) -> str:
    """lead_wikitext as it was: comments removed from the whole article first."""
    text = COMMENT_RE.sub("", text)
    m = HEADING_RE.search(text)
    if m:
        text = text[: m.start()]
    return BEHAVIOUR_RE.sub("", REF_RE.sub("", text))[:MAX_LEAD_CHARS]


def rendered(wikitext: str, lang: str, prerender: bool) -> tuple[str, str | None, str | None]:
    """What the renderer makes of a lead, with or without prerender_plain_markup first."""
    text = prerender_plain_markup(wikitext, lang) if prerender else wikitext
    renderer = Renderer(lang, None)
    out = renderer.render(mwparserfromhell.parse(text, skip_style_tags=False))
    return out, renderer.bold, renderer.infobox


@pytest.fixture(scope="module")
def sample_texts(shared_data) -> list[str]:
    return [parse_page(raw).text for raw in iter_raw_pages(shared_data / "wikipedia" / SAMPLE)]


def test_shortcuts_on_the_real_sample(sample_texts):
    for text in sample_texts:
        assert lead.lead_wikitext(text) == lead_wikitext_whole(text)
        shrunk = shrink_templates(lead.lead_wikitext(text))
        assert rendered(shrunk, "ja", True) == rendered(shrunk, "ja", False)


HEAD_PIECES = ["== H ==", "==H==", "=== Sub ===", "= x =", "== H == <!-- c -->", "<!--", "-->", "<!-- == X == -->",
               "\n", "\n\n", "text", " ", "'''b'''", "==", "=", "<ref>r</ref>", "<ref>", "__TOC__", "<!-- a\n== B ==\n-->",
               "<!-->", "\t"]  # fmt: skip


def test_lead_wikitext_reads_only_the_head_with_the_same_result():
    rng = random.Random(0)
    for _ in range(20_000):
        text = "".join(rng.choice(HEAD_PIECES) for _ in range(rng.randint(0, 14)))
        assert lead.lead_wikitext(text) == lead_wikitext_whole(text), repr(text)


LEAD_PIECES = [
    "[[A|b]]", "[[東京]]", "[[A b]]", "[[File:x.jpg|thumb|[[A|c]]]]", "[[X|see [[Y]] z]]", "'''", "''", "'", "\n",
    "\n\n", "*", "#", ":", ";", "=", "{{lang|en|[[A|b]]}}", "{{Infobox person|name=[[A]]}}", "{{foo [[A|b]]}}",
    "{{", "}}", "{|", "|}", "|", "<br>", "<small>", "</small>", '<span title="a>b">', "</span>", "<nowiki>",
    "</nowiki>", "&amp;", "&", "http://x.com/", "[http://x.com ", "]", "[", " ", "テキスト", "。", "mailto:a@b", "-{",
    "}-", "<ref>", "</ref>", "{{nihongo|[[A|b]]|c}}", "（", "）", "[[A|]]", "[[:Category:C|d]]", "[[en:X]]", "x",
    "----", "&nbsp;", "<b>", "</b>", "{{{a}}}", "[[A#s|t]]", "[[A#s]]", "http:", "[[A|b]]s", "<pre>", "<math>",
    "、[[A|b]]の", "[[A|mail]]", "to:a@b", "[[A|ht]]tp://x.com", "_", "__", "{{otheruses}}", "{{出典の明記}}",
    "{{Infobox 人物}}", "{{x}}", "{{x}}\n", "\n{{x}}", "{{a|b}}", "{{#if:x}}", "[[A|{{x}}]]", "[[{{x}}]]",
    "{{x}}{{y}}", "-{{x}}-", "<{{x}}br>", "=={{x}}==", "{{x\n}}", "{{ x }}", "[[X {{y}} [[A|b]]]]", "''{{x}}'",
    # Found by review: a protocol-relative external link, blank template names, an entity completed across a
    # replaced link or template.
    "[[//e.org x]]", "[[ //e.org x]]", "{{ }}", "{{\u3000}}", "&am", "p;lt;", "[[amp|p]]", "&#x3", "{{x}}c;",
]  # fmt: skip


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_prerendered_leads_render_the_same(lang):
    rng = random.Random(lang)
    for _ in range(4_000):
        text = "".join(rng.choice(LEAD_PIECES) for _ in range(rng.randint(1, 25)))
        assert rendered(text, lang, True) == rendered(text, lang, False), repr(text)


def test_prerender_replaces_plain_links_and_silent_templates_only():
    text = "{{otheruses}}\n'''東京都'''は、[[日本]]の[[首都|首都圏]]の都市{{要出典}}。{{Infobox 都道府県}}[[File:x.png|y]]"
    assert (
        prerender_plain_markup(text, "ja")
        == "\n'''東京都'''は、日本の首都圏の都市。{{Infobox 都道府県}}[[File:x.png|y]]"
    )
    for kept in ("<nowiki>[[A|b]]</nowiki> x [[C]]", "see http://x.org/ x [[A|b]]", "{| x [[A|b]] |}"):
        assert prerender_plain_markup(kept, "ja") == kept


@pytest.mark.parametrize(
    "text",
    [
        "Foo is a site at [[//foo.example.org Foo]] in Bar.",
        "Foo is a{{ }}b thing.",
        "Foo is a{{\u3000}}b thing.",
        "Foo&am[[amp|p]];lt;b is a thing.",
        "Foo&a{{x}}mp;lt;b is a thing.",
    ],
)
def test_review_findings_render_like_the_plain_path(text):
    for lang in ("en", "ja"):
        fast, plain = rendered(text, lang, True), rendered(text, lang, False)
        assert fast == plain and html.unescape(fast[0]) == html.unescape(plain[0])


def test_split_sentences_bracket_depth():
    rng = random.Random(0)
    alphabet = [*"ab. !?。！？()[]{}（）「」«»\"'", "Mr.", "г.", "т. е."]
    for _ in range(5_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        depth, reference = 0, []  # the depth after each character, as split_sentences read it before
        for ch in text:
            if ch in lead._OPEN:
                depth += 1
            elif ch in lead._CLOSE and depth > 0:
                depth -= 1
            reference.append(depth)
        reader = lead._depth_reader(text)
        assert [reader(i) for i in range(len(text))] == reference


def _unmark_reference(sentence, targets, counts):
    """mentions._unmark as it was: one character at a time."""
    plain, anchors, open_at, index, i, n = [], [], None, None, 0, 0
    while i < len(sentence):
        ch = sentence[i]
        if ch == OPEN:
            if open_at is not None or i + 1 >= len(sentence):
                return None
            index = ord(sentence[i + 1]) - INDEX_BASE
            if not 0 <= index < len(targets):
                return None
            open_at, i = n, i + 2
            continue
        if ch == CLOSE:
            if open_at is None:
                return None
            surface = "".join(plain[open_at:])
            if surface.strip() != surface or not surface:
                counts["link_empty_anchor"] += 1
            else:
                anchors.append(Anchor(open_at, n, surface, targets[index]))
            open_at, i = None, i + 1
            continue
        plain.append(ch)
        n, i = n + 1, i + 1
    return None if open_at is not None else ("".join(plain), anchors)


def test_unmark_walks_markers_like_characters():
    rng = random.Random(0)
    alphabet = ["a", " ", OPEN, CLOSE, chr(INDEX_BASE), chr(INDEX_BASE + 1), chr(INDEX_BASE + 5), "東",
                OPEN + chr(INDEX_BASE + 1), OPEN + chr(INDEX_BASE) + "x" + CLOSE]  # fmt: skip
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        got, want = Counter(), Counter()
        a, b = _unmark(text, ["T0", "T1"], got), _unmark_reference(text, ["T0", "T1"], want)
        assert (a and (a[0], [astuple(x) for x in a[1]])) == (b and (b[0], [astuple(x) for x in b[1]]))
        assert got == want
