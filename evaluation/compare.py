"""`eat bench`: compare evaluation runs (checkpoints x datasets x languages) and explain lost entities.

Each RUN folder holds metrics.json (from `eat eval` or `eat score`) and, for the error breakdown,
predictions.jsonl (one row per sentence: id, text, gold, pred, trace). Outputs, all written atomically:
summary.md, summary.csv, f1.png, errors.md, errors.png.

Error breakdown: every gold entity that is not predicted with exactly its span and type gets ONE cause,
decided by the first rule that applies:
1. wrong type — a prediction has exactly its span with another type;
2. snapped to wrong span — a prediction overlaps it with other boundaries;
3. untranslated — the sentence's translation is empty or stage 1 failed (trace `failure.stage == 1`);
4. alignment failed — an English entity's back-alignment could not be snapped (trace alignment with
   `snapped` null) or was dropped as overlapping; each such failure explains one missed gold entity of
   the sentence, preferring the gold entity whose text contains the alignment's answer or vice versa;
5. not tagged in English — otherwise: the English NER did not produce it (also when stage 2 failed).
Runs without a trace (direct mode has no English stage; score-only runs have no trace at all) use
rules 1-2, then "alignment failed" for failed snaps, then "missed".
Spurious predictions (matching no gold span exactly and overlapping none) are counted separately.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from eat.errors import UserError
from eat.io import atomic_open, atomic_path
from evaluation.entities import Entity

CAUSES = (
    "untranslated",
    "not tagged in English",
    "alignment failed",
    "snapped to wrong span",
    "wrong type",
    "missed",
)


# ------------------------------------------------------------------------------------------ reading


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("file not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise UserError("expected a JSON object", path=path)
    return data


def read_predictions(path: Path) -> list[dict]:
    """Rows of an eval run's predictions.jsonl, each checked to have text, gold and pred spans."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise ValueError("expected an object with `text`")
                row["gold"] = [Entity.from_dict(e) for e in row.get("gold", [])]
                row["pred"] = [Entity.from_dict(e) for e in row.get("pred", [])]
            except json.JSONDecodeError as exc:
                raise UserError(f"invalid JSON line: {exc.msg}", path=path, line=lineno) from None
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(f"bad prediction row: {exc}", path=path, line=lineno) from None
            rows.append(row)
    return rows


def load_run(run: str | Path) -> dict:
    """metrics.json (required) plus the error breakdown from predictions.jsonl when present."""
    run = Path(run)
    if not run.is_dir():
        raise UserError("run folder not found", path=run)
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        raise UserError(
            "no metrics.json in this run folder (run `eat eval` or `eat score --out` first)", path=run
        )
    metrics = read_json(metrics_path)
    for key in ("entity",):
        if not isinstance(metrics.get(key), dict) or "f1" not in metrics[key]:
            raise UserError(f"missing `{key}` scores (with f1)", path=metrics_path)
    pred_path = run / "predictions.jsonl"
    errors = error_breakdown(read_predictions(pred_path)) if pred_path.is_file() else None
    return {"path": run, "metrics": metrics, "errors": errors}


# ------------------------------------------------------------------------------------------ errors


def _overlap(a: Entity, b: Entity) -> bool:
    return a.start < b.end and b.start < a.end


def _related(a: str, b: str) -> bool:
    a, b = a.strip().casefold(), b.strip().casefold()
    return bool(a and b) and (a in b or b in a)


def classify_sentence(gold: list[Entity], pred: list[Entity], trace: dict | None) -> tuple[Counter, int]:
    """Causes of the missed gold entities of one sentence (see module doc), and its spurious predictions."""
    causes: Counter = Counter()
    exact = {(e.start, e.end, e.type) for e in pred}
    missed = [g for g in gold if (g.start, g.end, g.type) not in exact]
    gold_keys = {(e.start, e.end, e.type) for e in gold}
    spurious = sum(
        1 for p in pred if (p.start, p.end, p.type) not in gold_keys and not any(_overlap(p, g) for g in gold)
    )
    trace = trace if isinstance(trace, dict) else None
    failed_alignments = []
    if trace:
        for a in trace.get("alignments") or []:
            if isinstance(a, dict) and (a.get("snapped") is None or a.get("dropped")):
                failed_alignments.append(str(a.get("answer") or a.get("english") or ""))
    failure = (trace or {}).get("failure") or {}
    english_stage = trace is not None and "translation" in trace
    untranslated = english_stage and (
        failure.get("stage") == 1 or not str(trace.get("translation") or "").strip()
    )
    rest: list[Entity] = []
    for g in missed:
        if any(p.start == g.start and p.end == g.end for p in pred):
            causes["wrong type"] += 1
        elif any(_overlap(p, g) for p in pred):
            causes["snapped to wrong span"] += 1
        elif untranslated:
            causes["untranslated"] += 1
        else:
            rest.append(g)
    # failed alignments explain the remaining misses: related texts first, then in order
    assigned: set[int] = set()
    for answer in failed_alignments:
        pick = next((i for i, g in enumerate(rest) if i not in assigned and _related(answer, g.text)), None)
        if pick is None:
            pick = next((i for i in range(len(rest)) if i not in assigned), None)
        if pick is None:
            break
        assigned.add(pick)
        causes["alignment failed"] += 1
    left = len(rest) - len(assigned)
    if left:
        causes["not tagged in English" if english_stage else "missed"] += left
    return causes, spurious


