"""`eat wiki sft`: chat datasets from entity pairs (round trip, prompts parity, split, determinism, errors)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat.errors import UserError
from eat.prompts import load_prompts
from wiki_data.schema import mention_shard_name, mentions_table, pairs_table, shard_name
from wiki_data.sft import POSITION_BINS, SFTDatasetConfig, build_sft, mix_counts
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
    chunk_size = 256

    def __init__(self, surface_of: dict[str, str]) -> None:
        self.surface_of = surface_of
        self.chats: list[list[dict]] = []

    def generate(self, chats, max_new_tokens, decoding, adapter=True):
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


# ------------------------------------------------------------------------------------------- mentions


def mention(
    lang: str,
    page_id: int,
    sentence_no: int,
    sentence: str,
    surface: str,
    target: tuple[int, str, str, str | None],
    *,
    nth: int = 0,
    match: str = "title",
    n: int = 1,
    type_: str | None = None,
) -> dict:
    """A mentions row: the `nth` occurrence of `surface` in `sentence` links to `target`
    (target_page_id, target_title, en_title, qid)."""
    start = -1
    for _ in range(nth + 1):
        start = sentence.index(surface, start + 1)
    target_page_id, target_title, en_title, qid = target
    return {
        "lang": lang,
        "page_id": page_id,
        "title": f"page {page_id}",
        "section": sentence_no // 2,
        "sentence_no": sentence_no,
        "sentence": sentence,
        "start": start,
        "end": start + len(surface),
        "surface": surface,
        "target_page_id": target_page_id,
        "target_title": target_title,
        "en_title": en_title,
        "qid": qid,
        "type": type_,
        "type_source": "wikidata" if type_ else None,
        "match": match,
        "via_redirect": match == "alias",
        "n_in_sentence": n,
        "dump_date": "20260101",
    }


PARIS_ZH = (101, "巴黎", "Paris", "Q90")
FRANCE_ZH = (150, "法国", "France", "Q142")  # no pairs row here: its type stays unknown
ECB_ZH = (103, "欧洲中央银行", "European Central Bank", "Q8901")
FRANKFURT_ZH = (151, "法兰克福", "Frankfurt", "Q1794")
CURIE_ZH = (104, "玛丽·居里", "Marie Curie", "Q7186")
YANGTZE_ZH = (105, "长江", "Yangtze", "Q5413")
PARIS_JA = (201, "パリ", "Paris", "Q90")
UTOKYO_JA = (202, "東京大学", "The University of Tokyo", "Q7842")
SOSEKI_JA = (203, "夏目漱石", "Natsume Sōseki", "Q160566")
FUJI_JA = (204, "富士山", "Mount Fuji", "Q39231")
TWO_CITIES = "他在巴黎和法兰克福之间往返。"
TWO_CAPITALS = "法国的首都是巴黎。"
MENTION_ROWS = [
    mention("zh", 110, 0, "埃菲尔铁塔位于巴黎的战神广场。", "巴黎", PARIS_ZH),
    mention("zh", 111, 0, TWO_CAPITALS, "法国", FRANCE_ZH, n=2),
    mention("zh", 111, 0, TWO_CAPITALS, "巴黎", PARIS_ZH, n=2),
    mention("zh", 103, 1, "欧洲央行的总部设在法兰克福。", "欧洲央行", ECB_ZH, match="alias", n=2),
    mention("zh", 103, 1, "欧洲央行的总部设在法兰克福。", "法兰克福", FRANKFURT_ZH, n=2, type_="LOC"),
    mention("zh", 112, 2, "1903年，居里获得诺贝尔物理学奖。", "居里", CURIE_ZH, match="differs"),
    mention("zh", 113, 0, "长江流经上海。", "长江", YANGTZE_ZH),
    mention("zh", 114, 3, "巴黎人常说巴黎很美。", "巴黎", PARIS_ZH, nth=1),  # an earlier 巴黎: ambiguous span
    mention("zh", 115, 0, TWO_CITIES, "巴黎", PARIS_ZH, n=2),
    mention("zh", 115, 0, TWO_CITIES, "法兰克福", FRANKFURT_ZH, n=2, type_="LOC"),
    mention("zh", 116, 0, "「长江」一词常指整条河。", "长江", YANGTZE_ZH),  # only a bracket before it
    {**mention("zh", 117, 0, "巴黎是一座城市。", "巴黎", PARIS_ZH), "start": 2, "end": 4},  # broken span
    mention("ja", 210, 0, "東京大学の学生がパリを訪れた。", "東京大学", UTOKYO_JA, n=2),
    mention("ja", 210, 0, "東京大学の学生がパリを訪れた。", "パリ", PARIS_JA, n=2),
    mention("ja", 211, 1, "漱石は東京大学で教えた。", "漱石", SOSEKI_JA, match="alias", n=2),
    mention("ja", 211, 1, "漱石は東京大学で教えた。", "東京大学", UTOKYO_JA, n=2),
    mention("ja", 212, 0, "静岡県から見える富士山は美しい。", "富士山", FUJI_JA),
]
# Usable align rows per language: pairs (surface in sentence, no duplicate) and mentions (span right).
USABLE = {"zh": (5, 11), "ja": (5, 5), "ru": (6, 0)}


@pytest.fixture(scope="module")
def mined_dirs(tmp_path_factory) -> dict[str, Path]:
    """What `eat wiki mine --mentions` leaves: zh and ja folders with pairs and mentions shards side by side,
    a ru folder with pairs only, and a ja folder with the mentions only (no pairs to take types from)."""
    base = tmp_path_factory.mktemp("mined")
    dirs = {name: base / name for name in ("zh", "ja", "ru", "ja-mentions-only")}
    for lang in ("zh", "ja", "ru"):
        dirs[lang].mkdir()
        pq.write_table(
            pairs_table([r for r in FIXTURE_ROWS if r["lang"] == lang]), dirs[lang] / shard_name(0)
        )
    for lang in ("zh", "ja"):
        rows = [r for r in MENTION_ROWS if r["lang"] == lang]
        pq.write_table(mentions_table(rows[:3]), dirs[lang] / mention_shard_name(0))
        pq.write_table(mentions_table(rows[3:]), dirs[lang] / mention_shard_name(1))
    dirs["ja-mentions-only"].mkdir()
    pq.write_table(
        mentions_table([r for r in MENTION_ROWS if r["lang"] == "ja"]),
        dirs["ja-mentions-only"] / mention_shard_name(0),
    )
    return dirs


def build_from(out: Path, pairs: list[Path], mentions: list[Path], *extra: str) -> dict[str, list[dict]]:
    args: list = ["sft", "--out", out]
    for d in pairs:
        args += ["--pairs", d]
    for d in mentions:
        args += ["--mentions", d]
    ok(*args, *extra)
    return {s: [json.loads(x) for x in (out / f"{s}.jsonl").read_text("utf-8").splitlines()] for s in SPLITS}


def build_mixed(mined_dirs, out: Path, *extra: str) -> dict[str, list[dict]]:
    """Pairs of zh, ja and ru; mentions of zh and ja, from the same folders as their pairs."""
    pairs = [mined_dirs[lang] for lang in ("zh", "ja", "ru")]
    return build_from(out, pairs, [mined_dirs["zh"], mined_dirs["ja"]], *extra)


def all_rows(splits: dict[str, list[dict]]) -> list[dict]:
    return splits["train"] + splits["validation"]


def mention_of(row: dict) -> dict:
    """The mentions row an align row with source "mention" was built from."""
    sentence, answer = user_sentence(row), row["messages"][-1]["content"]
    (src,) = [
        m
        for m in MENTION_ROWS
        if m["lang"] == row["lang"]
        and m["en_title"] == row["en_title"]
        and sentence.endswith(m["sentence"])
        and m["surface"] == answer
        and m["sentence"][m["start"] : m["end"]] == answer
    ]
    return src


def test_mention_rows_are_align_chats_like_pairs(mined_dirs, tmp_path):
    prompts = load_prompts()
    splits = build_mixed(mined_dirs, tmp_path / "ds", "--val-fraction", "0.3")
    rows = all_rows(splits)
    mentions = [r for r in rows if r["source"] == "mention"]
    assert {r["task"] for r in mentions} == {"align"}  # mentions give no to_english rows
    assert len(mentions) == sum(n for _, n in USABLE.values())  # the broken span is skipped
    assert sum(r["source"] == "pair" for r in rows) == 2 * sum(n for n, _ in USABLE.values())
    pair_types = {(r["lang"], r["page_id"]): (r["type"], r["aliases"]) for r in FIXTURE_ROWS}
    for row in mentions:
        src = mention_of(row)
        assert row["answer_start"] == src["start"] and user_sentence(row) == src["sentence"]
        assert row["messages"][-1]["content"] == src["surface"]
        # a missing type comes from the target's pairs row of the same folder, with its aliases
        type_, aliases = pair_types.get((src["lang"], src["target_page_id"]), (None, []))
        assert row["type"] == (src["type"] or type_)
        variants = english_variants(src["en_title"], row["type"], aliases, src["lang"])
        asked = [
            prompts.conversation("align", row["lang"], sentence=src["sentence"], phrase=v) for v in variants
        ]
        assert row["messages"][:-1] in asked
    types = {(r["lang"], r["en_title"]): r["type"] for r in mentions}
    assert types[("ja", "The University of Tokyo")] == "ORG"  # filled from the pairs row (infobox)
    assert types[("zh", "European Central Bank")] == "ORG"
    assert types[("zh", "Frankfurt")] == "LOC"  # the mention's own type
    assert types[("zh", "France")] is None  # no pairs row for the target
    card = (tmp_path / "ds" / "README.md").read_text("utf-8")
    assert "mentions: sentence[start:end] is not the surface: 1" in card
    assert "mention types taken from the target's pairs row: 13" in card  # 8 zh + 5 ja rows

    # Without pairs in the mentions folder no type is borrowed, and --pairs is not needed.
    only = build_from(tmp_path / "only", [], [mined_dirs["ja-mentions-only"]], "--val-fraction", "0.3")
    rows = all_rows(only)
    assert len(rows) == USABLE["ja"][1] and {r["source"] for r in rows} == {"mention"}
    assert all(r["type"] is None for r in rows)


def test_mention_fraction_mixes_each_language(mined_dirs, tmp_path):
    for fraction, expected in (
        ("0.5", {"zh": (5, 5), "ja": (5, 5)}),
        ("0.25", {"zh": (5, 2), "ja": (5, 2)}),  # pairs scarcer: all kept, mentions round(P*F/(1-F))
        ("0.8", {"zh": (3, 11), "ja": (1, 5)}),  # mentions scarcer: all kept, pairs round(M*(1-F)/F)
        ("0", {"zh": (5, 0), "ja": (5, 0)}),
        ("1", {"zh": (0, 11), "ja": (0, 5)}),
    ):
        out = tmp_path / f"f{fraction}"
        splits = build_mixed(mined_dirs, out, "--mention-fraction", fraction, "--val-fraction", "0.3")
        rows = all_rows(splits)
        align = Counter((r["lang"], r["source"]) for r in rows if r["task"] == "align")
        for lang, (n_pairs, n_mentions) in expected.items():
            assert (align[(lang, "pair")], align[(lang, "mention")]) == (n_pairs, n_mentions), fraction
        assert (align[("ru", "pair")], align[("ru", "mention")]) == (6, 0)  # one source only: kept whole
        # to_english rows (pairs only) are not part of the mix
        assert sum(r["task"] == "to_english" for r in rows) == sum(n for n, _ in USABLE.values())
        card = (out / "README.md").read_text("utf-8")
        zh_pairs, zh_mentions = expected["zh"]
        assert f"| zh | 5 | 11 | {zh_pairs} | {zh_mentions} |" in card

    a = build_mixed(mined_dirs, tmp_path / "a", "--mention-fraction", "0.5", "--seed", "4")
    pairs = [mined_dirs[lang] for lang in ("ru", "ja", "zh")]
    b = build_from(
        tmp_path / "b",
        pairs,
        [mined_dirs["ja"], mined_dirs["zh"]],
        "--mention-fraction",
        "0.5",
        "--seed",
        "4",
    )
    assert a == b  # deterministic for a seed, whatever the folder order
    others = [
        build_mixed(mined_dirs, tmp_path / f"s{s}", "--mention-fraction", "0.5", "--seed", str(s))
        for s in (5, 6)
    ]
    assert any(kept_mentions(o) != kept_mentions(a) for o in others)  # the seed picks the rows


def kept_mentions(splits: dict[str, list[dict]]) -> set[tuple[str, str]]:
    return {
        (user_sentence(r), r["messages"][-1]["content"]) for r in all_rows(splits) if r["source"] == "mention"
    }


def test_mix_counts_rule():
    assert mix_counts(5, 11, 0.5) == (5, 5)
    assert mix_counts(3, 3, 0.5) == (3, 3)
    assert mix_counts(2, 10, 0.2) == (2, 1)  # 2 * 0.2 / 0.8 = 0.5 rounds up (0.2 read as 1/5)
    assert mix_counts(10, 1, 0.1) == (9, 1)
    assert mix_counts(0, 7, 0.5) == (0, 0)  # no pairs: nothing to match (a language keeps whole elsewhere)
    for n_pairs in range(12):
        for n_mentions in range(12):
            for fraction in (0.1, 0.3, 0.5, 0.7, 0.9):
                p, m = mix_counts(n_pairs, n_mentions, fraction)
                assert p <= n_pairs and m <= n_mentions
                assert p == n_pairs or m == n_mentions  # the scarcer source is kept whole
                if p + m:  # and the share is as close to F as whole rows allow
                    assert abs(m / (p + m) - fraction) <= max(0.5 / (p + m), 1e-9) + 1e-9


def entity_of(row: dict) -> str:
    return row["qid"] or row["en_title"]


def test_split_by_entity_across_sources(mined_dirs, tmp_path):
    seen_mentions = set()
    for seed in range(5):
        splits = build_mixed(mined_dirs, tmp_path / f"ds{seed}", "--val-fraction", "0.4", "--seed", str(seed))
        train, val = ({entity_of(r) for r in splits[s]} for s in SPLITS)
        assert train and val and not train & val
        for split in SPLITS:
            seen_mentions |= {(split, r["lang"]) for r in splits[split] if r["source"] == "mention"}
        paris = {(s, r["source"]) for s in SPLITS for r in splits[s] if r["qid"] == "Q90"}
        assert len({s for s, _ in paris}) == 1 and {src for _, src in paris} == {"pair", "mention"}
        items = [
            json.loads(x)
            for x in (tmp_path / f"ds{seed}" / "align_test_mentions.jsonl").read_text("utf-8").splitlines()
        ]
        assert all((it["qid"] or it["en_title"]) in val for it in items)
    assert {s for s, _ in seen_mentions} == set(SPLITS)


def align_bins(splits: dict[str, list[dict]]) -> dict[tuple[str, str], list[int]]:
    """Align rows per split and language in the card's answer-position bins."""
    out: dict[tuple[str, str], list[int]] = {}
    for split, rows in splits.items():
        for r in rows:
            if r["task"] == "align":
                rel = r["answer_start"] / len(user_sentence(r))
                out.setdefault((split, r["lang"]), [0] * POSITION_BINS)[min(int(rel * POSITION_BINS), 4)] += 1
    return out


