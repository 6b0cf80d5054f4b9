"""The openai backend and `eat eval --backend openai` against a real OpenAI-compatible server: llama.cpp's, from
llama-cpp-python, serving the Q4 GGUF of Qwen2.5-Coder-0.5B-Instruct that ../shared/tools/real-models
assembled (the same weights as the `qwen` fixture's folder, which was converted from it).

llama-cpp-python has no wheel on PyPI: installing it compiles llama.cpp (21 minutes on 2 busy cores), so CI
does not install it and these tests skip without it, whatever EAT_REQUIRE_REAL_MODELS says. The GGUF, like the
other real models, is required under EAT_REQUIRE_REAL_MODELS=1. All but the error test are `slow` (7 minutes
in all on 2 busy cores, left out of `make test`'s real tier):

    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" pip install 'llama-cpp-python[server]>=0.3'
    pytest -m real -p no:xdist tests/real/test_llama_server.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eat.errors import UserError
from eat.prompts import load_prompts
from tests.conftest import MAKE_REAL_MODELS, real_models_dir

pytestmark = pytest.mark.real

NAME = "qwen2.5-coder-0.5b-instruct"
PROMPTS = load_prompts()
THREADS = int(os.environ.get("OMP_NUM_THREADS") or 2)


def llama_server_command(gguf: Path, port: int, name: str = NAME, threads: int = THREADS) -> list[str]:
    """llama-cpp-python's server for one GGUF. The chat template is the GGUF's own (tokenizer.chat_template:
    Qwen2.5's ChatML template, the one in ../shared/data/chat-templates), so no --chat_format is given."""
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", name,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def gguf() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "llama-cpp-python is not installed: pip install 'llama-cpp-python[server]>=0.3' (compiles llama.cpp)"
        )
    path = real_models_dir() / ".parts" / f"{NAME}.gguf"
    if not path.is_file():
        message = f"{path} is missing; make it with `{MAKE_REAL_MODELS}`"
        if os.environ.get("EAT_REQUIRE_REAL_MODELS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def llama_server(gguf, tmp_path_factory) -> str:
    """The server's base URL, once /v1/models answers; the server is stopped after the module."""
    from evaluation.serve import Server, free_port

    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    server = Server(llama_server_command(gguf, port), base_url, NAME, log).start()
    try:
        server.wait_ready(timeout_s=180)
        yield base_url
    finally:
        server.stop(timeout_s=10)


def _backend(base_url: str, **kw):
    from evaluation.backends.openai_compat import OpenAIBackend

    # llama.cpp's server answers one request at a time: a long queue must not time out.
    return OpenAIBackend(base_url, NAME, **{"concurrency": 2, "timeout": 300, "max_retries": 1, **kw})


CHATS = [
    PROMPTS.conversation("align", "zh", sentence="鲁迅出生于绍兴。", phrase="Shaoxing"),
    PROMPTS.conversation("translate", "ja", sentence="東京は日本の首都である。"),
]


@pytest.mark.slow  # minutes on 2 busy cores: each prompt is read at a few dozen tokens/s
def test_greedy_replies_answer_and_repeat(llama_server):
    backend = _backend(llama_server)
    try:
        first = backend.generate(CHATS, 32, {"do_sample": False, "seed": 0})
        again = backend.generate(list(reversed(CHATS)), 32, {"do_sample": False, "seed": 0})
    finally:
        backend.close()
    assert all(r.strip() for r in first), first
    assert "绍兴" in first[0], first  # the alignment answer is the Chinese name
    assert first == list(reversed(again))  # greedy: the same replies whatever the order


@pytest.mark.slow  # minutes on 2 busy cores: each prompt is read at a few dozen tokens/s
def test_sampling_fields_for_vllm_reach_llama_cpp_without_error(llama_server):
    """`--decoding paper` sends top_k and repetition_penalty in the body (extra_body); llama.cpp takes top_k
    and ignores what it does not know (its own name is repeat_penalty, which extra_body can carry)."""
    from evaluation.config import PAPER_DECODING

    backend = _backend(llama_server, extra_body={"repeat_penalty": 1.05, "min_p": 0.0})
    decoding = {**PAPER_DECODING, "seed": 3}
    try:
        body = backend.request(CHATS[0], 16, decoding)
        assert body["extra_body"] == {
            "repeat_penalty": 1.05,
            "min_p": 0.0,
            "top_k": 20,
            "repetition_penalty": 1.05,
        }
        first = backend.generate(CHATS, 16, decoding)
        again = backend.generate(CHATS, 16, decoding)
    finally:
        backend.close()
    assert all(r.strip() for r in first), first
    assert first == again  # a seeded request samples the same reply


def test_wrong_urls_and_names_are_one_line(llama_server):
    backend = _backend(llama_server.replace("/v1", "/v2"))
    with pytest.raises(UserError, match=r"refused the request: HTTP 404") as err:
        backend.generate(CHATS[:1], 8, {"do_sample": False})
    backend.close()
    assert "\n" not in str(err.value)
    # llama.cpp's server answers a request for any model name with the one model it has (vLLM answers 404,
    # which the backend reports as one line, as above): a typo in --served-model-name goes unnoticed there.
    backend = _backend(llama_server, served_model_name="no-such-model")
    try:
        replies = backend.generate(CHATS[:1], 8, {"do_sample": False})
        assert replies[0].strip()
    except UserError as exc:
        assert "no-such-model" in str(exc) and "\n" not in str(exc)
    finally:
        backend.close()


@pytest.mark.slow
def test_eat_eval_end_to_end_through_the_server(llama_server, spacy_en, shared_data, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "eat", "eval", "--backend", "openai", "--base-url", llama_server, "--model", NAME,
        "--ner-model", f"spacy:{spacy_en}", "--data", str(shared_data / "wikiann-dev" / "dev-zh.tsv"),
        "--lang", "zh", "--limit", "4", "--max-new-tokens", "96", "--concurrency", "2", "--timeout", "300",
        "--extra-body", "{top_k: 1, repeat_penalty: 1.0}", "--out", str(out),
    ]  # fmt: skip
    env = os.environ | {"EAT_NO_PROGRESS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"{out}: entity P ") and "(4 sentences" in proc.stdout, proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "openai" and metrics["counts"]["sentences"] == 4
    assert (out / "report.md").is_file()
    records = [json.loads(x) for x in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    translated = [r for r in records if (r["trace"].get("translation") or "").strip()]
    assert len(translated) >= 3, [r["trace"] for r in records]  # most sentences got a translation
    assert all("English:" not in r["trace"]["translation"] for r in translated)  # the answer, not the wrapper
    assert metrics["counts"]["english_entities"] >= 2  # spaCy found names in the translations
    assert metrics["counts"]["alignments"] == metrics["counts"]["english_entities"]
    assert sum(bool(r["pred"]) for r in records) >= 2, records  # aligned back into most sentences
    # The same command again resumes from RUN/cache: no request is sent, the scores are the same.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((out / "metrics.json").read_text())
    assert rerun["replies"]["computed"] == 0 and rerun["entity"] == metrics["entity"]
