"""The one Markdown table helper: the exact bytes the reports and cards have always written."""

from __future__ import annotations

import pytest

from eat.markdown import header, row, rule, table, table_lines


def test_row_and_default_alignment():
    assert table_lines(["lang", "n"], [["ja", 3], ["zh", 1.5]]) == [
        "| lang | n |",
        "|---|---|",
        "| ja | 3 |",
        "| zh | 1.5 |",
    ]
    assert row(["ja", 3, 1, 4]) == "| ja | 3 | 1 | 4 |"


def test_alignment_row():
    assert rule("lrr") == "|---|---:|---:|"
    assert header(["reason", "count"], "lr") == ["| reason | count |", "|---|---:|"]
    assert table(["a", "b"], [[1, 2]], align="rl") == "| a | b |\n|---:|---|\n| 1 | 2 |"


def test_blank_cells():
    # a blank header cell is `| |` (mentions.md); a blank data cell keeps both spaces (`e.get('n_gold', '')`)
    assert header(["", "count"], "lr")[0] == "| | count |"
    assert row(["x", ""]) == "| x |  |"


def test_cells_are_not_escaped():
    # written as is: escaping would change bytes readers compare; callers with free text escape it themselves
    assert row(["a|b", None]) == "| a|b | None |"


def test_bad_alignment_is_one_line():
    with pytest.raises(ValueError, match="'c'"):
        rule("lc")
    with pytest.raises(ValueError, match="2 columns but 3"):
        header(["a", "b"], "lll")
