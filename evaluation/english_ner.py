"""Stage 2: tag the English translation. Four taggers, one output shape: a list of (TYPE, entity text).

- a seq2seq tagger (our NER tagger recipe: text in, "(TYPE, entity)" lines out),
- any Hugging Face token-classification model (aggregated word groups),
- a spaCy pipeline (`spacy:FOLDER` or `spacy:PACKAGE`, e.g. `spacy:en_core_web_sm`),
- the LLM itself, asked with the prompt set's `english_ner_instruction` (run by the pipeline through the
  chat backend, so it is batched and cached like the other LLM stages).

Raw answers keep the tagger's own labels (they are cached as text); every tagger maps them to the test set's
types at parse time through one table, `label_table` (defaults + `ner_label_map`), so a new map never needs
a re-run. `parse_ner_reply` reads "(TYPE, entity)" answers and keeps commas inside names
("(ORG, Apple, Inc.)"), and also accepts a JSON list of {type, text} objects.

`check_tagger_spec` and `load_tagger` are what the pipeline calls: the first is cheap and runs before any
model loads, the second builds the tagger (None for 'llm').
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, Protocol

from eat.errors import UserError
from training.ner_format import parse_entities as parse_tagger_format


class Tagger(Protocol):
    """Stage 2 outside the chat backend: raw answers (cached as text) and their parser."""

    name: str  # names the model and its version: another tagger never reuses cached answers
    path: str | None  # its folder, whose weights are part of the cache key

    def tag(self, texts: list[str]) -> list[str]: ...

    def parse(self, raw: str) -> list[tuple[str, str]]: ...


# Tagger label -> test-set type. Only PER/LOC/ORG by default: WikiANN (and most of our test sets) has no
# MISC, and entity-level scoring counts a predicted type the gold never has as a false positive, so MISC,
# NORP, DATE, CARDINAL, ... are dropped unless `ner_label_map` maps them (MISC=MISC for a set with MISC).
DEFAULT_LABEL_MAP: dict[str, str] = {
    "PER": "PER",
    "PERSON": "PER",
    "PEOPLE": "PER",
    "PERS": "PER",
    "LOC": "LOC",
    "LOCATION": "LOC",
    "GPE": "LOC",
    "FAC": "LOC",
    "PLACE": "LOC",
    "ORG": "ORG",
    "ORGANIZATION": "ORG",
    "ORGANISATION": "ORG",
}
NONE_TYPES = {"NONE", "O", "NULL", "N/A"}

# "(" TYPE ("," | ":") NAME ")" where the closing parenthesis is the one that ends the item: followed by the
# end of the text, a new line, a separator or the next "(". Commas and parentheses inside NAME survive.
_ITEM = re.compile(
    r"\(\s*([A-Za-z][A-Za-z _\-]*?)\s*[,:，]\s*(.+?)\s*\)(?=\s*(?:$|\n|[,;，；]|\(|\d+[.)]\s|[-*•]\s))",
    re.M,
)


def _norm_label(label: str) -> str:
    """'person' -> PERSON, 'B-LOC' -> LOC: the form the label table is keyed by."""
    label = label.strip().upper().replace(" ", "_")
    if len(label) > 2 and label[1] == "-" and label[0] in "BIESLU":
        label = label[2:]
    return label


def label_table(label_map: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """The one label map of stage 2: the defaults with `ner_label_map` on top ('' or 'O' drops a label)."""
    table: dict[str, str | None] = dict(DEFAULT_LABEL_MAP)
    for src, dst in (label_map or {}).items():
        dst = (dst or "").strip()
        table[_norm_label(src)] = dst if dst and dst.upper() != "O" else None
    return table


def _lookup(label: str, table: Mapping[str, str | None]) -> str | None:
    return table.get(_norm_label(label))


def normalize_label(label: str, label_map: Mapping[str, str | None] | None = None) -> str | None:
    """PERSON -> PER, B-LOC -> LOC; None for a label the table drops (see `label_table`)."""
    return _lookup(label, label_table(label_map))


def _strip_name(name: str) -> str:
    return name.strip().strip("\"'“”‘’`[]*_").strip().rstrip(";；。").strip()


# An explicit "no entities" answer: "(NONE)", "None.", "There are no named entities.", "No entities found."
_EMPTY = re.compile(
    r"^(?:none|null|n/?a|o|nothing|no entities|none found|"
    r"(?:there\s+(?:are|is)\s+)?no\s+(?:named\s+)?entit(?:y|ies)(?:\s+(?:found|mentioned|in\s+(?:the|this)\s+"
    r"(?:sentence|text)))*)$",
    re.I,
)
# Line shapes of LLM answers without "(TYPE, entity)" items (list markers and markdown bold removed first):
# "PERSON: Li Bai, Du Fu", "Li Bai (PERSON)", "Li Bai - PERSON", "PERSON - Li Bai".
_MARKER = re.compile(r"^\s*(?:\d+\s*[.)]|[-*•·]|#+)\s+")
_TYPE_FIRST = re.compile(r"^([A-Za-z][A-Za-z _\-]{0,30}?)\s*(?:[:：]|\s[-–—]\s)\s*(.+)$")
_TYPE_PAREN = re.compile(r"^(.+?)\s*[(（]\s*([A-Za-z][A-Za-z _\-]{0,30}?)\s*[)）]$")
_TYPE_LAST = re.compile(r"^(.+?)\s*(?:\s[-–—]\s|[:：])\s*([A-Za-z][A-Za-z _\-]{0,30}?)$")
# Company suffixes that a comma separates from the name they belong to ("Apple, Inc.").
_NAME_SUFFIXES = {"inc", "inc.", "ltd", "ltd.", "llc", "co.", "corp.", "plc", "jr.", "sr."}


def _is_label(word: str, table: Mapping[str, str | None]) -> bool:
    """A tagger label as written: one the table knows ("Person") or an upper-case tag ("DATE", "B-LOC")."""
    word = word.strip()
    return bool(word) and (
        _norm_label(word) in table
        or _norm_label(word) in NONE_TYPES
        or re.fullmatch(r"[A-Z][A-Z_\-]{1,20}", word) is not None
    )


def _is_empty(text: str) -> bool:
    return not text or _EMPTY.match(text.strip().strip("()[]{}.!*_ ").strip()) is not None


def _split_names(names: str) -> list[str]:
    """ "Li Bai, Du Fu" -> two names; "Apple, Inc." stays one."""
    out: list[str] = []
    for piece in re.split(r"\s*[,;，；、]\s*", names):
        if out and piece.strip().lower() in _NAME_SUFFIXES:
            out[-1] = f"{out[-1]}, {piece.strip()}"
        elif piece.strip():
            out.append(piece.strip())
    return out


def _line_items(text: str, table: Mapping[str, str | None]) -> list[tuple[str, str]] | None:
    """Items of an answer written one entity (or one type) per line; None when no line has such a shape.

    A name that is itself a label is the model echoing the type list ("PERSON: LOCATION"), never an item.
    """
    out: list[tuple[str, str]] = []
    found = False
    for raw in text.splitlines():
        line = _MARKER.sub("", raw.replace("**", "").replace("__", "")).strip()
        if not line:
            continue
        m = _TYPE_FIRST.match(line)
        if m and _is_label(m.group(1), table):
            if _is_empty(m.group(2)):
                found = True
                continue
            names = [name for n in _split_names(m.group(2)) if (name := _strip_name(n))]
            if names and not all(_is_label(name, table) for name in names):
                found = True
                out += [(m.group(1).strip(), name) for name in names if not _is_label(name, table)]
            continue
        for shape in (_TYPE_PAREN, _TYPE_LAST):
            m = shape.match(line)
            if m and _is_label(m.group(2), table) and not _is_label(m.group(1), table):
                found = True
                out.append((m.group(2).strip(), _strip_name(m.group(1))))
                break
    return out if found else None


def parse_ner_reply(text: str, label_map: Mapping[str, str | None] | None = None) -> list[tuple[str, str]]:
    """Entities in a tagger or LLM answer, in order, mapped with `label_table(label_map)`; raises ValueError
    when nothing can be read.

    An explicit empty answer ("", "(NONE)", "[]", "None") is a valid empty list.
    """
    table = label_table(label_map)
    stripped = text.strip()
    if stripped and stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
        if data is not None:
            return _from_json(data, table)
    return _map_items(_raw_items(stripped, table), table)


def _map_items(items: list[tuple[str, str]], table: Mapping[str, str | None]) -> list[tuple[str, str]]:
    return [(mapped, name) for label, name in items if (mapped := _lookup(label, table)) and name]


def _raw_items(text: str, table: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """(label as written, name) items of a "(TYPE, entity)" answer; the table only decides which side of a
    reversed item ("(Paris, LOCATION)") is the label."""
    stripped = text.strip()
    if _is_empty(stripped):
        return []
    out: list[tuple[str, str]] = []
    found = False
    for m in _ITEM.finditer(stripped.replace("**", "").replace("__", "")):
        found = True
        label, name = m.group(1), _strip_name(m.group(2))
        if _lookup(label, table) is None and "," in name:  # reversed order: (Paris, France, LOCATION)
            head, _, tail = m.group(0)[1:-1].rpartition(",")
            if _lookup(tail, table):
                label, name = tail.strip(), _strip_name(head)
        if _lookup(label, table) is None and _lookup(name, table):  # (Paris, LOCATION)
            label, name = name, _strip_name(label)
        out.append((label, name))
    if not found:
        lines = _line_items(stripped, table)
        if lines is None:
            raise ValueError(f"no (TYPE, entity) item in answer {stripped[:80]!r}")
        return lines
    return out


def _from_json(data, table: Mapping[str, str | None]) -> list[tuple[str, str]]:
    items = data if isinstance(data, list) else [data]
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, dict):
            label = item.get("type") or item.get("entity_group") or item.get("label") or ""
            name = item.get("text") or item.get("entity") or item.get("word") or item.get("name") or ""
            if isinstance(label, str) and isinstance(name, str) and _lookup(label, table) and name.strip():
                out.append((_lookup(label, table), _strip_name(name)))
        elif isinstance(item, list | tuple) and len(item) == 2:
            if _lookup(str(item[0]), table):
                out.append((_lookup(str(item[0]), table), _strip_name(str(item[1]))))
        else:
            raise ValueError(f"unexpected JSON item {item!r}")
    return out


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
        label_map: Mapping[str, str | None] | None = None,
    ):
        from transformers import AutoConfig

        if not (Path(path) / "config.json").is_file():
            raise UserError(_not_hf_folder(path), path=path)
        if not any(Path(path).glob("*.safetensors")):
            # pytorch_model.bin is a pickle, which can run code when loaded: refused.
            raise UserError("no *.safetensors weights (models are loaded from safetensors only)", path=path)
        try:
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the model config: {str(exc).splitlines()[0]}", path=path) from None
        self.path = path
        self.table = label_table(label_map)
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
        if self.kind == "token-classification":  # every group with its own label: mapped at parse time
            results = self.pipe(texts, batch_size=self.batch_size) if texts else []
            return [
                json.dumps([{"type": r["entity_group"], "text": r["word"]} for r in res], ensure_ascii=False)
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
            return _from_json(json.loads(raw), self.table)
        # The format our tagger recipe trains on (labels as written), mapped once here.
        return _map_items(parse_tagger_format(raw), self.table)


# ------------------------------------------------------------------------------------------------ spaCy

SPACY_PREFIX = "spacy:"
SPACY_INSTALL = "pip install 'eat-ner[spacy]'"
# Components that set doc.ents; with the tok2vec/transformer they listen to, the only ones that run.
_ENT_FACTORIES = {"ner", "beam_ner", "entity_ruler"}
_SHARED_ENCODERS = {"tok2vec", "transformer", "curated_transformer"}


class _SpacyPipeline(NamedTuple):
    load: str | Path  # what spacy.load gets: the folder, or the package name (its own loader)
    path: Path  # folder with meta.json: the weights fingerprint and the tagger's `path`
    data: Path  # folder with config.cfg
    meta: dict
    keep: list[str]  # components that run
    exclude: list[str]  # components never loaded


def _not_hf_folder(path: str | Path) -> str:
    folder = Path(path).expanduser()
    if (folder / "config.cfg").is_file() and (folder / "meta.json").is_file():
        return f"a spaCy pipeline, not a Hugging Face model: use --ner-model {SPACY_PREFIX}{path}"
    return "not a model folder (no config.json); use --ner-model llm for the LLM"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the spaCy pipeline meta ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise UserError("not a JSON object", path=path)
    return data


def _check_spacy_version(meta: dict, where: Path) -> None:
    """spaCy only warns (W095) for a pipeline trained with another version, then may fail or tag badly."""
    from importlib.metadata import version

    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    need, installed = str(meta.get("spacy_version") or ""), version("spacy")
    if not need:
        return
    try:
        ok = Version(installed) in SpecifierSet(f"=={need}" if need[0].isdigit() else need, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return  # spaCy cannot judge it either
    if not ok:
        pipeline = f"{meta.get('lang')}_{meta.get('name')} {meta.get('version')}"
        raise UserError(
            f"spaCy pipeline {pipeline} needs spaCy {need}, installed is {installed}: "
            f"install a matching spaCy (pip install 'spacy{need}') or a pipeline built for {installed}",
            path=where,
        )


def _components(data: Path) -> tuple[list[str], list[str]]:
    """(components to keep, components to exclude) read from config.cfg without importing spaCy."""
    cfg = configparser.ConfigParser(interpolation=None, strict=False)
    cfg.optionxform = str  # keys such as @architectures are case-sensitive
    try:
        cfg.read(data / "config.cfg", encoding="utf-8")
        pipeline = json.loads(cfg.get("nlp", "pipeline", fallback="[]"))
    except (configparser.Error, ValueError) as exc:
        raise UserError(
            f"cannot read the spaCy config ({str(exc).splitlines()[0]})", path=data / "config.cfg"
        ) from None

    def factory(name: str) -> str:
        try:
            return str(json.loads(cfg.get(f"components.{name}", "factory", fallback='""')))
        except ValueError:
            return ""

    keep = [c for c in pipeline if c == "ner" or factory(c) in _ENT_FACTORIES]
    if not keep:
        raise UserError(
            f"spaCy pipeline without an ner or entity_ruler component (pipeline: {', '.join(pipeline) or 'empty'})",
            path=data,
        )
    upstreams = set()  # encoders the kept components listen to ("*": any)
    for section in cfg.sections():
        in_kept = any(section.startswith(f"components.{c}.") for c in keep)
        if in_kept and "Listener" in cfg.get(section, "@architectures", fallback=""):
            upstreams.add(cfg.get(section, "upstream", fallback='"*"').strip().strip('"'))
    keep += [c for c in pipeline if c not in keep and factory(c) in _SHARED_ENCODERS and upstreams & {c, "*"}]
    return [c for c in pipeline if c in keep], [c for c in pipeline if c not in keep]


def _resolve_spacy(name: str) -> _SpacyPipeline:
    """Find and validate a `spacy:` pipeline (folder or installed package) without loading it."""
    if not name:
        raise UserError(
            f"--ner-model {SPACY_PREFIX} needs a pipeline folder or package, e.g. spacy:en_core_web_sm"
        )
    if importlib.util.find_spec("spacy") is None:
        raise UserError(f"spaCy is not installed: {SPACY_INSTALL}", path=name)
    folder = Path(name).expanduser()
    if folder.exists() or "/" in name or "\\" in name or name.startswith((".", "~")):
        if not folder.is_dir():
            raise UserError("no such spaCy pipeline folder", path=folder)
        load, path = folder, folder
        data = folder
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise UserError(
                "no spaCy pipeline folder or installed package of that name "
                f"(install it with: python -m spacy download {name}, or give a folder)",
                path=name,
            )
        load, path = name, Path(next(iter(spec.submodule_search_locations)))
        data = path
        if (path / "meta.json").is_file() and not (path / "config.cfg").is_file():
            meta = _read_json(path / "meta.json")  # a package keeps its data in LANG_NAME-VERSION/
            data = path / f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}"
    if not (data / "config.cfg").is_file() or not (data / "meta.json").is_file():
        raise UserError("not a spaCy pipeline (no config.cfg and meta.json)", path=data)
    meta = _read_json(data / "meta.json")
    _check_spacy_version(meta, data / "meta.json")
    keep, exclude = _components(data)
    return _SpacyPipeline(load, path, data, meta, keep, exclude)


class SpacyTagger:
    """A spaCy pipeline; only the components that set doc.ents (and their encoder) are loaded and run."""

    def __init__(
        self,
        name: str,
        batch_size: int = 64,
        device: str | None = None,
        label_map: Mapping[str, str | None] | None = None,
    ):
        found = _resolve_spacy(name)
        import spacy

        if device and device.startswith("cuda"):  # spaCy runs on the GPU only with cupy; else on the CPU
            spacy.prefer_gpu(int(device.partition(":")[2] or 0))
        try:
            if isinstance(found.load, Path):
                self.nlp = spacy.load(found.load, exclude=found.exclude)
            else:  # what spacy.load does for a package, without needing its pip metadata
                self.nlp = spacy.util.load_model_from_package(found.load, exclude=found.exclude)
        except (OSError, ValueError, KeyError, ImportError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot load the spaCy pipeline: {first}", path=found.data) from None
        for component in found.keep:
            if component in self.nlp.disabled:  # disabled by the pipeline's config, needed here
                self.nlp.enable_pipe(component)
        meta = self.nlp.meta
        self.path = str(found.path)
        self.batch_size = batch_size
        self.table = label_table(label_map)
        self.kind = "spacy"
        # Pipeline name+version and spaCy's version: another pipeline or spaCy never reuses cached answers.
        self.name = (
            f"spacy:{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}"
            f"@spacy{spacy.__version__}:{found.path.resolve()}"
        )

    def tag(self, texts: list[str]) -> list[str]:
        """A JSON list of {type, text} per text, with spaCy's own labels (mapped in `parse`)."""
        return [
            json.dumps([{"type": e.label_, "text": e.text} for e in doc.ents], ensure_ascii=False)
            for doc in self.nlp.pipe(texts, batch_size=self.batch_size)
        ]

    def parse(self, raw: str) -> list[tuple[str, str]]:
        return _from_json(json.loads(raw), self.table)


# ---------------------------------------------------------------------------------------------- factory


def check_tagger_spec(spec: str) -> None:
    """Fail in one line before any model loads (an LLM takes minutes) for a --ner-model that cannot work."""
    if spec == "llm":
        return
    if spec.startswith(SPACY_PREFIX):
        _resolve_spacy(spec[len(SPACY_PREFIX) :])
        return
    folder = Path(spec).expanduser()
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise UserError(_not_hf_folder(spec), path=folder)
    from eat.models import check_model_path

    check_model_path(spec, key="--ner-model")


def load_tagger(
    spec: str,
    *,
    batch_size: int,
    device: str | None,
    trust_remote_code: bool,
    label_map: Mapping[str, str | None],
) -> Tagger | None:
    """The stage-2 tagger for a --ner-model value: None for 'llm' (the pipeline asks the LLM itself)."""
    if spec == "llm":
        return None
    if spec.startswith(SPACY_PREFIX):
        return SpacyTagger(
            spec[len(SPACY_PREFIX) :], batch_size=batch_size, device=device, label_map=label_map
        )
    return HFTagger(
        spec, batch_size=batch_size, device=device, trust_remote_code=trust_remote_code, label_map=label_map
    )
