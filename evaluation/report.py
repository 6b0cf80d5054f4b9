"""What people read after a run: eval's report.md, `eat score`'s table, and `eat bench`'s summary (Markdown,
CSV), error table and charts. Each renderer takes the numbers already computed (metrics.json, loaded runs)
and only formats them."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from eat import markdown
from eat.io import atomic_path
from evaluation.compare import CAUSES, Run
from evaluation.metrics import headline

# ------------------------------------------------------------------------------------------ eat eval


def _resumed_note(replies: dict | None) -> str:
    if not replies or not replies.get("from_cache"):
        return ""
    total = replies["from_cache"] + replies["computed"]
    return (
        f"; resumed: {replies['from_cache']} of {total} model replies were read from the run's cache, "
        "so this time and rate cover only the rest"
    )


def _score_cells(name: str, v: dict) -> list:
    """One row of report.md's entity table; gold/pred are blank where metrics.json lacks them."""
    return [
        name,
        f"{v['precision']:.4f}",
        f"{v['recall']:.4f}",
        f"{v['f1']:.4f}",
        v.get("n_gold", ""),
        v.get("n_pred", ""),
    ]


def render_report(m: dict) -> str:
    e = m["entity"]
    lines = [
        f"# eat eval: {m['mode']} on {Path(m['dataset']).name} ({m['lang']})",
        "",
        f"- model: `{m['model']}`"
        + (
            f" + adapter `{m['adapter']}` ({'stage 3 only' if m.get('adapter_stages') == 'align' else 'all stages'})"
            if m.get("adapter")
            else ""
        ),
        f"- English NER: `{m['ner_model']}`" if m.get("ner_model") else "- English NER: none (direct mode)",
        f"- backend: {m['backend']}, decoding: {m['decoding']}, prompts: {m['prompts']}",
        f"- {m['counts']['sentences']} sentences in {m['elapsed_s']} s ({m['sentences_per_s']} sentences/s)"
        + _resumed_note(m.get("replies")),
        "",
        "## Entity-level (exact span and type)",
        "",
        *markdown.table_lines(
            ["type", "precision", "recall", "F1", "gold", "pred"],
            [_score_cells("**micro**", e), *(_score_cells(t, v) for t, v in e.get("per_type", {}).items())],
        ),
    ]
    if "seqeval" in m:
        lines += [
            "",
            f"seqeval (conlleval mode) F1 {m['seqeval']['f1']:.4f}, strict IOB2 F1 "
            f"{m['seqeval_strict']['f1']:.4f}.",
        ]
    ta = m.get("token_authors")
    if ta:
        label = ta.get("label", "authors' token-level metric")
        lines += [
            "",
            f"{label[0].upper()}{label[1:]}: micro F1 {ta['f1']:.4f} over {ta.get('sentences', '?')} "
            "sentences with gold entities.",
        ]
    c = m["counts"]
    lines += [
        "",
        "## Pipeline",
        "",
        f"- English entities: {c['english_entities']}, alignments: {c['alignments']}, predicted: {c['pred_entities']}, "
        f"gold: {c['gold_entities']}",
        f"- snap methods: {', '.join(f'{k} {v}' for k, v in c['snap_methods'].items()) or 'none'}",
        f"- failures: {', '.join(f'{k} {v}' for k, v in c['failures'].items()) or 'none'}",
        f"- timings (s): {', '.join(f'{k} {v}' for k, v in m['timings'].items())}",
        "",
        "Per-sentence traces (translation, English entities, every alignment answer and how it was snapped or "
        "why not) are in `predictions.jsonl`.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ eat score


def render_score_table(metrics: dict, mode: str):
    from rich.table import Table

    key, head = headline(metrics, mode)
    title = {
        "seqeval": "entity level, seqeval default (conlleval) mode",
        "seqeval_strict": "entity level, seqeval strict IOB2 mode",
        "entity": "entity level, exact character span and type",
    }[key]
    table = Table(title=f"{title} — {metrics['sentences']} sentences ({metrics['lang']})")
    for col in ("type", "precision", "recall", "F1", "gold", "pred", "correct"):
        table.add_column(col, justify="left" if col == "type" else "right")

    def row(name, v, style=None):
        table.add_row(
            name,
            f"{100 * v['precision']:.2f}",
            f"{100 * v['recall']:.2f}",
            f"{100 * v['f1']:.2f}",
            str(v["n_gold"]),
            str(v["n_pred"]),
            str(v["n_correct"]),
            style=style,
        )

    row("micro", head, "bold")
    for t, v in head["per_type"].items():
        row(t, v)
    if key != "entity":
        row("spans (exact)", metrics["entity"], "dim")
    tok = metrics["token_authors"]
    table.add_section()
    table.add_row(
        f"authors' token-level ({tok['unit']}s), not entity-level",
        f"{100 * tok['precision']:.2f}",
        f"{100 * tok['recall']:.2f}",
        f"{100 * tok['f1']:.2f}",
        "",
        "",
        "",
        style="italic",
    )
    if "bootstrap" in metrics:
        b = metrics["bootstrap"]
        table.caption = f"95% bootstrap CI of span F1 ({b['n']} resamples, seed {b['seed']}): " + (
            f"{100 * b['f1'][0]:.2f} - {100 * b['f1'][1]:.2f}"
        )
    return table


# ------------------------------------------------------------------------------------------ eat bench


def checkpoint_name(m: dict, run: Path | None = None) -> str:
    """adapter (on its base model) or model folder name; the run folder's name when neither is known."""
    if not m.get("adapter") and not m.get("model"):
        return run.name if run is not None else "?"
    name = Path(str(m.get("adapter") or m.get("model"))).name or str(m.get("model"))
    if m.get("adapter") and m.get("model"):
        name = f"{Path(str(m['model'])).name}+{name}"
    mode = m.get("mode")
    return f"{name} [{mode}]" if mode and mode != "eat" else name


def summary_rows(runs: list[Run]) -> list[dict]:
    """One row per run (the columns of summary.csv), sorted by dataset, language and checkpoint."""
    rows = []
    for r in runs:
        m = r.metrics
        e = m["entity"]
        sq = m.get("seqeval") or {}
        st = m.get("seqeval_strict") or {}
        tok = m.get("token_authors") or {}
        rows.append(
            {
                "run": str(r.path),
                "checkpoint": checkpoint_name(m, r.path),
                "dataset": Path(str(m.get("dataset") or "?")).name,
                "lang": str(m.get("lang") or "?"),
                "mode": str(m.get("mode") or ""),
                "precision": e.get("precision"),
                "recall": e.get("recall"),
                "f1": e.get("f1"),
                "seqeval_f1": sq.get("f1"),
                "seqeval_strict_f1": st.get("f1"),
                "token_authors_precision": tok.get("precision"),
                "token_authors_recall": tok.get("recall"),
                "token_authors_f1": tok.get("f1"),
                "n_gold": e.get("n_gold"),
                "n_pred": e.get("n_pred"),
            }
        )
    # two runs of the same checkpoint on the same data (e.g. other settings): tell them apart by folder
    seen = Counter((r["checkpoint"], r["dataset"], r["lang"]) for r in rows)
    labels = run_labels([r.path for r in runs])
    for r, label in zip(rows, labels, strict=True):
        if seen[(r["checkpoint"], r["dataset"], r["lang"])] > 1:
            r["checkpoint"] = f"{r['checkpoint']} ({label})"
    rows.sort(key=lambda x: (x["dataset"], x["lang"], x["checkpoint"], x["run"]))
    return rows


def run_labels(paths: list[Path]) -> list[str]:
    """Shortest trailing part of each run path that tells the runs apart (folder name when unique)."""
    for depth in range(1, 8):
        labels = ["/".join(Path(p).parts[-depth:]) for p in paths]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{100 * v:.2f}"
    return str(v)


def _headline_f1(row: dict) -> float:
    v = row["seqeval_f1"] if row["seqeval_f1"] is not None else row["f1"]
    return float(v or 0.0)


# summary_rows' columns as people read them: (key, header).
SUMMARY_COLUMNS = [
    ("checkpoint", "checkpoint"),
    ("dataset", "dataset"),
    ("lang", "lang"),
    ("precision", "P"),
    ("recall", "R"),
    ("f1", "F1"),
    ("seqeval_f1", "F1 seqeval"),
    ("seqeval_strict_f1", "F1 strict"),
    ("token_authors_precision", "tok P*"),
    ("token_authors_recall", "tok R*"),
    ("token_authors_f1", "tok F1*"),
    ("n_gold", "gold"),
    ("n_pred", "pred"),
]


def render_summary_md(rows: list[dict]) -> str:
    cols = SUMMARY_COLUMNS
    out = [
        "# eat bench: summary",
        "",
        "Scores in %. P/R/F1: entity level, exact character span and type (micro). F1 seqeval / strict:",
        "the same predictions as tags, identical to seqeval in default (conlleval) and strict IOB2 mode.",
        "tok P/R/F1*: the authors' token-level metric, not entity-level (characters for zh/ja).",
        "",
        *markdown.table_lines([h for _, h in cols], ([_fmt(r[k]) for k, _ in cols] for r in rows)),
    ]
    # pivot: checkpoint x (dataset, lang), headline F1
    groups = sorted({(r["dataset"], r["lang"]) for r in rows})
    ckpts = sorted({r["checkpoint"] for r in rows})
    cell = {(r["checkpoint"], r["dataset"], r["lang"]): _headline_f1(r) for r in rows}
    out += [
        "",
        "## F1 by checkpoint (seqeval default mode where the data has tags, else exact spans)",
        "",
        *markdown.table_lines(
            ["checkpoint", *(f"{d} ({lang})" for d, lang in groups)],
            ([c, *(_fmt(cell.get((c, d, lang))) for d, lang in groups)] for c in ckpts),
        ),
    ]
    return "\n".join(out) + "\n"


def render_summary_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def render_errors_md(runs: list[Run]) -> str:
    out = [
        "# eat bench: where gold entities were lost",
        "",
        "Each gold entity not predicted with exactly its span and type gets one cause, by the first rule",
        "that applies: wrong type (same span) > snapped to wrong span (overlap) > untranslated > alignment",
        "failed > not tagged in English (`missed` for runs without an English stage). Spurious: predictions",
        "overlapping no gold entity.",
        "",
        *markdown.header(["run", "checkpoint", "dataset", "lang", "gold", "correct", *CAUSES, "spurious"]),
    ]
    for r, label in zip(runs, run_labels([r.path for r in runs]), strict=True):
        m, e = r.metrics, r.errors
        head = [label, checkpoint_name(m, r.path), Path(str(m.get("dataset") or "?")).name, m.get("lang")]
        if e is None:
            out.append(markdown.row([*head, *["-"] * (3 + len(CAUSES))]))
        else:
            out.append(markdown.row([*head, e.gold, e.correct, *(e.causes[c] for c in CAUSES), e.spurious]))
    return "\n".join(out) + "\n"


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def plot_f1(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["dataset"], r["lang"]) for r in rows})
    ckpts = sorted({r["checkpoint"] for r in rows})
    cell = {(r["checkpoint"], r["dataset"], r["lang"]): _headline_f1(r) for r in rows}
    width = 0.8 / max(len(ckpts), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) * max(1, len(ckpts)) ** 0.5 + 3), 4))
    for k, c in enumerate(ckpts):
        # Only the datasets this checkpoint was run on: a missing run is no bar, not a 0.0 bar.
        present = [(i, d, lang) for i, (d, lang) in enumerate(groups) if (c, d, lang) in cell]
        xs = [i + (k - (len(ckpts) - 1) / 2) * width for i, _, _ in present]
        ys = [100 * cell[(c, d, lang)] for _, d, lang in present]
        bars = ax.bar(xs, ys, width, label=c)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(groups)), [f"{d}\n({lang})" for d, lang in groups], fontsize=8)
    ax.set_ylabel("entity F1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Entity F1 by checkpoint")
    ax.legend(fontsize=7, loc="upper right")
    _save(fig, path)
    plt.close(fig)


def plot_errors(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    shown = [(r, r.errors) for r in runs if r.errors is not None]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(shown) + 3), 4))
    labels = [
        f"{r.path.name}: {checkpoint_name(r.metrics, r.path)}\n"
        f"{Path(str(r.metrics.get('dataset') or '?')).name} ({r.metrics.get('lang')})"
        for r, _ in shown
    ]
    bottom = [0.0] * len(shown)
    for cause in CAUSES:
        vals = [float(e.causes[cause]) for _, e in shown]
        if not any(vals):
            continue
        ax.bar(range(len(shown)), vals, 0.6, bottom=bottom, label=cause)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    # Slanted: a run's label (folder, checkpoint, dataset) is wider than its bar once there are a few runs.
    ax.set_xticks(range(len(shown)), labels, fontsize=7, rotation=20, ha="right", rotation_mode="anchor")
    ax.set_ylabel("lost gold entities")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Why gold entities were lost")
    if any(bottom):
        ax.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)
