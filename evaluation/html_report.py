"""`eat bench --html`: one self-contained page (report.html) that people browse: the score tables, the
charts bench already drew (embedded as data URIs), and every sentence with its gold and predicted spans
and each entity's path through the stages, runs side by side, with filters.

No server and no network: CSS and JS are inline and written here. Sentences are untrusted text, so the
page never parses them as HTML: the Python side escapes what it writes into markup, the sentences travel
as JSON in a `<script type="application/json">` block with `<`, `>` and `&` escaped, and the script builds
the DOM with `textContent`. A Content-Security-Policy allows only this page's own script and style (by
hash), so even a missed escape could not run injected script or load anything.

Offsets in predictions.jsonl count code points (Python's `str`); the script slices `Array.from(text)`,
not UTF-16 units, so a character outside the BMP (a rare Han ideograph, an emoji) does not shift spans.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from eat.io import atomic_open
from evaluation.compare import CAUSES, Run, classify_sentence
from evaluation.records import Alignment, PredictionRow, Trace, read_predictions
from evaluation.report import SUMMARY_COLUMNS, checkpoint_name, run_labels

# A sentence's tags for the "failure stage / cause" filter, in the order the filter lists them: the
# causes of lost gold entities (evaluation.compare), then what the trace says failed.
SPURIOUS = "spurious prediction"
SNAP_FAILED = "snap failed"
STAGE_FAILED = {
    1: "stage 1 failed (translation)",
    2: "stage 2 failed (English NER)",
    "direct": "direct tagging failed",
}
TAG_ORDER = (*CAUSES, SPURIOUS, *STAGE_FAILED.values(), SNAP_FAILED)


@dataclass
class EntityPath:
    """One entity's way through stages 2-4 (an alignment row of the trace), as the page shows it."""

    english: str | None  # None in direct mode
    type: str
    answer: str
    method: str  # how stage 4 snapped the answer ("none": it did not)
    candidate: str
    score: float
    span: list[int] | None  # [start, end] where it landed
    result: str  # "kept", "dropped: ...", "failed: reason"


@dataclass
class RunView:
    """One run's prediction for one sentence and the trace behind it."""

    gold: list[list]  # [start, end, type]: this run's gold (label maps may differ between runs)
    pred: list[list]
    correct: bool  # prediction == gold, span and type
    tags: list[str]  # for the cause filter, in TAG_ORDER
    lost: list[str]  # "wrong type 1", ...: why its missed gold entities were missed
    translation: str | None
    english: list[str]  # stage 2's entities, "TYPE text"
    failure: str | None
    paths: list[EntityPath] = field(default_factory=list)


@dataclass
class SentenceView:
    """A sentence of the test data and each run's view of it (None: the run has no such sentence)."""

    id: str
    text: str
    lang: str
    dataset: str
    views: list[RunView | None]


@dataclass
class RunInfo:
    """A run as the page names it (column heads, the selects)."""

    label: str  # the shortest trailing part of the run path that tells the runs apart
    checkpoint: str
    dataset: str
    lang: str
    has_predictions: bool


def _spans(entities) -> list[list]:
    return [[e.start, e.end, e.type] for e in sorted(entities)]


def _failure_text(trace: Trace | None) -> str | None:
    if trace is None or trace.failure is None:
        return None
    label = STAGE_FAILED.get(trace.failure.stage, f"stage {trace.failure.stage} failed")
    return f"{label}: {trace.failure.reason}" if trace.failure.reason else label


def _path(a: Alignment) -> EntityPath:
    if a.snapped is None:
        result = f"failed: {a.reason}" if a.reason else "failed"
    elif a.dropped:
        result = "dropped: overlaps an entity placed earlier"
    else:
        result = "kept" + (" (widened to token boundaries)" if a.token_aligned else "")
    span = [a.snapped.start, a.snapped.end] if a.snapped is not None else None
    return EntityPath(a.english, a.type, a.answer, a.method, a.candidate, round(a.score, 3), span, result)


