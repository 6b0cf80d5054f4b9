"""`eat train RECIPE --launch ddp|fsdp|zero2 --num-processes N`: start N training processes.

On GPUs this calls `accelerate launch` with one of the shipped accelerate configs (eat/data/recipes/accelerate,
found in the installed package). Without a GPU it calls
`torch.distributed.run` (torchrun) with the gloo backend: `accelerate launch --cpu --num_processes N` was seen
to start a single process on a machine without GPUs, while torchrun reliably gives a world of N.
Each process runs `python -m training RECIPE [key=value ...]` (training/__main__.py).

Several machines: run the same command on each with `--num-machines M --machine-rank R --main-process-ip HOST
--main-process-port P` (R = 0 on HOST). `--num-processes` counts the processes of one machine; the world is
M x N. accelerate gets its total (`--num_processes M*N`, `--num_machines`, `--machine_rank`, ...); torchrun on
CPU gets a static rendezvous (`--nnodes M --node_rank R --master_addr HOST --master_port P`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from eat.errors import UserError

MODES = ("ddp", "fsdp", "zero2")


@dataclass(frozen=True)
class Machines:
    """Where this machine sits in a multi-machine run (the default: one machine)."""

    count: int = 1
    rank: int = 0
    main_ip: str | None = None
    main_port: int = 29500

    def check(self) -> None:
        if self.count < 1 or not 0 <= self.rank < self.count:
            raise UserError(
                f"--machine-rank {self.rank} must be in 0..{self.count - 1} (--num-machines {self.count})"
            )
        if self.count > 1 and not self.main_ip:
            raise UserError("--num-machines > 1 needs --main-process-ip (the address of machine 0)")


def accelerate_config_for(mode: str, method: str) -> Path:
    from eat.recipes import accelerate_config

    name = "fsdp_qlora" if (mode == "fsdp" and method == "qlora") else mode
    path = accelerate_config(name)
    if not path.is_file():
        raise UserError(
            f"accelerate config for --launch {mode} not found; pass --accelerate-config FILE", path=path
        )
    return path


def check_accelerate_config(path: Path, method: str) -> None:
    """Refuse combinations known not to work before starting N processes."""
    from eat.config import read_yaml

    cfg = read_yaml(path)
    ds = cfg.get("deepspeed_config") or {}
    if str(cfg.get("distributed_type", "")).upper() == "DEEPSPEED" and method == "qlora":
        stage = ds.get("zero_stage")
        if ds.get("deepspeed_config_file"):
            ds_file = Path(ds["deepspeed_config_file"])
            if ds_file.is_file():
                stage = (
                    (yaml.safe_load(ds_file.read_text(encoding="utf-8")) or {})
                    .get("zero_optimization", {})
                    .get("stage", stage)
                )
        if str(stage) == "3":
            raise UserError(
                "DeepSpeed ZeRO-3 with 4-bit (method=qlora) weights is not supported; use FSDP-QLoRA: "
                "eat train RECIPE.yaml --launch fsdp --num-processes N (recipes/accelerate/fsdp_qlora.yaml)",
                path=path,
            )


def launch_command(
    recipe_path: str,
    overrides: list[str],
    *,
    mode: str,
    num_processes: int,
    method: str,
    accelerate_config: str | None = None,
    gpu_count: int | None = None,
    machines: Machines = Machines(),
) -> list[str]:
    """The command line that starts this machine's processes (torchrun on CPU, accelerate launch on GPUs)."""
    machines.check()
    if mode not in MODES:
        raise UserError(f"--launch must be one of {', '.join(MODES)} (got {mode!r})")
    if num_processes < 1:
        raise UserError("--num-processes must be at least 1")
    if gpu_count is None:
        import torch

        gpu_count = torch.cuda.device_count()
    script = ["-m", "training", recipe_path, *overrides]
    if gpu_count == 0:
        if mode != "ddp":
            raise UserError(
                f"--launch {mode} needs CUDA GPUs (none found); on CPU use --launch ddp, which runs "
                "torchrun with the gloo backend"
            )
        if accelerate_config:
            raise UserError(
                "--accelerate-config applies to GPU launches (accelerate launch); on CPU, --launch ddp runs "
                "torchrun without one: drop --accelerate-config"
            )
        if machines.count == 1:
            rendezvous = ["--standalone"]
        else:
            rendezvous = ["--nnodes", str(machines.count), "--node_rank", str(machines.rank),
                          "--master_addr", str(machines.main_ip), "--master_port", str(machines.main_port)]  # fmt: skip
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *rendezvous,
            "--nproc_per_node",
            str(num_processes),
            *script,
        ]
    if num_processes > gpu_count:
        raise UserError(f"--num-processes {num_processes} but only {gpu_count} GPU(s) are visible")
    config = Path(accelerate_config) if accelerate_config else accelerate_config_for(mode, method)
    if not config.is_file():
        raise UserError("accelerate config not found", path=config)
    check_accelerate_config(config, method)
    multi = []
    if machines.count > 1:
        multi = ["--num_machines", str(machines.count), "--machine_rank", str(machines.rank),
                 "--main_process_ip", str(machines.main_ip), "--main_process_port", str(machines.main_port)]  # fmt: skip
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--num_processes",
        str(num_processes * machines.count),
        *multi,
        *script,
    ]


def launch(recipe_path: str, overrides: list[str], **kwargs) -> int:
    """Run the launcher in the foreground; returns its exit code (non-zero if any process failed).

    Mistakes that need no model are caught before this, in one process (`training.runs.preflight`).
    """
    import subprocess

    from eat.console import console

    cmd = launch_command(recipe_path, overrides, **kwargs)
    console.print("launching: " + " ".join(cmd[1:]), highlight=False, soft_wrap=True)
    return subprocess.call(cmd)
