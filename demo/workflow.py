"""`eat demo`: the whole EAT workflow, offline, on data that ships with the package.

Steps (each is the `eat` command a user would type, run in-process; a finished step is reused on re-run):
  1. build the sample zh/ja Wikipedia dumps (demo.data) and, without a real model, tiny local models
  2. eat wiki types     -> qid -> PER/LOC/ORG table from the sample Wikidata dump
     eat wiki mine      -> typed entity pairs per language
  3. eat wiki sft       -> chat dataset for alignment fine-tuning
  4. eat train          -> LoRA adapter on the LLM (a few steps)
  5. eat eval           -> EAT pipeline on the shipped zh/ja test sets (with a real model: base and tuned)
  6. report.md + PNG charts: data statistics, training loss, scores per stage

Real models: `--model DIR --ner-model spacy:DIR`, or EAT_REAL_MODELS=FOLDER (made by
`../shared/tools/real-models`) for its Qwen2.5 0.5B instruct model and spaCy's English pipeline. Then the
training settings fit a 10-minute demo on 2 CPU cores and the report sets the base model beside the tuned one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import time
from pathlib import Path

import click

from eat.errors import UserError

log = logging.getLogger(__name__)

REAL_LLM = "qwen2.5-coder-0.5b-instruct"
REAL_NER = "en_core_web_sm"
REAL_MODELS_CMD = "../shared/tools/real-models qwen0.5b spacy-en"
TINY_STEPS = 30
# Real-model training, sized for the whole demo to aim at < 10 minutes on 2 CPU cores: LoRA r=8 on every
# linear layer of the upper half of the blocks (backward stops there), fp32, whole chats packed into 512-token
# rows, one row a step (recipes/qwen2.5-0.5b_lora_cpu.yaml, at a higher learning rate for so few steps).
# Measured: the whole zh+ja demo 3 min 35 s on 2 idle cores (11 min 45 s on a loaded machine, evaluations 89% of it).
REAL_STEPS = 4
REAL_LR = 1.0e-3


def _run_eat(args: list[str]) -> None:
    """Run one `eat` sub-command in this process, echoing the command line the user could type."""
    from eat.cli import cli
    from eat.console import console

    console.print(f"[bold cyan]$ eat {' '.join(shlex.quote(a) for a in args)}[/]", highlight=False)
    cli.main(args=args, prog_name="eat", standalone_mode=False)


class _Step:
    def __init__(self, name: str, done_marker: Path, timings: dict[str, float]):
        self.name, self.done_marker, self.timings = name, done_marker, timings

    def __enter__(self) -> bool:
        from eat.console import console

        self.start = time.perf_counter()
        self.skip = self.done_marker.exists()
        verb = "reusing" if self.skip else "running"
        console.rule(f"[bold]{self.name}[/] ({verb})")
        return not self.skip

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self.skip:
            self.timings[self.name] = round(time.perf_counter() - self.start, 2)


def _local(path_or_name: str) -> str:
    """An existing local folder as an absolute path (the loaders do not expand `~`); anything else as given."""
    path = Path(path_or_name).expanduser()
    return str(path.resolve()) if path.exists() else path_or_name


def resolve_models(model: str | None, ner_model: str | None) -> tuple[str | None, str | None]:
    """--model/--ner-model, else the real models under $EAT_REAL_MODELS when it is set (None: tiny/llm)."""
    root = os.environ.get("EAT_REAL_MODELS")
    if root and (model is None or ner_model is None):
        base = Path(root).expanduser().resolve()
        wanted = {REAL_LLM: "config.json"} if model is None else {}
        if ner_model is None:
            wanted[REAL_NER] = "config.cfg"
        missing = [name for name, marker in wanted.items() if not (base / name / marker).is_file()]
        if missing:
            raise UserError(
                f"EAT_REAL_MODELS={root}: no {', '.join(missing)} there; make it with "
                f"`{REAL_MODELS_CMD}` (or unset EAT_REAL_MODELS for the tiny models)"
            )
        model = model or str(base / REAL_LLM)
        ner_model = ner_model or f"spacy:{base / REAL_NER}"
    if model is not None:
        model = _local(model)
    if ner_model is not None and ner_model.startswith("spacy:"):
        ner_model = "spacy:" + _local(ner_model[len("spacy:") :])
    elif ner_model not in (None, "llm"):
        ner_model = _local(ner_model)
    return model, ner_model


@click.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True,
              help="Folder for every artefact of the demo (re-runs reuse finished steps).")  # fmt: skip
@click.option("--model", default=None,
              help="LLM name or path (default: $EAT_REAL_MODELS/" + REAL_LLM + " when EAT_REAL_MODELS is set, "
                   "else a tiny random-weight local model).")  # fmt: skip
@click.option("--ner-model", default=None,
              help="English NER model: spacy:PIPELINE, a seq2seq tagger path, a token-classification model, or "
                   "'llm' (default: spacy:$EAT_REAL_MODELS/" + REAL_NER + " when EAT_REAL_MODELS is set, else llm).")  # fmt: skip
@click.option("--langs", default="zh,ja", show_default=True, help="Languages of the sample data to use.")
@click.option("--steps", "train_steps", type=int, default=None,
              help=f"LoRA training steps (default: {TINY_STEPS} on the tiny model, {REAL_STEPS} packed 512-token "
                   "rows on a real one).")  # fmt: skip
@click.option("--workers", type=int, default=2, show_default=True, help="Worker processes for mining.")
def demo(
    out_dir: Path, model: str | None, ner_model: str | None, langs: str, train_steps: int | None, workers: int
) -> None:
    """Run the whole pipeline offline on embedded defaults and write a report."""
    from demo.data import DEMO_DATE, build_demo_dumps, demo_test_file
    from eat.console import console

    started = time.perf_counter()
    languages = [lang.strip() for lang in langs.split(",") if lang.strip()]
    unknown = [lang for lang in languages if lang not in ("zh", "ja")]
    if unknown:
        raise UserError(f"--langs: the demo ships data for zh and ja only (got {', '.join(unknown)})")
    model, ner_model = resolve_models(model, ner_model)
    real = model is not None
    steps = train_steps if train_steps is not None else (REAL_STEPS if real else TINY_STEPS)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    dumps = out_dir / "dumps"
    with _Step("sample dumps", dumps / ".done", timings) as run:
        if run:
            build_demo_dumps(dumps, languages)
            (dumps / ".done").touch()

    if model is None:
        model_path = out_dir / "models" / "tiny-qwen2"
        with _Step("tiny models", model_path / "config.json", timings) as run:
            if run:
                from training.tiny import build_tiny_causal_lm

                build_tiny_causal_lm(model_path, texts=_demo_texts())
        model = str(model_path)
    ner = ner_model or "llm"

    types = out_dir / "types.parquet"
    with _Step("Wikidata types", types, timings) as run:
        if run:
            _run_eat(
                [
                    "wiki",
                    "types",
                    "--wikidata",
                    str(dumps / f"wikidata-{DEMO_DATE}-all.json.gz"),
                    "--out",
                    str(types),
                ]
            )

    pair_dirs = []
    for lang in languages:
        pairs = out_dir / "pairs" / lang
        pair_dirs.append(pairs)
        with _Step(f"mine {lang}wiki", pairs / "stats.json", timings) as run:
            if run:
                _run_eat(["wiki", "mine", "--lang", lang, "--dump-dir", str(dumps), "--date", DEMO_DATE,
                          "--out", str(pairs), "--workers", str(workers), "--types", str(types), "--resume"])  # fmt: skip

    # A real model trains on the alignment task only (the step the EAT paper fine-tunes, and the budget's
    # tokens go to it); its outputs get their own folders, named after the model, so runs never mix.
    if real:
        sft = out_dir / "sft-align"
        work = out_dir / "runs" / _slug(model)
    else:
        sft, work = out_dir / "sft", out_dir
    with _Step("build SFT dataset", sft / "dataset_dict.json", timings) as run:
        if run:
            args = ["wiki", "sft", "--out", str(sft), "--val-fraction", "0.2", "--seed", "0"]
            if real:
                args += ["--tasks", "align"]
            for p in pair_dirs:
                args += ["--pairs", str(p)]
            _run_eat(args)

    adapter = work / "adapter"
    with _Step("LoRA fine-tuning", adapter / "adapter_config.json", timings) as run:
        if run:
            recipe = _write_demo_recipe(work, model, sft, adapter, steps, real=real)
            _run_eat(["train", str(recipe)])

    # Tiny model: the tuned adapter only, 24 new tokens (random weights never stop by themselves).
    # Real model: the base model and the tuned adapter, with eat eval's default (per-turn) reply limits.
    variants = {"base": None, "tuned": adapter} if real else {"tuned": adapter}
    runs: dict[str, Path] = {}
    for lang in languages:
        for variant, adapter_dir in variants.items():
            run_dir = work / "eval" / (f"{variant}-{lang}" if real else lang)
            runs[f"{lang} {variant}" if real else lang] = run_dir
            name = f"EAT evaluation {lang}" + (f" ({variant})" if real else "")
            with _Step(name, run_dir / "metrics.json", timings) as run:
                if run:
                    args = ["eval", "--model", model]
                    if adapter_dir is not None:
                        args += ["--adapter", str(adapter_dir)]
                    args += ["--ner-model", ner, "--data", str(demo_test_file(lang)), "--format", "spans",
                             "--lang", lang, "--out", str(run_dir), "--batch-size", "16"]  # fmt: skip
                    if not real:
                        args += ["--max-new-tokens", "24"]
                    args += ["--lexicon", str(out_dir / "pairs" / lang)]
                    _run_eat(args)

    from demo.report import write_demo_report

    timings["total"] = round(time.perf_counter() - started, 2)
    models = {"llm": model, "ner": ner, "real": real, "steps": steps}
    report = write_demo_report(out_dir, pair_dirs, sft, adapter, runs, timings, models=models)
    console.print(f"\n[bold green]Demo finished.[/] Report: {report}")
    click.echo(str(report))


def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name or model).strip("_") or "model"


def _demo_texts() -> list[str]:
    """Text the tiny model's tokenizer is trained on: the demo articles and test sentences."""
    from demo.data import demo_entities, demo_test_file

    texts = [a["lead"] for arts in demo_entities().values() for a in arts]
    for lang in ("zh", "ja"):
        texts += [
            json.loads(line)["text"] for line in demo_test_file(lang).read_text(encoding="utf-8").splitlines()
        ]
    return texts


