"""`eat eval --serve vllm` without a GPU: a fake `vllm` command first on PATH serves scripted answers with the
test server of tests/evaluation/helpers/serve.py (and starts a child, as vLLM starts engine processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eat.errors import UserError
from evaluation.config import EvalRecipe
from evaluation.serve import serve_command, vllm_backend

REPO = Path(__file__).resolve().parents[2]

FAKE_VLLM = """#!{python}
import json, os, signal, subprocess, sys, time
sys.path.insert(0, {repo!r})
state = os.environ["FAKE_VLLM_STATE"]
argv = sys.argv[1:]
open(os.path.join(state, "argv.json"), "w").write(json.dumps(argv))
print("INFO fake vllm starting", flush=True)
if os.environ.get("FAKE_VLLM_DIE"):
    print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", flush=True)
    sys.exit(1)
engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # like vLLM's EngineCore
open(os.path.join(state, "pids"), "w").write(f"{{os.getpid()}} {{engine.pid}}")
if os.environ.get("FAKE_VLLM_HANG"):
    time.sleep(600)
from tests.evaluation.helpers.scripted import ScriptedBackend
from tests.evaluation.helpers.serve import ChatServer
from tests.evaluation.test_pipeline import CASES, _answers

opt = lambda name: argv[argv.index(name) + 1]
server = ChatServer(ScriptedBackend(_answers(CASES[:2])), opt("--served-model-name"), port=int(opt("--port")))

def stop(*_):
    with open(os.path.join(state, "models.json"), "w") as fh:
        json.dump([b.get("model") for b in server.bodies], fh)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
print("INFO Application startup complete.", flush=True)
server.httpd.serve_forever()
"""


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch) -> Path:
    """A fake `vllm` first on PATH; returns the folder where it records its argv, pids and requests."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    exe = bin_dir / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable, repo=str(REPO)), encoding="utf-8")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_VLLM_STATE", str(state))
    return state


