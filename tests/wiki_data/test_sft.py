"""`eat wiki sft`: chat datasets from entity pairs (round trip, prompts parity, split, determinism, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat.errors import UserError
from eat.prompts import load_prompts
from wiki_data.schema import pairs_table, shard_name
from wiki_data.sft_cli import register
from wiki_data.variants import english_variants, strip_disambiguator

FIXTURES = Path(__file__).parent / "sft_fixtures"
FIXTURE_ROWS = [json.loads(line) for line in (FIXTURES / "pairs.jsonl").read_text("utf-8").splitlines()]


@click.group()
def group() -> None:
    """Stand-in for `eat wiki`: the commands are registered the way wiki_data/cli.py will."""


register(group)


def run(*args: str):
    return CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=True)


def ok(*args: str):
    result = run(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def pairs_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """Two pairs folders: zh+ja in two shards, ru in one (written by the miner's schema writer)."""
    base = tmp_path_factory.mktemp("pairs")
    a, b = base / "a", base / "b"
    a.mkdir()
    b.mkdir()
    pq.write_table(pairs_table([r for r in FIXTURE_ROWS if r["lang"] == "zh"]), a / shard_name(0))
    pq.write_table(pairs_table([r for r in FIXTURE_ROWS if r["lang"] == "ja"]), a / shard_name(1))
    pq.write_table(pairs_table([r for r in FIXTURE_ROWS if r["lang"] == "ru"]), b / shard_name(0))
    return a, b


def build(pairs_dirs, out: Path, *extra: str) -> dict[str, list[dict]]:
    args = ["sft", "--out", out]
    for d in pairs_dirs:
        args += ["--pairs", d]
    ok(*args, *extra)
    return {s: [json.loads(x) for x in (out / f"{s}.jsonl").read_text("utf-8").splitlines()] for s in SPLITS}


SPLITS = ("train", "validation")


def user_sentence(row: dict) -> str:
    """The sentence as it appears in the last user turn that holds one (a preamble may hold a worked example)."""
    for m in reversed(row["messages"]):
        if m["role"] == "user" and " sentence: " in m["content"]:
            return m["content"].split(" sentence: ", 1)[1].split("\n", 1)[0]
    raise AssertionError(f"no sentence in {row['messages']}")


def asked_phrase(row: dict) -> str:
    """The English name asked in the last user turn that names one."""
    for m in reversed(row["messages"]):
        for line in m["content"].splitlines() if m["role"] == "user" else ():
            if line.startswith(("English name: ", "English phrase: ")):
                return line.split(": ", 1)[1]
    raise AssertionError(f"no English name in {row['messages']}")


def source_row(row: dict) -> dict:
    sentence = user_sentence(row)
    (src,) = {
        json.dumps(r, sort_keys=True)
        for r in FIXTURE_ROWS
        if r["lang"] == row["lang"] and r["en_title"] == row["en_title"] and r["sentence"] == sentence
    }
    return json.loads(src)


def test_round_trip_default_prompts(pairs_dirs, tmp_path):
    from datasets import load_from_disk

    out = tmp_path / "ds"
    splits = build(pairs_dirs, out, "--val-fraction", "0.3")
    dd = load_from_disk(str(out))
    assert set(dd) == set(SPLITS)
    for s in SPLITS:
        assert dd[s].column_names == [
            "messages",
            "task",
            "lang",
            "qid",
            "en_title",
            "type",
            "answer_start",
            "source",
        ]
        assert dd[s].to_list() == splits[s]
        assert {r["source"] for r in splits[s]} == {"pair"}
    rows = splits["train"] + splits["validation"]
    assert len(splits["validation"]) > 0
    # 18 fixture rows: 1 duplicate, 1 surface not in its sentence -> 16 pairs x 2 tasks.
    assert len(rows) == 32
    assert {r["lang"] for r in rows} == {"zh", "ja", "ru"}
    assert not any(r["en_title"] == "Nameless Town" for r in rows)
    for row in rows:
        assert row["messages"][-1]["role"] == "assistant"
        answer = row["messages"][-1]["content"]
        if row["task"] == "align":
            assert answer in user_sentence(row)
            assert answer == source_row(row)["surface"]
        else:
            assert answer == strip_disambiguator(row["en_title"])
    cassiopeia = [r for r in rows if r["en_title"].startswith("Cassiopeia") and r["task"] == "to_english"]
    assert cassiopeia[0]["messages"][-1]["content"] == "Cassiopeia"
    card = (out / "README.md").read_text("utf-8")
    n_ja_train = sum(r["lang"] == "ja" for r in splits["train"])
    n_ja_val = sum(r["lang"] == "ja" for r in splits["validation"])
    assert f"| ja | {n_ja_train} | {n_ja_val} | {n_ja_train + n_ja_val} |" in card
    assert "| align | " in card and "| to_english | " in card
    n_per = sum(r["type"] == "PER" for r in rows)
    assert "| PER | " in card and f" | {n_per} |\n" in card
    assert "duplicates dropped: 2" in card  # the duplicate row, once per task
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".ds.")]  # no temp folder left


