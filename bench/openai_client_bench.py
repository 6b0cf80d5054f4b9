"""Requests/s, CPU seconds and threads of the openai backend's sync client + threads vs `openai.AsyncOpenAI`.

One local OpenAI-compatible server (stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive, a thread per
connection) answers every chat completion after --latency-ms of sleep, so requests overlap as on a real
server; it runs in a child process, so the CPU seconds (`time.process_time`) and threads counted are the
client's alone. In the same run, for each --concurrency, the same --n short chats are sent in chunks of
`backend.chunk_size` (concurrency x 4), one call per chunk as `evaluation/chat_cache.py` run_chats does:
- ours: `OpenAIBackend.generate` (the sync `openai.OpenAI` client on one `httpx.Client`, a thread pool of
  `concurrency` threads per chunk);
- async, client per chunk: `asyncio.run(gather(...))` per chunk with an `asyncio.Semaphore(concurrency)` and
  an `openai.AsyncOpenAI` created inside it (asyncio.run closes its loop, and an httpx.AsyncClient is bound
  to the loop it first ran on, so a synchronous caller can keep neither across chunks);
- async, loop thread: one event loop kept in a background thread with one `AsyncOpenAI` for the whole run,
  each chunk's gather submitted with `run_coroutine_threadsafe` (connections kept across chunks: the best an
  async client can do under a synchronous pipeline).
All three send the same request bodies (built by `OpenAIBackend.request`) through httpx with the same
timeouts, connection limits and retries; each is timed from creating its client to closing it; the rounds
are interleaved and the median round is reported. Peak threads: the process's OS threads (/proc) during the
run, the sampler thread excluded. Cancellation: a chunk of requests the server holds for 30 s, SIGINT sent
to this process 0.5 s in, timed until the call raises KeyboardInterrupt and until the client is closed.
Writes openai_client_bench.md and .png into --out.

    python bench/openai_client_bench.py --out runs/openai-client-bench
    python bench/openai_client_bench.py --n 512 --concurrency 8,32 --latency-ms 50 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import bar_chart, md_table, text_table, write_markdown  # noqa: E402
from evaluation.backends.openai_compat import OpenAIBackend  # noqa: E402

MODEL = "bench"
MAX_TOKENS = 16
CANCEL_HOLD_S = 30.0


# --- the server (child process) -------------------------------------------------------------------------


def serve(latency_s: float) -> None:
    """Answer every chat completion after `latency_s` (or the body's `bench_sleep_s`); print the port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as vLLM/SGLang/llama.cpp's servers

        def log_message(self, fmt, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            time.sleep(float(body.get("bench_sleep_s", latency_s)))
            data = json.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", MODEL),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "ok"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # the default backlog of 5 drops bursts of new connections

    httpd = Server(("127.0.0.1", 0), Handler)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


# --- the clients ----------------------------------------------------------------------------------------


def chats(n: int) -> list[list[dict]]:
    return [
        [
            {"role": "system", "content": "You translate entity names."},
            {"role": "user", "content": f"Translate the name 北京大学 #{i} into English."},
        ]
        for i in range(n)
    ]


def chunks(items: list, size: int) -> list[list]:
    return [items[b : b + size] for b in range(0, len(items), size)]


def async_client(base_url: str, proto: OpenAIBackend):
    """An AsyncOpenAI with the same httpx timeouts, connection limits and retries as `proto`'s sync client."""
    import httpx
    import openai

    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key="no-key",
        max_retries=proto.max_retries,
        http_client=httpx.AsyncClient(timeout=proto.http.timeout),
    )


async def gather_chunk(client, kwargs: list[dict], concurrency: int) -> list[str]:
    sem = asyncio.Semaphore(concurrency)

    async def one(kw: dict) -> str:
        async with sem:
            completion = await client.chat.completions.create(**kw)
        return completion.choices[0].message.content or ""

    return list(await asyncio.gather(*(one(kw) for kw in kwargs)))


class Ours:
    label = "ours: sync OpenAI + thread pool"
    short = "ours: sync + threads"

    def __init__(self, base_url: str, concurrency: int, extra_body: dict | None = None):
        self.backend = OpenAIBackend(base_url, MODEL, concurrency=concurrency, extra_body=extra_body)
        self.chunk_size = self.backend.chunk_size

    def chunk(self, chats: list) -> list[str]:
        return self.backend.generate(chats, MAX_TOKENS, {})

    def close(self) -> None:
        self.backend.close()


class AsyncPerChunk:
    label = "AsyncOpenAI, asyncio.run + client per chunk"
    short = "async, client per chunk"

    def __init__(self, base_url: str, concurrency: int, extra_body: dict | None = None):
        self.proto = OpenAIBackend(base_url, MODEL, concurrency=concurrency, extra_body=extra_body)
        self.proto.close()  # only its settings and request bodies are used
        self.base_url, self.concurrency, self.chunk_size = base_url, concurrency, self.proto.chunk_size

    def chunk(self, chats: list) -> list[str]:
        kwargs = [self.proto.request(c, MAX_TOKENS, {}) for c in chats]

        async def run() -> list[str]:
            async with async_client(self.base_url, self.proto) as client:
                return await gather_chunk(client, kwargs, self.concurrency)

        return asyncio.run(run())

    def close(self) -> None:
        pass


class AsyncLoopThread:
    label = "AsyncOpenAI, one loop thread + one client"
    short = "async, loop thread"

    def __init__(self, base_url: str, concurrency: int, extra_body: dict | None = None):
        self.proto = OpenAIBackend(base_url, MODEL, concurrency=concurrency, extra_body=extra_body)
        self.proto.close()
        self.concurrency, self.chunk_size = concurrency, self.proto.chunk_size
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="eat-openai-loop", daemon=True)
        self.thread.start()

        async def make():
            return async_client(base_url, self.proto)

        self.client = asyncio.run_coroutine_threadsafe(make(), self.loop).result()

    def chunk(self, chats: list) -> list[str]:
        kwargs = [self.proto.request(c, MAX_TOKENS, {}) for c in chats]
        fut = asyncio.run_coroutine_threadsafe(gather_chunk(self.client, kwargs, self.concurrency), self.loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # Ctrl-C: cancel the chunk's task (and its requests) in the loop
            raise

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


VARIANTS = [Ours, AsyncPerChunk, AsyncLoopThread]


# --- measuring ------------------------------------------------------------------------------------------


def os_threads() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return threading.active_count()


class ThreadPeak:
    """The most OS threads of this process while active, this sampler's own thread excluded."""

    def __init__(self, every_s: float = 0.005):
        self.every_s, self.peak, self._stop = every_s, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, os_threads() - 1)
            self._stop.wait(self.every_s)

    def __enter__(self) -> ThreadPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def settle(baseline: int, timeout_s: float = 5.0) -> None:
    """Wait until the threads of the previous run have exited."""
    t0 = time.monotonic()
    while os_threads() > baseline and time.monotonic() - t0 < timeout_s:
        time.sleep(0.02)


