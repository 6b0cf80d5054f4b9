"""`eat eval`, `eat score` and `eat bench`."""

from __future__ import annotations

from pathlib import Path

import click

from eat.config import model_from_options, model_options
from eat.console import console
from eat.errors import UserError
from evaluation.bench import BenchOptions
from evaluation.bench import bench as run_bench
from evaluation.config import EvalRecipe
from evaluation.formats import parse_label_map
from evaluation.report import render_score_table
from evaluation.score import ScoreOptions, run_score


@click.command("eval")
@click.argument("recipe", required=False)
@click.argument("overrides", nargs=-1)
@model_options(EvalRecipe, exclude=("kind", "label_map", "ner_label_map"))
@click.option(
    "--label-map",
    "label_map",
    multiple=True,
    help="Gold label renames FROM=TO, repeatable or comma-separated (PER.NAM=PER); FROM= drops a label.",
)
@click.option(
    "--ner-label-map",
    "ner_label_map",
    multiple=True,
    help="English NER label -> test-set type FROM=TO on top of the defaults (PERSON/PER->PER; GPE, LOC, FAC, "
    "LOCATION->LOC; ORG, ORGANIZATION->ORG; others dropped), repeatable or comma-separated (NORP=MISC); "
    "FROM= drops a label.",
)
def eval_command(
    recipe: str | None,
    overrides: tuple[str, ...],
    label_map: tuple[str, ...],
    ner_label_map: tuple[str, ...],
    **options,
) -> None:
    """Run the EAT pipeline on a labelled test set and score it.

    \b
    eat eval RECIPE.yaml [key=value ...]
    eat eval --model PATH --ner-model PATH|llm --data FILE --lang zh --out RUN [options]

    Flags given with a recipe override its keys. RUN gets predictions.jsonl (with a trace per sentence),
    metrics.json, report.md and per-stage caches: re-running the same command resumes.
    """
    from eat.config import apply_overrides, read_yaml, validate
    from evaluation.run import run_eval  # the pipeline and its stages load only for `eat eval`

    if recipe is not None and "=" in recipe and not recipe.endswith((".yaml", ".yml")):
        overrides, recipe = (recipe, *overrides), None
    given = {k: v for k, v in options.items() if v is not None and v != ()}
    if recipe is None:
        if overrides:
            raise UserError(f"key=value overrides need a recipe file (got {overrides[0]!r})")
        cfg = model_from_options(EvalRecipe, {**given, "label_map": None})
        if label_map:
            cfg = cfg.model_copy(update={"label_map": parse_label_map(label_map)})
        if ner_label_map:
            cfg = cfg.model_copy(update={"ner_label_map": _ner_label_map(ner_label_map)})
    else:
        data = apply_overrides(read_yaml(recipe), overrides)
        if data.get("kind", "eval") != "eval":
            raise UserError(f"key 'kind' must be eval (got {data.get('kind')!r})", path=recipe)
        flags = model_from_options(
            EvalRecipe, {**{"model": "-", "data": "-", "lang": "-", "out": "-"}, **given}
        )
        for name in given:
            data[name] = getattr(flags, name)
        if label_map:
            data["label_map"] = {**data.get("label_map", {}), **parse_label_map(label_map)}
        if ner_label_map:
            data["ner_label_map"] = {**(data.get("ner_label_map") or {}), **_ner_label_map(ner_label_map)}
        cfg = validate(EvalRecipe, data, source=recipe)
    if cfg.backend == "openai" and cfg.adapter and cfg.serve is None:
        raise UserError(
            "backend openai: serve the adapter on the server and pass the name it is served under as "
            "--adapter-name (or as --model, with --adapter-stages all)"
        )
    if cfg.adapter_name and cfg.backend != "openai":
        raise UserError(
            f"--adapter-name names an adapter on a server (backend openai), not with backend {cfg.backend}; give --adapter FOLDER"
        )
    metrics = run_eval(cfg)
    e = metrics["entity"]
    click.echo(
        f"{cfg.out}: entity P {e['precision']:.4f} R {e['recall']:.4f} F1 {e['f1']:.4f} "
        f"({metrics['counts']['sentences']} sentences, {metrics['sentences_per_s']} sentences/s)"
    )


def _ner_label_map(items: tuple[str, ...]) -> dict[str, str]:
    """`--ner-label-map` entries, read like `--label-map` (its errors name the right flag)."""
    try:
        return parse_label_map(items)
    except UserError as exc:
        raise UserError(str(exc).replace("--label-map", "--ner-label-map", 1)) from None


@click.command()
@model_options(ScoreOptions)
def score(**kwargs) -> None:
    """Score predictions against gold: entity-level P/R/F1 (seqeval-identical, micro and per type) and the
    authors' token-level metric.

    \b
    eat score --gold dev-zh.tsv --pred pred-zh.tsv --lang zh
    eat score --pred RUN/predictions.jsonl --mode strict --out RUN/metrics-strict.json
    """
    cfg = model_from_options(ScoreOptions, kwargs)
    metrics = run_score(cfg)
    console.print(render_score_table(metrics, cfg.mode))
    if cfg.out:
        console.print(f"metrics written to {cfg.out}")


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_options(BenchOptions)
def bench(runs: tuple[Path, ...], **kwargs) -> None:
    """Compare evaluation RUN folders (checkpoints x datasets x languages): tables, an F1 bar chart and
    a breakdown of why gold entities were lost.

    \b
    eat bench runs/base-zh runs/lora-zh runs/lora-ja --out bench-out
    eat bench runs/base-zh runs/lora-zh --out bench-out --html    # + bench-out/report.html to browse
    """
    cfg = model_from_options(BenchOptions, kwargs)
    result = run_bench(list(runs), cfg.out, html=cfg.html)
    console.print(
        f"{len(result.runs)} runs compared; wrote summary.md, summary.csv, f1.png, errors.md, errors.png"
        + (", report.html" if cfg.html else "")
        + f" to {cfg.out}"
    )