def test_align_chat_equals_what_inference_sends(pairs_dirs, tmp_path, tiny_lm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    prompts = load_prompts()
    splits = build(pairs_dirs, tmp_path / "ds", "--tasks", "align")
    rows = splits["train"] + splits["validation"]
    assert rows and {r["task"] for r in rows} == {"align"}
    for row in rows:
        src = source_row(row)
        variants = english_variants(src["en_title"], src["type"], src["aliases"], src["lang"])
        asked = [
            prompts.conversation("align", row["lang"], sentence=src["sentence"], phrase=v) for v in variants
        ]
        assert row["messages"][:-1] in asked
        prompt_text = tok.apply_chat_template(
            row["messages"][:-1], add_generation_prompt=True, tokenize=False
        )
        inference_text = tok.apply_chat_template(
            asked[asked.index(row["messages"][:-1])], add_generation_prompt=True, tokenize=False
        )
        assert prompt_text == inference_text
        full = tok.apply_chat_template(row["messages"], tokenize=False)
        assert full == prompt_text + src["surface"] + "<|im_end|>\n"


def test_authors_prompts_make_multi_turn_chats(pairs_dirs, tmp_path, shared_data, tiny_lm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    path = shared_data / "eat-official" / "prompts.yaml"
    prompts = load_prompts(path)
    splits = build(pairs_dirs, tmp_path / "ds", "--prompts", path)
    rows = splits["train"] + splits["validation"]
    align = [r for r in rows if r["task"] == "align"]
    assert align
    for row in align:
        roles = [m["role"] for m in row["messages"]]
        assert roles == [
            "system",
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant",
        ]
        src = source_row(row)
        answer = row["messages"][-1]["content"]
        assert answer == src["surface"] and answer in src["sentence"]
        assert row["messages"][4]["content"] == row["messages"][6]["content"] == answer
        variants = english_variants(src["en_title"], src["type"], src["aliases"], src["lang"])
        asked = [
            prompts.conversation(
                "align", row["lang"], replies=[answer, answer], sentence=src["sentence"], phrase=v
            )
            for v in variants
        ]
        assert row["messages"][:-1] in asked
        assert row["messages"][3]["content"].startswith("English phrase: ")
        text = tok.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=False)
        assert text.endswith(
            "Give me the final result without other words.<|im_end|>\n<|im_start|>assistant\n"
        )
    # The authors' file has no to_english chat: our default (one turn) is used.
    to_en = [r for r in rows if r["task"] == "to_english"]
    assert to_en and all(len(r["messages"]) == 3 for r in to_en)


def test_split_is_by_entity(pairs_dirs, tmp_path):
    for seed in range(4):
        splits = build(pairs_dirs, tmp_path / f"ds{seed}", "--val-fraction", "0.4", "--seed", str(seed))
        key = lambda r: r["qid"] or r["en_title"]  # noqa: E731
        train, val = ({key(r) for r in splits[s]} for s in SPLITS)
        assert train and val and not train & val
        paris = {s for s in SPLITS for r in splits[s] if r["qid"] == "Q90"}
        assert len(paris) == 1  # zh, ja and ru Paris rows are on the same side


def test_deterministic_for_a_seed_and_input_order(pairs_dirs, tmp_path):
    a = build(pairs_dirs, tmp_path / "a", "--val-fraction", "0.3")
    b = build(pairs_dirs[::-1], tmp_path / "b", "--val-fraction", "0.3")
    assert a == b
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()
    others = [
        build(pairs_dirs, tmp_path / f"s{s}", "--val-fraction", "0.3", "--seed", str(s)) for s in (1, 2)
    ]
    assert any(o != a for o in others)


def test_name_variants_follow_ner_output(pairs_dirs, tmp_path):
    names = set()
    for seed in range(6):
        splits = build(pairs_dirs, tmp_path / f"ds{seed}", "--tasks", "align", "--seed", str(seed))
        for row in splits["train"] + splits["validation"]:
            names.add((row["en_title"], asked_phrase(row)))
    by_title: dict[str, set[str]] = {}
    for title, name in names:
        by_title.setdefault(title, set()).add(name)
    assert by_title["Paris, Texas"] <= {"Paris, Texas", "Paris", "PARIS, TEXAS"}
    assert "Paris" in by_title["Paris, Texas"] or "PARIS, TEXAS" in by_title["Paris, Texas"]
    assert by_title["Cassiopeia (constellation)"] <= {"Cassiopeia", "CASSIOPEIA"}
    assert len(by_title["European Central Bank"]) >= 2


def test_variants():
    assert strip_disambiguator("Paris (Texas)") == "Paris"
    assert strip_disambiguator("巴黎 （德州）") == "巴黎"
    assert strip_disambiguator("(2)") == "(2)"
    assert english_variants("Barack Obama", "PER") == ["Barack Obama", "Obama", "BARACK OBAMA"]
    assert english_variants("European Central Bank", "ORG")[:2] == ["European Central Bank", "ECB"]
    assert "Beatles" in english_variants("The Beatles", "ORG")
    assert english_variants("Springfield, Illinois", "LOC")[:2] == ["Springfield, Illinois", "Springfield"]
    assert "EU" in english_variants("European Union", None, ["欧盟", "EU"], "zh")
    assert "EU" not in english_variants("European Union", None, ["EU"], "de")  # Latin script: not English
    assert english_variants("NATO", "ORG") == ["NATO"]


def test_languages_caps_and_balance(pairs_dirs, tmp_path):
    splits = build(pairs_dirs, tmp_path / "a", "--languages", "zh,ja", "--max-per-lang", "3")
    rows = splits["train"] + splits["validation"]
    assert {r["lang"] for r in rows} == {"zh", "ja"}
    assert all(sum(r["lang"] == lang for r in rows) == 3 for lang in ("zh", "ja"))
    splits = build(pairs_dirs, tmp_path / "b", "--balance")
    rows = splits["train"] + splits["validation"]
    counts = {lang: sum(r["lang"] == lang for r in rows) for lang in ("zh", "ja", "ru")}
    assert len(set(counts.values())) == 1 and counts["zh"] == 10  # zh has 5 usable pairs x 2 tasks


def expect_user_error(result, *fragments: str) -> str:
    assert isinstance(result.exception, UserError), (result.output, result.exception)
    assert UserError.exit_code == 2
    message = str(result.exception)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_bad_inputs_exit_2_and_write_nothing(pairs_dirs, tmp_path):
    out = tmp_path / "ds"
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_user_error(run("sft", "--pairs", empty, "--out", out), str(empty), "no pairs-*.parquet")
    expect_user_error(run("sft", "--pairs", tmp_path / "nope", "--out", out), "nope", "not found")

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    pq.write_table(pa.table({"lang": ["zh"], "word": ["巴黎"]}), wrong / shard_name(0))
    expect_user_error(
        run("sft", "--pairs", wrong, "--out", out), str(wrong / shard_name(0)), "missing column"
    )

    expect_user_error(
        run("sft", "--pairs", pairs_dirs[0], "--out", out, "--languages", "ko"), "--languages ko", "zh"
    )
    expect_user_error(run("sft", "--pairs", pairs_dirs[0], "--out", out, "--tasks", "translate"), "--tasks")
    assert not out.exists()
    assert not list(tmp_path.glob(".ds.*"))

    out.mkdir()
    expect_user_error(run("sft", "--pairs", pairs_dirs[0], "--out", out), str(out), "--overwrite")
    ok("sft", "--pairs", pairs_dirs[0], "--out", out, "--overwrite")
    assert (out / "README.md").is_file()


class _Recorder:
    """A chat backend that answers each align turn with the pair's surface and records what it was sent."""

    name = "recorder"

    def __init__(self, surface_of: dict[str, str]) -> None:
        self.surface_of = surface_of
        self.chats: list[list[dict]] = []

    def generate(self, chats, max_new_tokens, decoding):
        self.chats.extend(chats)
        answers = []
        for chat in chats:
            text = "\n".join(m["content"] for m in chat)
            (answer,) = {s for sentence, s in self.surface_of.items() if sentence in text}
            answers.append(answer)
        return answers


@pytest.mark.parametrize("authors", [False, True])
def test_rows_equal_the_evaluation_pipeline_chats(pairs_dirs, tmp_path, shared_data, tiny_lm, authors):
    """Each align row minus its answer is exactly the last chat `evaluation.pipeline` sends for it."""
    from transformers import AutoTokenizer

    from evaluation.config import EvalRecipe
    from evaluation.entities import Sentence
    from evaluation.pipeline import Pipeline

    prompts = str(shared_data / "eat-official" / "prompts.yaml") if authors else None
    extra = ["--prompts", prompts] if prompts else []
    splits = build(pairs_dirs, tmp_path / "ds", "--tasks", "align", "--seed", "3", *extra)
    rows = splits["train"] + splits["validation"]
    recorder = _Recorder({r["sentence"]: r["surface"] for r in FIXTURE_ROWS if r["surface"] in r["sentence"]})
    cfg = EvalRecipe(model="unused", data="unused", lang="zh", out=str(tmp_path / "run"), prompts=prompts)
    pipeline = Pipeline(cfg, recorder)
    jobs = []
    for row in rows:
        phrase = asked_phrase(row)
        jobs.append((Sentence(id=str(len(jobs)), text=user_sentence(row), lang=row["lang"]), phrase))
    replies = pipeline.align(jobs)
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    turns = pipeline.prompts.num_turns("align")
    assert turns == (3 if authors else 1)
    for row, answers in zip(rows, replies, strict=True):
        assert answers == [row["messages"][-1]["content"]] * turns
        sent = [c for c in recorder.chats if c == row["messages"][:-1]]
        assert sent, row["messages"]
        ours = tok.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=False)
        theirs = tok.apply_chat_template(sent[0], add_generation_prompt=True, tokenize=False)
        assert ours == theirs


