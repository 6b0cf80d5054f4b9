"""Multistream dumps: a bz2 file made of independent streams (~100 pages each) plus an index
`offset:page_id:title` giving each page's stream. Any stream can be decompressed on its own, which is what
lets workers share one file by byte ranges and skip streams without a wanted page.
"""

from __future__ import annotations

import bz2
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eat.errors import UserError
from eat.io import atomic_path
from wiki_data.pages import BadStream, open_dump, page_id_of, page_title_of, split_pages

MEDIAWIKI_CLOSE = b"</mediawiki>\n"


@dataclass(frozen=True)
class Stream:
    """One bz2 stream: its byte range in the dump and the page ids the index lists for it."""

    offset: int
    length: int  # -1: up to the end of the file
    page_ids: tuple[int, ...]


def read_index(path: str | Path) -> list[Stream]:
    """Streams of a multistream dump from its index (bz2 or plain), in file order."""
    path = Path(path)
    if not path.is_file():
        raise UserError("multistream index not found", path=path)
    groups: dict[int, list[int]] = {}
    order: list[int] = []
    try:
        with open_dump(path) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                parts = line.split(b":", 2)
                try:
                    offset, page_id = int(parts[0]), int(parts[1])
                except (ValueError, IndexError):
                    raise UserError(
                        f"not an index line (expected offset:page_id:title): {line[:60]!r}",
                        path=path,
                        line=lineno,
                    ) from None
                ids = groups.get(offset)
                if ids is None:
                    ids = groups[offset] = []
                    order.append(offset)
                ids.append(page_id)
    except (OSError, EOFError) as exc:
        raise UserError(f"cannot read the index ({exc})", path=path) from None
    order.sort()
    streams = []
    for i, offset in enumerate(order):
        length = order[i + 1] - offset if i + 1 < len(order) else -1
        streams.append(Stream(offset, length, tuple(groups[offset])))
    return streams


def read_stream(path: Path, offset: int, length: int) -> bytes:
    """Decompress the one bz2 stream starting at `offset`; BadStream if it is corrupt or cut short."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read() if length < 0 else fh.read(length)
    if not data:
        raise BadStream(path, offset, "no data at this offset")
    dec = bz2.BZ2Decompressor()
    try:
        out = dec.decompress(data)
    except (OSError, ValueError, EOFError) as exc:
        raise BadStream(path, offset, str(exc)) from None
    if not dec.eof:
        raise BadStream(path, offset, "stream ends early")
    return out


def stream_pages(path: Path, offset: int, length: int) -> list[bytes]:
    """The raw `<page>` elements of one stream."""
    pages, _ = split_pages(read_stream(path, offset, length))
    return pages


def write_multistream(
    pages_xml_iter: Iterable[bytes | str],
    out_bz2: str | Path,
    out_index: str | Path,
    pages_per_stream: int = 100,
    header: bytes | None = None,
) -> int:
    """Write pages as a Wikimedia-style multistream dump and its index; returns the number of pages.

    Layout as on dumps.wikimedia.org: a header stream (`<mediawiki><siteinfo>`), streams of
    `pages_per_stream` pages, a closing stream; the index (bz2 when its name ends in .bz2) lists
    `offset:page_id:title` per page.
    """
    out_bz2, out_index = Path(out_bz2), Path(out_index)
    header = header or b'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">\n'
    index_lines: list[bytes] = []
    n = 0
    with atomic_path(out_bz2) as tmp, open(tmp, "wb") as fh:
        fh.write(bz2.compress(header))

        def flush(batch: list[bytes]) -> None:
            offset = fh.tell()
            for raw in batch:
                title = page_title_of(raw).replace("\n", " ")
                index_lines.append(f"{offset}:{page_id_of(raw)}:{title}\n".encode())
            fh.write(bz2.compress(b"".join(batch)))

        batch: list[bytes] = []
        for page in pages_xml_iter:
            raw = page.encode("utf-8") if isinstance(page, str) else page
            if not raw.endswith(b"\n"):
                raw += b"\n"
            batch.append(raw)
            n += 1
            if len(batch) >= pages_per_stream:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
        fh.write(bz2.compress(MEDIAWIKI_CLOSE))
    data = b"".join(index_lines)
    with atomic_path(out_index) as tmp:
        tmp.write_bytes(bz2.compress(data) if out_index.name.endswith(".bz2") else data)
    return n
