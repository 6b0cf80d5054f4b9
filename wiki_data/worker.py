"""What a mining worker process does with one task: raw pages in, lead rows, mention rows and counts out.

Kept away from pydantic/pyarrow, so that spawned workers start in a fraction of a second; the parent plans
the tasks (`wiki_data.shards`) and runs them on a pool (`wiki_data.pool`).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from eat.errors import UserError
from wiki_data.multistream import stream_pages
from wiki_data.pages import BadPage, BadStream, Page, page_id_of, parse_page

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamTask:
    """One bz2 stream of a multistream dump, and the pages wanted from it."""

    path: str
    offset: int
    length: int
    wanted: frozenset[int]
    skip_bad: bool  # count a corrupt stream's pages as bad_stream instead of stopping the run


@dataclass(frozen=True)
class PagesTask:
    """Raw pages of a plain dump, read in the parent, all of them wanted."""

    raws: list[bytes]


Task = StreamTask | PagesTask


@dataclass
class WorkResult:
    """A task's output: lead rows (page_id, surface, sentence, infobox type), mention rows (see
    `_mentions_of`), drop counts, and how many wanted pages it covered (for the progress bar)."""

    rows: list[tuple] = field(default_factory=list)
    mentions: list[tuple] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    pages: int = 0


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


def _swallowed_timeouts_are_expected(previous):
    """An unraisable-exception hook that drops the PageTimeouts a __del__ swallowed (the repeating alarm
    raises another one) and passes anything else on: printing or reporting them would run while alarms
    keep coming, and an alarm inside the reporting hook breaks the hook itself."""

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, PageTimeout):
            previous(unraisable)

    return hook


def _timed(fn, *args):
    """fn(*args) under the page time limit; raises PageTimeout past it."""
    timeout, alarm = _worker_cfg["timeout"], _worker_cfg.get("alarm", False)
    start = time.monotonic()
    previous_hook = sys.unraisablehook
    if alarm:
        sys.unraisablehook = _swallowed_timeouts_are_expected(previous_hook)
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
    finally:
        sys.unraisablehook = previous_hook


def _mentions_of(page: Page, counts: Counter) -> list[tuple]:
    """The page's link anchors as (page_id, section, sentence_no, sentence, start, end, surface, target)."""
    from wiki_data.mentions import scan_page  # mwparserfromhell: loaded where pages are parsed, only

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
    from wiki_data.lead import NoSentence, process_page  # as above (and tests replace process_page)

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


def warm_up() -> None:
    """Import what parsing pages needs (a no-op task run by each new worker before the first page)."""
    import wiki_data.lead

    if _worker_cfg.get("mention_sections") is not None:
        import wiki_data.mentions  # noqa: F401


def work(task: Task) -> WorkResult:
    """One unit of work in a worker: a multistream stream or a batch of raw pages from a plain dump."""
    if isinstance(task, PagesTask):
        return WorkResult(*process_raw_pages(task.raws, None), pages=len(task.raws))
    try:
        raws = stream_pages(Path(task.path), task.offset, task.length)
    except BadStream as exc:
        if not task.skip_bad:
            raise UserError(f"{exc}; re-run with --skip-bad-streams to skip it", path=task.path) from None
        return WorkResult(counts=Counter(bad_stream=len(task.wanted)), pages=len(task.wanted))
    return WorkResult(*process_raw_pages(raws, task.wanted), pages=len(task.wanted))