def test_balance_positions_evens_the_bins(mined_dirs, tmp_path):
    common = ("--val-fraction", "0.3", "--shift-fraction", "0.5", "--seed", "2")
    before_splits = build_mixed(mined_dirs, tmp_path / "before", *common)
    splits = build_mixed(mined_dirs, tmp_path / "after", *common, "--balance-positions")
    before, after = align_bins(before_splits), align_bins(splits)
    assert any(len({n for n in bins if n}) > 1 for bins in before.values())  # uneven to start with
    assert set(after) == set(before)
    dropped = 0
    for key, bins in before.items():
        per_bin = min(n for n in bins if n)
        # every non-empty bin keeps exactly the smallest bin's count; empty bins stay empty
        assert after[key] == [per_bin if n else 0 for n in bins], key
        dropped += sum(bins) - sum(after[key])
    assert dropped > 0
    assert [r for r in all_rows(splits) if r["task"] == "to_english"] == [
        r for r in all_rows(before_splits) if r["task"] == "to_english"
    ]
    card = (tmp_path / "after" / "README.md").read_text("utf-8")
    assert "### Position balancing (`--balance-positions`)" in card
    zh = before[("train", "zh")]
    per_bin = min(n for n in zh if n)
    assert (
        f"| train | zh | {' / '.join(map(str, zh))} | {per_bin} | {sum(zh) - sum(after[('train', 'zh')])} |"
        in card
    )
    # the kept rows are the same for the same seed
    assert build_mixed(mined_dirs, tmp_path / "again", *common, "--balance-positions") == splits


