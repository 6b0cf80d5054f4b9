"""`eat bench`: compare evaluation runs (checkpoints x datasets x languages) and explain lost entities.

Outputs, all written atomically under --out: summary.md, summary.csv, f1.png, errors.md, errors.png, and
with --html report.html (evaluation/html_report.py), one page to browse every sentence of every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from eat.config import StrictModel
from eat.errors import UserError
from eat.io import atomic_open
from evaluation.compare import Run, load_run
from evaluation.report import (
    plot_errors,
    plot_f1,
    render_errors_md,
    render_summary_csv,
    render_summary_md,
    summary_rows,
)


class BenchOptions(StrictModel):
    out: str = Field(description="Folder for summary.md, summary.csv, f1.png, errors.md and errors.png.")
    html: bool = Field(
        False,
        description="Also write report.html: one self-contained page (no server, no network) with the tables, "
        "the charts and every sentence's gold and predicted spans and stage-by-stage trace, runs side by side, "
        "with filters.",
    )


@dataclass
class BenchResult:
    rows: list[dict]  # summary.csv's rows
    runs: list[Run]


def bench(runs: list[str | Path], out: str | Path, html: bool = False) -> BenchResult:
    """Load runs, write summary.md/.csv, f1.png, errors.md/.png (and report.html) under `out`; return what
    was loaded."""
    if not runs:
        raise UserError("give at least one RUN folder")
    unique = list({Path(r).resolve(): r for r in runs}.values())  # a run named twice is one run
    loaded = [load_run(r) for r in unique]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("output folder is a file", path=out)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(loaded)
    with atomic_open(out / "summary.md") as fh:
        fh.write(render_summary_md(rows))
    with atomic_open(out / "summary.csv") as fh:
        fh.write(render_summary_csv(rows))
    with atomic_open(out / "errors.md") as fh:
        fh.write(render_errors_md(loaded))
    plot_f1(rows, out / "f1.png")
    plot_errors(loaded, out / "errors.png")
    if html:
        from evaluation.html_report import write_html_report

        write_html_report(loaded, rows, out)  # last: it embeds the charts drawn above
    return BenchResult(rows, loaded)