def _data(tmp_path) -> Path:
    from tests.evaluation.test_pipeline import CASES

    rows = [
        {"text": text, "entities": [{"name": text[s:e], "span": [s, e], "type": t} for s, e, t in gold]}
        for text, _, gold, *_ in CASES[:2]
    ]
    path = tmp_path / "zh.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def _gone(pid: int) -> bool:
    """True once `pid` no longer runs (a zombie child of this process counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pids: list[int], timeout: float = 10.0) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_eval_serves_the_model_and_adapter_with_vllm_and_stops_it(tmp_path, fake_vllm):
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 64, "rank_pattern": {}}))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "eat", "eval", "--serve", "vllm", "--model", "Qwen/Qwen2.5-0.5B-Instruct",
         "--adapter", str(adapter), "--adapter-name", "eat-align", "--data", str(_data(tmp_path)),
         "--lang", "zh", "--out", str(out), "--ner-model", "llm", "--seed", "7"],
        capture_output=True, text=True, timeout=120, env=os.environ | {"EAT_NO_PROGRESS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "F1 1.0000" in proc.stdout and "(2 sentences" in proc.stdout
    argv = json.loads((fake_vllm / "argv.json").read_text())
    assert argv[:2] == ["serve", "Qwen/Qwen2.5-0.5B-Instruct"]
    pairs = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert pairs["--host"] == "127.0.0.1" and pairs["--served-model-name"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert pairs["--seed"] == "7" and pairs["--generation-config"] == "vllm"
    assert "--enable-lora" in argv and argv[argv.index("--lora-modules") + 1] == f"eat-align={adapter}"
    # vLLM's default --max-lora-rank (16) would refuse a rank-64 adapter.
    assert argv[argv.index("--max-lora-rank") + 1] == "64"
    # The eval ran through the server: translation and English NER on the base model, alignment on the adapter.
    models = json.loads((fake_vllm / "models.json").read_text())  # written on SIGTERM: stopped, not killed
    assert set(models) == {"Qwen/Qwen2.5-0.5B-Instruct", "eat-align"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["sentences"] == 2 and metrics["entity"]["f1"] == 1.0
    assert "Application startup complete" in (out / "vllm-serve.log").read_text()
    assert _wait_gone([int(p) for p in (fake_vllm / "pids").read_text().split()])  # server and its child


def test_a_missing_vllm_command_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no vllm here
    cfg = EvalRecipe(model="m", data="d", lang="zh", out=str(tmp_path / "run"))
    with pytest.raises(UserError) as err, vllm_backend(cfg, tmp_path / "log"):
        pass
    assert "no `vllm` command on PATH" in str(err.value) and "\n" not in str(err.value)
    from evaluation.run import run_eval

    data = tmp_path / "zh.tsv"
    data.write_text("北\tB-LOC\n京\tI-LOC\n", "utf-8")
    with pytest.raises(UserError, match="no `vllm` command on PATH"):
        run_eval(cfg.model_copy(update={"serve": "vllm", "backend": "openai", "data": str(data)}))
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_a_server_that_dies_while_loading_is_reported_with_its_last_lines(tmp_path, fake_vllm, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_DIE", "1")
    cfg = EvalRecipe(model="m", data="d", lang="zh", out=str(tmp_path / "run"))
    with (
        pytest.raises(UserError, match="exited with code 1 before it was ready") as err,
        vllm_backend(cfg, tmp_path / "serve.log"),
    ):
        pass
    assert "CUDA out of memory" in str(err.value) and str(tmp_path / "serve.log") in str(err.value)


def test_a_server_never_ready_is_stopped_after_the_timeout(tmp_path, fake_vllm, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_HANG", "1")
    cfg = EvalRecipe(model="m", data="d", lang="zh", out=str(tmp_path / "run"))
    t0 = time.monotonic()
    with (
        pytest.raises(UserError, match=r"was not serving m at http://127\.0\.0\.1:\d+/v1 after 2 s") as err,
        vllm_backend(cfg, tmp_path / "serve.log", ready_timeout_s=2),
    ):
        pass
    assert "fake vllm starting" in str(err.value) and time.monotonic() - t0 < 15
    assert _wait_gone([int(p) for p in (fake_vllm / "pids").read_text().split()])


def test_ctrl_c_while_serving_stops_the_server(tmp_path, fake_vllm):
    cfg = EvalRecipe(model="m", data="d", lang="zh", out=str(tmp_path / "run"))
    with pytest.raises(KeyboardInterrupt), vllm_backend(cfg, tmp_path / "serve.log") as backend:
        assert backend.base_url.startswith("http://127.0.0.1:")
        raise KeyboardInterrupt
    assert _wait_gone([int(p) for p in (fake_vllm / "pids").read_text().split()])


def test_the_command_line_without_an_adapter():
    cfg = EvalRecipe(
        model="/models/qwen", served_model_name="qwen", data="d", lang="zh", out="o", dtype="bfloat16",
        trust_remote_code=True,
    )  # fmt: skip
    assert serve_command(cfg, 8123) == [
        "vllm", "serve", "/models/qwen", "--host", "127.0.0.1", "--port", "8123", "--served-model-name", "qwen",
        "--seed", "0", "--generation-config", "vllm", "--dtype", "bfloat16", "--trust-remote-code",
    ]  # fmt: skip


def test_serve_implies_backend_openai_and_refuses_another(tmp_path):
    from evaluation.run import run_eval

    assert EvalRecipe(model="m", data="d", lang="zh", out="o", serve="vllm").backend == "openai"
    cfg = EvalRecipe(model="m", data="d", lang="zh", out=str(tmp_path / "run"), serve="vllm", backend="hf")
    with pytest.raises(UserError, match=r"^--serve vllm evaluates through backend openai, not hf$"):
        run_eval(cfg)