def measure(variant, base_url: str, concurrency: int, items: list) -> dict:
    with ThreadPeak() as peak:
        t0, c0 = time.perf_counter(), time.process_time()
        client = variant(base_url, concurrency)
        replies = []
        for chunk in chunks(items, client.chunk_size):
            replies += client.chunk(chunk)
        client.close()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(replies) == len(items) and all(r == "ok" for r in replies), replies[:3]
    return {"wall": wall, "cpu": cpu, "threads": peak.peak, "chunk_size": client.chunk_size}


def cancel_latency(variant, base_url: str, concurrency: int) -> dict:
    """SIGINT 0.5 s into a chunk the server holds for CANCEL_HOLD_S: s until KeyboardInterrupt, and closed."""
    before = os_threads()
    client = variant(base_url, concurrency, extra_body={"bench_sleep_s": CANCEL_HOLD_S})
    sent: list[float] = []

    def interrupt() -> None:
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.5, interrupt)
    timer.start()
    try:
        client.chunk(chats(client.chunk_size))
        raise RuntimeError("the chunk finished before Ctrl-C")
    except KeyboardInterrupt:
        raised = time.perf_counter()
    client.close()
    closed = time.perf_counter()
    time.sleep(1.0)
    return {"raise": raised - sent[0], "closed": closed - sent[0], "threads_left": os_threads() - before}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="chat requests per measurement")
    parser.add_argument("--concurrency", default="8,32", help="comma-separated requests in flight")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the server's sleep per request")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--no-cancel", action="store_true", help="skip the Ctrl-C latency measurement")
    parser.add_argument("--out", default=None, help="folder for the .md/.png (default: temp)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency_ms / 1000)
        return
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="eat-openai-client-bench-"))
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    loads = [load_average()]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        items = chats(args.n)
        measure(Ours, base_url, 4, items[:16])  # warm-up: imports, first connections
        measure(AsyncLoopThread, base_url, 4, items[:16])
        baseline = os_threads()
        results: dict[tuple[int, str], list[dict]] = {}
        for r in range(args.rounds):
            for concurrency in concurrencies:
                order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
                for variant in order:
                    settle(baseline)
                    m = measure(variant, base_url, concurrency, items)
                    results.setdefault((concurrency, variant.label), []).append(m)
                    print(
                        f"round {r + 1} concurrency {concurrency:>3} {variant.label:<45} "
                        f"{args.n / m['wall']:7.1f} req/s  {m['cpu']:5.2f} CPU-s  {m['threads']:>3} threads",
                        flush=True,
                    )
        loads.append(load_average())
        cancels = {}
        if not args.no_cancel:
            # ours last: its cancelled threads stay blocked in reads until the server answers or is stopped
            for variant in VARIANTS[1:] + VARIANTS[:1]:
                settle(baseline)
                cancels[variant.label] = cancel_latency(variant, base_url, concurrencies[0])
    finally:
        server.terminate()
        server.wait(timeout=10)

    ideal = {c: c / (args.latency_ms / 1000) for c in concurrencies}
    rows, ratios = [], []
    for concurrency in concurrencies:
        ours = None
        for variant in VARIANTS:
            runs = results[(concurrency, variant.label)]
            m = sorted(runs, key=lambda m: m["wall"])[len(runs) // 2]  # the median round by wall time
            rps = args.n / m["wall"]
            cpu = statistics.median(x["cpu"] for x in runs)
            ours = ours or {"rps": rps, "cpu": cpu}
            row = {
                "client": variant.label,
                "concurrency": concurrency,
                "chunk": m["chunk_size"],
                "req/s": f"{rps:.1f}",
                "% of ideal": f"{100 * rps / ideal[concurrency]:.0f}",
                "CPU-s": f"{cpu:.2f}",
                "CPU ms/req": f"{1000 * cpu / args.n:.2f}",
                "peak threads": m["threads"],
                "ours vs this, req/s": f"{ours['rps'] / rps:.2f}x",
                "this vs ours, CPU": f"{cpu / ours['cpu']:.2f}x",
            }
            if variant is not Ours:
                ratios.append((concurrency, variant.label, ours["rps"] / rps, cpu / ours["cpu"]))
            rows.append(row)
    print(text_table(rows))
    cancel_rows = [
        {
            "client": label,
            "concurrency": concurrencies[0],
            "SIGINT -> KeyboardInterrupt, ms": f"{1000 * c['raise']:.1f}",
            "SIGINT -> client closed, ms": f"{1000 * c['closed']:.1f}",
            "threads left 1 s later": c["threads_left"],
        }
        for label, c in cancels.items()
    ]
    if cancel_rows:
        print(text_table(cancel_rows))
    note = (
        f"{args.n} chat completions (max_tokens {MAX_TOKENS}) per measurement against one local threaded HTTP/1.1 "
        f"server in a child process answering each after {args.latency_ms:g} ms; chunks of concurrency x 4 "
        f"requests, one call per chunk as run_chats does; median of {args.rounds} interleaved rounds. '% of "
        "ideal': of concurrency / latency requests/s. CPU-s: time.process_time of the client process (the "
        f"server excluded), each run timed from creating its client to closing it. Peak threads: OS threads "
        f"of the client process (main thread included; {baseline} before each run). Python "
        f"{sys.version.split()[0]}, openai {__import__('openai').__version__}, httpx "
        f"{__import__('httpx').__version__}, {os.cpu_count()} CPUs; load average (1/5/15 min) before and "
        "after: " + "; ".join(loads)
    )
    print(note)
    sections = [(None, note), (None, md_table(rows))]
    if cancel_rows:
        sections.append(
            (
                "Ctrl-C",
                f"A chunk of requests the server holds for {CANCEL_HOLD_S:g} s; SIGINT to this process 0.5 s "
                "in; 'threads left': OS threads still alive 1 s after the client was closed (requests still "
                "blocked in a read: they end when the server answers or their timeout passes; `eat` exits at "
                "once anyway, with os._exit, after Ctrl-C).\n\n" + md_table(cancel_rows),
            )
        )
    write_markdown(out / "openai_client_bench.md", "bench/openai_client_bench.py", sections)
    labels, values = [], []
    for concurrency in concurrencies:
        for variant in VARIANTS:
            runs = results[(concurrency, variant.label)]
            labels.append(f"{variant.short}, c={concurrency}")
            values.append(args.n / sorted(x["wall"] for x in runs)[len(runs) // 2])
    bar_chart(
        out / "openai_client_bench.png",
        labels,
        values,
        "requests/s (higher is better)",
        f"{args.n} chat requests, server latency {args.latency_ms:g} ms",
    )
    print(f"wrote {out / 'openai_client_bench.md'} and {out / 'openai_client_bench.png'}")


if __name__ == "__main__":
    main()
