"""Recipes after `pip install`: the wheel carries them, `eat recipes ls/cp` work, and a copied recipe trains."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (without dependencies) into a folder of its own."""
    import shutil

    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"  # a copy, so the build's build/ and egg-info folders never land in the checkout
    skip = shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__", ".*_cache", "demo-output"
    )
    shutil.copytree(REPO, src, symlinks=True, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(work)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = work.glob("eat_ner-*.whl")
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return site


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`eat ARGS` from the installed wheel, run outside the source tree (the wheel's packages come first)."""
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r})\n"
        "import eat, training\n"
        f"assert eat.__file__.startswith({str(site)!r}) and training.__file__.startswith({str(site)!r}), eat.__file__\n"
        "from eat.cli import main\n"
        f"main({list(args)!r})\n"
    )
    env = os.environ | {"EAT_NO_PROGRESS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )


def test_wheel_lists_copies_and_trains_a_shipped_recipe(wheel_site, tiny_lm, sft_dataset, tmp_path):
    assert (wheel_site / "eat" / "data" / "recipes" / "accelerate" / "ddp.yaml").is_file()
    listed = run_installed(wheel_site, tmp_path, "recipes", "ls")
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()}
    assert (
        names["tiny_sft_cpu"] == "sft"
        and names["qwen2.5-7b_lora"] == "sft"
        and names["eval_tiny_cpu"] == "eval"
    )
    copied = run_installed(wheel_site, tmp_path, "recipes", "cp", "tiny_sft_cpu", "mine.yaml")
    assert copied.returncode == 0 and (tmp_path / "mine.yaml").is_file(), copied.stderr
    again = run_installed(wheel_site, tmp_path, "recipes", "cp", "tiny_sft_cpu", "mine.yaml")
    assert again.returncode == 2 and "exists already" in again.stderr
    trained = run_installed(
        wheel_site, tmp_path, "train", "mine.yaml", f"model.name_or_path={tiny_lm}", f"data.path={sft_dataset}",
        f"training.output_dir={tmp_path / 'run'}", "training.max_steps=2", "training.save_steps=2", "data.max_length=512",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()


def test_a_shipped_recipe_runs_by_name(tiny_lm, sft_dataset, tmp_path):
    from eat.recipes import load_recipe

    recipe = load_recipe("tiny_sft_cpu", [f"model.name_or_path={tiny_lm}"], kinds=["sft"])
    assert recipe.kind == "sft" and recipe.model.name_or_path == str(tiny_lm)
    from eat.errors import UserError

    with pytest.raises(UserError, match="not_a_recipe"):
        load_recipe("not_a_recipe", kinds=["sft"])
