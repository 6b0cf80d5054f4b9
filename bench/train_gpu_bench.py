"""GPU benchmark: LoRA and QLoRA training throughput and peak memory of a Qwen2.5-7B-shaped model.

    .venv/bin/python bench/train_gpu_bench.py [--methods lora,qlora] [--batch 2] [--seq-len 2048] [--steps 10]
        [--packing off,on] [--json OUT.json]

Throughput does not depend on the weights, so the model has Qwen2.5-7B's exact shape (28 layers, hidden 3584,
MLP 18944, 28 query / 4 KV heads, vocabulary 152,064) with random bf16 weights; nothing is downloaded.
Each step: full sequences of random tokens, bf16, SDPA attention, gradient checkpointing, LoRA r=8 alpha=16
on every linear layer of the blocks (as our recipes do), AdamW on the adapters. QLoRA quantises every block
linear layer to bitsandbytes NF4 with double quantisation (bf16 compute), as `method: qlora` loads it.
--packing: "off" feeds rows of one sequence each, padded to the longest of the batch; "on" fills each row of
--seq-len with several sequences (position ids restart at each), flash-attention varlen when flash_attn is
installed (attention stays within each sequence), else SDPA over the whole row (same FLOPs per token, but
attention crosses sequences: a throughput figure, not a training setup). Sequence lengths follow the align
chats' (log-normal, median 228 tokens, capped at --seq-len); tokens/s counts real tokens, never padding.
Printed: tokens/s over the timed steps (after --warmup steps) and peak allocated GPU memory, beside the
figures torchtune published for an 8B model (Llama-3-8B): LoRA 4,699 tok/s and 30.3 GiB on one A6000;
QLoRA 2,413 tok/s and 7.4 GiB on one RTX 4090. Different GPUs and settings: read them as orientation.
Needs a CUDA GPU (and bitsandbytes with CUDA for QLoRA); refuses clearly without one.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

TORCHTUNE = {
    "lora": ("4,699 tok/s", "30.3 GiB", "Llama-3-8B LoRA, 1x A6000 (torchtune)"),
    "qlora": ("2,413 tok/s", "7.4 GiB", "Llama-3-8B QLoRA, 1x RTX 4090 (torchtune)"),
}


def qwen25_7b_config():
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        use_cache=False,
    )


def chat_lengths(n: int, cap: int, seed: int) -> list[int]:
    """Lengths like the align chats' (median 228, long tail), for the packing comparison."""
    import random

    rng = random.Random(seed)
    return [max(16, min(cap, int(rng.lognormvariate(5.43, 0.35)))) for _ in range(n)]


def make_batch(packing: str, batch: int, seq_len: int, vocab: int, step: int):
    """(input_ids, labels, position_ids or None, real tokens) for one step."""
    import torch

    if packing == "off":
        lengths = chat_lengths(batch, seq_len, step)
        width = max(lengths)
        ids = torch.randint(0, vocab, (batch, width))
        labels = ids.clone()
        for i, n in enumerate(lengths):
            labels[i, n:] = -100
        mask = (labels != -100).long()
        return ids.cuda(), labels.cuda(), mask.cuda(), None, sum(lengths)
    rows, positions, real = [], [], 0
    for row in range(batch):
        pos, filled = [], 0
        for n in chat_lengths(64, seq_len, step * 1000 + row):
            take = min(n, seq_len - filled)
            pos += list(range(take))
            filled += take
            if filled >= seq_len:
                break
        rows.append(torch.randint(0, vocab, (seq_len,)))
        positions.append(torch.tensor(pos))
        real += seq_len
    ids = torch.stack(rows)
    return ids.cuda(), ids.clone().cuda(), None, torch.stack(positions).cuda(), real


def build_model(method: str, attn: str = "sdpa"):
    """Random-weight bf16 model on the GPU; for qlora, block linears replaced by NF4 Linear4bit layers."""
    import torch
    from transformers import Qwen2ForCausalLM

    config = qwen25_7b_config()
    config._attn_implementation = attn
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # never materialise 30 GB of fp32 weights
    try:
        # QLoRA is meant for GPUs smaller than the bf16 model: build on CPU, quantise layer by layer onto the GPU.
        with torch.device("cpu" if method == "qlora" else "cuda"):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    if method == "qlora":
        import bitsandbytes as bnb

        for layer in model.model.layers:
            for parent in (layer.self_attn, layer.mlp):
                for name, child in list(parent.named_children()):
                    if not isinstance(child, torch.nn.Linear):
                        continue
                    q = bnb.nn.Linear4bit(
                        child.in_features,
                        child.out_features,
                        bias=child.bias is not None,
                        compute_dtype=torch.bfloat16,
                        compress_statistics=True,  # double quantisation
                        quant_type="nf4",
                        device="cpu",
                    )
                    q.weight = bnb.nn.Params4bit(
                        child.weight.data.cpu(),
                        requires_grad=False,
                        compress_statistics=True,
                        quant_type="nf4",
                    ).cuda()
                    if child.bias is not None:
                        q.bias = torch.nn.Parameter(child.bias.data.cuda(), requires_grad=False)
                    setattr(parent, name, q)
                    del child
        model = model.cuda()  # embeddings, norms and lm_head stay bf16, as in a real QLoRA load
        gc.collect()
        torch.cuda.empty_cache()
    return model


