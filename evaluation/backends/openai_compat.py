"""Any OpenAI-compatible server (`vllm serve`, SGLang, llama.cpp's server, hosted APIs), through the maintained
`openai` client.

The client retries what can succeed later (connection errors, timeouts, 408/409/429/5xx) with backoff and
honours `Retry-After` (each wait capped by the client at 60 s, so the total is at most max_retries x 60 s), and
never retries other 4xx. Requests run concurrently up to a limit, on the sync client and a pool of that many
threads: against `openai.AsyncOpenAI` driven from the synchronous pipeline (asyncio.run per chunk, or one loop
thread), `bench/openai_client_bench.py` measured the sync client as fast or faster (1.05-1.23x the requests/s)
for equal or less client CPU (1.04-1.61x less) at concurrency 8 and 32, and as quick to stop on Ctrl-C; the
cost is one thread per request in flight. What this module adds:
- every failure is one line that says which kind it is: rate limited, unreachable, refused (with the server's
  words, credentials redacted), or not a chat completion; replies already received stay cached for a re-run;
- a warning when a chunk of requests gets no reply for WAIT_WARNING_S, so a silent server is never silent;
- Ctrl-C returns at once: waiting requests are cancelled and the connections closed;
- vLLM/SGLang request fields (`top_k`, `repetition_penalty`, guided decoding...) go through `extra_body`, and
  the name sent as `model` can differ from the recipe's model (`served_model_name`), and the adapter's stages
  can ask for a LoRA adapter the server serves under its own name (`adapter_name`).
The API key is read from the environment variable named in the config and never appears in messages or logs.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from eat.errors import UserError
from evaluation.backends.base import Chat

log = logging.getLogger(__name__)
WAIT_WARNING_S = 5.0
_SECRETS = re.compile(r"(Bearer\s+)\S+|\bsk-[A-Za-z0-9_\-]{8,}|(?<=://)[^/@\s]+@", re.I)


def redact(text: str) -> str:
    """`Authorization: Bearer ...`, `sk-...` keys and URL userinfo replaced by `***`."""
    return _SECRETS.sub(
        lambda m: (m.group(1) or "") + "***" + ("@" if m.group(0).endswith("@") else ""), text
    )


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 4,
        extra_body: dict | None = None,
        served_model_name: str | None = None,
        adapter_name: str | None = None,
    ) -> None:
        import httpx
        import openai

        if not re.match(r"^https?://[^/\s]+", base_url or ""):
            raise UserError(f"--base-url {base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
        self.base_url = base_url.rstrip("/")
        self.model = served_model_name or model
        self.adapter_name = adapter_name  # the served LoRA adapter, asked for by the adapter's stages
        self.concurrency = concurrency
        self.chunk_size = concurrency * 4  # replies are cached after each chunk
        self.max_retries = max_retries
        self.extra_body = dict(extra_body or {})
        self.requests = 0  # HTTP requests sent, retries included (for tests and logs)
        self._lock = threading.Lock()

        def count(request) -> None:
            with self._lock:
                self.requests += 1

        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            # One kept-alive connection per request in flight (httpx keeps 20: above that, every chunk
            # would close and reopen connections).
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            event_hooks={"request": [count]},
        )
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(api_key_env) or "no-key",  # local servers need none; the client wants one
            max_retries=max_retries,
            http_client=self.http,
        )

    def request(self, chat: Chat, max_new_tokens: int, decoding: dict, adapter: bool = True) -> dict:
        """The keyword arguments of one chat.completions.create call."""
        model = self.adapter_name if adapter and self.adapter_name else self.model
        body: dict = {"model": model, "messages": chat, "max_tokens": max_new_tokens}
        extra = dict(self.extra_body)
        if decoding.get("do_sample"):
            body.update(temperature=decoding.get("temperature", 1.0), top_p=decoding.get("top_p", 1.0))
            # vLLM's extra sampling parameters; other servers ignore unknown keys.
            extra.update({k: decoding[k] for k in ("top_k", "repetition_penalty") if k in decoding})
        else:
            body["temperature"] = 0.0
        if "seed" in decoding:
            body["seed"] = decoding["seed"]
        if extra:
            body["extra_body"] = extra
        return body

    def _one(self, kwargs: dict) -> str:
        import openai

        tries = self.max_retries + 1
        try:
            completion = self.client.chat.completions.create(**kwargs)
        except openai.RateLimitError:
            raise UserError(
                f"server {self.base_url} kept answering HTTP 429 (rate limited) after {tries} tries; replies "
                "received so far are cached, re-run later to resume"
            ) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise UserError(
                f"server {self.base_url} unreachable after {tries} tries ({redact(type(exc).__name__)}); replies "
                "received so far are cached, re-run to resume"
            ) from None
        except openai.APIStatusError as exc:
            detail = redact(" ".join(str(exc.message).split()))[:200]
            if exc.status_code >= 500:
                raise UserError(
                    f"server {self.base_url} failed with HTTP {exc.status_code} after {tries} tries ({detail})"
                ) from None
            raise UserError(
                f"server {self.base_url} refused the request: HTTP {exc.status_code} {detail}"
            ) from None
        try:
            return completion.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise UserError(f"server {self.base_url} sent a reply that is not a chat completion") from None

    def generate(
        self, chats: list[Chat], max_new_tokens: int, decoding: dict, adapter: bool = True
    ) -> list[str]:
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="eat-openai")
        try:
            futures = [
                pool.submit(self._one, self.request(c, max_new_tokens, decoding, adapter)) for c in chats
            ]
            pending = set(futures)
            warned = False
            while pending:
                done, pending = wait(pending, timeout=WAIT_WARNING_S, return_when=FIRST_COMPLETED)
                for fut in done:
                    fut.result()  # the first failure ends the chunk
                if not done and not warned:
                    log.warning(
                        "no reply from %s for %.0f s (%d requests waiting; each gives up after %.0f s x %d tries)",
                        self.base_url, WAIT_WARNING_S, len(pending), self.http.timeout.read or 0, self.max_retries + 1,
                    )  # fmt: skip
                    warned = True
            return [f.result() for f in futures]
        except BaseException:  # Ctrl-C or a failure: do not wait for requests still in flight
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=False)

    def close(self) -> None:
        self.client.close()