def split_sentences(splits: dict[str, list[dict]]) -> dict[str, set[tuple[str, str]]]:
    """Per split, the (lang, plain sentence) of its align rows' source pairs."""
    return {
        s: {(r["lang"], source_sentence(r)) for r in rows if r["task"] == "align"}
        for s, rows in splits.items()
    }


def source_sentence(row: dict) -> str:
    """The pair sentence a (possibly shifted) align row was built from: the one its sentence ends with."""
    sentence = user_sentence(row)
    (src,) = {
        r["sentence"]
        for r in FIXTURE_ROWS
        if r["lang"] == row["lang"] and r["en_title"] == row["en_title"] and sentence.endswith(r["sentence"])
    }
    return src


def test_shift_fraction_moves_answers_within_the_split(pairs_dirs, tmp_path):
    plain = build(pairs_dirs, tmp_path / "plain", "--tasks", "align", "--val-fraction", "0.4")
    assert all(r["answer_start"] == 0 for s in SPLITS for r in plain[s])  # fixture leads start with the name
    splits = build(
        pairs_dirs, tmp_path / "s", "--tasks", "align", "--val-fraction", "0.4", "--shift-fraction", "1"
    )
    assert (
        build(
            pairs_dirs[::-1],
            tmp_path / "s2",
            "--tasks",
            "align",
            "--val-fraction",
            "0.4",
            "--shift-fraction",
            "1",
        )
        == splits
    )
    own = split_sentences(plain)
    shifted = 0
    for split in SPLITS:
        for row in splits[split]:
            sentence, answer, start = user_sentence(row), row["messages"][-1]["content"], row["answer_start"]
            assert sentence.find(answer) == start and answer == source_row_of(row)["surface"]
            src = source_sentence(row)
            if sentence == src:
                continue
            shifted += 1
            prefix = sentence[: -len(src)]
            assert start == len(prefix) > 0 and answer not in prefix
            sep = "" if row["lang"] in ("zh", "ja") else " "
            fillers = {s for lang, s in own[split] if lang == row["lang"] and s != src}
            parts = prefix.removesuffix(sep)
            # The prefix is one or two sentences of other entities of the same split and language.
            assert parts in fillers or any(
                parts == a + sep + b for a in fillers for b in fillers if a != b
            ), (split, parts)
    assert shifted >= len(splits["train"]) // 2
    card = (tmp_path / "s" / "README.md").read_text("utf-8")
    assert "## Answer position (align)" in card and "| answer at char 0 | 0% |" in card
    assert "| relative start 0.0-0.2 | 100% | 100% |" in (tmp_path / "plain" / "README.md").read_text("utf-8")


