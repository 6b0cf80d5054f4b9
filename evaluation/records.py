"""The rows of an eval run's predictions.jsonl, typed: the row (`PredictionRow`), what each stage said about
its sentence (`Trace`), and how each answer was placed in it (`Alignment`).

The pipeline writes rows through `write_predictions`; `eat score`, `eat bench` and the demo report read them
through `read_predictions`, so a renamed field is one edit here rather than a reader silently counting
nothing. The line format is the one runs have always written, so every earlier run folder loads: a field a
mode does not produce is left out of the line (direct mode has no translation; `replies`, `token_aligned`
and `dropped` appear only when they say something), and keys this module does not know are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_serializer

from eat.errors import UserError
from eat.io import write_jsonl
from evaluation.entities import Entity, Sentence


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Fields left out of the JSON line while None or False (absent in the rows as written so far).
    optional_keys: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler) -> dict:
        data = handler(self)
        for key in self.optional_keys:
            if data.get(key) is None or data.get(key) is False:
                data.pop(key, None)
        return data


class Failure(_Record):
    """Why a sentence produced nothing past a stage; the run goes on."""

    stage: int | str  # 1 (translation), 2 (English NER) or "direct"
    reason: str | None = None


class Span(_Record):
    """Where an answer landed in the sentence (character offsets, end exclusive)."""

    start: int
    end: int
    text: str


class EnglishEntity(_Record):
    """One entity stage 2 found in the translation (type already mapped to the test set's)."""

    type: str
    text: str


class Alignment(_Record):
    """One English entity's way back into the sentence (direct mode: one entity of the model's answer): the
    answer, how stage 4 snapped it (`method`, `candidate`, `score`, `reason`) and the span it kept."""

    optional_keys: ClassVar[frozenset[str]] = frozenset({"replies", "token_aligned", "dropped"})

    english: str | None = None  # None in direct mode
    type: str = ""
    answer: str = ""
    replies: list[str] | None = None  # the align chat's replies (EAT mode)
    method: str = "none"
    candidate: str = ""
    score: float = 0.0
    reason: str | None = None
    snapped: Span | None = None  # None: it snapped nowhere
    token_aligned: bool = False  # widened to the test file's token boundaries
    dropped: bool = False  # snapped onto an entity placed earlier, so not predicted

    @property
    def failed(self) -> bool:
        """It gave no entity: it snapped nowhere, or was dropped as an overlap."""
        return self.snapped is None or self.dropped


class Trace(_Record):
    """What each stage said about one sentence. EAT mode fills the translation, English entities and raw
    English NER answer; direct mode the direct replies; both the alignments and a failure, if any."""

    optional_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "translation",
            "translate_replies",
            "direct_replies",
            "english_entities",
            "english_ner_raw",
            "failure",
        }
    )

    translation: str | None = None  # "" when stage 1 failed
    translate_replies: list[str] | None = None
    direct_replies: list[str] | None = None
    english_entities: list[EnglishEntity] | None = None
    alignments: list[Alignment] = []
    english_ner_raw: str | None = None
    failure: Failure | None = None

    @property
    def has_english_stage(self) -> bool:
        """An EAT-mode trace (direct mode has no translation and no English NER)."""
        return self.translation is not None

    @property
    def untranslated(self) -> bool:
        """Stage 1 gave nothing to tag."""
        stage1_failed = self.failure is not None and self.failure.stage == 1
        return self.has_english_stage and (stage1_failed or not (self.translation or "").strip())


class PredictionRow(_Record):
    """One line of predictions.jsonl: the sentence, its gold and predicted spans, and its trace (None for
    rows from elsewhere, e.g. a score-only run)."""

    id: str | None = None
    text: str
    lang: str | None = None
    gold: list[Entity] = []
    pred: list[Entity] = []
    trace: Trace | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return value if value is None else str(value)

    @classmethod
    def of(cls, sentence: Sentence, pred: list[Entity], trace: Trace) -> PredictionRow:
        return cls(
            id=sentence.id, text=sentence.text, lang=sentence.lang, gold=sentence.gold, pred=pred, trace=trace
        )


def write_predictions(path: str | Path, rows: Iterable[PredictionRow]) -> int:
    """predictions.jsonl, atomically; returns the number of rows."""
    return write_jsonl(path, (row.model_dump(mode="json") for row in rows))


def read_predictions(path: str | Path) -> list[PredictionRow]:
    """Rows of an eval run's predictions.jsonl; a line that is not one is refused with its line number."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"invalid JSON line: {exc.msg}", path=path, line=lineno) from None
            if not isinstance(data, dict) or not isinstance(data.get("text"), str):
                raise UserError("bad prediction row: expected an object with `text`", path=path, line=lineno)
            try:
                rows.append(PredictionRow.model_validate(data))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise UserError(
                    f"bad prediction row: {where}: {first['msg']}", path=path, line=lineno
                ) from None
    return rows


def looks_like_predictions(path: Path) -> bool:
    """A JSONL file whose first row has `pred`: an eval run's predictions.jsonl rather than span data."""
    if path.suffix.lower() != ".jsonl":
        return False
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        return False
                    return isinstance(row, dict) and "pred" in row
    except UnicodeDecodeError:
        return False  # not ours; the span reader names the undecodable byte
    return False