def test_card_shows_positions_per_source(mined_dirs, tmp_path):
    splits = build_mixed(mined_dirs, tmp_path / "ds", "--val-fraction", "0.3")
    card = (tmp_path / "ds" / "README.md").read_text("utf-8")
    header = (
        "| align answers | train / pairs | train / mentions | validation / pairs | validation / mentions |"
    )
    assert header in card
    table = card[card.index(header) :].split("\n\n", 1)[0].splitlines()
    cols = [(s, src) for s in SPLITS for src in ("pair", "mention")]
    align = {c: [r for r in splits[c[0]] if r["task"] == "align" and r["source"] == c[1]] for c in cols}

    def share(rows, hit) -> str:
        return f"{sum(map(hit, rows)) / len(rows):.0%}" if rows else "-"

    assert table[2] == "| rows | " + " | ".join(str(len(align[c])) for c in cols) + " |"
    at0 = [share(align[c], lambda r: r["answer_start"] == 0) for c in cols]
    assert "| answer at char 0 | " + " | ".join(at0) + " |" in table
    assert at0[0] == "100%" and at0[1] != "100%"  # pairs carry the shortcut, mentions do not
    assert "| source | train | validation | total |" in card
    n_mentions = sum(r["source"] == "mention" for r in all_rows(splits))
    assert f"| mention | {sum(r['source'] == 'mention' for r in splits['train'])} | " in card
    assert f" | {n_mentions} |\n" in card


