"""Sentences/s and F1 of `eat eval` on the same sentences: backend openai against llama.cpp's server (the Q4
GGUF of Qwen2.5-Coder-0.5B-Instruct) vs backend hf on the fp32 folder converted from that GGUF.

Both runs are the project's own `eat eval` command, each printed as it runs, on the first N WikiANN dev
sentences with the same prompts, greedy decoding, max_new_tokens and spaCy in stage 2, each in a fresh run
folder (no cache); one after the other, the server stopped before the hf run, both with --threads CPU
threads. sentences/s is `eat eval`'s own (metrics.json: the pipeline, model loading excluded); load s is the
model load of the hf run and the server's start-up for llama.cpp. Writes llama_server_bench.md and .png
into --out.

Needs llama-cpp-python (pip install 'llama-cpp-python[server]>=0.3': compiles llama.cpp, about 20 minutes on 2
cores) and the real models (../shared/tools/real-models qwen0.5b spacy-en).

    python bench/llama_server_bench.py --out runs/llama-server-bench          # 8 zh sentences
    python bench/llama_server_bench.py --n 32 --threads 4 --concurrency 4
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import bar_chart, md_table, text_table, write_markdown  # noqa: E402
from evaluation.serve import Server, free_port  # noqa: E402

MODELS = Path(os.environ.get("EAT_REAL_MODELS") or Path.home() / ".cache" / "eat-ner" / "real-models")
NAME = "qwen2.5-coder-0.5b-instruct"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def eat_eval(args, out: Path, extra: list[str], env: dict) -> dict:
    cmd = [
        sys.executable, "-m", "eat", "eval", "--model", extra[0], *extra[1:], "--ner-model",
        f"spacy:{args.spacy}", "--data", args.data, "--lang", args.lang, "--limit", str(args.n),
        "--max-new-tokens", str(args.max_new_tokens), "--out", str(out),
    ]  # fmt: skip
    print("$", shlex.join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["wall_s"] = time.perf_counter() - t0
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/wikiann-dev/dev-zh.tsv"))
    parser.add_argument("--lang", default="zh")
    parser.add_argument("--n", type=int, default=8, help="sentences (the first N of --data)")
    parser.add_argument("--gguf", default=str(MODELS / ".parts" / f"{NAME}.gguf"))
    parser.add_argument("--hf-model", default=str(MODELS / NAME))
    parser.add_argument("--spacy", default=str(MODELS / "en_core_web_sm"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the server and of torch")
    parser.add_argument("--batch-size", type=int, default=16, help="hf: chats per generate call")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="openai: requests in flight (llama.cpp's server answers one at a time)",
    )
    parser.add_argument("--n-ctx", type=int, default=4096, help="llama.cpp's context size")
    parser.add_argument(
        "--out", default=None, help="folder for the .md/.png and the run folders (default: temp)"
    )
    args = parser.parse_args()
    for path in (args.gguf, args.hf_model, args.spacy):
        if not Path(path).exists():
            sys.exit(f"{path} is missing; make it with ../shared/tools/real-models qwen0.5b spacy-en")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="eat-llama-bench-"))
    runs = out / f"runs-{time.strftime('%Y%m%d-%H%M%S')}"  # fresh run folders: nothing from a cache
    env = os.environ | {"EAT_NO_PROGRESS": "1", "OMP_NUM_THREADS": str(args.threads)}
    loads = [load_average()]

    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", args.gguf, "--model_alias", NAME, "--host",
        "127.0.0.1", "--port", str(port), "--n_ctx", str(args.n_ctx), "--n_threads", str(args.threads),
        "--n_threads_batch", str(args.threads),
    ]  # fmt: skip
    print("$", shlex.join(cmd), flush=True)
    server = Server(cmd, base_url, NAME, out / "llama-server.log")
    t0 = time.perf_counter()
    try:
        server.start()
        server.wait_ready(timeout_s=300)
        server_load = time.perf_counter() - t0
        served = eat_eval(
            args, runs / "openai-llama.cpp",
            [NAME, "--backend", "openai", "--base-url", base_url, "--concurrency", str(args.concurrency),
             "--timeout", "600"],
            env,
        )  # fmt: skip
    finally:
        server.stop()
    loads.append(load_average())
    local = eat_eval(
        args, runs / "hf", [args.hf_model, "--backend", "hf", "--batch-size", str(args.batch_size)], env
    )
    loads.append(load_average())

    rows = []
    for label, m, load_s in (
        (f"openai -> llama.cpp server (Q4_K_M GGUF, concurrency {args.concurrency})", served, server_load),
        (
            f"hf (fp32 weights from the GGUF, batch size {args.batch_size})",
            local,
            float(local["timings"]["load_models"]),
        ),
    ):
        rows.append(
            {
                "backend": label,
                "sentences": m["counts"]["sentences"],
                "sentences/s": f"{m['sentences_per_s']:.3f}",
                "pipeline s": f"{m['elapsed_s']:.1f}",
                "load s": f"{load_s:.1f}",
                "entity F1": f"{m['entity']['f1']:.3f}",
                "replies": m["replies"]["computed"],
            }
        )
    print(text_table(rows))
    ratio = served["sentences_per_s"] / local["sentences_per_s"] if local["sentences_per_s"] else float("nan")
    note = (
        f"{args.n} sentences of {args.data} ({args.lang}), greedy, max_new_tokens {args.max_new_tokens}, our "
        f"prompts, spaCy {Path(args.spacy).name} in stage 2, {args.threads} CPU threads each; "
        f"llama.cpp / hf sentences/s: {ratio:.2f}x. Load average (1/5/15 min) before, between and after: "
        + "; ".join(loads)
    )
    print(note)
    write_markdown(
        out / "llama_server_bench.md", "bench/llama_server_bench.py", [(None, note), (None, md_table(rows))]
    )
    bar_chart(
        out / "llama_server_bench.png",
        ["openai -> llama.cpp server (Q4_K_M)", "hf (fp32)"],
        [60 * served["sentences_per_s"], 60 * local["sentences_per_s"]],  # per minute: CPU rates are small
        "sentences per minute (eat eval, CPU)",
        f"Qwen2.5-Coder-0.5B-Instruct, {args.n} WikiANN {args.lang} sentences",
    )
    print(f"wrote {out / 'llama_server_bench.md'} and {out / 'llama_server_bench.png'}")


if __name__ == "__main__":
    main()
