"""Launching: real 2-process DDP on CPU, launcher command lines, refusals and one-line user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eat.errors import UserError
from tests.training.conftest import make_recipe
from training.launch import check_accelerate_config, launch_command
from training.loading import check_4bit
from training.runs import oom_as_user_error, refuse_broken_distributed
from training.sft import run_sft

REPO = Path(__file__).resolve().parents[2]


def run_eat(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eat", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "EAT_NO_PROGRESS": "1", **(env or {})},
        timeout=300,
    )


def step_losses(out: Path, step: int) -> list[float]:
    state = json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one_process(tiny_lm, sft_dataset, tmp_path):
    """`eat train --launch ddp --num-processes 2` on CPU: a world of 2 (torchrun, gloo), same loss curve as
    one process with the same global batch (2 x 2 vs 1 x 4)."""
    common = ["training.max_steps=3", "training.save_steps=3", "training.learning_rate=5.0e-3"]
    single = make_recipe(tiny_lm, sft_dataset, tmp_path / "single", *common)
    recipe_path = tmp_path / "ddp.yaml"
    raw = single.model_dump(mode="json")
    raw["training"].update(output_dir=str(tmp_path / "ddp"), per_device_train_batch_size=2)
    recipe_path.write_text(yaml.safe_dump(raw), encoding="utf-8")

    result = run_eat("train", str(recipe_path), "--launch", "ddp", "--num-processes", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch.distributed.run" in result.stderr and "--nproc_per_node 2" in result.stderr
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 3

    run_sft(single)
    ddp, one = step_losses(tmp_path / "ddp", 3), step_losses(tmp_path / "single", 3)
    assert len(ddp) == len(one) == 3
    assert ddp == pytest.approx(one, rel=1e-3, abs=1e-3)


def test_launch_commands(tmp_path):
    cpu = launch_command("r.yaml", ["a=1"], mode="ddp", num_processes=3, method="lora", gpu_count=0)
    assert cpu[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "3", "-m", "training", "r.yaml", "a=1",
    ]  # fmt: skip
    gpu = launch_command("r.yaml", [], mode="fsdp", num_processes=8, method="qlora", gpu_count=8)
    assert gpu[1:4] == ["-m", "accelerate.commands.launch", "--config_file"]
    assert gpu[4].endswith("recipes/accelerate/fsdp_qlora.yaml") and gpu[5:7] == ["--num_processes", "8"]
    assert gpu[-3:] == ["-m", "training", "r.yaml"]
    with pytest.raises(UserError, match="needs CUDA GPUs"):
        launch_command("r.yaml", [], mode="fsdp", num_processes=2, method="lora", gpu_count=0)
    with pytest.raises(UserError, match="only 2 GPU"):
        launch_command("r.yaml", [], mode="ddp", num_processes=4, method="lora", gpu_count=2)
    with pytest.raises(UserError, match="drop --accelerate-config"):
        launch_command(
            "r.yaml", [], mode="ddp", num_processes=2, method="lora", accelerate_config="x", gpu_count=0
        )


def test_launch_checks_inputs_once_before_starting_processes(tiny_lm, sft_dataset, tmp_path, monkeypatch):
    """A missing dataset or a --launch-only option fails in one line before torchrun starts N copies."""
    import training.launch
    from eat.cli import main

    started = []
    monkeypatch.setattr(training.launch, "launch", lambda *a, **k: started.append(a) or 0)
    recipe = tmp_path / "r.yaml"
    raw = make_recipe(tiny_lm, sft_dataset, tmp_path / "out").model_dump(mode="json")
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")
    for args, needle in [
        (
            [f"data.path={tmp_path / 'nope'}", "--launch", "ddp", "--num-processes", "2"],
            "dataset folder not found",
        ),
        ([f"model.name_or_path={tmp_path / 'gone'}", "--launch", "ddp"], "model folder not found"),
        (["--num-processes", "2"], "need --launch"),
    ]:
        with pytest.raises(UserError, match=needle):
            main(["--debug", "train", str(recipe), *args])  # --debug: the UserError itself, not its exit
    assert started == []
    main(["train", str(recipe), "--launch", "ddp", "--num-processes", "2"])
    assert len(started) == 1


def test_zero3_with_4bit_is_refused(tmp_path, monkeypatch):
    cfg = tmp_path / "zero3.yaml"
    cfg.write_text("distributed_type: DEEPSPEED\ndeepspeed_config:\n  zero_stage: 3\n", encoding="utf-8")
    with pytest.raises(UserError, match="FSDP-QLoRA"):
        check_accelerate_config(cfg, "qlora")
    check_accelerate_config(cfg, "lora")  # ZeRO-3 without 4-bit weights is fine
    with pytest.raises(UserError, match="FSDP-QLoRA"):
        launch_command("r.yaml", [], mode="zero2", num_processes=2, method="qlora", accelerate_config=str(cfg),
                       gpu_count=2)  # fmt: skip
    # Inside a process started by someone else's accelerate launch.
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    with pytest.raises(UserError, match=r"fsdp_qlora\.yaml"):
        refuse_broken_distributed("qlora")


def test_shipped_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    for name in ("ddp", "fsdp", "fsdp_qlora", "zero2"):
        cfg = load_config_from_file(str(REPO / "recipes" / "accelerate" / f"{name}.yaml"))
        assert cfg.num_processes >= 1
        check_accelerate_config(REPO / "recipes" / "accelerate" / f"{name}.yaml", "qlora")


def test_4bit_where_bitsandbytes_cannot_run(monkeypatch):
    import torch

    check_4bit("cpu")  # bitsandbytes 4-bit works on CPU here
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="method=qlora needs bitsandbytes 4-bit on cuda"):
            check_4bit("cuda")
    # Without bitsandbytes installed.
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    monkeypatch.setitem(sys.modules, "bitsandbytes.functional", None)
    with pytest.raises(UserError, match="or use method=lora"):
        check_4bit("cpu")


def test_out_of_memory_is_one_clear_line(tmp_path):
    import torch

    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-4").mkdir()  # interrupted save: not offered for resuming
    with (
        pytest.raises(UserError, match=r"out of memory while training: .*checkpoint-2$"),
        oom_as_user_error(tmp_path, "training"),
    ):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def _one_line_exit_2(result, *needles):
    lines = [line for line in result.stderr.splitlines() if line.strip() and "kernels" not in line]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_inputs_are_one_line_errors(tiny_lm, sft_dataset, tmp_path):
    recipe = tmp_path / "r.yaml"
    raw = make_recipe(tiny_lm, sft_dataset, tmp_path / "out").model_dump(mode="json")
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")
    _one_line_exit_2(
        run_eat("train", str(recipe), f"data.path={tmp_path / 'nope'}"), "dataset folder not found"
    )
    _one_line_exit_2(
        run_eat("train", str(recipe), f"model.name_or_path={tmp_path / 'no-model'}"), "model folder not found"
    )
    _one_line_exit_2(
        run_eat(
            "train", str(recipe), "model.name_or_path=no-such-org/no-such-model", env={"HF_HUB_OFFLINE": "1"}
        ),
        "may be offline",
        "model.name_or_path=DIR",
    )
    _one_line_exit_2(run_eat("train", str(recipe), "method=qlra"), "method")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_multi_machine_launch_commands():
    from training.launch import Machines

    two = Machines(count=2, rank=1, main_ip="10.0.0.1", main_port=29600)
    cpu = launch_command("r.yaml", [], mode="ddp", num_processes=1, method="lora", gpu_count=0, machines=two)
    assert cpu[1:12] == ["-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", "1", "--master_addr",
                         "10.0.0.1", "--master_port", "29600", "--nproc_per_node"]  # fmt: skip
    gpu = launch_command(
        "r.yaml", [], mode="fsdp", num_processes=8, method="qlora", gpu_count=8, machines=two
    )
    i = gpu.index("--num_processes")
    assert gpu[i : i + 12] == ["--num_processes", "16", "--num_machines", "2", "--machine_rank", "1",
                               "--main_process_ip", "10.0.0.1", "--main_process_port", "29600", "-m", "training"]  # fmt: skip
    assert "eat/data/recipes/accelerate/fsdp_qlora.yaml" in gpu[gpu.index("--config_file") + 1]
    with pytest.raises(UserError, match="needs --main-process-ip"):
        launch_command(
            "r.yaml", [], mode="ddp", num_processes=1, method="lora", gpu_count=0, machines=Machines(2, 0)
        )
    with pytest.raises(UserError, match=r"--machine-rank 2 must be in 0\.\.1"):
        launch_command(
            "r.yaml",
            [],
            mode="ddp",
            num_processes=1,
            method="lora",
            gpu_count=0,
            machines=Machines(2, 2, "h"),
        )


@pytest.mark.slow
def test_two_machines_of_one_process_make_a_world_of_two(tiny_lm, sft_dataset, tmp_path):
    """Two `eat train --launch ddp --num-machines 2` on 127.0.0.1 (machine ranks 0 and 1): one world of 2."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = make_recipe(
        tiny_lm, sft_dataset, tmp_path / "run", "training.max_steps=2", "training.save_steps=2"
    )
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json")), encoding="utf-8")
    cmd = [sys.executable, "-m", "eat", "train", str(path), "--launch", "ddp", "--num-processes", "1",
           "--num-machines", "2", "--main-process-ip", "127.0.0.1", "--main-process-port", str(port)]  # fmt: skip
    procs = [
        subprocess.Popen([*cmd, "--machine-rank", str(r)], stderr=subprocess.PIPE, text=True) for r in (0, 1)
    ]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs[0][-2000:] + errs[1][-2000:]
    assert "--nnodes 2 --node_rank 1" in errs[1]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 2
