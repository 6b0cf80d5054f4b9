"""NER metrics people compare with published numbers.

* Entity level, micro and per type, computed exactly like seqeval:
  - `mode="default"`: seqeval's default (conlleval-style lenient chunking: an `I-X` after `O` or after
    another type starts a chunk, `E-`/`S-` close one) over the concatenation of all sentences with an `O`
    between them, as seqeval does;
  - `mode="strict"`: seqeval with `mode="strict", scheme=IOB2` (an entity is a `B-X` followed by the
    longest run of `I-X`; `I-` tokens that do not continue a `B-` chunk are ignored; other prefixes are
    an error).
  We implement the chunking ourselves (`evaluation.tags`; no seqeval at run time) and the tests check
    exact equality with seqeval on its own test data and on perturbed WikiANN predictions.
* `entity_scores` compares character spans directly (for span data without tokens).
* `authors_token_scores`: the token-level metric of the EAT authors' evaluation code
  (ZelateCalcite/EAT_NER, eval/eval_utils.py `evaluation`), reproduced and labelled as such — it is
  NOT an entity-level metric; see its docstring for the exact definition.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence

from eat import languages
from eat.errors import UserError
from evaluation.entities import Entity, Sentence
from evaluation.tags import spans_to_tags, tags_to_chunks, to_iob2

AUTHORS_TOKEN_LABEL = "authors' token-level metric, not entity-level"


# --------------------------------------------------------------------------------------------------
# scores


def _prf(correct: int, n_pred: int, n_gold: int) -> dict:
    p = correct / n_pred if n_pred else 0.0
    r = correct / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if (p + r) else 0.0
    return {"precision": p, "recall": r, "f1": f, "n_gold": n_gold, "n_pred": n_pred, "n_correct": correct}


def _prf_sklearn(correct: int, n_pred: int, n_gold: int) -> dict:
    """Like `_prf`, but F1 as scikit-learn computes it (2 tp / (gold + pred)), for the authors' metric."""
    out = _prf(correct, n_pred, n_gold)
    out["f1"] = 2 * correct / (n_gold + n_pred) if (n_gold + n_pred) else 0.0
    return out


def _scores_from_sets(gold: Sequence[set], pred: Sequence[set], type_of: Callable) -> dict:
    """Micro + per-type P/R/F1 from per-sentence sets of hashable entities."""
    if len(gold) != len(pred):
        raise UserError(f"gold has {len(gold)} sentences but predictions have {len(pred)}")
    n_gold: Counter = Counter()
    n_pred: Counter = Counter()
    n_ok: Counter = Counter()
    for g, p in zip(gold, pred, strict=True):
        n_gold.update(type_of(x) for x in g)
        n_pred.update(type_of(x) for x in p)
        n_ok.update(type_of(x) for x in g & p)
    per_type = {t: _prf(n_ok[t], n_pred[t], n_gold[t]) for t in sorted(set(n_gold) | set(n_pred))}
    out = _prf(sum(n_ok.values()), sum(n_pred.values()), sum(n_gold.values()))
    out["per_type"] = per_type
    return out


def entity_scores(gold: Sequence[Sequence[Entity]], pred: Sequence[Sequence[Entity]]) -> dict:
    """Exact-span entity P/R/F1 (micro and per type) on character spans.

    An entity is correct when (start, end, type) equals a gold one in the same sentence; duplicates count
    once (as in seqeval). Returns {precision, recall, f1, n_gold, n_pred, n_correct,
    per_type: {TYPE: {same keys}}}.
    """
    g = [{(e.start, e.end, e.type) for e in s} for s in gold]
    p = [{(e.start, e.end, e.type) for e in s} for s in pred]
    return _scores_from_sets(g, p, lambda x: x[2])


def tag_scores(
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    mode: str = "default",
    suffix: bool = False,
) -> dict:
    """Entity P/R/F1 from tag sequences, identical to seqeval in `mode` ("default" or "strict" IOB2)."""
    for i, (g, p) in enumerate(zip(gold_tags, pred_tags, strict=False)):
        if len(g) != len(p):
            raise UserError(f"sentence {i + 1}: gold has {len(g)} tags but prediction has {len(p)}")
    g = [set(c) for c in tags_to_chunks(gold_tags, mode, suffix)]
    p = [set(c) for c in tags_to_chunks(pred_tags, mode, suffix)]
    return _scores_from_sets(g, p, lambda x: x[0])


# --------------------------------------------------------------------------------------------------
# the authors' token-level metric