def run_view(row: PredictionRow) -> RunView:
    """What the page needs of one predictions.jsonl row; raw model replies are left out (size)."""
    causes, spurious = classify_sentence(row.gold, row.pred, row.trace)
    trace = row.trace
    tags = {c for c in CAUSES if causes.get(c)}
    if spurious:
        tags.add(SPURIOUS)
    if trace is not None and trace.failure is not None:
        tags.add(STAGE_FAILED.get(trace.failure.stage, f"stage {trace.failure.stage} failed"))
    if trace is not None and any(a.snapped is None for a in trace.alignments):
        tags.add(SNAP_FAILED)
    gold_keys = {(e.start, e.end, e.type) for e in row.gold}
    pred_keys = {(e.start, e.end, e.type) for e in row.pred}
    return RunView(
        gold=_spans(row.gold),
        pred=_spans(row.pred),
        correct=gold_keys == pred_keys,
        tags=sorted(tags, key=lambda t: TAG_ORDER.index(t) if t in TAG_ORDER else len(TAG_ORDER)),
        lost=[f"{c} {causes[c]}" for c in CAUSES if causes.get(c)]
        + ([f"spurious {spurious}"] if spurious else []),
        translation=trace.translation if trace is not None else None,
        english=[f"{e.type} {e.text}" for e in (trace.english_entities or [])] if trace is not None else [],
        failure=_failure_text(trace),
        paths=[_path(a) for a in trace.alignments] if trace is not None else [],
    )


def sentence_views(runs: list[Run]) -> list[SentenceView]:
    """Every sentence of every run, one entry per sentence of the data: runs on the same test file (same
    name and language) share entries, matched by id and text, so they can be shown side by side."""
    entries: dict[tuple, SentenceView] = {}
    for k, run in enumerate(runs):
        pred_path = run.path / "predictions.jsonl"
        if not pred_path.is_file():
            continue
        dataset = _dataset(run)
        for i, row in enumerate(read_predictions(pred_path)):
            lang = row.lang or str(run.metrics.get("lang") or "?")
            key = (dataset, lang, row.id if row.id is not None else f"#{i}", row.text)
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = SentenceView(str(key[2]), row.text, lang, dataset, [None] * len(runs))
            entry.views[k] = run_view(row)
    return list(entries.values())


def _dataset(run: Run) -> str:
    return Path(str(run.metrics.get("dataset") or "?")).name


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}" if isinstance(v, float) else str(v)


_NUMBER = re.compile(r"^(-|-?[0-9][0-9.]*)$")  # right-aligned cells


