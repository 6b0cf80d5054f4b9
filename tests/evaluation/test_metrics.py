"""Metric parity with seqeval (default and strict IOB2) and the authors' token metric on hand-checked cases."""

from __future__ import annotations

import random
import warnings

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from eat.errors import UserError
from evaluation.entities import Entity, Sentence
from evaluation.formats import load_dataset_file
from evaluation.metrics import (
    authors_token_scores,
    bootstrap_f1_ci,
    entity_scores,
    tag_scores,
)
from evaluation.tags import lenient_chunks, strict_chunks

TYPES = ["PER", "LOC", "ORG"]


def _seqeval(gold, pred, mode, suffix=False):
    kw = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classification_report(gold, pred, output_dict=True, zero_division=0, suffix=suffix, **kw)
        micro = (
            precision_score(gold, pred, zero_division=0, suffix=suffix, **kw),
            recall_score(gold, pred, zero_division=0, suffix=suffix, **kw),
            f1_score(gold, pred, zero_division=0, suffix=suffix, **kw),
        )
    per_type = {
        k: (v["precision"], v["recall"], v["f1-score"], v["support"])
        for k, v in report.items()
        if k not in ("micro avg", "macro avg", "weighted avg")
    }
    return micro, per_type


def _assert_parity(gold, pred, mode, suffix=False):
    ours = tag_scores(gold, pred, mode=mode, suffix=suffix)
    micro, per_type = _seqeval(gold, pred, mode, suffix)
    # exact float equality, not approx
    assert (ours["precision"], ours["recall"], ours["f1"]) == tuple(float(x) for x in micro)
    ours_pt = {t: (v["precision"], v["recall"], v["f1"], v["n_gold"]) for t, v in ours["per_type"].items()}
    their_pt = {t: (*(float(x) for x in v[:3]), int(v[3])) for t, v in per_type.items()}
    assert ours_pt == their_pt
    return ours


