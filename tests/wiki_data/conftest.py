"""Dump folders shared by the mining tests: the real jawiki sample, plain and as a multistream copy, with our
own SQL fixtures (the sample has no companion tables)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wiki_data.multistream import write_multistream
from wiki_data.pages import dump_header, iter_raw_pages

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = "jawiki-20230501-pages-articles-sample238.xml.bz2"


@pytest.fixture(scope="session")
def ja_plain(shared_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ja_plain")
    (folder / "jawiki-20230501-pages-articles.xml.bz2").symlink_to(shared_data / "wikipedia" / SAMPLE)
    for f in (FIXTURES / "jawiki").iterdir():
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="session")
def ja_multi(shared_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ja_multi")
    src = shared_data / "wikipedia" / SAMPLE
    n = write_multistream(
        iter_raw_pages(src),
        folder / "jawiki-20230501-pages-articles-multistream.xml.bz2",
        folder / "jawiki-20230501-pages-articles-multistream-index.txt.bz2",
        pages_per_stream=20,
        header=dump_header(src),
    )
    assert n == 238
    for f in (FIXTURES / "jawiki").iterdir():
        shutil.copy(f, folder / f.name)
    return folder