def _table(head: list[str], rows: list[list], cls: str) -> str:
    """An HTML table; every cell is escaped."""
    esc = html.escape
    out = [f'<table class="{cls}"><thead><tr>', *(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out += [
            "<tr>",
            *(('<td class="n">' if _NUMBER.match(str(c)) else "<td>") + f"{esc(str(c))}</td>" for c in row),
            "</tr>",
        ]
    out.append("</tbody></table>")
    return "".join(out)


# The summary's columns, without the authors' token P and R (the page is wide enough with their F1).
SCORE_COLUMNS = [
    c for c in SUMMARY_COLUMNS if c[0] not in ("token_authors_precision", "token_authors_recall")
]


def _score_table(rows: list[dict]) -> str:
    return _table(
        [h for _, h in SCORE_COLUMNS], [[_pct(r[k]) for k, _ in SCORE_COLUMNS] for r in rows], "scores"
    )


def _errors_table(runs: list[Run], labels: list[str]) -> str:
    head = ["run", "checkpoint", "gold", "correct", *CAUSES, "spurious"]
    body = []
    for run, label in zip(runs, labels, strict=True):
        e = run.errors
        counts = (
            ["-"] * (3 + len(CAUSES))
            if e is None
            else [e.gold, e.correct, *(e.causes[c] for c in CAUSES), e.spurious]
        )
        body.append([label, checkpoint_name(run.metrics, run.path), *counts])
    return _table(head, body, "errors")


def _json_for_script(data: object) -> str:
    """JSON that cannot end its <script> element or open a comment: `<`, `>` and `&` as \\u escapes.
    The records above become objects field by field (`vars`: no deep copy, unlike `dataclasses.asdict`)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=vars)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _csp_hash(source: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"
    )


def render_html(runs: list[Run], rows: list[dict], charts: list[tuple[str, bytes]]) -> str:
    """The whole page: `rows` are bench's summary rows, `charts` (title, PNG bytes) pairs."""
    labels = run_labels([r.path for r in runs])
    info = [
        RunInfo(
            label,
            checkpoint_name(r.metrics, r.path),
            _dataset(r),
            str(r.metrics.get("lang") or "?"),
            (r.path / "predictions.jsonl").is_file(),
        )
        for r, label in zip(runs, labels, strict=True)
    ]
    sentences = sentence_views(runs)
    present = {t for s in sentences for v in s.views if v is not None for t in v.tags}
    tags = [*TAG_ORDER, *sorted(present - set(TAG_ORDER))]  # a stage this module does not name yet, last
    data = {"runs": info, "sentences": sentences, "tags": tags}
    esc = html.escape
    figures = "".join(
        f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        f"<figcaption>{esc(title)}</figcaption></figure>"
        for title, png in charts
    )
    csp = (
        f"default-src 'none'; img-src data:; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
        "base-uri 'none'; form-action 'none'"
    )
    n_runs = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>eat bench report</title>",
            f"<style>{_CSS}</style></head><body>",
            f'<h1>eat bench report</h1><p class="lede">{esc(n_runs)}, {len(sentences)} sentences. '
            "Scores in %. P/R/F1: entity level, exact character span and type (micro); tok F1*: the authors' "
            "token-level metric, not entity-level.</p>",
            "<h2>Scores</h2>",
            _score_table(rows),
            "<h2>Where gold entities were lost</h2>",
            _errors_table(runs, labels),
            f'<h2>Charts</h2><div class="charts">{figures}</div>',
            '<h2>Sentences</h2><p class="lede">Each sentence shows its gold spans '
            '<mark class="ent gold">yellow</mark>, then each compared run\'s prediction: '
            '<mark class="ent ok">right</mark> (exact span and type) or <mark class="ent bad">wrong</mark>, '
            "what was missed and why, and each entity's path: the translation, the English entity, the "
            "alignment answer, how it was snapped, and why it failed.</p>",
            '<div id="controls" class="controls"></div><p id="count" class="count"></p>',
            '<div id="sentences"></div><p><button id="more" type="button" hidden>show more</button></p>',
            "<noscript><p>The sentence list needs JavaScript.</p></noscript>",
            f'<script type="application/json" id="eat-data">{_json_for_script(data)}</script>',
            f"<script>{_JS}</script>",
            "</body></html>\n",
        ]
    )


