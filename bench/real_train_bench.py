"""LoRA training on the real Qwen2.5 0.5B on CPU: `eat train` with the shipped recipe vs a plain peft loop.

    .venv/bin/python bench/real_train_bench.py --out runs/real-train-bench      # ~10 min on 2 idle cores

Both sides train the same align chats (the `eat wiki sft --tasks align --shift-fraction 0.5` train split of
the authors' zh and ja corpora, built here with the project's commands unless --data names one) with LoRA
r=8, alpha 16 on all linear layers, fp32, AdamW at 4e-4, loss on the last assistant reply only:
  - the reference loop (the one issue #11 quotes at 18 s a step and 13 GB): `AutoModelForCausalLM` +
    `get_peft_model`, a batch of --chats-per-step chats padded to the longest, `model(labels=...)` so the LM
    head scores every position over the full vocabulary;
  - ours: `run_sft` on `recipes/qwen2.5-0.5b_lora_cpu.yaml` (bfd packing into 512-token rows, attention
    within each chat, the LM head on supervised positions only), once as shipped (one row a step) and once
    with as many rows a step as hold about --chats-per-step chats (equal work per step).
Each configuration runs in its own process (peak RSS is that process's) for --steps steps; the first step
is not timed. Printed: seconds per step, per chat and per 1,000 real tokens (wall and CPU), and peak RSS.
Writes real_train_bench.md and .png into --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
MODELS = Path(os.environ.get("EAT_REAL_MODELS") or Path.home() / ".cache" / "eat-ner" / "real-models")
RECIPE = REPO / "recipes" / "qwen2.5-0.5b_lora_cpu.yaml"


def build_data(out: Path) -> Path:
    """The align split real_quality.py trains on, made with the project's own commands (reused if there)."""
    sft = out / "sft-align"
    if (sft / "dataset_dict.json").is_file():
        return sft
    eat = [sys.executable, "-m", "eat"]
    pairs = []
    for lang in ("zh", "ja"):
        corpus = SHARED / "eat-corpus" / f"corpus_{lang}.json"
        subprocess.run(
            [*eat, "wiki", "import-eat", "--corpus", corpus, "--lang", lang, "--out", out / f"pairs-{lang}"],
            check=True, capture_output=True,
        )  # fmt: skip
        pairs += ["--pairs", out / f"pairs-{lang}"]
    subprocess.run(
        [*eat, "wiki", "sft", *pairs, "--out", sft, "--tasks", "align", "--shift-fraction", "0.5",
         "--max-per-lang", "375", "--val-fraction", "0.2"],
        check=True, capture_output=True,
    )  # fmt: skip
    return sft


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_loop(model_dir: Path, data: Path, steps: int, chats_per_step: int) -> dict:
    """The plain loop: padded batches, full-vocabulary loss through `labels`."""
    import torch
    from datasets import load_from_disk
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.sft_data import tokenize_chat

    tok = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.use_cache = False
    config = LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    model = get_peft_model(model, config)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=4e-4)
    rows = load_from_disk(str(data))["train"]
    encoded = [tokenize_chat(tok, rows[i]["messages"]) for i in range(steps * chats_per_step)]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    timed = {"seconds": 0.0, "cpu": 0.0, "chats": 0, "tokens": 0, "losses": []}
    for step in range(steps):
        batch = encoded[step * chats_per_step : (step + 1) * chats_per_step]
        width = max(len(e["input_ids"]) for e in batch)
        ids = torch.full((len(batch), width), pad)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = (
                torch.tensor(e["input_ids"]),
                torch.tensor(e["labels"]),
                1,
            )
        t0, c0 = time.perf_counter(), time.process_time()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step > 0:
            timed["seconds"] += time.perf_counter() - t0
            timed["cpu"] += time.process_time() - c0
            timed["chats"] += len(batch)
            timed["tokens"] += int(mask.sum())
        timed["losses"].append(round(float(loss), 4))
    return timed | {"steps": steps - 1, "peak_rss_mib": peak_rss_mib()}


