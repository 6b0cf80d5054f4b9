"""The `eat` command as a user meets it: fast help, version, one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

from eat import __version__


def run_eat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eat", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_lists_groups_without_importing_torch():
    code = (
        "import sys; from eat.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for group in ("wiki", "train", "eval", "bench", "demo"):
        assert f"  {group} " in out
    assert out.strip().endswith("NO-TORCH")


def test_version():
    result = run_eat("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_unknown_command_exits_2():
    assert run_eat("frobnicate").returncode == 2


def test_bad_recipe_key_is_one_line_exit_2(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "kind: sft\nmodel:\n  name_or_path: x\ntraining:\n  learning_rat: 1\n", encoding="utf-8"
    )
    result = run_eat("train", str(recipe))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "bad.yaml" in lines[0]
    assert "learning_rat" in lines[0] and "did you mean" in lines[0]


def test_launched_jobs_pass_their_exit_status_on(monkeypatch):
    """`eat train --launch` exits with the launcher's status: schedulers and scripts rely on it."""
    import pytest

    import training.launch
    import training.runs
    from eat.cli import main

    calls = []

    def failing_launch(recipe, overrides, **kwargs):
        calls.append(kwargs["num_processes"])
        return 7  # e.g. torchrun after a worker died

    monkeypatch.setattr(training.launch, "launch", failing_launch)
    monkeypatch.setattr(
        training.runs, "preflight", lambda recipe: None
    )  # the recipe's paths do not exist here
    with pytest.raises(SystemExit) as exc:
        main(["train", "recipes/tiny_sft_cpu.yaml", "--launch", "ddp", "--num-processes", "2"])
    assert exc.value.code == 7 and calls == [2]


def test_quiet_drops_summaries_but_not_warnings(capsys, monkeypatch):
    import logging

    from eat.console import report, setup_logging

    for var in ("EAT_NO_PROGRESS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.setenv(var, "0")  # restored after the test

    try:
        setup_logging(-1)
        report("mining summary")
        logging.getLogger("wiki_data").warning("a warning")
        err = capsys.readouterr().err
        assert "mining summary" not in err and "a warning" in err
        import os

        assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == os.environ["EAT_NO_PROGRESS"] == "1"
        setup_logging(0)
        report("mining summary")
        assert "mining summary" in capsys.readouterr().err
    finally:
        setup_logging(0)


def test_full_disk_is_one_line_naming_the_file_and_leaves_no_half_output(tmp_path):
    """A command that hits ENOSPC while writing (simulated: os.replace fails as on a full disk) says so in one
    line naming the file, exits 2 and leaves neither the output nor its temporaries behind."""
    import json

    corpus = tmp_path / "corpus_ja.json"
    corpus.write_text(
        json.dumps([{"eng_entity": "Tokyo", "tgt_entity": "東京", "text": "東京は首都。"}]), "utf-8"
    )
    code = (
        "import errno, os, sys\n"
        "real = os.replace\n"
        "def full(src, dst):\n"
        "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))\n"
        "os.replace = full\n"
        "from eat.cli import main\n"
        f"main(['wiki', 'import-eat', '--corpus', {str(corpus)!r}, '--out', {str(tmp_path / 'pairs')!r}])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip() and "INFO" not in line]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("error: ") and lines[-1].endswith("no space left on device (ENOSPC)")
    assert str(tmp_path / "pairs") in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus_ja.json"]


def test_error_lines_print_text_literally(capsys):
    """A dataset split named in an error (`sft:train: ...`) must not turn into an emoji."""
    import pytest

    from eat.cli import _one_line
    from eat.errors import UserError

    with pytest.raises(SystemExit):
        _one_line(UserError("every chat lost its answer", path="runs/sft:train"))
    assert "runs/sft:train: every chat lost its answer" in capsys.readouterr().err