def write_html_report(runs: list[Run], rows: list[dict], out: Path) -> Path:
    """out/report.html, atomically, embedding the f1.png and errors.png bench wrote there."""
    charts = [
        (title, (out / name).read_bytes())
        for title, name in (
            ("Entity F1 by checkpoint", "f1.png"),
            ("Why gold entities were lost", "errors.png"),
        )
        if (out / name).is_file()
    ]
    path = out / "report.html"
    with atomic_open(path) as fh:
        fh.write(render_html(runs, rows, charts))
    return path


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.lede, .count { color: #555; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
th { background: #f2f2f2; } td.n { text-align: right; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; }
.controls { display: flex; flex-wrap: wrap; gap: .4em 1em; align-items: center; padding: .5em;
  background: #f6f6f6; border: 1px solid #ddd; position: sticky; top: 0; z-index: 1; }
.sentence { border: 1px solid #ddd; border-radius: 4px; margin: .6em 0; padding: .5em .7em; }
.sentence.error { border-left: 4px solid #c33; }
.meta { color: #666; font-size: .85em; }
.text { font-size: 1.1em; margin: .25em 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: .7em; }
.col { background: #fafafa; border: 1px solid #e4e4e4; padding: .4em .6em; min-width: 0; }
.col h3 { font-size: .95em; margin: 0 0 .2em; }
mark.ent { border-radius: 3px; padding: 0 2px; }
mark.ent sup { font-size: .65em; margin-left: 2px; color: #333; }
mark.gold { background: #fde68a; } mark.ok { background: #bbf7d0; } mark.bad { background: #fecaca; }
.badge { display: inline-block; font-size: .8em; padding: 0 5px; border-radius: 8px; margin-left: .4em; }
.badge.ok { background: #bbf7d0; } .badge.bad { background: #fecaca; } .badge.none { background: #e5e5e5; }
.line { font-size: .9em; margin: .15em 0; overflow-wrap: anywhere; } .line b { color: #555; font-weight: 600; }
.line.failure { color: #a11; }
table.paths { font-size: .85em; width: 100%; } table.paths td { overflow-wrap: anywhere; }
"""

_JS = """
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("eat-data").textContent);
  const runs = data.runs, sentences = data.sentences;
  const PAGE = 200;
  let limit = PAGE;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function uniq(values) { return Array.from(new Set(values)).sort(); }

  // Lower-cased text each sentence is searched in: the sentence, its id, each run's translation and
  // English entities.
  for (const s of sentences) {
    const parts = [s.text, s.id];
    for (const v of s.views) if (v) parts.push(v.translation || "", v.english.join(" "));
    s.haystack = parts.join("\\n").toLowerCase();
  }

  // ---- controls
  const controls = document.getElementById("controls");
  function labelled(text, input) {
    const label = el("label", "", text + " ");
    label.append(input);
    controls.append(label);
    input.addEventListener(input.type === "checkbox" || input.tagName === "SELECT" ? "change" : "input", () => {
      limit = PAGE;
      render();
    });
    return input;
  }
  function select(id, options) {  // options: [[value, text], ...]
    const node = el("select");
    node.id = id;
    for (const [value, text] of options) {
      const opt = el("option", "", text);
      opt.value = value;
      node.append(opt);
    }
    return node;
  }
  const runName = (r) => r.label + ": " + r.checkpoint + " (" + r.dataset + ", " + r.lang + ")";
  const picks = [];
  if (runs.length > 1) {
    for (const [i, side] of [[0, "left"], [1, "right"]]) {
      const pick = select("run-" + side, runs.map((r, k) => [String(k), runName(r)]));
      pick.value = String(i);
      picks.push(labelled(side === "left" ? "compare" : "with", pick));
    }
  }
  const search = labelled("search", el("input"));
  search.type = "search";
  search.id = "search";
  search.placeholder = "text, id, translation, entity";
  const langs = uniq(sentences.map((s) => s.lang));
  const datasets = uniq(sentences.map((s) => s.dataset));
  const lang = langs.length > 1 ? labelled("language", select("lang", [["", "all"], ...langs.map((x) => [x, x])])) : null;
  const dataset = datasets.length > 1
    ? labelled("dataset", select("dataset", [["", "all"], ...datasets.map((x) => [x, x])])) : null;
  const present = new Set();
  for (const s of sentences) for (const v of s.views) if (v) v.tags.forEach((t) => present.add(t));
  const stage = labelled("failure stage / cause",
    select("stage", [["", "any"], ...data.tags.filter((t) => present.has(t)).map((t) => [t, t])]));
  const onlyErrors = el("input");
  onlyErrors.type = "checkbox";
  onlyErrors.id = "only-errors";
  labelled("only errors", onlyErrors);

  // ---- filtering
  function shownRuns() {  // the runs compared, without repeats; every run when there is only one
    if (!picks.length) return runs.map((_, k) => k);
    const shown = [];
    for (const pick of picks) if (!shown.includes(Number(pick.value))) shown.push(Number(pick.value));
    return shown;
  }
  function matches(s, shown) {
    const views = shown.map((k) => s.views[k]).filter((v) => v);
    if (!views.length) return false;
    if (lang && lang.value && s.lang !== lang.value) return false;
    if (dataset && dataset.value && s.dataset !== dataset.value) return false;
    if (onlyErrors.checked && views.every((v) => v.correct)) return false;
    if (stage.value && !views.some((v) => v.tags.includes(stage.value))) return false;
    const q = search.value.trim().toLowerCase();
    return !q || s.haystack.includes(q);
  }

  // ---- drawing
  const key = (span) => span[0] + ":" + span[1] + ":" + span[2];
  // The text with spans highlighted; offsets are code points. gold: null draws gold spans, else a Set of
  // gold keys that colours predictions right or wrong. An overlapping span is listed, not drawn.
  function marked(text, spans, gold) {
    const chars = Array.from(text);
    const box = el("div", "text");
    let pos = 0;
    for (const span of spans.slice().sort((a, b) => a[0] - b[0] || b[1] - a[1])) {
      const [start, end, type] = span;
      if (start < pos || end <= start) continue;
      if (start > pos) box.append(chars.slice(pos, start).join(""));
      const cls = gold === null ? "gold" : gold.has(key(span)) ? "ok" : "bad";
      const mark = el("mark", "ent " + cls);
      mark.title = type + (gold === null ? " (gold)" : gold.has(key(span)) ? " (correct)" : " (wrong)");
      mark.append(chars.slice(start, end).join(""));
      mark.append(el("sup", "", type));
      box.append(mark);
      pos = end;
    }
    if (pos < chars.length) box.append(chars.slice(pos).join(""));
    return box;
  }
  function line(label, text, cls) {
    const p = el("div", "line" + (cls ? " " + cls : ""));
    p.append(el("b", "", label + ": "), text);
    return p;
  }
  function column(s, k) {
    const col = el("div", "col");
    col.dataset.run = String(k);
    const head = el("h3", "", runName(runs[k]));
    col.append(head);
    const v = s.views[k];
    if (!v) {
      head.append(el("span", "badge none", runs[k].has_predictions ? "not in this run" : "no predictions.jsonl"));
      return col;
    }
    head.append(el("span", v.correct ? "badge ok" : "badge bad", v.correct ? "= gold" : "differs"));
    const gold = new Set(v.gold.map(key));
    const pred = marked(s.text, v.pred, gold);
    pred.classList.add("pred");
    col.append(pred);
    const chars = Array.from(s.text);
    const predKeys = new Set(v.pred.map(key));
    const missed = v.gold.filter((g) => !predKeys.has(key(g)));
    if (missed.length) col.append(line("missed", missed.map((g) => chars.slice(g[0], g[1]).join("") + " " + g[2]).join(" · ")));
    if (v.lost.length) col.append(line("lost", v.lost.join(", ")));
    if (v.failure) col.append(line("failure", v.failure, "failure"));
    if (v.translation !== null) col.append(line("translation", v.translation || "(empty)"));
    if (v.english.length) col.append(line("English NER", v.english.join(" · ")));
    if (v.paths.length) {
      const table = el("table", "paths");
      const hr = el("tr");
      for (const h of ["English entity", "answer", "snap", "span", "result"]) hr.append(el("th", "", h));
      table.append(hr);
      for (const p of v.paths) {
        const tr = el("tr");
        const english = p.english === null ? p.type : p.type + " " + p.english;
        const snap = p.method + (p.candidate && p.candidate !== p.answer ? " → " + p.candidate : "") +
          (p.method !== "none" ? " (" + p.score + ")" : "");
        const span = p.span ? chars.slice(p.span[0], p.span[1]).join("") + " [" + p.span[0] + "," + p.span[1] + ")" : "-";
        for (const cell of [english, p.answer, snap, span, p.result]) tr.append(el("td", "", cell));
        table.append(tr);
      }
      col.append(table);
    }
    return col;
  }
  function card(s, shown) {
    const box = el("div", "sentence");
    box.dataset.id = s.id;
    if (shown.some((k) => s.views[k] && !s.views[k].correct)) box.classList.add("error");
    box.append(el("div", "meta", s.id + " · " + s.dataset + " · " + s.lang));
    const first = shown.map((k) => s.views[k]).find((v) => v);
    const gold = marked(s.text, first.gold, null);
    gold.classList.add("gold-text");
    box.append(gold);
    const cols = el("div", "cols");
    for (const k of shown) cols.append(column(s, k));
    box.append(cols);
    return box;
  }
  const list = document.getElementById("sentences");
  const count = document.getElementById("count");
  const more = document.getElementById("more");
  function render() {
    const shown = shownRuns();
    const hits = sentences.filter((s) => matches(s, shown));
    list.replaceChildren(...hits.slice(0, limit).map((s) => card(s, shown)));
    count.textContent = hits.length + " of " + sentences.length + " sentences" +
      (hits.length > limit ? " (first " + limit + " shown)" : "");
    count.dataset.matching = String(hits.length);
    more.hidden = hits.length <= limit;
  }
  more.addEventListener("click", () => { limit += PAGE; render(); });
  render();
})();
"""
