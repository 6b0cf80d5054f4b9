"""Any OpenAI-compatible server (`vllm serve`, hosted APIs; the tests run one on loopback).

Requests run concurrently up to a limit; transient failures (connection errors, timeouts, 429, 5xx) are
retried with exponential backoff; when a server stays unreachable the run stops with one clear line, and the
pipeline keeps every reply already cached so a re-run resumes. The API key is read from the environment
variable named in the config and never appears in messages or logs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from eat.errors import UserError
from evaluation.backends.base import Chat

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        import httpx

        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.concurrency = concurrency
        self.chunk_size = concurrency * 4  # replies are cached after each chunk
        self.max_retries = max_retries
        self.backoff = backoff
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(timeout=timeout, headers=headers)
        self.requests = 0  # requests sent, retries included (for tests and logs)
        self._lock = threading.Lock()

    def payload(self, chat: Chat, max_new_tokens: int, decoding: dict) -> dict:
        body: dict = {"model": self.model, "messages": chat, "max_tokens": max_new_tokens}
        if decoding.get("do_sample"):
            body.update(temperature=decoding.get("temperature", 1.0), top_p=decoding.get("top_p", 1.0))
            # vLLM's extra sampling parameters; other servers ignore unknown keys.
            for key in ("top_k", "repetition_penalty"):
                if key in decoding:
                    body[key] = decoding[key]
        else:
            body["temperature"] = 0.0
        if "seed" in decoding:
            body["seed"] = decoding["seed"]
        return body

    def _one(self, body: dict) -> str:
        import httpx

        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            with self._lock:
                self.requests += 1
            try:
                resp = self.client.post(self.url, json=body)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                log.debug("request to %s failed (%s), attempt %d", self.url, problem, attempt + 1)
                continue
            if resp.status_code in RETRY_STATUS:
                problem = f"HTTP {resp.status_code}"
                log.debug("server answered %s, attempt %d", problem, attempt + 1)
                continue
            if resp.status_code != 200:
                detail = resp.text[:200].replace("\n", " ")
                raise UserError(f"server {self.url} refused the request: HTTP {resp.status_code} {detail}")
            try:
                return resp.json()["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                raise UserError(f"server {self.url} sent a reply that is not a chat completion") from None
        raise UserError(
            f"server {self.url} unreachable after {self.max_retries + 1} tries ({problem}); "
            "replies received so far are cached, re-run to resume"
        )

    def generate(self, chats: list[Chat], max_new_tokens: int, decoding: dict) -> list[str]:
        bodies = [self.payload(chat, max_new_tokens, decoding) for chat in chats]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, bodies))

    def close(self) -> None:
        self.client.close()
