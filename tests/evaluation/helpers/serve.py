"""A tiny OpenAI-compatible chat server around any chat backend, for the openai backend's tests.

`POST /v1/chat/completions` and `GET /v1/models`, stdlib `http.server` in a background thread. Each request
is one chat, answered by the backend's `generate` under a lock (no batching across requests: for real serving
use `vllm serve`). `fail_first=N` answers the first N requests with HTTP 503, to exercise client retries.

    python -m tests.evaluation.helpers.serve --model PATH [--adapter DIR] [--port 8000]
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


class ChatServer:
    def __init__(
        self,
        backend,
        model_name: str = "local",
        host: str = "127.0.0.1",
        port: int = 0,
        fail_first: int = 0,
        fail_status: int = 503,
        retry_after: str | None = None,
        hang: bool = False,
    ):
        self.backend = backend
        self.model_name = model_name
        self.fail_first = fail_first
        self.fail_status = fail_status  # what the first `fail_first` requests get (429, 503, ...)
        self.retry_after = retry_after  # their Retry-After header, if any
        self.hang = hang  # never answer (a silent server)
        self.bodies: list[dict] = []  # request bodies received (tests check what was sent)
        self.requests = 0
        self.lock = threading.Lock()
        self.seen_auth: list[str] = []  # Authorization headers received (tests check they arrive)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):  # quiet; never echo headers
                log.debug("serve: " + fmt, *args)

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    self._send(
                        200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]}
                    )
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                with server.lock:
                    server.requests += 1
                    n = server.requests
                    server.seen_auth.append(self.headers.get("Authorization", ""))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if server.hang:
                    time.sleep(3600)
                    return
                if n <= server.fail_first:
                    extra = {"Retry-After": server.retry_after} if server.retry_after is not None else None
                    self._send(server.fail_status, {"error": {"message": "warming up"}}, extra)
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    body = json.loads(self.rfile.read(length) or b"{}")
                    with server.lock:
                        server.bodies.append(body)
                    messages = body["messages"]
                except (ValueError, KeyError):
                    self._send(400, {"error": {"message": "expected JSON with messages"}})
                    return
                decoding = {"do_sample": float(body.get("temperature", 0) or 0) > 0}
                for key in ("temperature", "top_p", "top_k", "repetition_penalty", "seed"):
                    if body.get(key) is not None:
                        decoding[key] = body[key]
                with server.lock:
                    reply = server.backend.generate([messages], int(body.get("max_tokens") or 256), decoding)[
                        0
                    ]
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{n}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", server.model_name),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ChatServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(
    backend, model_name: str = "local", port: int = 0, fail_first: int = 0, **kw
) -> Iterator[ChatServer]:
    """Run a server on loopback (a free port by default) for the duration of the block (`kw`: fail_status,
    retry_after, hang; see ChatServer)."""
    server = ChatServer(backend, model_name, port=port, fail_first=fail_first, **kw).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    import argparse

    from evaluation.backends.hf import HFBackend

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--adapter")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    server = ChatServer(
        HFBackend(args.model, adapter=args.adapter, batch_size=1), args.model, args.host, args.port
    )
    print(f"serving {args.model} at {server.base_url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
