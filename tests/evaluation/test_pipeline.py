"""The pipeline with a scripted backend: perfect stage answers score F1 = 1.0, a bad answer is a recorded
failure of one item, and a re-run resumes from the stage caches."""

from __future__ import annotations

import json

import pytest

from eat.errors import UserError
from eat.prompts import load_prompts
from evaluation.config import EvalRecipe
from evaluation.entities import Entity, Sentence
from evaluation.run import run_eval
from tests.evaluation.helpers.scripted import ScriptedBackend

PROMPTS = load_prompts()

# (sentence, lang, gold [(start, end, type)], translation, English entities, {English entity: answer})
CASES = [
    (
        "李白出生于碎叶城。",
        "zh",
        [(0, 2, "PER"), (5, 8, "LOC")],
        "Li Bai was born in Suyab.",
        "(PERSON, Li Bai)\n(LOCATION, Suyab)",
        {"Li Bai": "李白", "Suyab": "碎葉城"},
    ),
    (
        "北京大学位于北京，北京很大。",
        "zh",
        [(0, 4, "ORG"), (6, 8, "LOC"), (9, 11, "LOC")],
        "Peking University is in Beijing; Beijing is big.",
        "(LOCATION, Beijing)\n(ORGANIZATION, Peking University)\n(LOCATION, Beijing)",
        {"Beijing": "北京", "Peking University": "北京大学"},
    ),
    (
        "ソニーの本社は東京にある。",
        "ja",
        [(0, 3, "ORG"), (7, 9, "LOC")],
        "Sony's head office is in Tokyo.",
        "(ORGANIZATION, Sony)\n(LOCATION, Tokyo)",
        {"Sony": "「ソニー」", "Tokyo": "東京"},
    ),
    (
        "Он приехал из Москвы.",
        "ru",
        [(14, 20, "LOC")],
        "He came from Moscow.",
        "(LOCATION, Moscow)",
        {"Moscow": "Москва"},
    ),
]


def _sentences(cases=CASES):
    return [
        Sentence(id=f"s{i}", text=t, lang=lang, gold=[Entity(s, e, ty, t[s:e]) for s, e, ty in gold])
        for i, (t, lang, gold, *_) in enumerate(cases)
    ]


def _answers(cases=CASES, mode="eat") -> dict:
    """Keyed by the user message that starts each chat; list values answer turn by turn."""
    task = "translate" if mode == "eat" else "translate_plain"
    head = PROMPTS.english_ner_instruction.format_map(PROMPTS.variables("en"))
    answers: dict = {}
    for text, lang, _, translation, ner, aligns in cases:
        first = PROMPTS.conversation(task, lang, sentence=text)[-1]["content"]
        answers[first] = ["the names", "a draft", translation][-PROMPTS.num_turns(task) :]
        answers[head + translation] = ner
        for english, answer in aligns.items():
            answers[PROMPTS.conversation("align", lang, phrase=english, sentence=text)[-1]["content"]] = (
                answer
            )
    return answers


def _cfg(tmp_path, **kw) -> EvalRecipe:
    return EvalRecipe(
        **{"model": "scripted", "data": "inline", "lang": "zh", "out": str(tmp_path / "run"), **kw}
    )


class Counting(ScriptedBackend):
    """Scripted backend that fails after `fail_after` generate calls (an interrupted run)."""

    chunk_size = 1

    def __init__(self, answers, fail_after=None):
        super().__init__(answers)
        self.fail_after = fail_after

    def generate(self, chats, max_new_tokens, decoding, adapter=True):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise UserError("server went away")
        return super().generate(chats, max_new_tokens, decoding, adapter)


