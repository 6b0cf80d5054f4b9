"""`<page>` elements of a pages-articles XML dump, as raw bytes and as parsed records.

Pages are cut out of the decompressed bytes at `<page>`/`</page>` and each batch is parsed with lxml in
the worker that needs it: one broken page costs that page only, and the reader never builds trees for pages
nobody wants (their id is read with a regex).
"""

from __future__ import annotations

import bz2
import gzip
import logging
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from eat.errors import UserError

log = logging.getLogger(__name__)

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
    import html

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


# ------------------------------------------------------------------------------ work done in worker processes
# Kept here, away from pydantic/pyarrow, so that spawned workers start in a fraction of a second.

_worker_cfg: dict = {}


class PageTimeout(BaseException):
    """Raised by SIGALRM inside a page's parse; a BaseException (like KeyboardInterrupt) so that no
    `except Exception` in parsing code on the way can catch it."""


def _on_alarm(signum, frame):
    raise PageTimeout


def init_worker(lang: str, variant: str | None, timeout: float, mention_sections: int | None = None) -> None:
    """Per-process settings; `mention_sections` (None: off) also scans link anchors (wiki_data.mentions)."""
    _worker_cfg.update(lang=lang, variant=variant, timeout=timeout, mention_sections=mention_sections)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, _on_alarm)
        _worker_cfg["alarm"] = True


def _timed(fn, *args):
    """fn(*args) under the page time limit; raises PageTimeout past it."""
    timeout, alarm = _worker_cfg["timeout"], _worker_cfg.get("alarm", False)
    start = time.monotonic()
    try:
        if alarm:
            # The alarm repeats every 50 ms: an exception raised while Python runs a __del__ (e.g. during
            # garbage collection) is swallowed, so one alarm alone could be lost.
            signal.setitimer(signal.ITIMER_REAL, timeout, 0.05)
        try:
            result = fn(*args)
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if alarm and time.monotonic() - start > timeout:
            raise PageTimeout  # every alarm was swallowed; the page still ran over its limit
        return result
    except PageTimeout:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
        raise


def _mentions_of(page: Page, counts: Counter) -> list[tuple]:
    """The page's link anchors as (page_id, section, sentence_no, sentence, start, end, surface, target)."""
    from wiki_data.mentions import scan_page

    sections = _worker_cfg.get("mention_sections")
    if sections is None:
        return []
    counts["mention_pages_scanned"] += 1
    try:
        sentences, scan_counts = _timed(
            scan_page, page.text, _worker_cfg["lang"], _worker_cfg["variant"], sections
        )
    except PageTimeout:
        counts["mention_timeout"] += 1
        return []
    except RecursionError:
        counts["mention_parse_error"] += 1
        return []
    except Exception as exc:  # a parser bug on one page must not end a day-long run
        log.debug("page %s (mentions): %s", page.page_id, exc)
        counts["mention_parse_error"] += 1
        return []
    counts.update(scan_counts)
    return [
        (page.page_id, s.section, s.sentence_no, s.sentence, a.start, a.end, a.surface, a.target)
        for s in sentences
        for a in s.anchors
    ]


def process_raw_pages(
    raws: list[bytes], wanted: frozenset[int] | None
) -> tuple[list[tuple], list[tuple], Counter]:
    """Lead rows, mention rows (when on) and counts for the wanted pages among `raws`."""
    from wiki_data.lead import NoSentence, process_page

    lang, variant = _worker_cfg["lang"], _worker_cfg["variant"]
    rows, mentions, counts = [], [], Counter()
    found = set()
    for raw in raws:
        if wanted is not None:
            pid = page_id_of(raw)
            if pid not in wanted:
                continue
        try:
            page = parse_page(raw)
        except BadPage:
            counts["bad_xml"] += 1
            if wanted is not None:
                found.add(pid)
            continue
        found.add(page.page_id)
        mentions.extend(_mentions_of(page, counts))
        try:
            res = _timed(process_page, page.title, page.text, lang, variant)
        except PageTimeout:
            counts["timeout"] += 1
            continue
        except NoSentence:
            counts["no_sentence"] += 1
            continue
        except RecursionError:
            counts["parse_error"] += 1
            continue
        except Exception as exc:  # a parser bug on one page must not end a day-long run
            log.debug("page %s: %s", page.page_id, exc)
            counts["parse_error"] += 1
            continue
        rows.append((page.page_id, res.surface, res.sentence, res.infobox_type))
    if wanted is not None:
        counts["missing_from_dump"] += len(wanted - found)
    return rows, mentions, counts


def work(task: tuple) -> tuple[list[tuple], list[tuple], Counter, int]:
    """One unit of work in a worker: a multistream stream or a batch of raw pages from a plain dump."""
    kind = task[0]
    if kind == "stream":
        from wiki_data.multistream import BadStream, stream_pages

        _, path, offset, length, wanted, skip_bad = task
        try:
            raws = stream_pages(Path(path), offset, length)
        except BadStream as exc:
            if not skip_bad:
                raise UserError(f"{exc}; re-run with --skip-bad-streams to skip it", path=path) from None
            return [], [], Counter(bad_stream=len(wanted)), len(wanted)
        return (*process_raw_pages(raws, wanted), len(wanted))
    _, raws = task
    return (*process_raw_pages(raws, None), len(raws))
