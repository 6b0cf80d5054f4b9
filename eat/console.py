"""Logging and progress bars shared by all commands (rich, on stderr so stdout stays parseable)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console(stderr=True)
_quiet = False


def setup_logging(verbosity: int = 0) -> None:
    """verbosity: -1 quiet (warnings only, no progress bars), 0 info, 1+ debug."""
    global _quiet
    _quiet = verbosity < 0
    if _quiet:
        # Also the tqdm bars of datasets, transformers and the Hub, here and in processes started from here
        # (read when those libraries are imported, which the CLI does after this).
        for var in ("EAT_NO_PROGRESS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
            os.environ[var] = "1"
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=verbosity > 0, rich_tracebacks=True)],
        force=True,
    )
    # Third-party loggers are noisy at INFO; keep them at WARNING unless debugging.
    for name in ("transformers", "datasets", "accelerate", "peft", "trl", "httpx", "urllib3", "filelock"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)
    # huggingface_hub gives its logger a stderr handler of its own at import: without this, each of its
    # warnings (e.g. every retry of an unreachable Hub) would print twice.
    logging.getLogger("huggingface_hub").propagate = False
    # bitsandbytes warns on every import on CPUs with AVX512-BF16 that an optional kernel from the hub
    # (`kernels` package) is missing; 4-bit still works without it, and LoRA runs never use it.
    logging.getLogger("bitsandbytes").setLevel(logging.DEBUG if verbosity > 1 else logging.ERROR)


def report(*objects) -> None:
    """Print a run's summary (tables, 'wrote ...' lines) to stderr unless --quiet asked for warnings only.

    A command's result proper (e.g. `eat score`'s metrics table) is printed with `console.print` instead.
    """
    if not _quiet:
        console.print(*objects, highlight=False, soft_wrap=True)


def is_quiet() -> bool:
    """Whether --quiet asked for warnings and errors only."""
    return _quiet


class _RateColumn(TextColumn):
    """Items per second, with the unit given when the task was added."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[override]
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "it")
        text = f"{speed:,.1f} {unit}/s" if speed else f"- {unit}/s"
        return super().render(task).__class__(text, style="progress.data.speed")


def make_progress(transient: bool = False) -> Progress:
    """A rich Progress with count, rate and ETA columns; disabled under --quiet or when not a TTY in CI."""
    disable = _quiet or os.environ.get("EAT_NO_PROGRESS") == "1"
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=disable,
    )


def track(items: Iterable[T], description: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate with a progress bar showing the rate in `unit`/s."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as progress:
        task = progress.add_task(description, total=total, unit=unit)
        for item in items:
            yield item
            progress.advance(task)