def _authors_label_seq(text: str, entities: Sequence[tuple[str, str]], char_level: bool) -> list[str]:
    """Their `label_to_seq`: label the FIRST still-unlabelled occurrence of each entity string."""
    if char_level:
        text = text.replace(" ", "#")
        seq = list(text)
        labels = ["O"] * len(seq)
        for word, type_ in entities:
            if not word:
                continue
            for m in re.finditer(re.escape(word), text):
                if labels[m.start()] != "O":
                    continue
                for i in range(m.start(), m.end()):
                    labels[i] = type_
                break
        return labels
    seq = text.split(" ")
    labels = ["O"] * len(seq)
    for word, type_ in entities:
        words = re.sub(r"\( \d+ \)", "", word).strip().split(" ")
        n = len(words)
        for i in range(len(seq) - n + 1):
            if seq[i : i + n] == words:
                if labels[i] != "O":
                    continue
                labels[i : i + n] = [type_] * n
                break
    return labels


def _authors_gold_items(sent: Sentence) -> list[tuple[str, str]]:
    """Gold (string, type) in order. From the file's tags when we have them, chunked as their loader
    does (a B- or I- tag opens an entity that runs over the following I- tags of ANY type)."""
    if sent.tags is None or sent.token_spans is None:
        return [(sent.text[e.start : e.end], e.type) for e in sent.gold]
    items = []
    tags, spans = sent.tags, sent.token_spans
    i, n = 0, len(tags)
    while i < n:
        if tags[i][:2] in ("B-", "I-"):
            j = i + 1
            while j < n and tags[j][:2] == "I-":
                j += 1
            items.append((sent.text[spans[i][0] : spans[j - 1][1]], tags[i][2:]))
            i = j
        else:
            i += 1
    return items


def _authors_text(sentence: Sentence, char_level: bool) -> str:
    # Their loader: zh joins characters (WikiANN `#` -> space) and turns "'''" into "'"; others join
    # tokens with one space. Our Sentence.text is built the same way (see formats.py).
    return re.sub("'''", "'", sentence.text) if char_level else sentence.text


def authors_token_scores(
    sentences: Sequence[Sentence],
    preds: Sequence[Sequence[Entity]],
    lang: str | None = None,
    labels: Sequence[str] = ("ORG", "LOC", "PER"),
) -> dict:
    """The EAT authors' token-level metric (NOT entity-level), reproduced from their eval code.

    Definition (ZelateCalcite/EAT_NER eval/eval_utils.py, `evaluation` + `label_to_seq`):
    * sentences whose gold has no entity are skipped;
    * the sentence is cut into units: characters for zh/ja (their `zh=True`, spaces written as `#`),
      else `text.split(" ")`;
    * gold and predicted entities are given as (surface string, type) in order; each string labels
      with its type the FIRST occurrence in the text whose first unit is still `O` (spaced languages:
      matching whole tokens after removing "( 123 )"); so positions of predictions are ignored and a
      repeated name labels the next free occurrence. A string that does not occur labels nothing;
    * all units of all kept sentences are pooled and scored with scikit-learn's
      precision_recall_fscore_support(labels=[ORG, LOC, PER], zero_division=0): micro P/R/F1 over the
      three labels (correctly typed entity units / predicted entity units, resp. / gold entity units),
      macro F1 (unweighted mean of per-label F1) and weighted F1 (by gold support) — their code returns
      (micro F1, macro F1, weighted F1).
    Gold strings come from the file's tags when the sentence has them (their chunking: B- or I- opens an
    entity that runs over following I- tags of any type), else from the gold spans; predicted strings
    from `Entity.text` (or the text under the span when empty). Character level for zh and ja, as in
    their main.py (`zh=lang in ['zh', 'ja']`). One deliberate difference: their loader drops a file's
    last sentence when the file has no trailing blank line; we keep it.
    """
    char_level = (lang or (sentences[0].lang if sentences else "")) in languages.CHARACTER_TOKENS
    if len(sentences) != len(preds):
        raise UserError(f"gold has {len(sentences)} sentences but predictions have {len(preds)}")
    labels = list(labels)
    tp: Counter = Counter()
    n_gold: Counter = Counter()
    n_pred: Counter = Counter()
    n_sent = n_units = 0
    for sent, pred in zip(sentences, preds, strict=True):
        gold_items = _authors_gold_items(sent)
        if not gold_items:
            continue
        n_sent += 1
        text = _authors_text(sent, char_level)
        pred_items = [(e.text or sent.text[e.start : e.end], e.type) for e in pred]
        g = _authors_label_seq(text, gold_items, char_level)
        p = _authors_label_seq(text, pred_items, char_level)
        n_units += len(g)
        for a, b in zip(g, p, strict=True):
            n_gold[a] += 1
            n_pred[b] += 1
            if a == b:
                tp[a] += 1
    per_label = {lab: _prf_sklearn(tp[lab], n_pred[lab], n_gold[lab]) for lab in labels}
    micro = _prf_sklearn(
        sum(tp[lab] for lab in labels), sum(n_pred[lab] for lab in labels), sum(n_gold[lab] for lab in labels)
    )
    macro_f1 = sum(v["f1"] for v in per_label.values()) / len(labels) if labels else 0.0
    support = sum(n_gold[lab] for lab in labels)
    weighted_f1 = sum(per_label[lab]["f1"] * n_gold[lab] for lab in labels) / support if support else 0.0
    return {
        "label": AUTHORS_TOKEN_LABEL,
        "unit": "character" if char_level else "token",
        "sentences": n_sent,
        "units": n_units,
        "precision": micro["precision"],
        "recall": micro["recall"],
        "f1": micro["f1"],
        "micro_f1": micro["f1"],
        "macro_f1": macro_f1,
        "weighted_f1": weighted_f1,
        "per_type": per_label,
    }


