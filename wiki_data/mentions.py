"""Link anchors in running text: (sentence, anchor span, link target) for `eat wiki mine --mentions`.

A lead sentence names its own subject first, so lead-sentence pairs teach "answer with the first phrase".
Links in an article's text name other articles anywhere in a sentence, often in a short or inflected form
(`[[北京大学|北大]]`): each one whose target has an English link is an alignment example without that
shortcut. Two halves:
- `scan_page` (worker side): renders the lead and the first body sections with the same renderer and cleaning
  as the lead sentence (`wiki_data.lead`), with invisible markers around each anchor so that its exact span
  survives cleaning and sentence splitting, then returns the sentences with their anchors and raw targets;
- `MentionResolver` (parent side, which holds the SQL tables): resolves targets through redirects to
  English-linked articles and classifies each surface against the target's title and aliases.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass

import mwparserfromhell
from mwparserfromhell.nodes import Wikilink

from eat import languages, markdown
from wiki_data.lead import (
    BEHAVIOUR_RE,
    COMMENT_RE,
    HEADING_RE,
    INTERWIKI_RE,
    LINK_NAMESPACES,
    REF_RE,
    Renderer,
    clean_text,
    in_variant,
    shrink_templates,
    split_sentences,
    title_base,
)

OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters: no regex of the cleaning step matches them
INDEX_BASE = 0xF0000  # the link's index follows OPEN as one character of plane 15 (private use)
MAX_LINKS_PER_PAGE = 5_000
MAX_SCAN_CHARS = 200_000
MAX_SENTENCE_CHARS = 1_000
# What must never be left in a sentence: link, template, bold/italic, tag and table markup.
_MARKUP_LEFT = re.compile(
    r"\[\[|\]\]|\{\{|\}\}|\{\||\|\}|''|<\s*/?\s*[a-zA-Z!]|\[https?://|" + OPEN + "|" + CLOSE
)
_MARKER = re.compile(f"[{OPEN}{CLOSE}]|[\U000f0000-\U000fffff]")
_OPEN_OR_CLOSE = re.compile(f"[{OPEN}{CLOSE}]")
_LINK_OPEN = re.compile(r"\[\[")
# MediaWiki's link trail: letters right after `]]` belong to the link text (`[[bus]]es` shows "buses").
_TRAIL = re.compile(CLOSE + r"([^\W\d_]+)")


@dataclass(frozen=True)
class Anchor:
    start: int
    end: int
    surface: str
    target: str  # normalised link target (title without section), not yet resolved


@dataclass(frozen=True)
class LinkedSentence:
    section: int  # 0: the lead
    sentence_no: int
    sentence: str
    anchors: tuple[Anchor, ...]


def link_title(raw: str) -> str:
    """`[[北京_大学#歴史|...]]` -> `北京 大学`: the page title a link names (first letter upper-cased, as
    MediaWiki stores titles); "" for a link to a section of the same page."""
    title = html.unescape(raw).split("#", 1)[0].replace("_", " ")
    title = " ".join(title.split()).lstrip(":").strip()
    return title[:1].upper() + title[1:]


def _trail_ok(trail: str, lang: str) -> bool:
    if languages.uses_cjk_stops(lang) or lang == "ko":
        return False  # no link trail in these wikis (a Korean particle after a link is not part of it)
    return trail.islower() or (lang in ("ar", "fa") and all("\u0600" <= c <= "\u06ff" for c in trail))


class _LinkRenderer(Renderer):
    """The lead renderer, with each anchor's text wrapped in OPEN, index, ..., CLOSE."""

    def __init__(self, lang: str, variant: str | None, counts: Counter):
        super().__init__(lang, variant)
        self.targets: list[str] = []
        self.counts = counts
        self.in_link = False

    def _link(self, node: Wikilink) -> str:
        raw = str(node.title).strip()
        bare = raw.lstrip(":").strip()
        if ":" in bare:
            prefix = bare.split(":", 1)[0].strip().lower()
            if prefix in LINK_NAMESPACES or INTERWIKI_RE.match(prefix):
                self.counts["link_not_article"] += 1
                return super()._link(node)  # files, categories vanish; `[[:Category:X|y]]` keeps "y"
        if self.in_link:  # a link inside an anchor: part of the outer anchor's text
            return super()._link(node)
        self.counts["links_seen"] += 1
        self.in_link = True
        try:
            text = super()._link(node)
        finally:
            self.in_link = False
        core = text.strip()
        target = link_title(raw)
        if not core or "\n" in core:
            self.counts["link_empty_anchor"] += 1
            return text
        if not target:
            self.counts["link_to_own_section"] += 1
            return text
        lead = text[: len(text) - len(text.lstrip())]
        tail = text[len(text.rstrip()) :]
        self.targets.append(target)
        return f"{lead}{OPEN}{chr(INDEX_BASE + len(self.targets) - 1)}{core}{CLOSE}{tail}"