def run_ours(model_dir: Path, data: Path, steps: int, rows_per_step: int, work: Path) -> dict:
    """`eat train` on the shipped recipe, as `eat train RECIPE key=value ...` would run it."""
    os.environ["EAT_NO_PROGRESS"] = "1"
    import trl
    from transformers import TrainerCallback

    from eat.recipes import load_recipe
    from training.sft import run_sft

    timed = {"seconds": 0.0, "cpu": 0.0, "chats": 0, "tokens": 0, "losses": [], "on": False}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            timed["on"] = state.global_step >= 1
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            if timed["on"]:
                timed["seconds"] += time.perf_counter() - self.t0
                timed["cpu"] += time.process_time() - self.c0

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                timed["losses"].append(round(float(logs["loss"]), 4))

    original = trl.SFTTrainer.compute_loss

    def compute_loss(self, model, inputs, *a, **k):
        if timed["on"] and model.training:  # a chat starts wherever the position ids restart
            timed["chats"] += int((inputs["position_ids"] == 0).sum())
            timed["tokens"] += int((inputs["input_ids"] != self.processing_class.pad_token_id).sum())
        return original(self, model, inputs, *a, **k)

    trl.SFTTrainer.compute_loss = compute_loss
    shutil.rmtree(work / f"ours-{rows_per_step}", ignore_errors=True)  # each run starts afresh
    recipe = load_recipe(
        RECIPE,
        [
            f"model.name_or_path={model_dir}",
            f"data.path={data}",
            "data.eval_split=null",
            f"training.output_dir={work / f'ours-{rows_per_step}'}",
            f"training.max_steps={steps}",
            f"training.per_device_train_batch_size={rows_per_step}",
            "training.save_steps=100000",
            "training.resume=never",
        ],
        kinds=["sft"],
    )
    run_sft(recipe, callbacks=[Clock()])
    timed.pop("on")
    return timed | {"steps": steps - 1, "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/real-train-bench"))
    ap.add_argument("--model", type=Path, default=MODELS / "qwen2.5-coder-0.5b-instruct")
    ap.add_argument(
        "--data", type=Path, default=None, help="an `eat wiki sft` folder (default: built in --out)"
    )
    ap.add_argument("--steps", type=int, default=3, help="steps per configuration; the first is not timed")
    ap.add_argument("--chats-per-step", type=int, default=9, help="the loop's batch (600 chats / 64 steps)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_rows", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    out = args.out.resolve()
    if args._child:
        import torch

        torch.set_num_threads(args.threads)
        if args._child == "loop":
            result = run_loop(args.model, args.data, args.steps, args.chats_per_step)
        else:
            result = run_ours(args.model, args.data, args.steps, args._rows, out)
        print("RESULT " + json.dumps(result), flush=True)
        return

    if not args.model.is_dir():
        sys.exit(f"error: model not found at {args.model}; make it with ../shared/tools/real-models")
    out.mkdir(parents=True, exist_ok=True)
    data = (args.data or build_data(out)).resolve()
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from training.sft_data import tokenize_chat

    tok = AutoTokenizer.from_pretrained(args.model)
    lengths = [
        len(tokenize_chat(tok, r["messages"])["input_ids"]) for r in load_from_disk(str(data))["train"]
    ]
    mean = statistics.mean(lengths)
    rows = max(1, math.ceil(args.chats_per_step * mean / 512))
    header = (
        f"{len(lengths)} align chats in {data}: tokens mean {mean:.0f}, median {statistics.median(lengths):.0f}, "
        f"max {max(lengths)}; {args.steps} steps per configuration (first not timed); {args.threads} torch "
        f"threads; fp32 CPU; model {args.model.name}"
    )
    print(header, flush=True)
    configs = [
        (f"plain peft loop: {args.chats_per_step} chats padded, full-vocabulary head", "loop", 1),
        ("eat train, recipe as shipped: 1 packed row of 512", "ours", 1),
        (f"eat train, {rows} packed rows of 512 (~{args.chats_per_step} chats)", "ours", rows),
    ]
    results = []
    for name, child, n_rows in configs:
        cmd = [sys.executable, __file__, "--_child", child, "--_rows", str(n_rows), "--out", str(out),
               "--model", str(args.model), "--data", str(data), "--steps", str(args.steps),
               "--chats-per-step", str(args.chats_per_step), "--threads", str(args.threads)]  # fmt: skip
        env = os.environ | {"OMP_NUM_THREADS": str(args.threads)}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"run {name!r} failed:\n{proc.stderr[-3000:]}")
        r = json.loads(line[7:]) | {"name": name, "process_s": time.perf_counter() - t0}
        print(f"{name}: {r['seconds'] / r['steps']:.1f} s/step, {r['seconds'] / r['chats']:.2f} s/chat, "
              f"{r['peak_rss_mib']:,.0f} MiB peak RSS", flush=True)  # fmt: skip
        results.append(r)

    from bench.report import md_table, text_table, write_markdown

    loop = results[0]
    table = [
        {
            "run": r["name"],
            "chats/step": f"{r['chats'] / r['steps']:.1f}",
            "s/step": f"{r['seconds'] / r['steps']:.1f}",
            "s/chat": f"{r['seconds'] / r['chats']:.2f}",
            "CPU-s/chat": f"{r['cpu'] / r['chats']:.2f}",
            "s/1k real tokens": f"{1000 * r['seconds'] / r['tokens']:.1f}",
            "peak RSS GiB": f"{r['peak_rss_mib'] / 1024:.1f}",
            "vs loop (s/chat)": f"{(loop['seconds'] / loop['chats']) / (r['seconds'] / r['chats']):.2f}x",
        }
        for r in results
    ]
    print(text_table(table))
    md = out / "real_train_bench.md"
    write_markdown(md, "bench/real_train_bench.py", [(None, header), (None, md_table(table))])
    png = out / "real_train_bench.png"
    _plot(results, png)
    (out / "real_train_bench.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"wrote {md} and {png}")


def _plot(results: list[dict], path: Path) -> None:
    """Seconds per chat and peak RSS per configuration, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in results][::-1]
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6))
    bars = axes[0].barh(names, [r["seconds"] / r["chats"] for r in results][::-1])
    axes[0].bar_label(bars, fmt="{:.2f}", fontsize=8)
    axes[0].set_xlabel("wall seconds per training chat (lower is better)")
    bars = axes[1].barh(names, [r["peak_rss_mib"] / 1024 for r in results][::-1])
    axes[1].bar_label(bars, fmt="{:.1f}", fontsize=8)
    axes[1].set_xlabel("peak RSS, GiB")
    axes[1].set_yticks([])
    fig.suptitle("LoRA r=8 on the real Qwen2.5 0.5B, fp32 on CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
