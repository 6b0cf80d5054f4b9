"""Benchmark SFT throughput on CPU with sequence packing vs without, on real alignment-chat lengths.

    .venv/bin/python bench/train_bench.py [--chats 192] [--steps 10] [--batch 8] [--max-length 512]

Chats are `align` conversations built with eat.prompts from the EAT authors' entity-alignment corpora in
../shared/data/eat-corpus (English name + target-language paragraph -> the target-language phrase), so the
length distribution is that of real alignment data. The tiny Qwen2-shaped model (training.tiny, tokenizer
trained on the same texts) is trained with TRL's SFTTrainer exactly as `eat train` does (LoRA, fp32, our
masks), each configuration in its own process. Printed: real (non-padding) tokens per CPU-second of the
process (the comparison: on a shared machine, wall time mostly measures other people's load) and per wall
second, padding share, and peak resident memory of the process, for
  - TRL's CPU default: no packing, and the LM head scores every position (eat.compat.compact_lm_head_on_cpu patched off),
  - baseline: no packing (pad each batch to its longest chat; supervised positions only through the head),
  - ours: `data.packing: true` with the 'bfd' strategy (whole chats, one padding-free row per batch, attention
    within each chat),
  - ours: 'wrapped' packing (stream cut at max_length) for reference,
  - bfd with fewer rows so that a step holds as many tokens as an unpadded no-packing step (equal token
    budget; shows how much comes from skipping padding alone rather than from fuller steps),
all with the same recipe (--batch rows of up to --max-length tokens; only `data.packing` changes), and then
no packing vs bfd packing at each batch size of --sweep: padding to the longest chat of a batch wastes more
as batches grow, so the gain from packing depends on the batch size.
Configurations alternate over --repeats rounds and each keeps its best round (load only slows runs down).
Each run uses --threads torch threads (default 1): with 2 OpenMP threads on a loaded 2-core machine, CPU time
largely counts threads spinning at barriers while their partner is descheduled, and that waste depends on
op sizes, so it differs between configurations; one thread measures the work.
Target: bfd packing >= 1.5x the tokens/s of no packing (same recipe, --batch).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS = REPO.parent / "shared" / "data" / "eat-corpus"


def build_chats(n: int, seed: int = 0) -> list[dict]:
    """`n` align chats sampled across the corpus languages (records whose target name is in the text)."""
    from eat.prompts import load_prompts

    if not CORPUS.is_dir():
        sys.exit(f"corpus not found at {CORPUS} (the shared data folder)")
    prompts = load_prompts()
    rng = random.Random(seed)
    records = []
    for path in sorted(CORPUS.glob("corpus_*.json")):
        lang = path.stem.split("_", 1)[1]
        rows = [r for r in json.loads(path.read_text(encoding="utf-8")) if r["tgt_entity"] in r["text"]]
        records += [(lang, r) for r in rng.sample(rows, min(len(rows), n))]
    rng.shuffle(records)
    return [
        {
            "messages": prompts.conversation(
                "align", lang, replies=[r["tgt_entity"]], sentence=r["text"], phrase=r["eng_entity"]
            ),
            "lang": lang,
        }
        for lang, r in records[:n]
    ]


def prepare(work: Path, n_chats: int) -> None:
    from datasets import Dataset, DatasetDict

    from training.tiny import build_tiny_causal_lm

    chats = build_chats(n_chats)
    texts = [m["content"] for c in chats for m in c["messages"]]
    build_tiny_causal_lm(work / "model", texts=texts)
    DatasetDict({"train": Dataset.from_list(chats)}).save_to_disk(str(work / "data"))


def run_one(
    work: Path, packing: str, steps: int, batch: int, max_length: int, threads: int, full_head: bool
) -> dict:
    """One training run in this process; prints a JSON line with tokens/s and peak RSS."""
    os.environ["EAT_NO_PROGRESS"] = "1"
    import torch

    torch.set_num_threads(threads)
    if full_head:  # TRL's own CPU behaviour: every position through the LM head
        import training.sft

        training.sft.compact_lm_head_on_cpu = lambda: True
    from transformers import TrainerCallback

    from eat.config import validate
    from training.config import SFTRecipe
    from training.sft import run_sft

    counts = {"real": 0, "slots": 0, "timing": False}

    class Clock(TrainerCallback):
        """Time the steps after the first (warm-up) one."""

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.attn = model.config._attn_implementation if model is not None else None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                counts["timing"] = True
                self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.t0
            self.cpu_seconds = time.process_time() - self.c0

    clock = Clock()
    shutil.rmtree(work / f"run-{packing}", ignore_errors=True)  # each run starts afresh
    recipe = validate(
        SFTRecipe,
        {
            "kind": "sft",
            "method": "lora",
            "model": {"name_or_path": str(work / "model")},
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "data": {
                "path": str(work / "data"),
                "eval_split": None,
                "max_length": max_length,
                "packing": packing != "none",
                "packing_strategy": packing if packing != "none" else "bfd",
            },
            "training": {
                "output_dir": str(work / f"run-{packing}"),
                "max_steps": steps,
                "per_device_train_batch_size": batch,
                "logging_steps": 1,
                "save_steps": 10_000,
                "gradient_checkpointing": False,
                "report_to": ["none"],
                "resume": "never",
            },
        },
        source="bench",
    )
    import trl

    original = trl.SFTTrainer.compute_loss

    def compute_loss(self, model, inputs, *a, **k):
        # Real tokens are the non-pad ones (the pad token never occurs inside a chat).
        if counts["timing"]:
            ids = inputs["input_ids"]
            counts["real"] += int((ids != self.processing_class.pad_token_id).sum())
            counts["slots"] += ids.numel()
        return original(self, model, inputs, *a, **k)

    trl.SFTTrainer.compute_loss = compute_loss
    run_sft(recipe, callbacks=[clock])
    return {
        "packing": packing,
        "wall_tokens_per_s": counts["real"] / clock.seconds,
        "tokens_per_s": counts["real"] / clock.cpu_seconds,
        "padding_share": 1 - counts["real"] / max(counts["slots"], 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "timed_steps": steps - 1,
        "batch": batch,
        "attn": getattr(clock, "attn", None),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chats", type=int, default=192)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (see above)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds over the configurations (best kept)")
    ap.add_argument(
        "--packed-batch", type=int, default=None, help="rows of max_length tokens per packed step"
    )
    ap.add_argument(
        "--sweep", default="4,8,16", help="batch sizes for no packing vs packing (comma-separated; '' skips)"
    )
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument(
        "--out", type=Path, default=None, help="folder for train_bench.md and .png (default: the work dir)"
    )
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_full-head", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        result = run_one(
            args.work_dir, args._child, args.steps, args.batch, args.max_length, args.threads, args._full_head
        )
        print("RESULT " + json.dumps(result))
        return

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="eat-train-bench-"))
    if not (work / "data" / "dataset_dict.json").is_file():
        prepare(work, args.chats)
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from training.sft_data import tokenize_chat

    tok = AutoTokenizer.from_pretrained(work / "model")
    lengths = [
        len(tokenize_chat(tok, r["messages"])["input_ids"])
        for r in load_from_disk(str(work / "data"))["train"]
    ]
    header = (
        f"{len(lengths)} align chats from {CORPUS}: tokens median {statistics.median(lengths):.0f}, "
        f"mean {statistics.mean(lengths):.0f}, max {max(lengths)} ({sum(x > args.max_length for x in lengths)} cut "
        f"at max_length {args.max_length}); batch {args.batch}, {args.steps} steps (first not timed), CPU fp32, "
        f"{args.threads} torch thread(s)"
    )
    print(header)
    # Same token budget per step: a packed row holds ~max_length tokens, an unpacked row one chat.
    packed_batch = args.packed_batch or max(1, round(args.batch * statistics.mean(lengths) / args.max_length))
    # Configurations alternate over --repeats rounds; the best round of each is kept (a busy machine only
    # ever makes a run slower, so the best round is the least disturbed one).
    sweep = [int(b) for b in args.sweep.split(",") if b.strip()]
    configs = [  # (name, packing, batch rows, LM head over every position)
        ("TRL CPU default: no packing", "none", args.batch, True),
        ("baseline: no packing", "none", args.batch, False),
        ("ours: packing bfd", "bfd", args.batch, False),
        ("ours: packing wrapped", "wrapped", args.batch, False),
        ("ours: bfd, equal tokens/step", "bfd", packed_batch, False),
    ]
    for b in sweep:
        if b != args.batch:
            configs += [
                (f"no packing, batch {b}", "none", b, False),
                (f"packing bfd, batch {b}", "bfd", b, False),
            ]
    best: dict[str, dict] = {}
    rounds: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, packing, batch, full_head in configs:
            cmd = [sys.executable, __file__, "--_child", packing, "--work-dir", str(work), "--steps",
                   str(args.steps), "--batch", str(batch), "--max-length", str(args.max_length),
                   "--threads", str(args.threads)] + (["--_full-head"] if full_head else [])  # fmt: skip
            env = os.environ | {"OMP_NUM_THREADS": str(args.threads)}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"run {name} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(line[7:]) | {"name": name}
            rounds.setdefault(name, []).append(r["tokens_per_s"])
            if name not in best or r["tokens_per_s"] > best[name]["tokens_per_s"]:
                best[name] = r
    from bench.report import md_table, text_table, write_markdown

    results = [best[c[0]] for c in configs]
    base = best["baseline: no packing"]["tokens_per_s"]
    unpacked, packed = best["baseline: no packing"], best["ours: packing bfd"]
    speedup = packed["tokens_per_s"] / base
    head = best["TRL CPU default: no packing"]["tokens_per_s"]
    table = [
        {
            "config": r["name"],
            "attention": r["attn"],
            "batch": r["batch"],
            "tok/CPU-s": f"{r['tokens_per_s']:,.0f}",
            "tok/s wall": f"{r['wall_tokens_per_s']:,.0f}",
            "padding": f"{r['padding_share']:.0%}",
            "peak RSS MiB": f"{r['peak_rss_mib']:,.0f}",
            "vs baseline": f"{r['tokens_per_s'] / base:.2f}x",
        }
        for r in results[:5]
    ]
    gains = []
    for b in sweep:
        u = unpacked if b == args.batch else best[f"no packing, batch {b}"]
        p = packed if b == args.batch else best[f"packing bfd, batch {b}"]
        # Skipping padding alone gains at most this much when a token costs the same packed or not.
        bound = (1 - p["padding_share"]) / (1 - u["padding_share"])
        gains.append((b, u["padding_share"], u["tokens_per_s"], p["tokens_per_s"], bound))
    sweep_table = [
        {
            "batch": b,
            "padding unpacked": f"{pad:.0%}",
            "tok/CPU-s unpacked": f"{u:,.0f}",
            "tok/CPU-s packed": f"{p:,.0f}",
            "packing gain": f"{p / u:.2f}x",
            "padding bound": f"{bound:.2f}x",
        }
        for b, pad, u, p, bound in gains
    ]
    spread = "; ".join(
        f"{n}: {min(v):,.0f}-{max(v):,.0f}"
        for n, v in rounds.items()
        if n in (unpacked["name"], packed["name"])
    )
    lines = [
        f"supervised-only LM head vs every position (no packing): {base / head:.2f}x",
        f"tok/CPU-s over {args.repeats} rounds (min-max): {spread}",
        f"target: bfd packing >= 1.5x no packing at batch {args.batch} -> {speedup:.2f}x "
        f"{'MET' if speedup >= 1.5 else 'NOT MET'}",
    ]
    print(text_table(table))
    print(lines[0])
    print(lines[1])
    if sweep_table:
        print(text_table(sweep_table))
    print(lines[2])
    out = args.out or work
    out.mkdir(parents=True, exist_ok=True)
    md = out / "train_bench.md"
    write_markdown(
        md,
        "bench/train_bench.py",
        [(None, header), (None, md_table(table)), (None, f"{lines[0]}; {lines[1]}")]
        + ([("Packing gain by batch size", md_table(sweep_table))] if sweep_table else [])
        + [(None, lines[2])],
    )
    png = out / "train_bench.png"
    _plot(results[:5], gains, args.batch, png)
    print(f"wrote {md} and {png}")


def _plot(results: list[dict], gains: list[tuple], batch: int, path: Path) -> None:
    """Left: tokens per CPU-second of each configuration; right: packing gain by batch size vs its bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if gains else 1, figsize=(12 if gains else 7, 4.2), squeeze=False)
    ax = axes[0][0]
    bars = ax.barh([r["name"] for r in results][::-1], [r["tokens_per_s"] for r in results][::-1])
    ax.bar_label(bars, fmt="{:,.0f}", fontsize=8)
    ax.set_xlabel("real tokens per CPU-second")
    ax.set_title(f"Tiny-model LoRA SFT on CPU, batch {batch}")
    if gains:
        ax = axes[0][1]
        xs = [g[0] for g in gains]
        ax.plot(xs, [g[3] / g[2] for g in gains], "o-", label="measured: packed / unpacked tokens/s")
        ax.plot(xs, [g[4] for g in gains], "s--", label="bound from padding alone")
        ax.axhline(1.5, color="grey", linestyle=":", label="target 1.5x")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("batch size (chats unpacked, rows packed)")
        ax.set_ylabel("packing gain")
        ax.set_title("Packing gain grows with the padding it removes")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
