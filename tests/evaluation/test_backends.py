"""The openai backend against a real HTTP server on loopback (tests/evaluation/helpers/serve.py) serving the
tiny model."""

from __future__ import annotations

import json
import socket

import pytest

from eat.errors import UserError
from evaluation.backends.hf import HFBackend
from evaluation.backends.openai_compat import OpenAIBackend
from evaluation.config import EvalRecipe
from evaluation.run import run_eval
from tests.evaluation.helpers.scripted import ScriptedBackend
from tests.evaluation.helpers.serve import serving

SECRET = "sk-test-do-not-leak-1234567890"
CHATS = [[{"role": "user", "content": "東京"}], [{"role": "user", "content": "Москва"}]]


@pytest.fixture(scope="module")
def tiny_backend(tiny_lm):
    return HFBackend(str(tiny_lm), batch_size=4)


def test_openai_backend_matches_local_model(tiny_backend, monkeypatch):
    monkeypatch.setenv("EAT_TEST_KEY", SECRET)
    with serving(tiny_backend, "tiny") as server:
        client = OpenAIBackend(server.base_url, "tiny", api_key_env="EAT_TEST_KEY", concurrency=2)
        got = client.generate(CHATS, 4, {"do_sample": False})
        assert server.seen_auth == [f"Bearer {SECRET}"] * 2
    assert got == tiny_backend.generate(CHATS, 4, {"do_sample": False})


def test_retries_with_backoff_then_succeeds():
    with serving(ScriptedBackend({"東京": "Tokyo"}), fail_first=3) as server:
        client = OpenAIBackend(server.base_url, "m", max_retries=3, concurrency=1)
        assert client.generate(CHATS[:1], 4, {"do_sample": False}) == ["Tokyo"]
        assert server.requests == 4 and client.requests == 4


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, timeout=2)
    with pytest.raises(UserError, match="unreachable after 3 tries"):
        client.generate(CHATS[:1], 4, {"do_sample": False})
    assert client.requests == 3


def test_server_errors_that_are_not_transient():
    with serving(ScriptedBackend({})) as server:
        client = OpenAIBackend(server.base_url.replace("/v1", "/v2"), "m", max_retries=3)
        with pytest.raises(UserError, match="refused the request: HTTP 404"):
            client.generate(CHATS[:1], 4, {"do_sample": False})
        assert client.requests == 1  # not retried