def _sections(wikitext: str, sections: int) -> list[str]:
    """The lead and the first `sections` body sections (comments, refs and behaviour switches removed)."""
    text = COMMENT_RE.sub("", wikitext[: MAX_SCAN_CHARS * 2])
    text = BEHAVIOUR_RE.sub("", REF_RE.sub("", text))
    chunks, pos = [], 0
    for m in HEADING_RE.finditer(text):
        chunks.append(text[pos : m.start()])
        pos = m.end()
        if len(chunks) > sections:
            break
    else:
        chunks.append(text[pos:])
    chunks = chunks[: sections + 1]
    out, total = [], 0
    for chunk in chunks:
        out.append(chunk[: max(0, MAX_SCAN_CHARS - total)])
        total += len(out[-1])
    return out


def _unmark(sentence: str, targets: list[str], counts: Counter) -> tuple[str, list[Anchor]] | None:
    """Plain sentence and its anchors; None when the markers do not pair up (an anchor cut by a split).

    Walks the markers only: between two of them the sentence is plain text, copied in one slice.
    """
    plain: list[str] = []
    anchors: list[Anchor] = []
    n = 0  # plain characters so far
    pos = 0  # start of the text not yet copied
    open_at: int | None = None  # plain offset of the open anchor
    index = 0
    for m in _OPEN_OR_CLOSE.finditer(sentence):  # the index character after OPEN is never one of them
        i = m.start()
        piece = sentence[pos:i]
        plain.append(piece)
        n += len(piece)
        if m.group() == OPEN:
            if open_at is not None or i + 1 >= len(sentence):
                return None
            index = ord(sentence[i + 1]) - INDEX_BASE
            if not 0 <= index < len(targets):
                return None
            open_at = n
            pos = i + 2
            continue
        if open_at is None:
            return None
        surface = piece  # an anchor holds no marker: its text is the piece since OPEN
        if surface.strip() != surface or not surface:
            counts["link_empty_anchor"] += 1
        else:
            anchors.append(Anchor(open_at, n, surface, targets[index]))
        open_at = None
        pos = i + 1
    if open_at is not None:
        return None
    plain.append(sentence[pos:])
    return "".join(plain), anchors


