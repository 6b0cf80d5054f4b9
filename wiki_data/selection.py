"""Which pages of a wiki are worth parsing, decided from its SQL tables before any wikitext is read.

A page is wanted when it is in the main namespace, is not a redirect or a disambiguation page, and has an
English langlink; every other page gets the status that says why not, which the shard counts report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eat.errors import UserError
from wiki_data.discover import DumpFiles
from wiki_data.sql_dump import SqlDump

# Page status codes decided from the SQL tables.
UNKNOWN, NON_MAIN, REDIRECT, DISAMBIG, NO_EN, WANTED = range(6)
STATUS_REASON = {
    UNKNOWN: "not_in_page_table",
    NON_MAIN: "non_main_namespace",
    REDIRECT: "redirect",
    DISAMBIG: "disambiguation",
    NO_EN: "no_en_link",
}


@dataclass
class Selection:
    """What the SQL tables say about every page id."""

    status: bytearray
    titles: dict[int, str]  # wanted pages only
    en_titles: dict[int, str]
    qids: dict[int, str]
    aliases: dict[int, list[str]]
    sql_stats: dict = field(default_factory=dict)

    has_en: bytearray = field(default_factory=bytearray)
    # With --mentions only: every main-namespace title (articles and redirects, in the output variant) -> page
    # id, and redirect page id -> target page id.
    title_ids: dict[str, int] = field(default_factory=dict)
    redirect_to: dict[int, int] = field(default_factory=dict)

    def status_of(self, page_id: int) -> int:
        return self.status[page_id] if 0 <= page_id < len(self.status) else UNKNOWN

    def en_link(self, page_id: int) -> int:
        return self.has_en[page_id] if 0 <= page_id < len(self.has_en) else 0


def _title(raw: object) -> str:
    return str(raw).replace("_", " ")


def select_pages(files: DumpFiles, mentions: bool = False, convert: Callable[[str], str] = str) -> Selection:
    """Read the tables once and decide the wanted pages (before any wikitext is parsed).

    `mentions` also keeps what resolving link targets needs; `convert` maps titles to the script variant the
    wikitext is converted to (zh), since link targets are read from converted text.
    """
    sql_stats = {}
    page = SqlDump(files.page_table, "page")
    ns0: dict[int, str] = {}
    redirect_titles: dict[int, str] = {}
    non_main: list[int] = []
    max_id = 0
    for page_id, ns, title, is_redirect in page.rows(
        ["page_id", "page_namespace", "page_title", "page_is_redirect"]
    ):
        max_id = max(max_id, page_id)
        if ns != 0:
            non_main.append(page_id)
        elif is_redirect:
            redirect_titles[page_id] = _title(title)
        else:
            ns0[page_id] = _title(title)
    sql_stats["page"] = _sql_summary(page)

    links = SqlDump(files.langlinks, "langlinks")
    en_titles = {
        ll_from: _title(t)
        for ll_from, lang, t in links.rows(["ll_from", "ll_lang", "ll_title"], contains=(b"'en'",))
        if lang == "en" and t
    }
    sql_stats["langlinks"] = _sql_summary(links)

    props = SqlDump(files.page_props, "page_props")
    disambig: set[int] = set()
    qids: dict[int, str] = {}
    for pp_page, name, value in props.rows(
        ["pp_page", "pp_propname", "pp_value"], contains=(b"'disambiguation'", b"'wikibase_item'")
    ):
        if name == "disambiguation":
            disambig.add(pp_page)
        elif name == "wikibase_item" and value:
            qids[pp_page] = str(value)
    sql_stats["page_props"] = _sql_summary(props)

    status = bytearray(max_id + 1)
    for pid in non_main:
        status[pid] = NON_MAIN
    for pid in redirect_titles:
        status[pid] = REDIRECT
    titles = {}
    for pid, title in ns0.items():
        if pid in disambig:
            status[pid] = DISAMBIG
        elif pid not in en_titles:
            status[pid] = NO_EN
        else:
            status[pid] = WANTED
            titles[pid] = title

    aliases: dict[int, list[str]] = {}
    redirect_to: dict[int, int] = {}
    if files.redirects is not None:
        by_title = {t: pid for pid, t in titles.items()}
        any_title = {t: pid for pid, t in (ns0 | redirect_titles).items()} if mentions else {}
        red = SqlDump(files.redirects, "redirect")
        for rd_from, rd_ns, rd_title, *rest in red.rows(
            ["rd_from", "rd_namespace", "rd_title", "rd_interwiki"]
        ):
            if rd_ns != 0 or (rest and rest[0]):
                continue
            target = by_title.get(_title(rd_title))
            alias = redirect_titles.get(rd_from)
            if target is not None and alias:
                aliases.setdefault(target, []).append(alias)
            if (
                mentions
                and rd_from in redirect_titles
                and (to := any_title.get(_title(rd_title))) is not None
            ):
                redirect_to[rd_from] = to
        sql_stats["redirect"] = _sql_summary(red)
    has_en = bytearray(max_id + 1)
    for pid in en_titles:
        if pid <= max_id:
            has_en[pid] = 1
    wanted_en = {pid: en_titles[pid] for pid in titles}
    wanted_qids = {pid: qids[pid] for pid in titles if pid in qids}
    title_ids: dict[str, int] = {}
    if mentions:
        for pid, title in (ns0 | redirect_titles).items():
            title_ids.setdefault(convert(title), pid)
    return Selection(
        status, titles, wanted_en, wanted_qids, aliases, sql_stats, has_en, title_ids, redirect_to
    )


def _sql_summary(dump: SqlDump) -> dict:
    return {"file": str(dump.path), "rows": dump.stats.rows, "malformed": dump.stats.malformed}


def load_types(path: Path, qids: set[str]) -> dict[str, str]:
    """qid -> type for the given qids from an `eat wiki types` table."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not path.exists():
        raise UserError("types table not found (make it with `eat wiki types`)", path=path)
    try:
        table = pq.read_table(path, columns=["qid", "type"])
    except Exception as exc:  # pyarrow raises several types for damaged or foreign files
        raise UserError(f"not a types table with columns qid, type ({exc})", path=path) from None
    table = table.filter(pc.is_in(table["qid"], value_set=pa.array(sorted(qids), "string")))
    return dict(zip(table["qid"].to_pylist(), table["type"].to_pylist(), strict=True))