def _tiny_recipe(model: str, sft: Path, adapter: Path, steps: int) -> dict:
    return {
        "kind": "sft",
        "model": {"name_or_path": model},
        "data": {"path": str(sft)},
        "method": "lora",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "training": {
            "output_dir": str(adapter),
            "max_steps": steps,
            "learning_rate": 2.0e-3,
            "per_device_train_batch_size": 8,
            "logging_steps": 2,
            "save_steps": steps,
            "seed": 0,
        },
    }


def _upper_half_targets(model: str) -> str | None:
    """A PEFT regex for every linear layer of the upper half of the decoder blocks (None: unknown depth)."""
    try:
        config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
        layers = int(config["num_hidden_layers"])
    except (OSError, KeyError, ValueError, TypeError):
        return None
    upper = "|".join(str(i) for i in range(layers // 2, layers))
    return (
        rf".*\.layers\.({upper})\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    )


def _real_recipe(model: str, sft: Path, adapter: Path, steps: int) -> dict:
    """recipes/qwen2.5-0.5b_lora_cpu.yaml's settings, sized for the 10-minute demo."""
    return {
        "kind": "sft",
        "method": "lora",
        "model": {"name_or_path": model},
        "lora": {
            "r": 8,
            "alpha": 16,
            "dropout": 0.0,
            "target_modules": _upper_half_targets(model) or "all-linear",
        },
        "data": {
            "path": str(sft),
            "eval_split": None,
            "train_on": "last_assistant",
            "max_length": 512,
            "packing": True,
            "packing_strategy": "bfd",
        },
        "training": {
            "output_dir": str(adapter),
            "learning_rate": REAL_LR,
            "max_steps": steps,
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 1,
            "warmup_ratio": 0.0,
            "lr_scheduler_type": "cosine",
            "gradient_checkpointing": False,
            "logging_steps": 1,
            "save_steps": steps,
            "save_total_limit": 1,
            "seed": 0,
        },
    }


def _write_demo_recipe(work: Path, model: str, sft: Path, adapter: Path, steps: int, *, real: bool) -> Path:
    """The demo's training recipe, written next to its outputs so the step can be re-run by hand."""
    import yaml

    from eat.io import atomic_open

    recipe = _real_recipe(model, sft, adapter, steps) if real else _tiny_recipe(model, sft, adapter, steps)
    path = work / "demo_recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        fh.write(f"# Written by eat demo. Re-run with:\n#   eat train {path}\n")
        if real:
            fh.write(
                "# Sized for the whole demo to aim at < 10 minutes on 2 CPU cores (OMP_NUM_THREADS=2): LoRA r=8 on\n"
                "# the linear layers of the upper half of the blocks (backward stops there), fp32 on CPU, whole\n"
                f"# chats packed into 512-token rows, {steps} steps of one row, no evaluation split.\n"
            )
        yaml.safe_dump(recipe, fh, sort_keys=False, allow_unicode=True)
    return path