def scan_page(
    wikitext: str, lang: str, variant: str | None, sections: int
) -> tuple[list[LinkedSentence], Counter]:
    """Sentences of the lead and the first `sections` sections that hold at least one article link.

    Raises nothing for bad markup: unclosed links, markup left over, anchors cut by a sentence split and
    pages with more than MAX_LINKS_PER_PAGE links are counted (in the returned Counter) and skipped.
    """
    counts: Counter = Counter()
    chunks = _sections(wikitext, sections)
    if sum(len(_LINK_OPEN.findall(c)) for c in chunks) > MAX_LINKS_PER_PAGE:
        counts["mention_pages_too_many_links"] += 1
        return [], counts
    out: list[LinkedSentence] = []
    number = 0
    for section, chunk in enumerate(chunks):
        renderer = _LinkRenderer(lang, variant, counts)
        chunk = shrink_templates(in_variant(chunk, lang, variant, wikitext=True))
        text = renderer.render(mwparserfromhell.parse(chunk, skip_style_tags=False))
        if not renderer.targets:
            continue
        text = html.unescape(text)
        text = _TRAIL.sub(
            lambda m: m.group(0) if not _trail_ok(m.group(1), lang) else m.group(1) + CLOSE, text
        )
        for paragraph in re.split(r"\n\s*\n|\n", text):
            paragraph = clean_text(paragraph, lang)
            for sentence in split_sentences(paragraph, lang):
                if OPEN not in sentence:
                    number += 1
                    continue
                unmarked = _unmark(sentence, renderer.targets, counts)
                if unmarked is None:
                    counts["mention_sentences_unbalanced"] += 1
                    continue
                plain, anchors = unmarked
                plain_stripped = plain.strip()
                if plain_stripped != plain:  # cleaning left a space at an edge (an anchor moved it): re-base
                    shift = len(plain) - len(plain.lstrip())
                    plain = plain_stripped
                    anchors = [Anchor(a.start - shift, a.end - shift, a.surface, a.target) for a in anchors]
                if _MARKUP_LEFT.search(plain):
                    counts["mention_sentences_markup_left"] += 1
                    continue
                if len(plain) > MAX_SENTENCE_CHARS:
                    counts["mention_sentences_too_long"] += 1
                    continue
                anchors = [a for a in anchors if len(a.surface) < len(plain)]
                if anchors:
                    out.append(LinkedSentence(section, number, plain, tuple(anchors)))
                number += 1
    return out, counts


# ------------------------------------------------------------------------------------- parent side


@dataclass(frozen=True)
class Target:
    page_id: int
    title: str
    via_redirect: bool


class MentionResolver:
    """Link targets -> English-linked articles, through redirects (built from the SQL tables)."""

    def __init__(
        self,
        title_ids: dict[str, int],
        redirect_to: dict[int, int],
        wanted: dict[int, str],
        is_redirect,
        reason_of,
    ):
        self.title_ids = title_ids  # every main-namespace title (articles and redirects) -> page id
        self.redirect_to = redirect_to  # redirect page id -> target page id
        self.wanted = wanted  # English-linked articles: page id -> title
        self.is_redirect = is_redirect
        self.reason_of = reason_of  # page id -> why it is not wanted ("no_en_link", "disambiguation", ...)

    def resolve(self, target: str) -> Target | str:
        """The article a link lands on, or the reason it is dropped."""
        page_id = self.title_ids.get(target)
        if page_id is None:
            return "red_link"
        via = False
        for _ in range(2):  # a double redirect is followed once more
            if not self.is_redirect(page_id):
                break
            via = True
            nxt = self.redirect_to.get(page_id)
            if nxt is None:
                return "redirect_unresolved"
            page_id = nxt
        if page_id in self.wanted:
            return Target(page_id, self.wanted[page_id], via)
        return "target_" + self.reason_of(page_id)


def surface_match(surface: str, title: str, aliases: list[str]) -> str:
    """ "title" (the title, with or without its disambiguator), "alias" (a redirect title) or "differs"."""
    if surface in (title, title_base(title)):
        return "title"
    if any(surface in (a, title_base(a)) for a in aliases):
        return "alias"
    return "differs"


POSITION_BUCKETS = ("at the start", "0-25%", "25-50%", "50-75%", "75-100%")


def position_bucket(start: int, length: int) -> str:
    """Where in the sentence an anchor starts: at char 0, or by quarter of the sentence length."""
    if start == 0:
        return POSITION_BUCKETS[0]
    return POSITION_BUCKETS[1 + min(3, int(4 * start / max(length, 1)))]


# ------------------------------------------------------------------------------------------ report