# --------------------------------------------------------------------------------------------------
# bootstrap


def bootstrap_f1_ci(
    gold: Sequence[set],
    pred: Sequence[set],
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Percentile bootstrap CI of micro P/R/F1, resampling sentences (seeded, reproducible).

    `gold`/`pred` are per-sentence sets of hashable entities (e.g. (start, end, type)).
    """
    counts = [(len(g & p), len(p), len(g)) for g, p in zip(gold, pred, strict=True)]
    rng = random.Random(seed)
    m = len(counts)
    samples: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
    if m == 0:
        return {k: [0.0, 0.0] for k in samples} | {"n": n, "seed": seed, "alpha": alpha}
    for _ in range(n):
        ok = np_ = ng = 0
        for _j in range(m):
            c = counts[rng.randrange(m)]
            ok += c[0]
            np_ += c[1]
            ng += c[2]
        s = _prf(ok, np_, ng)
        for k in samples:
            samples[k].append(s[k])
    out: dict = {"n": n, "seed": seed, "alpha": alpha}
    for k, vals in samples.items():
        vals.sort()
        lo = vals[int((alpha / 2) * (n - 1))]
        hi = vals[int((1 - alpha / 2) * (n - 1))]
        out[k] = [lo, hi]
    return out


# --------------------------------------------------------------------------------------------------
# everything at once (eat score, eat bench)


def score_all(
    sentences: Sequence[Sentence],
    preds: Sequence[Sequence[Entity]],
    pred_tags: Sequence[Sequence[str]] | None = None,
    lang: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict:
    """All metrics for one prediction set.

    entity: exact character spans; seqeval / seqeval_strict: tag-level, seqeval-identical, when the gold
    sentences carry the file's tags (predicted tags from `pred_tags`, else converted from the spans);
    token_authors: the authors' token-level metric; bootstrap (optional): 95% CI of span micro P/R/F1.
    """
    if len(sentences) != len(preds):
        raise UserError(f"gold has {len(sentences)} sentences but predictions have {len(preds)}")
    out: dict = {"entity": entity_scores([s.gold for s in sentences], preds)}
    if sentences and all(s.tags is not None and s.tokens is not None for s in sentences):
        if pred_tags is None:
            pred_tags = [spans_to_tags(s, p) for s, p in zip(sentences, preds, strict=True)]
        # BMES/BIOES files are scored as the IOB2 tags of the same entities (seqeval's strict IOB2 mode
        # rejects E-/S-/M- tags; seqeval's IOBES mode gives the same entities on well-formed tags).
        gold_tags = [to_iob2(s.tags or []) for s in sentences]
        pred_tags = [to_iob2(t) for t in pred_tags]
        out["seqeval"] = tag_scores(gold_tags, pred_tags, mode="default")
        out["seqeval_strict"] = tag_scores(gold_tags, pred_tags, mode="strict")
    out["token_authors"] = authors_token_scores(sentences, preds, lang=lang)
    if bootstrap:
        g = [{(e.start, e.end, e.type) for e in s.gold} for s in sentences]
        p = [{(e.start, e.end, e.type) for e in x} for x in preds]
        out["bootstrap"] = bootstrap_f1_ci(g, p, n=bootstrap, seed=seed)
    return out


def headline(metrics: dict, mode: str = "default") -> tuple[str, dict]:
    """The entity scores to show first: seqeval (in `mode`) when available, else exact spans."""
    key = "seqeval_strict" if mode == "strict" else "seqeval"
    if key in metrics:
        return key, metrics[key]
    return "entity", metrics["entity"]
