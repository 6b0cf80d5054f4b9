"""`eat train ...` commands."""

from __future__ import annotations

from typing import Literal

import click
from pydantic import Field

from eat.clitools import DefaultCommandGroup
from eat.config import StrictModel, model_from_options, model_options
from eat.errors import UserError
from training.config import MergeConfig


class LaunchOptions(StrictModel):
    """How many training processes `eat train` starts."""

    launch: Literal["ddp", "fsdp", "zero2"] | None = Field(
        None, description="Start several processes: ddp (also on CPU), fsdp or zero2 (GPUs)."
    )
    num_processes: int = Field(1, ge=1, description="Processes to start with --launch (one per GPU).")
    accelerate_config: str | None = Field(
        None,
        description="accelerate config file to use instead of the shipped one for --launch (eat recipes ls).",
    )
    num_machines: int = Field(1, ge=1, description="Machines in the run (run the same command on each).")
    machine_rank: int = Field(0, ge=0, description="This machine's rank, 0 on the --main-process-ip machine.")
    main_process_ip: str | None = Field(
        None, description="Address of machine 0 (needed with --num-machines > 1)."
    )
    main_process_port: int = Field(29500, ge=1, le=65535, description="Port of the rendezvous on machine 0.")


@click.group(cls=DefaultCommandGroup, default_command="run")
def train() -> None:
    """Fine-tune from a recipe: `eat train RECIPE.yaml [key=value ...]`, or `eat train merge ...`."""


def run_recipe(recipe_path: str, overrides: list[str] | tuple[str, ...]) -> dict:
    """Load and validate a recipe, then train it in this process; returns the final metrics."""
    from eat.recipes import load_recipe

    recipe = load_recipe(recipe_path, list(overrides), kinds=["sft", "ner_tagger"])
    if recipe.kind == "sft":
        from training.sft import run_sft

        return run_sft(recipe)
    from training.ner_tagger import run_ner_tagger

    return run_ner_tagger(recipe)


@train.command("keys")
@click.argument("kind", type=click.Choice(["sft", "ner_tagger"]), default="sft")
def keys(kind: str) -> None:
    """Every recipe key of KIND (sft or ner_tagger) with its type, default and meaning."""
    from rich.table import Table

    from eat.config import recipe_keys
    from eat.console import console
    from training.config import NERTaggerRecipe, SFTRecipe

    table = Table(title=f"kind: {kind} recipe keys (YAML, or key=value after the recipe)")
    for column in ("key", "type", "default", "description"):
        table.add_column(column, overflow="fold")
    for row in recipe_keys(SFTRecipe if kind == "sft" else NERTaggerRecipe):
        table.add_row(*row)
    console.print(table)


@train.command("run", epilog="All recipe keys with defaults: eat train keys sft (or ner_tagger).")
@click.argument("recipe", type=click.Path(path_type=str))
@click.argument("overrides", nargs=-1)
@model_options(LaunchOptions)
def run(recipe: str, overrides: tuple[str, ...], **kwargs) -> None:
    """Train from RECIPE.yaml with dotted key=value overrides (e.g. training.max_steps=100)."""
    from eat.console import console
    from eat.recipes import load_recipe

    opts = model_from_options(LaunchOptions, kwargs)
    # Validate here first: a typo fails in one line before any process or model is started.
    loaded = load_recipe(recipe, list(overrides), kinds=["sft", "ner_tagger"])
    if not opts.launch and (opts.num_processes != 1 or opts.accelerate_config or opts.num_machines != 1):
        raise UserError(
            "--num-processes, --num-machines and --accelerate-config need --launch ddp|fsdp|zero2"
        )
    if opts.launch:
        from training.launch import Machines, launch
        from training.runs import preflight

        if preflight(loaded) is not None:  # finished already: nothing to launch
            console.print(
                f"done: {loaded.training.output_dir} (finished earlier)", highlight=False, soft_wrap=True
            )
            return

        rc = launch(
            recipe,
            list(overrides),
            mode=opts.launch,
            num_processes=opts.num_processes,
            method=getattr(loaded, "method", "full"),
            accelerate_config=opts.accelerate_config,
            machines=Machines(
                opts.num_machines, opts.machine_rank, opts.main_process_ip, opts.main_process_port
            ),
        )
        raise click.exceptions.Exit(rc)
    metrics = run_recipe(recipe, overrides)
    shown = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in metrics.items()
        if k in ("train_loss", "global_step", "eval_loss", "eval_f1")
    )
    console.print(f"done: {loaded.training.output_dir} ({shown})", highlight=False, soft_wrap=True)


@train.command("merge")
@model_options(MergeConfig)
def merge(**kwargs) -> None:
    """Merge a LoRA adapter into its (non-quantised) base, save safetensors, check greedy-output parity."""
    from eat.console import console
    from training.merge import merge_adapter

    cfg = model_from_options(MergeConfig, kwargs)
    if cfg.push_to_hub:  # before minutes of merging: a typo or an offline machine is one line now
        from eat.errors import UserError
        from eat.hub import check_repo_id, hub_reachable

        check_repo_id(cfg.push_to_hub)
        if not hub_reachable():
            raise UserError(
                f"--push-to-hub {cfg.push_to_hub}: the Hugging Face Hub is not reachable from here"
            )
    report = merge_adapter(cfg)
    console.print(
        f"merged into {cfg.out}: greedy outputs agree on {report['agreeing']}/{report['samples']} sample prompts "
        f"({report['agreement']:.0%}; reference: {report['reference']}); vs the unmerged adapter on the "
        f"full-precision base: {report['agreement_vs_unmerged_full_precision']:.0%}, max logit diff "
        f"{report['max_abs_logit_diff_vs_unmerged']:.2g}",
        highlight=False,
        soft_wrap=True,
    )
    if cfg.push_to_hub:
        from eat.hub import push_folder

        console.print(
            f"pushed to {push_folder(cfg.out, cfg.push_to_hub, 'model', cfg.private, 'eat train merge')}"
        )
