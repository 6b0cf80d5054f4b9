"""Find a wiki's dump files in a folder by Wikimedia's standard names (explicit paths override).

`{lang}wiki-{date}-pages-articles-multistream.xml.bz2` (+ `-multistream-index.txt.bz2`) is preferred, then
`-pages-articles.xml.bz2`; tables are `-page.sql.gz`, `-langlinks.sql.gz`, `-page_props.sql.gz`,
`-redirect.sql.gz`. Plain `.xml`/`.sql` and `.gz` variants work too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eat.errors import UserError

_XML_EXT = (".bz2", "", ".gz")
_SQL_EXT = (".gz", "", ".bz2")


@dataclass
class DumpFiles:
    lang: str
    date: str | None
    pages: Path
    index: Path | None  # None: not a multistream dump
    page_table: Path
    langlinks: Path
    page_props: Path
    redirects: Path | None


def _date_of(name: str) -> str | None:
    m = re.search(r"wiki-(\d{8}|latest)-", name)
    return m.group(1) if m else None


def _find(
    folder: Path | None, lang: str, date: str | None, suffixes: list[str]
) -> tuple[Path | None, list[str]]:
    """First existing file among `{lang}wiki-{date}-{suffix}`; date None -> the newest date present."""
    looked = []
    if folder is None:
        return None, looked
    for suffix in suffixes:
        pattern = f"{lang}wiki-{date or '*'}-{suffix}"
        looked.append(str(folder / pattern))
        hits = sorted(folder.glob(pattern), key=lambda p: _date_of(p.name) or "")
        if hits:
            return hits[-1], looked
    return None, looked


def discover(
    lang: str,
    dump_dir: str | Path | None,
    date: str | None = None,
    pages: Path | None = None,
    index: Path | None = None,
    page_table: Path | None = None,
    langlinks: Path | None = None,
    page_props: Path | None = None,
    redirects: Path | None = None,
) -> DumpFiles:
    """Resolve every input file; a missing one raises one line listing what was looked for."""
    folder = Path(dump_dir) if dump_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise UserError("dump folder not found", path=folder)
    missing: list[str] = []

    def need(explicit: Path | None, suffixes: list[str], optional: bool = False) -> Path | None:
        if explicit is not None:
            if not Path(explicit).is_file():
                missing.append(str(explicit))
                return None
            return Path(explicit)
        found, looked = _find(folder, lang, date, suffixes)
        if found is None and not optional:
            missing.append(
                " or ".join(looked) if looked else f"(no --dump-dir; pass the file for {suffixes[0]})"
            )
        return found

    if pages is None:
        multi, _ = _find(folder, lang, date, [f"pages-articles-multistream.xml{e}" for e in _XML_EXT])
        if multi is not None:
            pages = multi
            if index is None:
                idx_date = _date_of(multi.name)
                index, looked = _find(
                    folder, lang, idx_date, [f"pages-articles-multistream-index.txt{e}" for e in (".bz2", "")]
                )
                if index is None:
                    missing.append(" or ".join(looked))
    pages_path = need(pages, [f"pages-articles-multistream.xml{e}" for e in _XML_EXT] + [
        f"pages-articles.xml{e}" for e in _XML_EXT
    ])  # fmt: skip
    if index is not None and not Path(index).is_file():
        missing.append(str(index))
    date = date or (_date_of(pages_path.name) if pages_path else None)
    page_table_path = need(page_table, [f"page.sql{e}" for e in _SQL_EXT])
    langlinks_path = need(langlinks, [f"langlinks.sql{e}" for e in _SQL_EXT])
    props_path = need(page_props, [f"page_props.sql{e}" for e in _SQL_EXT])
    redirects_path = need(redirects, [f"redirect.sql{e}" for e in _SQL_EXT], optional=True)
    if missing:
        raise UserError(f"missing dump file(s): looked for {'; '.join(missing)}")
    assert pages_path and page_table_path and langlinks_path and props_path
    check_pages_dump(pages_path)
    for given in (pages, index, page_table, langlinks, page_props, redirects):
        # A file given by hand from another wiki would mix page ids of two wikis without any error.
        if (
            given is not None
            and Path(given).name.split("-")[0].endswith("wiki")
            and not Path(given).name.startswith(f"{lang}wiki-")
        ):
            raise UserError(f"is not a {lang}wiki file (--lang {lang})", path=given)
    return DumpFiles(
        lang=lang,
        date=date if date != "latest" else None,
        pages=pages_path,
        index=Path(index) if index is not None else None,
        page_table=page_table_path,
        langlinks=langlinks_path,
        page_props=props_path,
        redirects=redirects_path,
    )


def check_pages_dump(path: Path) -> None:
    """Refuse at once a pages file that is not a MediaWiki XML export (a mining run would find 0 pages and
    end with an empty output and exit 0). Reads the first stream only."""
    import bz2

    try:
        with open(path, "rb") as fh:
            raw = fh.read(4)
        if path.suffix == ".bz2":
            if not raw.startswith(b"BZh"):
                raise UserError("not a bz2 file (no BZh header)", path=path)
            with bz2.open(path, "rb") as fh:
                head = fh.read(1 << 16)
        elif path.suffix == ".gz":
            import gzip

            with gzip.open(path, "rb") as fh:
                head = fh.read(1 << 16)
        else:
            with open(path, "rb") as fh:
                head = fh.read(1 << 16)
    except (OSError, EOFError) as exc:
        raise UserError(f"cannot read the start of the dump ({exc})", path=path) from None
    if b"<mediawiki" not in head:
        raise UserError("not a MediaWiki XML dump (no <mediawiki> element at its start)", path=path)