def test_perfect_answers_give_f1_one(tmp_path):
    backend = ScriptedBackend(_answers())
    metrics = run_eval(_cfg(tmp_path), backend=backend, sentences=_sentences())
    assert metrics["entity"]["f1"] == 1.0
    assert metrics["entity"]["per_type"]["LOC"]["recall"] == 1.0
    assert metrics["token_authors"]["f1"] == 1.0
    run = tmp_path / "run"
    for name in ("predictions.jsonl", "metrics.json", "report.md", "config.yaml", "cache/stage1.jsonl"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["s0", "s1", "s2", "s3"]
    trace = records[1]["trace"]
    assert trace["translation"].startswith("Peking University")
    assert [a["snapped"]["start"] for a in trace["alignments"]] == [6, 0, 9]  # repeated 北京 -> two positions
    methods = {a["english"]: a["method"] for r in records for a in r["trace"]["alignments"]}
    assert methods["Suyab"] == "normalized" and methods["Moscow"] == "token" and methods["Sony"] == "exact"
    # stage 1 batched across sentences turn by turn: one generate per turn, not per sentence
    assert backend.calls == PROMPTS.num_turns("translate") + 1 + PROMPTS.num_turns("align")
    assert "F1" in (run / "report.md").read_text()


def test_translate_test_and_direct_modes(tmp_path):
    backend = ScriptedBackend(_answers(mode="translate-test"))
    m = run_eval(_cfg(tmp_path, mode="translate-test"), backend=backend, sentences=_sentences())
    assert m["entity"]["f1"] == 1.0 and m["mode"] == "translate-test"
    direct = {
        PROMPTS.conversation("direct", "zh", sentence=CASES[0][0])[-1][
            "content"
        ]: "(PERSON, 李白)\n(LOCATION, 碎叶城)",
        PROMPTS.conversation("direct", "zh", sentence=CASES[1][0])[-1]["content"]: "I see no names.",
    }
    m = run_eval(
        _cfg(tmp_path, mode="direct", out=str(tmp_path / "d")),
        ScriptedBackend(direct),  # a third sentence gets the default reply: nothing at all
        sentences=_sentences()[:3],
    )
    assert m["entity"]["precision"] == 1.0 and m["entity"]["n_pred"] == 2
    rec = [json.loads(x) for x in (tmp_path / "d" / "predictions.jsonl").read_text().splitlines()]
    assert rec[1]["trace"]["failure"]["stage"] == "direct"
    assert "empty reply" in rec[2]["trace"]["failure"]["reason"]  # not counted as "no entities"


def test_bad_answers_are_item_failures(tmp_path):
    answers = _answers()
    head = PROMPTS.english_ner_instruction.format_map(PROMPTS.variables("en"))
    answers[head + CASES[0][3]] = "Sorry, I cannot help with that."  # unparseable stage-2 answer
    answers[PROMPTS.conversation("align", "ja", phrase="Tokyo", sentence=CASES[2][0])[-1]["content"]] = "大阪"
    first = PROMPTS.conversation("translate", "ru", sentence=CASES[3][0])[-1]["content"]
    answers[first] = "   "  # empty translation
    m = run_eval(_cfg(tmp_path), backend=ScriptedBackend(answers), sentences=_sentences())
    rec = {
        r["id"]: r for r in map(json.loads, (tmp_path / "run" / "predictions.jsonl").read_text().splitlines())
    }
    assert (
        rec["s0"]["trace"]["failure"]["stage"] == 2
        and "unparseable" in rec["s0"]["trace"]["failure"]["reason"]
    )
    assert rec["s3"]["trace"]["failure"] == {"stage": 1, "reason": "empty translation"}
    tokyo = next(a for a in rec["s2"]["trace"]["alignments"] if a["english"] == "Tokyo")
    assert tokyo["snapped"] is None and tokyo["method"] == "none" and tokyo["reason"]
    assert rec["s1"]["pred"] and len(rec["s1"]["pred"]) == 3  # the other sentences went on
    assert m["counts"]["failures"] == {"stage 2": 1, "stage 1": 1, "snap": 1}
    assert 0 < m["entity"]["f1"] < 1


def test_resume_reuses_caches(tmp_path):
    cfg = _cfg(tmp_path)
    interrupted = Counting(_answers(), fail_after=5)
    with pytest.raises(UserError):
        run_eval(cfg, backend=interrupted, sentences=_sentences())
    assert not (tmp_path / "run" / "predictions.jsonl").exists()  # nothing half-written
    resumed = Counting(_answers())
    m = run_eval(cfg, backend=resumed, sentences=_sentences())
    assert m["entity"]["f1"] == 1.0
    total = len(interrupted.chats) + len(resumed.chats)
    full = Counting(_answers())
    run_eval(_cfg(tmp_path, out=str(tmp_path / "fresh")), backend=full, sentences=_sentences())
    assert total == len(full.chats)  # no done item asked twice
    # The resumed run says how much of it came from the cache (its time covers only the rest).
    assert m["replies"]["computed"] == len(resumed.chats) and m["replies"]["from_cache"] >= len(
        interrupted.chats
    )
    assert "resumed:" in (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    again = Counting(_answers())
    m = run_eval(cfg, backend=again, sentences=_sentences())
    assert m["entity"]["f1"] == 1.0
    assert again.calls == 0 and m["replies"]["computed"] == 0  # everything from the caches
    fresh = json.loads((tmp_path / "fresh" / "metrics.json").read_text(encoding="utf-8"))
    assert fresh["replies"]["from_cache"] == 0
    assert "resumed:" not in (tmp_path / "fresh" / "report.md").read_text(encoding="utf-8")


def test_cache_invalidated_by_settings(tmp_path):
    first = ScriptedBackend(_answers())
    run_eval(_cfg(tmp_path), backend=first, sentences=_sentences())
    other = ScriptedBackend(_answers())
    m = run_eval(_cfg(tmp_path, max_new_tokens=17), backend=other, sentences=_sentences())
    # A reply limit is part of every stage's cache key: the whole run is asked again, turn by turn.
    assert other.calls == PROMPTS.num_turns("translate") + 1 + PROMPTS.num_turns("align")
    assert other.chats == first.chats
    assert m["replies"]["from_cache"] == 0 and m["replies"]["computed"] == len(first.chats)


def _eat(*args) -> tuple[int, str]:
    from eat.cli import main
    from eat.console import console

    with console.capture() as cap:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code
    return code, cap.get()


def test_eval_cli_reads_recipe_and_flags(tmp_path):
    """`eat eval RECIPE key=value`, flags over a recipe, and missing flags: one line, exit 2."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: eval\nmodel: /nonexistent/model\ndata: d.tsv\nlang: zh\nout: run\n")
    code, out = _eat("eval", str(recipe), "limit=0")
    assert code == 2 and "override limit=0" in out  # the bad value came from the command line, not the file
    code, out = _eat("eval", str(recipe), "--data", str(tmp_path / "missing.tsv"))
    assert code == 2 and "missing.tsv" in out and "Traceback" not in out
    code, out = _eat("eval", "--model", "m", "--data", "d", "--lang", "zh")
    assert code == 2 and "--out" in out
    code, out = _eat("eval", str(recipe), "--label-map", "PER.NAM")
    assert code == 2 and "FROM=TO" in out


def test_lexicon_from_mined_pairs_rescues_a_bad_answer(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pairs = pa.table(
        {
            "lang": ["zh", "zh", "ja"],
            "en_title": ["Peking University", "Beijing", "Peking University"],
            "surface": ["北京大学", "北京", "北京大学 (ja)"],
            "aliases": [["北大"], [], []],
        }
    )
    pq.write_table(pairs, tmp_path / "pairs.parquet")
    answers = _answers(CASES[1:2])
    key = PROMPTS.conversation("align", "zh", phrase="Peking University", sentence=CASES[1][0])[-1]["content"]
    answers[key] = "I am not sure."
    cfg = _cfg(tmp_path, lexicon=str(tmp_path / "pairs.parquet"))
    m = run_eval(cfg, backend=ScriptedBackend(answers), sentences=_sentences(CASES[1:2]))
    assert m["entity"]["f1"] == 1.0
    rec = json.loads((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()[0])
    pku = next(a for a in rec["trace"]["alignments"] if a["english"] == "Peking University")
    assert pku["method"] == "lexicon-exact" and pku["snapped"]["text"] == "北京大学"
    bad = _cfg(tmp_path, lexicon=str(tmp_path / "nope"))
    with pytest.raises(UserError, match="nope"):
        run_eval(bad, backend=ScriptedBackend(answers), sentences=_sentences(CASES[1:2]))


class _Tagger:
    """A stage-2 tagger that answers from the cases' English NER answers and records its batches."""

    name = "scripted-tagger"
    path = None

    def __init__(self, cases=CASES):
        self.answers = {translation: ner for *_, translation, ner, _ in cases}
        self.batches: list[list[str]] = []

    def tag(self, texts):
        self.batches.append(list(texts))
        return [self.answers[t] for t in texts]

    def parse(self, raw):
        from evaluation.english_ner import parse_ner_reply

        return parse_ner_reply(raw)


def test_tagger_runs_in_batches_through_the_stage_cache(tmp_path):
    twice = [*CASES, (CASES[0][0] + "！", *CASES[0][1:])]  # one more sentence with the same translation
    cfg = _cfg(tmp_path, ner_model="tagger", batch_size=2)
    tagger = _Tagger()
    m = run_eval(cfg, backend=ScriptedBackend(_answers(twice)), tagger=tagger, sentences=_sentences(twice))
    assert m["entity"]["f1"] == 1.0
    assert [len(b) for b in tagger.batches] == [2, 2]  # four distinct translations, two per batch
    assert (tmp_path / "run" / "cache" / "stage2.jsonl").read_text(encoding="utf-8").count("\n") == 4
    again = _Tagger()
    m = run_eval(cfg, backend=ScriptedBackend(_answers(twice)), tagger=again, sentences=_sentences(twice))
    assert again.batches == [] and m["replies"]["computed"] == 0


@pytest.mark.parametrize("stages", ["align", "all"])
def test_adapter_applies_to_the_stages_it_was_trained_for(tmp_path, stages):
    """An align-only adapter (the default) answers stage 3 only; stages 1 and 2 (LLM English NER) run on the
    base model and are keyed like a base run's, so they reuse its replies in the same run folder."""
    base = ScriptedBackend(_answers())
    run_eval(_cfg(tmp_path), backend=base, sentences=_sentences())
    assert set(base.adapter_calls) == {False}  # no adapter: nothing asks for one
    tuned = ScriptedBackend(_answers())
    cfg = _cfg(tmp_path, adapter_name="align-lora", adapter_stages=stages)
    m = run_eval(cfg, backend=tuned, sentences=_sentences())
    assert m["entity"]["f1"] == 1.0
    if stages == "align":
        assert tuned.adapter_calls == [True] * PROMPTS.num_turns("align")  # stages 1-2 came from the cache
    else:
        n = PROMPTS.num_turns("translate") + 1 + PROMPTS.num_turns("align")
        assert tuned.adapter_calls == [True] * n  # nothing reused: every stage ran with the adapter


def test_reuse_replies_of_another_run(tmp_path):
    """An align-only adapter's run borrows the base run's stage 1-2 replies (same keys) and computes only
    stage 3; the borrowed replies are copied, so its folder resumes without the base run."""
    run_eval(_cfg(tmp_path), backend=ScriptedBackend(_answers()), sentences=_sentences())
    tuned = ScriptedBackend(_answers())
    cfg = _cfg(
        tmp_path, out=str(tmp_path / "tuned"), adapter_name="lora", reuse_replies=[str(tmp_path / "run")]
    )
    m = run_eval(cfg, backend=tuned, sentences=_sentences())
    assert m["entity"]["f1"] == 1.0
    assert tuned.adapter_calls == [True] * PROMPTS.num_turns("align")  # only stage 3 ran
    assert m["replies"]["from_cache"] > 0
    base_rows = (tmp_path / "run" / "cache" / "stage1.jsonl").read_text(encoding="utf-8").splitlines()
    copied = (tmp_path / "tuned" / "cache" / "stage1.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(copied) == sorted(base_rows)
    again = ScriptedBackend(_answers())
    run_eval(cfg.model_copy(update={"reuse_replies": []}), backend=again, sentences=_sentences())
    assert again.calls == 0  # everything from its own cache now
    other = ScriptedBackend(_answers())  # another model: nothing of the base run matches
    run_eval(_cfg(tmp_path, out=str(tmp_path / "o"), model="other", reuse_replies=[str(tmp_path / "run")]),
             backend=other, sentences=_sentences())  # fmt: skip
    assert other.calls == PROMPTS.num_turns("translate") + 1 + PROMPTS.num_turns("align")
    with pytest.raises(UserError, match="not an eat eval run folder"):
        run_eval(_cfg(tmp_path, out=str(tmp_path / "x"), reuse_replies=[str(tmp_path)]), backend=other,
                 sentences=_sentences())  # fmt: skip
