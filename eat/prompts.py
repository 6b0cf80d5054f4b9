"""Prompt templates shared by dataset building (wiki_data) and inference (evaluation).

One YAML file holds every task's chat: a `preamble` (fixed messages) and `turns` (user messages sent one
at a time; the model's reply follows each). Training data and the inference pipeline both build chats
with `PromptSet.conversation`, so the wording a model is trained on is the wording it is asked with.

Placeholders: {language} {entity_types} {entity_types_bracketed} {sentence} {phrase} {name}, and the
worked example of the sentence's language (`examples`): {example_text} {example_names} {example_english}
{example_tagged} {example_phrase} {example_answer}. Small models (0.5B) follow a format they were shown
far better than one they were told, so our prompts show one example in the preamble; it costs little at
inference, where a batch's shared opening is computed once.
The authors' prompts (`../shared/data/eat-official/prompts.yaml`) load with the same schema; tasks a file
does not define fall back to our defaults.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from eat import languages
from eat.config import StrictModel, read_yaml, validate
from eat.errors import UserError
from eat.languages import NAMES as LANGUAGE_NAMES  # noqa: F401 (callers in evaluation/ still import it from here)

TYPE_NAMES = {"PER": "PERSON", "LOC": "LOCATION", "ORG": "ORGANIZATION", "MISC": "MISCELLANEOUS"}
TASKS = ("translate", "translate_plain", "align", "to_english", "direct")
EXAMPLE_PLACEHOLDERS = {
    "example_text",
    "example_names",
    "example_english",
    "example_tagged",
    "example_phrase",
    "example_answer",
}
PLACEHOLDERS = {"language", "entity_types", "entity_types_bracketed", "sentence", "phrase", "name"}
PLACEHOLDERS |= EXAMPLE_PLACEHOLDERS


language_name = languages.name  # the name prompts fill `{language}` with


class Message(StrictModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatTemplate(StrictModel):
    preamble: list[Message] = Field(default_factory=list, description="Messages sent before the first turn.")
    turns: list[str] = Field(min_length=1, description="User turns, each answered by the model in order.")
    max_new_tokens: list[int] | None = Field(
        None,
        description="Most tokens of each turn's reply (capped by the run's max_new_tokens): a short final "
        "answer is not budgeted like an analysis turn. Default: the run's max_new_tokens for every turn.",
    )
    answer_after: str | None = Field(
        None,
        description="The last reply holds the answer after the last line starting with this label "
        "(e.g. 'English:' after a list of names); without the label the whole reply is the answer.",
    )

    @field_validator("max_new_tokens")
    @classmethod
    def _positive(cls, limits: list[int] | None) -> list[int] | None:
        if limits is not None and any(n < 1 for n in limits):
            raise ValueError("every turn's max_new_tokens must be at least 1")
        return limits

    def turn_budget(self, turn: int, cap: int) -> int:
        """Most new tokens for reply `turn` (0-based), at most `cap`."""
        if not self.max_new_tokens:
            return cap
        return min(cap, self.max_new_tokens[min(turn, len(self.max_new_tokens) - 1)])

    def answer(self, reply: str) -> str:
        """The answer part of the last reply: after the last `answer_after` label (markdown emphasis and
        case tolerated, the next line when the label stands alone), else the whole reply."""
        if not self.answer_after:
            return reply.strip()
        label = re.escape(self.answer_after.strip().rstrip(":").strip())
        pattern = re.compile(rf"^[\s*_#>-]*{label}[\s*_]*[:：][\s*_]*(.*)$", re.I)
        lines = reply.strip().splitlines()
        for i in range(len(lines) - 1, -1, -1):
            m = pattern.match(lines[i])
            if m:
                rest = [m.group(1).strip(), *(x.strip() for x in lines[i + 1 :])]
                return next((x for x in rest if x), "")
        return reply.strip()

    @field_validator("turns")
    @classmethod
    def _known_placeholders(cls, turns: list[str]) -> list[str]:
        for turn in turns:
            for _, name, _, _ in string.Formatter().parse(turn):
                if name and name not in PLACEHOLDERS:
                    raise ValueError(
                        f"unknown placeholder {{{name}}}; known: {', '.join(sorted(PLACEHOLDERS))}"
                    )
        return turns


class ExampleName(StrictModel):
    type: str = Field(description="PERSON, LOCATION or ORGANIZATION.")
    source: str = Field(description="The name as the example text writes it.")
    english: str = Field(description="Its usual English name.")


class Example(StrictModel):
    """One worked example in a language: a sentence, its names and its English translation."""

    text: str
    english: str
    names: list[ExampleName] = Field(min_length=1)
    ask: int = Field(0, ge=0, description="Which name the alignment example asks for (index into names).")

    def variables(self) -> dict[str, str]:
        asked = self.names[min(self.ask, len(self.names) - 1)]
        return {
            "example_text": self.text,
            "example_names": "; ".join(f"{n.source} = {n.english}" for n in self.names),
            "example_english": self.english,
            "example_tagged": "\n".join(f"({n.type}, {n.source})" for n in self.names),
            "example_phrase": asked.english,
            "example_answer": asked.source,
        }


class PromptSet(StrictModel):
    """A set of chat templates, one per pipeline task."""

    source: str | None = Field(None, description="Where the wording comes from (free text).")
    entity_types: list[str] = Field(default_factory=lambda: ["PERSON", "LOCATION", "ORGANIZATION"])
    translate: ChatTemplate | None = Field(None, description="Stage 1: entity-aware translation to English.")
    translate_plain: ChatTemplate | None = Field(None, description="Stage 1 without entity hints.")
    align: ChatTemplate | None = Field(None, description="Stage 3: which phrase of the sentence is {phrase}?")
    to_english: ChatTemplate | None = Field(None, description="Target-language name -> English name.")
    direct: ChatTemplate | None = Field(None, description="Baseline: the LLM tags the source sentence.")
    english_ner_instruction: str | None = Field(None, description="The LLM as English NER tagger.")
    examples: dict[str, Example] = Field(
        default_factory=dict,
        description="Worked example per language code for the {example_*} placeholders; a language without "
        "one uses the first.",
    )
    generation: Any = Field(None, description="Notes on decoding settings (informational).")

    @property
    def path(self) -> str:
        return self.source or "prompts"

    def template(self, task: str) -> ChatTemplate:
        tpl = getattr(self, task, None) if task in TASKS else None
        if tpl is None:
            raise UserError(f"prompt set {self.path!r} has no template for task {task!r}")
        return tpl

    def variables(self, lang: str, **values: str) -> dict[str, str]:
        types = self.entity_types
        base = lang.split("-")[0].lower()
        example = self.examples.get(base) or next(iter(self.examples.values()), None)
        return {
            "language": language_name(lang),
            "entity_types": ", ".join(types),
            "entity_types_bracketed": ", ".join(f"[{t}]" for t in types),
            **(example.variables() if example else {}),
            **values,
        }

    def conversation(
        self, task: str, lang: str, replies: list[str] | None = None, **values: str
    ) -> list[dict[str, str]]:
        """The chat for `task` after `len(replies)` model replies.

        With fewer replies than turns, the chat ends with the next user turn (what inference sends);
        with one reply per turn it is a complete training conversation.
        """
        tpl = self.template(task)
        replies = replies or []
        if len(replies) > len(tpl.turns):
            raise ValueError(f"task {task!r} has {len(tpl.turns)} turns, got {len(replies)} replies")
        variables = self.variables(lang, **values)
        chat = [{"role": m.role, "content": _fill(m.content, variables)} for m in tpl.preamble]
        for i, turn in enumerate(tpl.turns):
            chat.append({"role": "user", "content": _fill(turn, variables)})
            if i >= len(replies):
                break
            chat.append({"role": "assistant", "content": replies[i]})
        return chat

    def num_turns(self, task: str) -> int:
        return len(self.template(task).turns)


def _fill(text: str, variables: dict[str, str]) -> str:
    try:
        return text.format_map(variables)
    except KeyError as exc:
        raise UserError(f"prompt placeholder {{{exc.args[0]}}} has no value here") from None


DEFAULT_PROMPTS = "default"


def load_prompts(path: str | Path | None = None) -> PromptSet:
    """Our default prompts, or a file; tasks missing from a file are taken from the defaults."""
    default_text = resources.files("eat").joinpath("data/prompts.yaml")
    with resources.as_file(default_text) as default_path:
        defaults = read_yaml(default_path)
    if path is None or str(path) == DEFAULT_PROMPTS:
        return validate(PromptSet, defaults, source=str(default_path))
    data = read_yaml(path)
    data.setdefault("source", str(path))
    for task in (*TASKS, "english_ner_instruction", "examples"):
        data.setdefault(task, defaults.get(task))
    return validate(PromptSet, data, source=str(path))