def test_eval_through_openai_backend_keeps_key_secret(tmp_path, tiny_backend, monkeypatch, capsys, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    data = tmp_path / "t.json"
    data.write_text(
        json.dumps(
            [{"text": "李白生于碎叶城", "entities": [{"name": "李白", "span": [0, 2], "type": "PER"}]}]
        )
    )
    caplog.set_level("DEBUG")
    with serving(tiny_backend, "tiny", fail_first=1) as server:
        cfg = EvalRecipe(
            model="tiny",
            data=str(data),
            lang="zh",
            out=str(tmp_path / "run"),
            backend="openai",
            base_url=server.base_url,
            max_new_tokens=3,
            max_retries=2,
        )
        from evaluation.backends import make_backend

        backend = make_backend(cfg)
        metrics = run_eval(cfg, backend=backend)
    assert metrics["backend"] == "openai" and metrics["counts"]["sentences"] == 1
    assert server.seen_auth[-1] == f"Bearer {SECRET}"
    out = capsys.readouterr()
    texts = [out.out, out.err, caplog.text] + [
        p.read_text() for p in (tmp_path / "run").rglob("*") if p.is_file()
    ]
    assert not any(SECRET in t for t in texts)


def test_vllm_backend_missing_is_a_user_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    from evaluation.backends.vllm import VLLMBackend

    with pytest.raises(UserError, match=r"pip install eat-ner\[vllm\]"):
        VLLMBackend("some/model")


def test_rate_limits_are_waited_out_as_the_server_asks_and_named_when_they_persist():
    import time

    with serving(
        ScriptedBackend({"東京": "Tokyo"}), fail_first=1, fail_status=429, retry_after="1"
    ) as server:
        client = OpenAIBackend(server.base_url, "m", max_retries=2, concurrency=1)
        t0 = time.monotonic()
        assert client.generate(CHATS[:1], 4, {"do_sample": False}) == ["Tokyo"]
        assert time.monotonic() - t0 >= 0.9 and server.requests == 2  # Retry-After: 1 honoured
    with serving(ScriptedBackend({}), fail_first=99, fail_status=429, retry_after="0") as server:
        client = OpenAIBackend(server.base_url, "m", max_retries=2, concurrency=1)
        with pytest.raises(UserError, match=r"kept answering HTTP 429 \(rate limited\) after 3 tries"):
            client.generate(CHATS[:1], 4, {"do_sample": False})


def test_what_vllm_users_pass_reaches_the_server():
    with serving(ScriptedBackend({"東京": "Tokyo"})) as server:
        client = OpenAIBackend(
            server.base_url,
            "/models/qwen",
            served_model_name="qwen-eat",
            extra_body={"top_k": 20, "guided_choice": ["a"]},
        )
        client.generate(CHATS[:1], 4, {"do_sample": False})
    (body,) = server.bodies
    assert body["model"] == "qwen-eat" and body["top_k"] == 20 and body["guided_choice"] == ["a"]
    assert body["temperature"] == 0.0 and body["max_tokens"] == 4


def test_urls_that_cannot_work_are_refused_without_a_request_and_secrets_never_show():
    from evaluation.backends.openai_compat import redact

    with pytest.raises(UserError, match="is not an http"):
        OpenAIBackend("ftp://example.org/v1", "m")
    text = redact(f"401 for Bearer {SECRET} at https://user:pass@host/v1 (key {SECRET})")
    assert SECRET not in text and "user:pass" not in text and "Bearer ***" in text


def test_a_silent_server_warns_within_seconds_and_ctrl_c_stops_at_once(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    data = tmp_path / "t.tsv"
    data.write_text("北\tB-LOC\n京\tI-LOC\n", "utf-8")
    with serving(ScriptedBackend({}), hang=True) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eat", "eval", "--model", "m", "--backend", "openai", "--base-url", server.base_url,
             "--data", str(data), "--lang", "zh", "--out", str(tmp_path / "run"), "--mode", "direct"],
            stderr=subprocess.PIPE, text=True, env=os.environ | {"EAT_NO_PROGRESS": "1"},
        )  # fmt: skip
        lines, t0 = [], time.monotonic()
        while time.monotonic() - t0 < 30:
            line = proc.stderr.readline()
            lines.append(line)
            if "no reply from" in line:
                break
        assert "no reply from" in lines[-1], "".join(lines)
        assert time.monotonic() - t0 < 20  # a few seconds of silence, not minutes
        proc.send_signal(signal.SIGINT)
        t1 = time.monotonic()
        rest = proc.communicate(timeout=10)[1]
        assert time.monotonic() - t1 < 3 and proc.returncode == 130
        assert "finished work is kept, re-run to resume" in rest


def test_adapter_stages_ask_the_server_for_the_served_adapter():
    """vLLM serves a LoRA under its own name (--lora-modules NAME=PATH): the adapter's calls ask for it, the
    base-model calls for the model."""
    client = OpenAIBackend("http://127.0.0.1:1/v1", "qwen", adapter_name="eat-align")
    assert client.request(CHATS[0], 4, {"do_sample": False}, adapter=False)["model"] == "qwen"
    assert client.request(CHATS[0], 4, {"do_sample": False}, adapter=True)["model"] == "eat-align"
    plain = OpenAIBackend("http://127.0.0.1:1/v1", "qwen", served_model_name="served")
    assert plain.request(CHATS[0], 4, {"do_sample": False}, adapter=True)["model"] == "served"


def test_adapter_name_belongs_to_backend_openai(tmp_path, capsys):
    from eat.cli import main

    args = ["eval", "--model", "m", "--data", "d", "--lang", "zh", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--adapter-name", "lora"])
    assert exc.value.code != 0
    assert "--adapter-name names an adapter on a server" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
