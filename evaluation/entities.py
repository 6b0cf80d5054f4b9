"""The small types every evaluation stage passes around: sentences with gold spans, and entity spans.

Spans are character offsets into `Sentence.text` (end exclusive). Token-based test files keep their tokens
and each token's character span, so span predictions convert back to one tag per token for token metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Entity:
    start: int
    end: int
    type: str
    text: str = ""

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "type": self.type, "text": self.text}

    @classmethod
    def from_dict(cls, d: dict) -> Entity:
        return cls(int(d["start"]), int(d["end"]), str(d["type"]), str(d.get("text", "")))


@dataclass
class Sentence:
    id: str
    text: str
    lang: str
    gold: list[Entity] = field(default_factory=list)
    tokens: list[str] | None = None
    token_spans: list[tuple[int, int]] | None = None  # char span of each token in `text`
    tags: list[str] | None = None  # the file's gold tags (after the label map), for seqeval-exact scoring

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "text": self.text,
            "lang": self.lang,
            "gold": [e.to_dict() for e in self.gold],
            "tokens": self.tokens,
            "token_spans": [list(s) for s in self.token_spans] if self.token_spans is not None else None,
        } | ({"tags": self.tags} if self.tags is not None else {})

    @classmethod
    def from_dict(cls, d: dict) -> Sentence:
        spans = d.get("token_spans")
        return cls(
            id=str(d["id"]),
            text=d["text"],
            lang=d["lang"],
            gold=[Entity.from_dict(e) for e in d.get("gold", [])],
            tokens=d.get("tokens"),
            token_spans=[tuple(s) for s in spans] if spans is not None else None,
            tags=d.get("tags"),
        )