def flash_available() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def bench(method: str, batch: int, seq_len: int, steps: int, warmup: int, packing: str = "full") -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    attn = "flash_attention_2" if packing == "on" and flash_available() else "sdpa"
    model = build_model(method, attn)
    torch.cuda.reset_peak_memory_stats()  # training memory, not the construction transient
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4, fused=True)
    vocab = model.config.vocab_size
    gen = torch.Generator(device="cuda").manual_seed(0)
    elapsed, real_tokens = 0.0, 0
    for step in range(warmup + steps):
        if packing == "full":  # every row one full-length sequence (the torchtune-comparable figure)
            ids = torch.randint(0, vocab, (batch, seq_len), device="cuda", generator=gen)
            labels, mask, positions, real = ids, None, None, batch * seq_len
        else:
            ids, labels, mask, positions, real = make_batch(packing, batch, seq_len, vocab, step)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=labels, attention_mask=mask, position_ids=positions).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= warmup:
            elapsed += time.perf_counter() - t0
            real_tokens += real
    result = {
        "method": method,
        "packing": packing,
        "attention": attn,
        "tokens_per_s": real_tokens / elapsed,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "trainable_m": sum(p.numel() for p in params) / 1e6,
        "loss": float(loss),
    }
    del model, optim, params
    gc.collect()
    torch.cuda.empty_cache()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="lora,qlora")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument(
        "--packing", default="full", help="comma list of full (every row one full sequence), off, on"
    )
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args()
    packings = [p.strip() for p in args.packing.split(",") if p.strip()]
    if bad := set(packings) - {"full", "off", "on"}:
        print(f"error: --packing: unknown {', '.join(sorted(bad))} (full, off, on)", file=sys.stderr)
        return 2
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if unknown := set(methods) - {"lora", "qlora"}:
        print(f"error: --methods: unknown {', '.join(sorted(unknown))} (lora, qlora)", file=sys.stderr)
        return 2
    import torch

    if not torch.cuda.is_available():
        print(
            "error: bench/train_gpu_bench.py needs a CUDA GPU (none visible: torch.cuda.is_available() is False); "
            "run bench/train_bench.py for the CPU benchmark",
            file=sys.stderr,
        )
        return 2
    if "qlora" in methods:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            print(
                "error: QLoRA needs bitsandbytes (pip install bitsandbytes) or use --methods lora",
                file=sys.stderr,
            )
            return 2
    gpu = torch.cuda.get_device_name(0)
    print(
        f"Qwen2.5-7B-shaped model, random bf16 weights, {gpu}; batch {args.batch} x {args.seq_len} tokens, "
        f"{args.steps} timed steps after {args.warmup} warm-up, gradient checkpointing, LoRA r=8 all linear"
    )
    print(f"flash_attn installed: {flash_available()}")
    print(f"{'run':<48}{'tokens/s':>12}{'peak GiB':>10}   reference (torchtune, 8B)")
    results = []
    for method in methods:
        for packing in packings:
            name = f"ours: {method}, packing {packing}"
            try:
                r = bench(method, args.batch, args.seq_len, args.steps, args.warmup, packing)
            except torch.OutOfMemoryError:
                print(f"{name:<48}{'OOM':>12}   lower --batch or --seq-len", flush=True)
                gc.collect()
                torch.cuda.empty_cache()
                continue
            results.append(r | {"gpu": gpu})
            ref_tps, ref_mem, ref_what = TORCHTUNE[method]
            label = f"{name} ({r['attention']})"
            print(
                f"{label:<48}{r['tokens_per_s']:>12,.0f}"
                f"{r['peak_gib']:>10.1f}   {ref_tps}, {ref_mem} ({ref_what})",
                flush=True,
            )
    if args.json:
        import json

        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
