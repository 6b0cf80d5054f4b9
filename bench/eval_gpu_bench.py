"""GPU benchmark: sentences/s of the hf backend (EAT stages 1 and 3) on a Qwen2.5-7B-shaped model.

    .venv/bin/python bench/eval_gpu_bench.py [--batch-sizes 32,128] [--n 128] [--max-new-tokens 32] [--json OUT]

Speed does not depend on the weights: the model has Qwen2.5-7B's shape (bench/train_gpu_bench.py) with random
bf16 weights, saved once to a temporary folder with the tiny ChatML tokenizer, so nothing is downloaded.
Random weights never emit EOS, so every reply runs to its token limit: the figures are a floor for real
models, whose replies end early. Stage 2 is scripted (fixed English entities per sentence), as in
bench/eval_bench.py; stages 1 and 3 run through `Pipeline` exactly as `eat eval` runs them.
Needs a CUDA GPU; refuses clearly without one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_model_folder(folder: Path) -> Path:
    """The tiny tokenizer with a random bf16 Qwen2.5-7B-shaped model, written as safetensors."""
    import torch
    from transformers import Qwen2ForCausalLM

    from bench.train_gpu_bench import qwen25_7b_config
    from training.tiny import build_tiny_causal_lm

    build_tiny_causal_lm(folder)  # tokenizer + chat template (its tiny weights are replaced below)
    config = qwen25_7b_config()
    config.use_cache = True
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(folder, safe_serialization=True)
    del model
    torch.cuda.empty_cache()
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", default="32,128")
    ap.add_argument("--n", type=int, default=128, help="sentences (WikiANN zh dev)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/wikiann-dev/dev-zh.tsv"))
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument(
        "--cpu-smoke", action="store_true", help=argparse.SUPPRESS
    )  # wiring check: tiny model, CPU
    args = ap.parse_args()
    import torch

    device = "cpu" if args.cpu_smoke else "cuda"
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("error: bench/eval_gpu_bench.py needs a CUDA GPU (none visible); bench/eval_bench.py is the CPU one",
              file=sys.stderr)  # fmt: skip
        return 2
    from bench.eval_bench import ScriptedTagger
    from eat.prompts import load_prompts
    from evaluation.backends.hf import HFBackend
    from evaluation.config import EvalRecipe
    from evaluation.formats import load_dataset_file
    from evaluation.pipeline import Pipeline

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke run, tiny model)"
    tmp = tempfile.TemporaryDirectory()
    t0 = time.perf_counter()
    if args.cpu_smoke:
        from training.tiny import build_tiny_causal_lm

        model = build_tiny_causal_lm(Path(tmp.name) / "tiny")
    else:
        model = build_model_folder(Path(tmp.name) / "qwen2.5-7b-shape")
    print(f"{gpu}: Qwen2.5-7B-shaped random model written in {time.perf_counter() - t0:.0f} s")
    sentences = load_dataset_file(args.data, "auto", "zh")[: args.n]
    prompts = load_prompts()
    results = []
    for batch in [int(b) for b in args.batch_sizes.split(",") if b.strip()]:
        cfg = EvalRecipe(model=str(model), data=args.data, lang="zh", out=tmp.name,
                         max_new_tokens=args.max_new_tokens, batch_size=batch)  # fmt: skip
        backend = HFBackend(str(model), batch_size=batch, device=device)
        backend.generate(
            [prompts.conversation("translate", "zh", sentence=sentences[0].text)], 2, cfg.decoding_kwargs()
        )
        pipeline = Pipeline(cfg, backend, prompts=prompts)
        tagger = ScriptedTagger({})
        jobs = [(s, name) for s in sentences for _, name in tagger.entities(max(1, len(s.gold)))]
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        pipeline.translate(sentences)
        pipeline.align(jobs)
        sync()
        seconds = time.perf_counter() - t0
        r = {"gpu": gpu, "batch_size": batch, "sentences": len(sentences), "entities": len(jobs),
             "seconds": seconds, "sentences_per_s": len(sentences) / seconds,
             "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0, "max_new_tokens": args.max_new_tokens}  # fmt: skip
        results.append(r)
        print(f"batch {batch:>4}: {r['sentences_per_s']:8.2f} sentences/s ({len(sentences)} sentences, "
              f"{len(jobs)} entities, {seconds:.1f} s), peak {r['peak_gib']:.1f} GiB", flush=True)  # fmt: skip
        backend.close()
        del backend, pipeline
        if device == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
