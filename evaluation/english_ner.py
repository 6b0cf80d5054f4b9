"""Stage 2: tag the English translation. Three taggers, one output shape: a list of (TYPE, entity text).

- a seq2seq tagger (our NER tagger recipe: text in, "(TYPE, entity)" lines out),
- any Hugging Face token-classification model (aggregated word groups),
- the LLM itself, asked with the prompt set's `english_ner_instruction` (run by the pipeline through the
  chat backend, so it is batched and cached like the other LLM stages).

`parse_entities` reads "(TYPE, entity)" answers and keeps commas inside names ("(ORG, Apple, Inc.)"), and
also accepts a JSON list of {type, text} objects.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from eat.errors import UserError

TYPE_MAP = {
    "PER": "PER",
    "PERSON": "PER",
    "PEOPLE": "PER",
    "PERS": "PER",
    "LOC": "LOC",
    "LOCATION": "LOC",
    "GPE": "LOC",
    "PLACE": "LOC",
    "ORG": "ORG",
    "ORGANIZATION": "ORG",
    "ORGANISATION": "ORG",
    "MISC": "MISC",
    "MISCELLANEOUS": "MISC",
}
NONE_TYPES = {"NONE", "O", "NULL", "N/A"}

# "(" TYPE ("," | ":") NAME ")" where the closing parenthesis is the one that ends the item: followed by the
# end of the text, a new line, a separator or the next "(". Commas and parentheses inside NAME survive.
_ITEM = re.compile(
    r"\(\s*([A-Za-z][A-Za-z _\-]*?)\s*[,:，]\s*(.+?)\s*\)(?=\s*(?:$|\n|[,;，；]|\(|\d+[.)]\s|[-*•]\s))",
    re.M,
)


def map_type(label: str) -> str | None:
    """PERSON -> PER, B-LOC -> LOC; None for labels outside PER/LOC/ORG/MISC."""
    label = label.strip().upper().replace(" ", "_")
    if len(label) > 2 and label[1] == "-" and label[0] in "BIESLU":
        label = label[2:]
    return TYPE_MAP.get(label)


def _strip_name(name: str) -> str:
    return name.strip().strip("\"'“”‘’`[]").strip()


def parse_entities(text: str) -> list[tuple[str, str]]:
    """Entities in a tagger or LLM answer, in order; raises ValueError when nothing can be read.

    An explicit empty answer ("", "(NONE)", "[]", "None") is a valid empty list.
    """
    stripped = text.strip()
    if not stripped or stripped.strip("()[]{}. ").upper() in NONE_TYPES | {"NO ENTITIES"}:
        return []
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
        if data is not None:
            return _from_json(data)
    out: list[tuple[str, str]] = []
    found = False
    for m in _ITEM.finditer(stripped):
        found = True
        label, name = m.group(1), _strip_name(m.group(2))
        mapped = map_type(label)
        if mapped is None and "," in name:  # reversed order: (Paris, LOCATION)
            head, _, tail = m.group(0)[1:-1].rpartition(",")
            if map_type(tail):
                mapped, name = map_type(tail), _strip_name(head)
        if mapped is None and map_type(name):  # (Paris, LOCATION) with a one-word name
            mapped, name = map_type(name), _strip_name(label)
        if mapped and name:
            out.append((mapped, name))
    if not found:
        raise ValueError(f"no (TYPE, entity) item in answer {stripped[:80]!r}")
    return out


def _from_json(data) -> list[tuple[str, str]]:
    items = data if isinstance(data, list) else [data]
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, dict):
            label = item.get("type") or item.get("entity_group") or item.get("label") or ""
            name = item.get("text") or item.get("entity") or item.get("word") or item.get("name") or ""
            if isinstance(label, str) and isinstance(name, str) and map_type(label) and name.strip():
                out.append((map_type(label), _strip_name(name)))
        elif isinstance(item, list | tuple) and len(item) == 2 and map_type(str(item[0])):
            out.append((map_type(str(item[0])), _strip_name(str(item[1]))))
        else:
            raise ValueError(f"unexpected JSON item {item!r}")
    return out


def format_entities(entities: list[tuple[str, str]]) -> str:
    return "\n".join(f"({t}, {n})" for t, n in entities)


def _parser():
    """The training helper's tagger format if it exists (same format on both sides), else ours."""
    try:
        from training.ner_format import parse_entities as training_parse
    except ImportError:
        return parse_entities
    return training_parse


def _tagger_prefix(path: str) -> str:
    """The task prefix a seq2seq tagger was trained with (training's `source_prefix`, default "ner: ")."""
    meta = Path(path) / "eat_ner_tagger.json"
    if meta.is_file():
        try:
            return str(json.loads(meta.read_text(encoding="utf-8")).get("source_prefix", "ner: "))
        except (ValueError, AttributeError):
            raise UserError("not a JSON object", path=meta) from None
    return "ner: "


class HFTagger:
    """A local seq2seq tagger or token-classification model; `tag` returns raw answers for caching."""

    def __init__(
        self,
        path: str,
        batch_size: int = 16,
        device: str | None = None,
        trust_remote_code: bool = False,
        prefix: str | None = None,
    ):
        from transformers import AutoConfig

        if not (Path(path) / "config.json").is_file():
            raise UserError("not a model folder (no config.json); use --ner-model llm for the LLM", path=path)
        if not any(Path(path).glob("*.safetensors")):
            # pytorch_model.bin is a pickle, which can run code when loaded: refused.
            raise UserError("no *.safetensors weights (models are loaded from safetensors only)", path=path)
        try:
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the model config: {str(exc).splitlines()[0]}", path=path) from None
        self.path = path
        self.prefix = prefix if prefix is not None else _tagger_prefix(path)
        self.batch_size = batch_size
        self.device = device or "cpu"
        archs = config.architectures or []
        if getattr(config, "is_encoder_decoder", False):
            self.kind = "seq2seq"
            self._load_seq2seq(path, trust_remote_code)
        elif any(a.endswith("ForTokenClassification") for a in archs):
            self.kind = "token-classification"
            from transformers import pipeline

            self.pipe = pipeline(
                "token-classification",
                model=path,
                aggregation_strategy="simple",
                device=self.device,
                trust_remote_code=trust_remote_code,
            )
        else:
            raise UserError(
                f"not a seq2seq or token-classification model (architectures: {archs})", path=path
            )
        self.name = f"{self.kind}:{Path(path).resolve()}"

    def _load_seq2seq(self, path: str, trust_remote_code: bool) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(
            path, trust_remote_code=trust_remote_code, use_safetensors=True
        )
        self.model.to(self.device).eval()

    def tag(self, texts: list[str], max_new_tokens: int = 128) -> list[str]:
        if self.kind == "token-classification":
            results = self.pipe(texts, batch_size=self.batch_size) if texts else []
            return [
                json.dumps(
                    [
                        {"type": r["entity_group"], "text": r["word"]}
                        for r in res
                        if map_type(r["entity_group"])
                    ],
                    ensure_ascii=False,
                )
                for res in results
            ]
        import torch

        out: list[str] = []
        for b in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                [self.prefix + t for t in texts[b : b + self.batch_size]],
                return_tensors="pt",
                padding=True,
                truncation=True,
            ).to(self.device)
            with torch.inference_mode():
                gen = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
            out.extend(t.strip() for t in self.tokenizer.batch_decode(gen, skip_special_tokens=True))
        return out

    def parse(self, raw: str) -> list[tuple[str, str]]:
        if self.kind == "token-classification":
            return _from_json(json.loads(raw))
        return [(map_type(t) or t, n) for t, n in _parser()(raw)]
