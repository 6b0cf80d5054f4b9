"""`<page>` elements of a pages-articles XML dump, as raw bytes and as parsed records.

Pages are cut out of the decompressed bytes at `<page>`/`</page>` and each batch is parsed with lxml in
the worker that needs it: one broken page costs that page only, and the reader never builds trees for pages
nobody wants (their id is read with a regex).
"""

from __future__ import annotations

import bz2
import gzip
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from eat.errors import UserError

PAGE_OPEN = b"<page>"
PAGE_CLOSE = b"</page>"
_PAGE_ID = re.compile(rb"<id>\s*(\d+)\s*</id>")
_TITLE = re.compile(rb"<title>(.*?)</title>", re.S)
CHUNK = 1 << 20
FEED = 1 << 16  # compressed bytes per decompress call: error offsets are exact to this


@dataclass
class Page:
    page_id: int
    ns: int
    title: str
    redirect: bool
    text: str


class BadStream(Exception):
    """A bz2 stream that does not decompress (corrupt or truncated)."""

    def __init__(self, path: Path, offset: int, why: str):
        super().__init__(f"bz2 stream at byte offset {offset} is corrupt or truncated ({why})")
        self.path, self.offset, self.why = path, offset, why


class BadPage(Exception):
    """A page whose XML does not parse."""


def page_id_of(raw: bytes) -> int | None:
    """The page id of one raw `<page>` element (the first `<id>`, which precedes the revision's)."""
    m = _PAGE_ID.search(raw)
    return int(m.group(1)) if m else None


def page_title_of(raw: bytes) -> str:
    m = _TITLE.search(raw)
    return html.unescape(m.group(1).decode("utf-8", "replace")) if m else ""


def split_pages(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete `<page>...</page>` elements in `data`, and the unfinished rest."""
    pages = []
    pos = 0
    while True:
        start = data.find(PAGE_OPEN, pos)
        if start < 0:
            return pages, b""
        end = data.find(PAGE_CLOSE, start)
        if end < 0:
            return pages, data[start:]
        end += len(PAGE_CLOSE)
        pages.append(data[start:end])
        pos = end


def parse_page(raw: bytes) -> Page:
    """One raw `<page>` element -> Page (namespace-agnostic); BadPage if its XML is broken."""
    try:
        el = etree.fromstring(raw)
    except etree.XMLSyntaxError as exc:
        raise BadPage(str(exc)) from None
    try:
        page_id = int(el.findtext("id"))
        ns = int(el.findtext("ns") or 0)
    except (TypeError, ValueError):
        raise BadPage("page without a numeric <id>") from None
    text = el.findtext("revision/text") or ""
    return Page(page_id, ns, el.findtext("title") or "", el.find("redirect") is not None, text)


def open_dump(path: Path):
    """Binary file object over a .bz2, .gz or plain XML dump."""
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic == b"BZh":
        return bz2.open(path, "rb")
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _bz2_chunks(path: Path) -> Iterator[bytes]:
    """Decompressed bytes of a (single- or multi-stream) bz2 file, with byte offsets in errors."""
    with open(path, "rb") as fh:
        dec = bz2.BZ2Decompressor()
        pos = 0  # compressed offset of `data`
        fresh = True
        while True:
            data = fh.read(FEED)
            if not data:
                if not fresh:
                    raise BadStream(path, pos, "file ends inside a stream")
                return
            while data:
                try:
                    out = dec.decompress(data)
                except (OSError, ValueError) as exc:
                    raise BadStream(path, pos, str(exc)) from None
                fresh = False
                if out:
                    yield out
                if dec.eof:
                    rest = dec.unused_data
                    pos += len(data) - len(rest)
                    data = rest
                    dec = bz2.BZ2Decompressor()
                    fresh = True
                else:
                    pos += len(data)
                    data = b""


def iter_raw_pages(path: str | Path) -> Iterator[bytes]:
    """Every raw `<page>` element of a dump, read once, in file order (bz2/gz/plain).

    A corrupt or truncated bz2 file raises a UserError naming the file and the byte offset.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        is_bz2 = fh.read(3) == b"BZh"
    rest = b""
    try:
        if is_bz2:
            for chunk in _bz2_chunks(path):
                pages, rest = split_pages(rest + chunk)
                yield from pages
            return
        with open_dump(path) as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                pages, rest = split_pages(rest + chunk)
                yield from pages
    except BadStream as exc:
        raise UserError(str(exc), path=path) from None
    except (OSError, EOFError) as exc:
        msg = f"cannot read the dump ({exc}); the file is truncated or corrupt"
        raise UserError(msg, path=path) from None


def dump_header(path: str | Path) -> bytes:
    """The `<mediawiki ...><siteinfo>...</siteinfo>` part before the first page."""
    with open_dump(Path(path)) as fh:
        head = fh.read(CHUNK)
    cut = head.find(PAGE_OPEN)
    head = head if cut < 0 else head[:cut]
    # Back up to the start of the line that holds <page> so the header keeps its indentation.
    return head[: head.rfind(b"\n") + 1] if b"\n" in head else head
