"""MySQL dump reader: the real wikidatawiki langlinks dump and hand-written tricky statements."""

from __future__ import annotations

import gzip

import pytest

from eat.errors import UserError
from wiki_data.sql_dump import SqlDump, parse_tuple

TRICKY = r"""-- MySQL dump
CREATE TABLE `langlinks` (
  `ll_from` int(8) unsigned NOT NULL DEFAULT 0,
  `ll_lang` varbinary(35) NOT NULL DEFAULT '',
  `ll_title` varbinary(255) NOT NULL DEFAULT '',
  PRIMARY KEY (`ll_from`,`ll_lang`)
) ENGINE=InnoDB DEFAULT CHARSET=binary;
INSERT INTO `langlinks` VALUES (1,'en','Rock \'n\' roll'),(2,'en','C:\\Windows'),(3,'en','Line\nbreak (two)'),(4,'en',NULL),(5,'ja','東京 (都),(x)');
INSERT INTO `other` VALUES (99,'en','not this table');
INSERT INTO `langlinks` VALUES (6,'en','Semi;colon'),(7,'en'),(8,'en','O\'Brien, \"Jr.\"'),(9,'en','Tab\there');
"""


def write(tmp_path, text: str, gz: bool) -> object:
    path = tmp_path / ("t.sql.gz" if gz else "t.sql")
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_tricky_statements(tmp_path, gz):
    dump = SqlDump(write(tmp_path, TRICKY, gz), "langlinks")
    rows = list(dump.rows(["ll_from", "ll_title"]))
    assert rows == [
        (1, "Rock 'n' roll"),
        (2, "C:\\Windows"),
        (3, "Line\nbreak (two)"),
        (4, None),
        (5, "東京 (都),(x)"),
        (6, "Semi;colon"),
        (8, 'O\'Brien, "Jr."'),
        (9, "Tab\there"),
    ]
    assert dump.stats.malformed == 1  # (7,'en') has two values for three columns
    assert dump.stats.statements == 2  # the `other` table is not ours


def test_garbage_row_is_skipped_and_counted(tmp_path):
    text = TRICKY.replace("(2,'en','C:\\\\Windows')", "(2,'en',oops'x')")
    dump = SqlDump(write(tmp_path, text, False), "langlinks")
    ids = [r[0] for r in dump.rows(["ll_from"])]
    assert 2 not in ids and 1 in ids and 3 in ids
    assert dump.stats.malformed == 2


def test_parse_tuple_values():
    assert parse_tuple(b"1,-2,3.5,NULL,'a\\'b',''") == [1, -2, 3.5, None, "a'b", ""]
    assert parse_tuple(b"1,'unterminated") is None


def test_filtered_rows_are_not_decoded(tmp_path):
    dump = SqlDump(write(tmp_path, TRICKY, False), "langlinks")
    rows = list(dump.rows(["ll_from", "ll_lang"], contains=(b"'ja'",)))
    assert rows == [(5, "ja")]


def test_real_langlinks_dump(shared_data):
    dump = SqlDump(shared_data / "wikipedia" / "wikidatawiki-20170325-langlinks.sql.gz")
    rows = list(dump.rows(["ll_from", "ll_lang", "ll_title"]))
    assert dump.table == "langlinks" and dump.columns == ["ll_from", "ll_lang", "ll_title"]
    assert dump.stats.statements == 4 and dump.stats.malformed == 0
    assert len(rows) == 90551  # 90,547 "),(" separators + the first row of each of the 4 statements
    assert rows[0] == (14928, "aa", "Category:User aa")
    assert rows[-1] == (14640662, "zu", "user:OffsBlink")
    titles = {(r[0], r[1]): r[2] for r in rows}
    assert titles[(52582, "an")] == "Wikipedia:Criterios d'almesibilidat d'articlos"  # \' unescaped
    assert any("\\" not in t and "'" in t for t in titles.values())
    langs = {r[1] for r in rows}
    assert {"zh", "ja", "ko", "ru", "ar", "en"} <= langs


def test_missing_column_is_a_user_error(tmp_path):
    dump = SqlDump(write(tmp_path, TRICKY, False), "langlinks")
    with pytest.raises(UserError, match="no column"):
        list(dump.rows(["ll_nope"]))


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        SqlDump(tmp_path / "nope.sql.gz")


def test_wrong_table_corrupt_gzip_and_bz2_dumps(tmp_path):
    import bz2

    from wiki_data.sql_dump import format_table_dump

    columns = ["pp_page", "pp_propname", "pp_value"]
    text = gzip.decompress(format_table_dump("page_props", [(1, "disambiguation", "")], columns)).decode()
    other = tmp_path / "other.sql"
    other.write_text(text.replace("page_props", "change_tag_def"), encoding="utf-8")
    with pytest.raises(UserError, match="no INSERT INTO `page_props`"):
        list(SqlDump(other, "page_props").tuples())
    packed = tmp_path / "page_props.sql.bz2"
    packed.write_bytes(bz2.compress(text.encode("utf-8")))
    assert list(SqlDump(packed, "page_props").tuples()) == [[1, "disambiguation", ""]]
    fake = tmp_path / "fake.sql.gz"
    fake.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match="not a gz file"):
        list(SqlDump(fake, "page_props").tuples())
    data = bytearray(gzip.compress((text * 2000).encode("utf-8"), compresslevel=1))
    data[200:260] = bytes(60)  # damage inside the deflate stream
    broken = tmp_path / "broken.sql.gz"
    broken.write_bytes(bytes(data))
    with pytest.raises(UserError, match="cannot read SQL dump"):  # zlib.error inside, one line outside
        list(SqlDump(broken, "page_props").tuples())
