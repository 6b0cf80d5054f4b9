"""Fixtures for training tests: a tiny align-chat DatasetDict and a tiny CoNLL file (our own text)."""

from __future__ import annotations

from pathlib import Path

import pytest

# (lang, sentence, English name, phrase in the sentence): our own sentences in several scripts.
ALIGN_ROWS = [
    ("ja", "東京都は日本の首都である。", "Tokyo", "東京都"),
    ("ja", "京都大学は京都市にある。", "Kyoto University", "京都大学"),
    ("zh", "北京大学位于中国北京市海淀区。", "Peking University", "北京大学"),
    ("zh", "李白是唐代诗人。", "Li Bai", "李白"),
    ("ko", "서울특별시는 대한민국의 수도이다.", "Seoul", "서울특별시"),
    ("ko", "삼성전자는 수원에 본사를 두고 있다.", "Samsung Electronics", "삼성전자"),
    ("ru", "Москва — столица России.", "Moscow", "Москва"),
    ("ru", "Московский университет основан в 1755 году.", "Moscow University", "Московский университет"),
    ("ar", "القاهرة هي عاصمة مصر.", "Cairo", "القاهرة"),
    ("hi", "नई दिल्ली भारत की राजधानी है।", "New Delhi", "नई दिल्ली"),
    ("ja", "ソニーの本社は東京にある。", "Sony", "ソニー"),
    ("zh", "欧洲联盟总部位于布鲁塞尔。", "Brussels", "布鲁塞尔"),
]


def align_chats(n_train: int = 12, n_val: int = 4):
    """Align chats built with eat.prompts (the same function inference uses)."""
    from eat.prompts import load_prompts

    prompts = load_prompts()
    rows = []
    for i in range(n_train + n_val):
        lang, sentence, name, phrase = ALIGN_ROWS[i % len(ALIGN_ROWS)]
        messages = prompts.conversation("align", lang, replies=[phrase], sentence=sentence, phrase=name)
        rows.append({"messages": messages, "task": "align", "lang": lang, "qid": f"Q{i}", "en_title": name})
    return rows[:n_train], rows[n_train:]


def write_sft_dataset(path: Path, n_train: int = 12, n_val: int = 4) -> Path:
    """A DatasetDict like `eat wiki sft` writes (train/validation; messages, task, lang, qid, en_title)."""
    from datasets import Dataset, DatasetDict

    train, val = align_chats(n_train, n_val)
    DatasetDict({"train": Dataset.from_list(train), "validation": Dataset.from_list(val)}).save_to_disk(
        str(path)
    )
    return path


def make_recipe(model, data, out, *overrides: str):
    """A fast tiny SFT recipe (6 steps, constant lr, no eval) with dotted overrides."""
    from eat.config import apply_overrides, validate
    from training.config import SFTRecipe

    raw = {
        "kind": "sft",
        "model": {"name_or_path": str(model)},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "data": {"path": str(data), "max_length": 512, "eval_split": None},
        "training": {
            "output_dir": str(out),
            "max_steps": 6,
            "per_device_train_batch_size": 4,
            "learning_rate": 1.0e-2,
            "warmup_ratio": 0.0,
            "lr_scheduler_type": "constant",
            "logging_steps": 1,
            "save_steps": 100,
            "gradient_checkpointing": False,
            "report_to": ["none"],
        },
    }
    return validate(SFTRecipe, apply_overrides(raw, overrides), source="test")


CONLL = """\
-DOCSTART- -X- -X- O

Marie NNP B-NP B-PER
Curie NNP I-NP I-PER
worked VBD B-VP O
in IN B-PP O
Paris NNP B-NP B-LOC
. . O O

Apple NNP B-NP B-ORG
, , O I-ORG
Inc. NNP B-NP I-ORG
opened VBD B-VP O
an DT B-NP O
office NN I-NP O
in IN B-PP O
Tokyo NNP B-NP B-LOC
. . O O

The DT B-NP O
weather NN I-NP O
was VBD B-VP O
fine JJ B-ADJP O
. . O O

Angela NNP B-NP B-PER
Merkel NNP I-NP I-PER
visited VBD B-VP O
Siemens NNP B-NP B-ORG
in IN B-PP O
Munich NNP B-NP B-LOC
. . O O
"""


@pytest.fixture(scope="session")
def sft_dataset(tmp_path_factory) -> Path:
    return write_sft_dataset(tmp_path_factory.mktemp("data") / "sft")


@pytest.fixture(scope="session")
def conll_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.conll"
    path.write_text(CONLL, encoding="utf-8")
    return path