def _read_seqeval_file(path, gold_col=2, pred_col=3):
    gold, pred, g, p = [], [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if g:
                gold.append(g)
                pred.append(p)
            g, p = [], []
            continue
        cols = line.split()
        g.append(cols[gold_col])
        p.append(cols[pred_col])
    if g:
        gold.append(g)
        pred.append(p)
    return gold, pred


def test_lenient_chunks_conlleval_rules():
    assert lenient_chunks(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    # I- after O or after another type starts a new chunk
    assert lenient_chunks(["O", "I-PER", "I-LOC", "I-LOC"]) == [("PER", 1, 2), ("LOC", 2, 4)]
    assert lenient_chunks(["B-ORG", "E-ORG", "S-PER", "I-PER"]) == [
        ("ORG", 0, 2),
        ("PER", 2, 3),
        ("PER", 3, 4),
    ]
    # strict IOB2: I- without a B- chunk is ignored, a type change ends the chunk
    assert strict_chunks(["O", "I-PER", "B-LOC", "I-LOC", "I-PER"]) == [("LOC", 2, 4)]
    with pytest.raises(UserError, match="not IOB2"):
        strict_chunks(["S-PER"])


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_parity_on_seqeval_ground_truth(shared_data, mode):
    gold, pred = _read_seqeval_file(shared_data / "seqeval" / "ground_truth.txt")
    assert len(gold) == 40
    ours = _assert_parity(gold, pred, mode)
    assert ours["n_gold"] > 100 and 0.5 < ours["f1"] < 1.0


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_parity_on_seqeval_suffix_tags(shared_data, mode):
    gold, pred = _read_seqeval_file(shared_data / "seqeval" / "ground_truth_inv.txt")
    ours = _assert_parity(gold, pred, mode, suffix=True)
    plain = tag_scores(*_read_seqeval_file(shared_data / "seqeval" / "ground_truth.txt"), mode=mode)
    assert ours["f1"] == plain["f1"]


def perturb(tags: list[str], rng: random.Random) -> list[str]:
    """Seeded noise that exercises every chunking rule: type flips, dropped B-, shifted boundaries,
    invalid I- starts, E-/S- are not used (strict IOB2 must accept them all)."""
    out = list(tags)
    n = len(out)
    for i in range(n):
        r = rng.random()
        t = out[i]
        if t != "O" and r < 0.08:  # flip type
            out[i] = t[:2] + rng.choice([x for x in TYPES if x != t[2:]])
        elif t.startswith("B-") and r < 0.14:  # drop the B-: becomes an I- start or O
            out[i] = rng.choice(["O", "I-" + t[2:]])
        elif t != "O" and r < 0.18 and i + 1 < n:  # shift a boundary right
            out[i + 1] = "I-" + t[2:]
        elif t != "O" and r < 0.22:  # shrink
            out[i] = "O"
        elif t == "O" and r < 0.03:  # insert an invalid I- tag or a spurious B-
            out[i] = rng.choice(["I-", "B-"]) + rng.choice(TYPES)
    return out


@pytest.mark.parametrize("lang", ["zh", "ja", "ko", "ar", "ru", "hi"])
def test_parity_on_wikiann_with_perturbed_predictions(shared_data, lang):
    sents = load_dataset_file(shared_data / "wikiann-dev" / f"dev-{lang}.tsv", lang=lang)
    sents = sents[:1500]  # fast: still tens of thousands of tags
    gold = [s.tags for s in sents]
    rng = random.Random(f"perturb-{lang}")
    pred = [perturb(g, rng) for g in gold]
    assert sum(g != p for g, p in zip(gold, pred, strict=True)) > 200
    for mode in ("default", "strict"):
        ours = _assert_parity(gold, pred, mode)
        assert 0.1 < ours["f1"] < 0.99
    # gold against itself: perfect
    assert tag_scores(gold, gold)["f1"] == 1.0


ALL_TYPES = ["PER", "LOC", "ORG", "MISC"]


def random_tags(rng: random.Random, n: int) -> list[str]:
    """Tags as a careless tagger writes them: mostly IOB2, with the ill-formed cases the two modes read
    differently left in (I- after O, I- of another type inside an entity)."""
    tags: list[str] = []
    for _ in range(n):
        prev = tags[-1] if tags else "O"
        r = rng.random()
        if r < 0.45:
            tags.append("O")
        elif r < 0.7 and prev != "O":
            tags.append("I-" + prev[2:])  # the entity goes on
        elif r < 0.88:
            tags.append("B-" + rng.choice(ALL_TYPES))
        else:
            tags.append("I-" + rng.choice(ALL_TYPES))  # an I- start, or a type change inside an entity
    return tags


def _ill_formed_starts(sequences: list[list[str]]) -> int:
    """I-X tags not preceded by B-X or I-X: where default (conlleval) and strict IOB2 disagree."""
    return sum(
        tag.startswith("I-") and (i == 0 or seq[i - 1][2:] != tag[2:])
        for seq in sequences
        for i, tag in enumerate(seq)
    )


def _as_suffix(sequences: list[list[str]]) -> list[list[str]]:
    """B-PER -> PER-B: the same tags in seqeval's suffix style."""
    return [[t if t == "O" else f"{t[2:]}-{t[0]}" for t in seq] for seq in sequences]


@pytest.mark.parametrize("mode", ["default", "strict"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_on_seeded_random_tags(mode, seed):
    """The metric guarantee without ../shared: seqeval and we agree exactly on random, partly ill-formed tags."""
    rng = random.Random(f"random-tags-{seed}")
    gold = [random_tags(rng, rng.randint(0, 25)) for _ in range(400)]
    # Predictions: the gold with seeded noise, or (one in five) an unrelated random sequence.
    pred = [random_tags(rng, len(g)) if rng.random() < 0.2 else perturb(g, rng) for g in gold]
    assert _ill_formed_starts(gold) > 100 and _ill_formed_starts(pred) > 100
    assert any(not g for g in gold)  # empty sentences too
    ours = _assert_parity(gold, pred, mode)
    assert set(ours["per_type"]) == set(ALL_TYPES)
    assert ours["n_gold"] > 1000 and 0.2 < ours["f1"] < 0.9
    # The same tags written PER-B: the same scores.
    assert _assert_parity(_as_suffix(gold), _as_suffix(pred), mode, suffix=True) == ours
    # The modes read the ill-formed I- starts differently, so they must not agree on this data.
    other = tag_scores(gold, pred, mode="strict" if mode == "default" else "default")
    assert (other["n_gold"], other["n_pred"]) != (ours["n_gold"], ours["n_pred"])


def test_default_and_strict_differ_on_invalid_starts():
    gold = [["B-PER", "I-PER", "O"]]
    pred = [["I-PER", "I-PER", "O"]]
    assert tag_scores(gold, pred, "default")["f1"] == 1.0
    assert tag_scores(gold, pred, "strict")["f1"] == 0.0
    _assert_parity(gold, pred, "default")
    _assert_parity(gold, pred, "strict")


def test_entity_scores_on_spans_counts_and_per_type():
    gold = [[Entity(0, 2, "PER"), Entity(5, 8, "LOC")], [Entity(1, 4, "ORG")]]
    pred = [[Entity(0, 2, "PER"), Entity(5, 8, "ORG")], [Entity(1, 4, "ORG"), Entity(6, 7, "LOC")]]
    s = entity_scores(gold, pred)
    assert (s["n_gold"], s["n_pred"], s["n_correct"]) == (3, 4, 2)
    assert s["precision"] == 0.5 and s["recall"] == 2 / 3
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert s["per_type"]["LOC"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "n_gold": 1,
        "n_pred": 1,
        "n_correct": 0,
    }
    assert s["per_type"]["ORG"]["precision"] == 0.5 and s["per_type"]["ORG"]["recall"] == 1.0
    with pytest.raises(UserError, match="sentences"):
        entity_scores(gold, pred[:1])


def _zh(text, gold):
    return Sentence(id="x", text=text, lang="zh", gold=[Entity(a, b, t, text[a:b]) for a, b, t in gold])


def test_authors_token_metric_hand_checked_zh():
    # 张三在北京 | gold: 张三 PER (2 chars), 北京 LOC (2 chars)
    s1 = _zh("张三在北京", [(0, 2, "PER"), (3, 5, "LOC")])
    # 无实体 : no gold entity -> skipped even though something is predicted
    s2 = _zh("今天下雨", [])
    # 上海 ORG gold; prediction types it LOC
    s3 = _zh("上海很大", [(0, 2, "ORG")])
    preds = [
        [Entity(0, 2, "PER", "张三"), Entity(2, 5, "LOC", "在北京")],  # 在 wrongly LOC
        [Entity(0, 2, "LOC", "今天")],
        [Entity(0, 2, "LOC", "上海")],
    ]
    r = authors_token_scores([s1, s2, s3], preds)
    # units: 5 + 4 chars (s2 skipped). gold entity chars: PER 2, LOC 2, ORG 2 = 6.
    # predicted entity chars: PER 2, LOC 3 (s1) + 2 (s3) = 7. correct: PER 2, LOC 2 -> 4.
    assert r["unit"] == "character" and r["sentences"] == 2 and r["units"] == 9
    assert r["precision"] == 4 / 7 and r["recall"] == 4 / 6
    assert r["f1"] == pytest.approx(2 * 4 / (7 + 6))
    # per label F1: PER 1.0; LOC p=2/5 r=1 -> 4/7; ORG 0 -> macro = (1 + 4/7 + 0) / 3
    assert r["macro_f1"] == pytest.approx((1 + 4 / 7) / 3)
    assert r["weighted_f1"] == pytest.approx((1 * 2 + 4 / 7 * 2 + 0 * 2) / 6)
    assert "not entity-level" in r["label"]


def test_authors_token_metric_position_free_and_spaced_tokens():
    # Spaced language: units are `text.split(" ")`. A predicted string labels its FIRST free occurrence,
    # whatever its predicted position: predicting the 2nd "Иван" marks the 1st one.
    text = "Иван и Иван Петров"
    s = Sentence(id="r", text=text, lang="ru", gold=[Entity(7, 18, "PER", "Иван Петров")])
    r = authors_token_scores([s], [[Entity(0, 4, "PER", "Иван")]])
    # gold units: O O PER PER ; pred: PER O O O -> tp 0, pred 1, gold 2
    assert r["unit"] == "token" and (r["precision"], r["recall"], r["f1"]) == (0.0, 0.0, 0.0)
    r2 = authors_token_scores([s], [[Entity(7, 18, "PER", "Иван Петров")]])
    assert (r2["precision"], r2["recall"]) == (1.0, 1.0)
    # a string that does not occur labels nothing; "( 12 )" is removed before matching
    s3 = Sentence(id="a", text="نادي ( 12 ) الأهلي", lang="ar", gold=[Entity(0, 4, "ORG", "نادي")])
    r3 = authors_token_scores([s3], [[Entity(0, 18, "ORG", "نادي ( 12 ) الأهلي")], []][:1])
    assert r3["precision"] == 0.0 and r3["recall"] == 0.0  # "نادي الأهلي" is not a token run
    r4 = authors_token_scores([s3], [[Entity(0, 11, "ORG", "نادي ( 12 )")]])
    assert (r4["precision"], r4["recall"]) == (1.0, 1.0)  # "( 12 )" stripped -> "نادي"


def test_authors_token_metric_zh_space_quirk():
    # Their zh path writes spaces as '#' in the text but not in entity strings, so a name containing a
    # space never matches: it contributes gold units that no prediction can recover.
    s = _zh("约翰 史密斯来了", [(0, 6, "PER")])
    r = authors_token_scores([s], [[Entity(0, 6, "PER", "约翰 史密斯")]])
    assert r["units"] == 8 and r["recall"] == 0.0 and r["precision"] == 0.0


def test_authors_token_metric_matches_sklearn_on_wikiann(shared_data):
    from sklearn.metrics import f1_score as sk_f1
    from sklearn.metrics import precision_recall_fscore_support

    sents = load_dataset_file(shared_data / "wikiann-dev" / "dev-ja.tsv", lang="ja")[:800]
    rng = random.Random(3)
    preds = []
    for s in sents:
        p = [e for e in s.gold if rng.random() > 0.2]
        p = [Entity(e.start, e.end, rng.choice(TYPES) if rng.random() < 0.2 else e.type, e.text) for e in p]
        preds.append(p)
    r = authors_token_scores(sents, preds)
    from evaluation.metrics import _authors_label_seq

    g_all, p_all = [], []
    for s, p in zip(sents, preds, strict=True):
        if not s.gold:
            continue
        g_all += _authors_label_seq(s.text, [(s.text[e.start : e.end], e.type) for e in s.gold], True)
        p_all += _authors_label_seq(s.text, [(e.text, e.type) for e in p], True)
    labels = ["ORG", "LOC", "PER"]
    _, _, weighted, _ = precision_recall_fscore_support(
        g_all, p_all, labels=labels, average="weighted", zero_division=0
    )
    assert r["micro_f1"] == pytest.approx(
        sk_f1(g_all, p_all, labels=labels, average="micro", zero_division=0)
    )
    assert r["macro_f1"] == pytest.approx(
        sk_f1(g_all, p_all, labels=labels, average="macro", zero_division=0)
    )
    assert r["weighted_f1"] == pytest.approx(weighted)
    assert 0.5 < r["f1"] < 1.0


def test_bootstrap_is_seeded_and_brackets_the_point_estimate():
    rng = random.Random(0)
    gold = [{(i, "PER")} for i in range(200)]
    pred = [g if rng.random() < 0.7 else set() for g in gold]
    a = bootstrap_f1_ci(gold, pred, n=200, seed=1)
    b = bootstrap_f1_ci(gold, pred, n=200, seed=1)
    assert a == b
    point = entity_scores([[Entity(i, i + 1, "PER")] for i in range(200)], [[] for _ in range(200)])
    assert point["f1"] == 0.0
    assert a["precision"] == [1.0, 1.0]
    assert a["recall"][0] < 0.7 < a["recall"][1]
