"""A pairs folder as `eat wiki mine` writes it, for tests that only need some rows to build a dataset from."""

from __future__ import annotations

from pathlib import Path


def write_city_pairs(folder: Path, n: int) -> Path:
    """`folder/pairs-00000.parquet` with `n` ja rows (東京{i} -> Tokyo {i}, LOC); returns the folder."""
    import pyarrow.parquet as pq

    from wiki_data.schema import pairs_table

    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"lang": "ja", "page_id": i, "title": f"東京{i}", "surface": f"東京{i}", "en_title": f"Tokyo {i}",
         "qid": f"Q{i}", "type": "LOC", "type_source": "wikidata", "sentence": f"東京{i}は都市である。", "aliases": []}
        for i in range(n)
    ]  # fmt: skip
    pq.write_table(pairs_table(rows), folder / "pairs-00000.parquet")
    return folder