def test_mention_test_items_and_flags(mined_dirs, tmp_path):
    from evaluation.align_eval import first_phrase_answers, load_items, score_answers

    prompts = load_prompts()
    out = tmp_path / "ds"
    mix = ("--mention-fraction", "0.25")  # the mix leaves mentions out of the splits, not out of the test
    splits = build_mixed(mined_dirs, out, "--val-fraction", "0.9", "--shift-fraction", "1", *mix)
    train_entities = {entity_of(r) for r in splits["train"]}
    val_entities = {entity_of(r) for r in splits["validation"]}
    val_mentions = [r for r in splits["validation"] if r["source"] == "mention"]
    items = [json.loads(x) for x in (out / "align_test_mentions.jsonl").read_text("utf-8").splitlines()]
    assert items and all(it["source"] == "mention" and not it["shifted"] for it in items)
    by_key = {(it["lang"], it["sentence"], it["answer"]): it for it in items}
    assert len(by_key) == len(items)
    originals = {(m["lang"], m["sentence"], m["surface"]): m for m in MENTION_ROWS}
    for it in items:
        src = originals[(it["lang"], it["sentence"], it["answer"])]  # its own sentence, never shifted
        assert entity_of(it) not in train_entities
        assert it["answer_start"] == src["start"] == it["sentence"].find(it["answer"])
        assert it["at_start"] == (not any(c.isalnum() for c in it["sentence"][: it["answer_start"]]))
        assert it["surface_differs"] == (src["match"] != "title") and it["match"] == src["match"]
        assert it["multi"] == (src["n_in_sentence"] >= 2) and it["n_in_sentence"] == src["n_in_sentence"]
        assert it["messages"] == prompts.conversation(
            "align", it["lang"], sentence=it["sentence"], phrase=it["phrase"]
        )
    # every usable mention of a validation entity is an item, except the one whose answer also occurs earlier
    ambiguous = ("zh", "巴黎人常说巴黎很美。", "巴黎")
    usable = [m for m in MENTION_ROWS if m["sentence"][m["start"] : m["end"]] == m["surface"]]
    wanted = {(m["lang"], m["sentence"], m["surface"]) for m in usable if entity_of(m) in val_entities}
    assert ambiguous in wanted and set(by_key) == wanted - {ambiguous}
    assert len(items) > len(val_mentions)
    flags = {k[1:]: (it["at_start"], it["surface_differs"], it["multi"]) for k, it in by_key.items()}
    expected = {
        ("1903年，居里获得诺贝尔物理学奖。", "居里"): (False, True, False),
        ("「长江」一词常指整条河。", "长江"): (True, False, False),
        (TWO_CAPITALS, "巴黎"): (False, False, True),
        ("漱石は東京大学で教えた。", "漱石"): (True, True, True),
    }
    present = {k: v for k, v in expected.items() if k in flags}
    assert len(present) >= 3 and all(flags[k] == v for k, v in present.items())
    card = (out / "README.md").read_text("utf-8")
    n = len(items)
    not_start = sum(not it["at_start"] for it in items)
    differs = sum(it["surface_differs"] for it in items)
    multi = sum(it["multi"] for it in items)
    assert f"| all | {n} | {not_start} | {differs} | {multi} |" in card
    assert "## Mention align test (`align_test_mentions.jsonl`)" in card

    # align_eval reads the file; the first-phrase rule misses every anchor that is not at the start
    loaded = load_items(out / "align_test_mentions.jsonl")
    report = score_answers(loaded, first_phrase_answers(loaded), "first_phrase")
    scores = {(s.lang, s.slice): s for s in report.scores()}
    assert scores[("all", "mentions")].n == n
    assert scores[("all", "mentions: not at start")].n == not_start > 0
    assert (
        scores[("all", "mentions: not at start")].exact
        == scores[("all", "mentions: not at start")].snapped
        == 0
    )


