"""`eat demo`: the whole EAT workflow, offline, on data that ships with the package.

Steps (each is the `eat` command a user would type, run in-process; a finished step is reused on re-run):
  1. build the sample zh/ja Wikipedia dumps (eat.demo_data) and, unless --model is given, tiny local models
  2. eat wiki types     -> qid -> PER/LOC/ORG table from the sample Wikidata dump
     eat wiki mine      -> typed entity pairs per language
  3. eat wiki sft       -> chat dataset for alignment fine-tuning
  4. eat train          -> LoRA adapter on the LLM (a few steps)
  5. eat eval           -> EAT pipeline on the shipped zh/ja test sets
  6. report.md + PNG charts: data statistics, training loss, scores per stage
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from pathlib import Path

import click

from eat.errors import UserError

log = logging.getLogger(__name__)


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


@click.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True,
              help="Folder for every artefact of the demo (re-runs reuse finished steps).")  # fmt: skip
@click.option("--model", default=None, help="LLM name or path (default: a tiny random-weight local model).")
@click.option("--ner-model", default=None,
              help="English NER model: a seq2seq tagger path, a token-classification model, or 'llm' (default).")  # fmt: skip
@click.option("--langs", default="zh,ja", show_default=True, help="Languages of the sample data to use.")
@click.option("--steps", "train_steps", type=int, default=30, show_default=True, help="LoRA training steps.")
@click.option("--workers", type=int, default=2, show_default=True, help="Worker processes for mining.")
def demo(
    out_dir: Path, model: str | None, ner_model: str | None, langs: str, train_steps: int, workers: int
) -> None:
    """Run the whole pipeline offline on embedded defaults and write a report."""
    from eat.console import console
    from eat.demo_data import DEMO_DATE, build_demo_dumps, demo_test_file

    started = time.perf_counter()
    languages = [lang.strip() for lang in langs.split(",") if lang.strip()]
    unknown = [lang for lang in languages if lang not in ("zh", "ja")]
    if unknown:
        raise UserError(f"--langs: the demo ships data for zh and ja only (got {', '.join(unknown)})")
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

    sft = out_dir / "sft"
    with _Step("build SFT dataset", sft / "dataset_dict.json", timings) as run:
        if run:
            args = ["wiki", "sft", "--out", str(sft), "--val-fraction", "0.2", "--seed", "0"]
            for p in pair_dirs:
                args += ["--pairs", str(p)]
            _run_eat(args)

    adapter = out_dir / "adapter"
    with _Step("LoRA fine-tuning", adapter / "adapter_config.json", timings) as run:
        if run:
            recipe = _write_demo_recipe(out_dir, model, sft, adapter, train_steps)
            _run_eat(["train", str(recipe)])

    runs = []
    for lang in languages:
        run_dir = out_dir / "eval" / lang
        runs.append(run_dir)
        with _Step(f"EAT evaluation {lang}", run_dir / "metrics.json", timings) as run:
            if run:
                _run_eat(["eval", "--model", model, "--adapter", str(adapter), "--ner-model", ner,
                          "--data", str(demo_test_file(lang)), "--format", "spans", "--lang", lang,
                          "--out", str(run_dir), "--batch-size", "16", "--max-new-tokens", "24",
                          "--lexicon", str(out_dir / "pairs" / lang)])  # fmt: skip

    from eat.demo_report import write_demo_report

    timings["total"] = round(time.perf_counter() - started, 2)
    report = write_demo_report(out_dir, pair_dirs, sft, adapter, runs, timings)
    console.print(f"\n[bold green]Demo finished.[/] Report: {report}")
    click.echo(str(report))


def _demo_texts() -> list[str]:
    """Text the tiny model's tokenizer is trained on: the demo articles and test sentences."""
    from eat.demo_data import demo_entities, demo_test_file

    texts = [a["lead"] for arts in demo_entities().values() for a in arts]
    for lang in ("zh", "ja"):
        texts += [
            json.loads(line)["text"] for line in demo_test_file(lang).read_text(encoding="utf-8").splitlines()
        ]
    return texts


def _write_demo_recipe(out_dir: Path, model: str, sft: Path, adapter: Path, steps: int) -> Path:
    """The demo's training recipe, written next to its outputs so the step can be re-run by hand."""
    import yaml

    from eat.io import atomic_open

    recipe = {
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
    path = out_dir / "demo_recipe.yaml"
    with atomic_open(path) as fh:
        fh.write(f"# Written by eat demo. Re-run with:\n#   eat train {path}\n")
        yaml.safe_dump(recipe, fh, sort_keys=False, allow_unicode=True)
    return path
