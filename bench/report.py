"""Tables and charts the bench scripts write beside what they print: `NAME.md` and `NAME.png`."""

from __future__ import annotations

from pathlib import Path

from eat import markdown


def text_table(rows: list[dict]) -> str:
    """Aligned plain-text table; the first column left-aligned, the others right-aligned."""
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(widths[k]) if i == 0 else v.rjust(widths[k])
            for i, (k, v) in enumerate(zip(keys, values, strict=True))
        )

    return "\n".join([line(keys)] + [line([str(r[k]) for k in keys]) for r in rows])


def md_table(rows: list[dict]) -> str:
    """Markdown twin of `text_table`: the first column left-aligned, the others right-aligned."""
    keys = list(rows[0])
    return markdown.table(keys, ([r[k] for k in keys] for r in rows), align="l" + "r" * (len(keys) - 1))


def write_markdown(path: Path, title: str, sections: list[tuple[str | None, str]]) -> None:
    """`sections`: (heading or None, body) pairs: tables from `md_table` or plain lines."""
    parts = [f"# {title}"]
    for heading, body in sections:
        if heading:
            parts.append(f"## {heading}")
        parts.append(body)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def bar_chart(
    path: Path, labels: list[str], values: list[float], xlabel: str, title: str, log: bool = False
) -> None:
    """Horizontal bars, first label on top, each bar labelled with its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.55 * len(labels) + 1.6))
    bars = ax.barh(labels[::-1], values[::-1])
    ax.bar_label(bars, fmt="{:,.1f}" if max(values) < 100 else "{:,.0f}", fontsize=8)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