def test_mention_inputs_errors(mined_dirs, tmp_path):
    out = tmp_path / "ds"
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_user_error(run("sft", "--mentions", empty, "--out", out), str(empty), "no mentions-*.parquet")
    expect_user_error(run("sft", "--mentions", tmp_path / "nope", "--out", out), "nope", "not found")
    expect_user_error(run("sft", "--out", out), "give --pairs, --mentions or both")
    expect_user_error(
        run("sft", "--pairs", mined_dirs["zh"], "--out", out, "--mention-fraction", "0.5"),
        "--mention-fraction needs both --pairs and --mentions",
    )
    expect_user_error(
        run(
            "sft",
            "--pairs",
            mined_dirs["zh"],
            "--mentions",
            mined_dirs["zh"],
            "--out",
            out,
            "--mention-fraction",
            "2",
        ),
        "--mention-fraction",
    )
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    pq.write_table(pa.table({"lang": ["zh"], "surface": ["巴黎"]}), wrong / mention_shard_name(0))
    expect_user_error(
        run("sft", "--mentions", wrong, "--out", out), str(wrong / mention_shard_name(0)), "missing column"
    )
    hollow = tmp_path / "hollow"
    hollow.mkdir()
    pq.write_table(mentions_table([]), hollow / mention_shard_name(0))
    expect_user_error(run("sft", "--mentions", hollow, "--out", out), str(hollow), "no mentions in")
    expect_user_error(
        run(
            "sft",
            "--pairs",
            mined_dirs["ru"],
            "--mentions",
            mined_dirs["zh"],
            "--out",
            out,
            "--languages",
            "ko",
        ),
        "no pairs or mentions for --languages ko",
        "ru, zh",
    )
    assert not out.exists()
    # --languages keeps a language that only one source has
    splits = build_from(tmp_path / "zh", [mined_dirs["ru"]], [mined_dirs["zh"]], "--languages", "zh")
    assert {(r["lang"], r["source"]) for r in all_rows(splits)} == {("zh", "mention")}