def source_row_of(row: dict) -> dict:
    """The pair a (possibly shifted) align row came from."""
    src = source_sentence(row)
    return next(
        r
        for r in FIXTURE_ROWS
        if r["lang"] == row["lang"] and r["en_title"] == row["en_title"] and r["sentence"] == src
    )


def test_align_test_file_is_validation_only_and_shortcut_proof(pairs_dirs, tmp_path):
    out = tmp_path / "ds"
    splits = build(pairs_dirs, out, "--val-fraction", "0.5", "--seed", "1", "--shift-fraction", "0.5")
    items = [json.loads(x) for x in (out / "align_test.jsonl").read_text("utf-8").splitlines()]
    val_align = [r for r in splits["validation"] if r["task"] == "align"]
    assert sum(not it["shifted"] for it in items) == len(val_align)
    assert any(it["shifted"] for it in items)
    prompts = load_prompts()
    val_sentences = {(lang, s) for lang, s in split_sentences(splits)["validation"]}
    train_entities = {r["qid"] or r["en_title"] for r in splits["train"]}
    for it in items:
        assert set(it) == {
            "lang",
            "qid",
            "en_title",
            "phrase",
            "sentence",
            "answer",
            "answer_start",
            "shifted",
            "messages",
            "followups",
        }
        assert (it["qid"] or it["en_title"]) not in train_entities
        assert it["sentence"].find(it["answer"]) == it["answer_start"]
        assert it["messages"] == prompts.conversation(
            "align", it["lang"], sentence=it["sentence"], phrase=it["phrase"]
        )
        assert it["followups"] == []
        if it["shifted"]:
            assert it["answer_start"] > 0
            # every character of the sentence comes from validation sentences
            rest = it["sentence"]
            while rest:
                head = [s for lang, s in val_sentences if lang == it["lang"] and rest.startswith(s)]
                assert head, rest
                rest = rest[len(max(head, key=len)) :].removeprefix(" ")
        else:
            assert (it["lang"], it["sentence"]) in val_sentences
    card = (out / "README.md").read_text("utf-8")
    assert "align_test.jsonl" in card and "| language | plain | shifted |" in card


def test_align_test_keeps_later_turns_out_of_the_chat(pairs_dirs, tmp_path, shared_data):
    path = shared_data / "eat-official" / "prompts.yaml"
    out = tmp_path / "ds"
    build(pairs_dirs, out, "--tasks", "align", "--val-fraction", "0.5", "--prompts", path)
    items = [json.loads(x) for x in (out / "align_test.jsonl").read_text("utf-8").splitlines()]
    assert items
    for it in items:
        assert it["messages"][-1]["role"] == "user"
        assert all(m["content"] != it["answer"] for m in it["messages"])  # no answer given away
        assert len(it["followups"]) == 2 and it["followups"][-1].endswith("without other words.")