def mention_stats(total: Counter) -> dict | None:
    """The mentions part of a mining run's stats (from the summed shard counts); None without mentions."""
    scanned = total.get("mention_pages_scanned", 0)
    if not scanned:
        return None
    kept = total.get("mentions_kept", 0)
    return {
        "pages_scanned": scanned,
        "pages_with_mentions": total.get("mention_pages_with", 0),
        "sentences": total.get("mention_sentences_kept", 0),
        "mentions": kept,
        "mentions_per_1000_pages": round(1000 * kept / scanned, 1),
        "mentions_per_sentence": round(kept / max(total.get("mention_sentences_kept", 0), 1), 2),
        "links_seen": total.get("links_seen", 0),
        "via_redirect": total.get("mention_via_redirect", 0),
        "typed": total.get("mention_typed", 0),
        "match": {m: total.get(f"mention_match_{m}", 0) for m in ("title", "alias", "differs")},
        "surface_differs_share": round(total.get("mention_match_differs", 0) / max(kept, 1), 4),
        "position": {b: total.get(f"mention_pos_{b}", 0) for b in POSITION_BUCKETS},
        "dropped": {
            k.removeprefix("mention_drop_").removeprefix("mention_"): v
            for k, v in sorted(total.items())
            if v
            and (
                k.startswith("mention_drop_")
                or k.startswith("link_")
                or k
                in (
                    "mention_pages_too_many_links",
                    "mention_sentences_unbalanced",
                    "mention_sentences_markup_left",
                    "mention_sentences_too_long",
                    "mention_timeout",
                    "mention_parse_error",
                )
            )
        },
    }


def write_mention_report(stats: dict, out) -> list:
    """mentions.md (tables) and mentions.png (position histogram, surface classes) in `out`."""
    from pathlib import Path

    from eat.io import atomic_open, atomic_path

    out = Path(out)
    n = max(stats["mentions"], 1)
    lines = [
        "# Link-anchor mentions",
        "",
        "Written by `eat wiki mine --mentions`; the rows are in `mentions-*.parquet` (schema: wiki_data/schema.py).",
        "",
        *markdown.table_lines(
            ["", "count"],
            [
                ("pages scanned", f"{stats['pages_scanned']:,}"),
                ("pages with mentions", f"{stats['pages_with_mentions']:,}"),
                ("sentences", f"{stats['sentences']:,}"),
                ("mentions", f"{stats['mentions']:,}"),
                ("mentions per 1,000 pages", f"{stats['mentions_per_1000_pages']:,}"),
                ("mentions per sentence", stats["mentions_per_sentence"]),
                ("article links seen", f"{stats['links_seen']:,}"),
                ("reached through a redirect", f"{stats['via_redirect']:,}"),
                ("typed (Wikidata)", f"{stats['typed']:,}"),
            ],
            align="lr",
        ),
        "",
        "## Where the anchor starts in its sentence",
        "",
        *markdown.table_lines(
            ["position", "mentions", "share"],
            ((b, f"{c:,}", f"{c / n:.1%}") for b, c in stats["position"].items()),
            align="lrr",
        ),
        "",
        "## Surface vs the target's title",
        "",
        *markdown.table_lines(
            ["surface", "mentions", "share"],
            ((m, f"{c:,}", f"{c / n:.1%}") for m, c in stats["match"].items()),
            align="lrr",
        ),
        "",
        "## Links and sentences dropped",
        "",
        *markdown.table_lines(
            ["reason", "count"],
            ((k.replace("_", " "), f"{v:,}") for k, v in stats["dropped"].items()),
            align="lr",
        ),
        "",
    ]
    md = out / "mentions.md"
    with atomic_open(md) as fh:
        fh.write("\n".join(lines))
    written = [md]
    try:
        import matplotlib
    except ImportError:  # plots are a bonus: the numbers are in the Markdown
        return written
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].bar(list(stats["position"]), [c / n for c in stats["position"].values()])
    axes[0].set_ylabel("share of mentions")
    axes[0].set_title("Where the anchor starts in its sentence")
    axes[1].bar(list(stats["match"]), [c / n for c in stats["match"].values()], color="tab:orange")
    axes[1].set_title("Surface vs the target's title")
    fig.suptitle(f"{stats['mentions']:,} mentions in {stats['pages_scanned']:,} pages")
    fig.tight_layout()
    png = out / "mentions.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return [*written, png]