def test_val_fraction_zero_gives_a_train_only_dataset_that_training_accepts(tmp_path, tiny_lm):
    """--val-fraction 0: no validation split; `eat train` with the default recipe trains without evaluating."""
    from datasets import load_from_disk

    from eat.recipes import load_recipe
    from tests.wiki_data.helpers.pairs import write_city_pairs
    from training.sft import run_sft

    pairs = write_city_pairs(tmp_path / "pairs", 6)
    out = tmp_path / "sft"
    build_sft(SFTDatasetConfig(pairs=[pairs], out=out, tasks=["align"], val_fraction=0.0))
    assert list(load_from_disk(str(out))) == ["train"]
    recipe = load_recipe(
        "tiny_sft_cpu",
        [f"model.name_or_path={tiny_lm}", f"data.path={out}", f"training.output_dir={tmp_path / 'run'}",
         "training.max_steps=1", "training.save_steps=1", "data.max_length=512"],
        kinds=["sft"],
    )  # fmt: skip
    assert recipe.data.eval_split == "validation"  # the default, which the dataset does not have
    metrics = run_sft(recipe)
    assert metrics["global_step"] == 1 and "eval_loss" not in metrics


def test_rows_outside_the_schema_never_become_chats(tmp_path):
    from wiki_data.sft import pair_source

    base = {"lang": "ja", "page_id": 1, "qid": None, "en_title": "Tokyo", "type": "LOC", "aliases": [],
            "surface": "東京", "sentence": "東京は都市。"}  # fmt: skip
    assert not isinstance(pair_source(base), str)
    assert pair_source(base | {"type": "CITY"}) == "entity type outside PER/LOC/ORG/MISC"
    assert pair_source(base | {"lang": "日本"}) == "language code outside the schema"
    assert pair_source(base | {"en_title": " "}) == "no English title"