def error_breakdown(rows: list[dict]) -> dict:
    """Totals over a run: gold, correct, one count per cause, spurious predictions."""
    total: Counter = Counter()
    n_gold = n_ok = n_spurious = 0
    for row in rows:
        gold, pred = row["gold"], row["pred"]
        n_gold += len(gold)
        n_ok += len({(e.start, e.end, e.type) for e in gold} & {(e.start, e.end, e.type) for e in pred})
        causes, spurious = classify_sentence(gold, pred, row.get("trace"))
        total.update(causes)
        n_spurious += spurious
    return {
        "gold": n_gold,
        "correct": n_ok,
        "causes": {c: total.get(c, 0) for c in CAUSES},
        "spurious": n_spurious,
    }


# ------------------------------------------------------------------------------------------ tables


def checkpoint_name(m: dict, run: Path | None = None) -> str:
    """adapter (on its base model) or model folder name; the run folder's name when neither is known."""
    if not m.get("adapter") and not m.get("model"):
        return run.name if run is not None else "?"
    name = Path(str(m.get("adapter") or m.get("model"))).name or str(m.get("model"))
    if m.get("adapter") and m.get("model"):
        name = f"{Path(str(m['model'])).name}+{name}"
    mode = m.get("mode")
    return f"{name} [{mode}]" if mode and mode != "eat" else name


def summary_rows(runs: list[dict]) -> list[dict]:
    rows = []
    for r in runs:
        m = r["metrics"]
        e = m["entity"]
        sq = m.get("seqeval") or {}
        st = m.get("seqeval_strict") or {}
        tok = m.get("token_authors") or {}
        rows.append(
            {
                "run": str(r["path"]),
                "checkpoint": checkpoint_name(m, r["path"]),
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
    labels = run_labels([r["path"] for r in runs])
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


def render_summary_md(rows: list[dict]) -> str:
    cols = [
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
    out = [
        "# eat bench: summary",
        "",
        "Scores in %. P/R/F1: entity level, exact character span and type (micro). F1 seqeval / strict:",
        "the same predictions as tags, identical to seqeval in default (conlleval) and strict IOB2 mode.",
        "tok P/R/F1*: the authors' token-level metric, not entity-level (characters for zh/ja).",
        "",
        "| " + " | ".join(h for _, h in cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r[k]) for k, _ in cols) + " |")
    # pivot: checkpoint x (dataset, lang), headline F1
    groups = sorted({(r["dataset"], r["lang"]) for r in rows})
    ckpts = sorted({r["checkpoint"] for r in rows})
    cell = {(r["checkpoint"], r["dataset"], r["lang"]): _headline_f1(r) for r in rows}
    out += [
        "",
        "## F1 by checkpoint (seqeval default mode where the data has tags, else exact spans)",
        "",
        "| checkpoint | " + " | ".join(f"{d} ({lang})" for d, lang in groups) + " |",
        "|---|" + "---|" * len(groups),
    ]
    for c in ckpts:
        vals = [cell.get((c, d, lang)) for d, lang in groups]
        out.append(f"| {c} | " + " | ".join(_fmt(v) for v in vals) + " |")
    return "\n".join(out) + "\n"


def render_summary_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def render_errors_md(runs: list[dict]) -> str:
    out = [
        "# eat bench: where gold entities were lost",
        "",
        "Each gold entity not predicted with exactly its span and type gets one cause, by the first rule",
        "that applies: wrong type (same span) > snapped to wrong span (overlap) > untranslated > alignment",
        "failed > not tagged in English (`missed` for runs without an English stage). Spurious: predictions",
        "overlapping no gold entity.",
        "",
        "| run | checkpoint | dataset | lang | gold | correct | " + " | ".join(CAUSES) + " | spurious |",
        "|" + "---|" * (7 + len(CAUSES)),
    ]
    for r, label in zip(runs, run_labels([r["path"] for r in runs]), strict=True):
        m, e = r["metrics"], r["errors"]
        head = f"| {label} | {checkpoint_name(m, r['path'])} | {Path(str(m.get('dataset') or '?')).name} | {m.get('lang')} "
        if e is None:
            out.append(head + "| " + " | ".join(["-"] * (3 + len(CAUSES))) + " |")
        else:
            vals = [e["gold"], e["correct"], *(e["causes"][c] for c in CAUSES), e["spurious"]]
            out.append(head + "| " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------ charts


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


def plot_errors(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    shown = [r for r in runs if r["errors"] is not None]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(shown) + 3), 4))
    labels = [
        f"{Path(r['path']).name}: {checkpoint_name(r['metrics'], r['path'])}\n"
        f"{Path(str(r['metrics'].get('dataset') or '?')).name} ({r['metrics'].get('lang')})"
        for r in shown
    ]
    bottom = [0.0] * len(shown)
    for cause in CAUSES:
        vals = [float(r["errors"]["causes"][cause]) for r in shown]
        if not any(vals):
            continue
        ax.bar(range(len(shown)), vals, 0.6, bottom=bottom, label=cause)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(range(len(shown)), labels, fontsize=7)
    ax.set_ylabel("lost gold entities")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Why gold entities were lost")
    if any(bottom):
        ax.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ entry


def bench(runs: list[str | Path], out: str | Path) -> dict:
    """Load runs, write summary.md/.csv, f1.png, errors.md/.png under `out`; return the loaded data."""
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
    return {"rows": rows, "runs": loaded}
