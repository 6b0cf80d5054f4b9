"""Sentences/s of the batched EAT pipeline vs a one-at-a-time loop like the authors' code.

Both sides use the same sentences, model, prompts and max_new_tokens, and the same scripted English NER
(fixed English entities per sentence, so both align the same number of entities). The baseline makes one
`generate` call per turn per sentence, and per turn per entity, as the authors' code does; ours batches
each turn across all sentences (stage 1) and all entities (stage 3), length-sorted; a chat's later turns
start from the KV cache kept from its previous turn, a batch's shared opening (system prompt, instruction)
is computed once, and prompts are prefilled in groups of similar length apart from the batched decoding
(--no-reuse-kv: plain left-padded batched `generate` instead).
Random-weight tiny models never emit EOS, so both sides generate exactly max_new_tokens per reply.

    python bench/eval_bench.py                       # tiny model, 32 WikiANN zh dev sentences, CPU
    python bench/eval_bench.py --device cuda --n 128 --batch-size 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eat.prompts import load_prompts  # noqa: E402
from evaluation.backends.hf import HFBackend  # noqa: E402
from evaluation.config import EvalRecipe  # noqa: E402
from evaluation.formats import load_dataset_file  # noqa: E402
from evaluation.pipeline import Pipeline  # noqa: E402

NAMES = ["Beijing", "Li Bai", "Peking University", "Taipei", "Quanta Computer"]
TYPES = ["LOC", "PER", "ORG", "LOC", "ORG"]


class ScriptedTagger:
    """Fixed English entities per sentence: as many as the sentence has gold entities (at least one)."""

    name = "scripted-bench"

    def __init__(self, counts: dict[str, int]):
        self.counts = counts

    def entities(self, n: int) -> list[tuple[str, str]]:
        return [(TYPES[k % len(TYPES)], NAMES[k % len(NAMES)]) for k in range(n)]


def one_at_a_time(backend: HFBackend, prompts, sentences, n_entities, max_new_tokens, decoding) -> int:
    """The authors' loop: each turn of each chat is its own generate call. Returns the number of calls."""
    calls = 0
    for s, n in zip(sentences, n_entities, strict=True):
        replies: list[str] = []
        for _ in range(prompts.num_turns("translate")):
            chat = prompts.conversation("translate", s.lang, replies=replies, sentence=s.text)
            replies += backend.generate([chat], max_new_tokens, decoding)
            calls += 1
        for _, name in ScriptedTagger({}).entities(n):
            answer: list[str] = []
            for _ in range(prompts.num_turns("align")):
                chat = prompts.conversation("align", s.lang, replies=answer, phrase=name, sentence=s.text)
                answer += backend.generate([chat], max_new_tokens, decoding)
                calls += 1
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/wikiann-dev/dev-zh.tsv"))
    parser.add_argument("--lang", default="zh")
    parser.add_argument("--n", type=int, default=32, help="sentences")
    parser.add_argument("--model", help="causal LM folder (default: build the tiny random-weight model)")
    parser.add_argument("--prompts", help="prompt file (default: ours)")
    parser.add_argument(
        "--baseline-prompts",
        help="prompt file of the baseline loop (default: the same as ours); e.g. the authors' 3-turn prompts "
        "to compare with their code as it is",
    )
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--no-reuse-kv", action="store_true", help="ours without KV reuse: plain left-padded batched generate"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--out", default=None, help="folder for eval_bench.md and .png (default: a temp folder)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating timed rounds; the best is reported"
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}, device: {args.device or 'auto'}")
    tmp = tempfile.TemporaryDirectory()
    model = args.model
    if model is None:
        from training.tiny import build_tiny_causal_lm

        model = str(build_tiny_causal_lm(Path(tmp.name) / "tiny-qwen2"))
    sentences = load_dataset_file(args.data, "auto", args.lang)[: args.n]
    n_entities = [max(1, len(s.gold)) for s in sentences]
    cfg = EvalRecipe(
        model=model,
        data=args.data,
        lang=args.lang,
        out=tmp.name,
        max_new_tokens=args.max_new_tokens,
        prompts=args.prompts,
        batch_size=args.batch_size,
    )
    prompts = load_prompts(args.prompts)
    base_prompts = load_prompts(args.baseline_prompts) if args.baseline_prompts else prompts
    decoding = cfg.decoding_kwargs()

    ours_backend = HFBackend(
        model, batch_size=args.batch_size, device=args.device, reuse_kv=not args.no_reuse_kv
    )
    base_backend = HFBackend(model, batch_size=1, device=args.device)
    # Warm-up (first-call overheads) on both, outside the timings.
    warm = [prompts.conversation("translate", args.lang, sentence=sentences[0].text)]
    ours_backend.generate(warm, 2, decoding)
    base_backend.generate(warm, 2, decoding)

    # Stage 2 is scripted on both sides (the same fixed English entities per sentence, no model call), so
    # both align exactly the same entities; stages 1 and 3 are what is timed. Rounds alternate ours and the
    # baseline and the best round of each is reported, so a busy machine does not favour either side.
    pipeline = Pipeline(cfg, ours_backend, prompts=prompts)
    tagger = ScriptedTagger({})
    jobs = [(s, name) for s, n in zip(sentences, n_entities, strict=True) for _, name in tagger.entities(n)]
    # CPU time of this process is reported too: on a machine shared with other jobs it is far less noisy
    # than wall time (both sides use the same torch threads).
    ours_times, base_times, ours_cpu, base_cpu = [], [], [], []
    for _ in range(args.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        pipeline.translate(sentences)
        pipeline.align(jobs)
        ours_times.append(time.perf_counter() - t0)
        ours_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        calls = one_at_a_time(
            base_backend, base_prompts, sentences, n_entities, args.max_new_tokens, decoding
        )
        base_times.append(time.perf_counter() - t0)
        base_cpu.append(time.process_time() - c0)
    ours, base = min(ours_times), min(base_times)
    stats = ours_backend.stats
    n_align_ours, n_align_base = len(jobs), sum(n_entities)

    n = len(sentences)
    print(f"sentences: {n}, max_new_tokens: {args.max_new_tokens}, batch size: {args.batch_size}")
    print(f"entities aligned: ours {n_align_ours}, baseline {n_align_base}")
    print(
        f"baseline (one generate per turn per item, {calls} calls): {base:.2f} s, {n / base:.2f} sentences/s"
    )
    print(f"ours (batched turn by turn):                    {ours:.2f} s, {n / ours:.2f} sentences/s")
    if ours_backend.reuse_kv:
        total = max(1, stats["prompt_tokens"])
        print(
            f"ours, prompt tokens not recomputed: {stats['reused_tokens'] / total:.0%} from the previous turn's "
            f"KV, {stats['shared_tokens'] / total:.0%} from a batch's shared opening"
        )
    print(f"speed-up: {base / ours:.1f}x (best of {args.rounds} alternating rounds)")
    cpu_ours, cpu_base = min(ours_cpu), min(base_cpu)
    print(
        f"CPU time (best round): ours {cpu_ours:.2f} s, baseline {cpu_base:.2f} s, ratio {cpu_base / cpu_ours:.1f}x"
    )
    print(
        f"all rounds (s): ours {[round(t, 2) for t in ours_times]}, baseline {[round(t, 2) for t in base_times]}"
    )
    from bench.report import bar_chart, md_table, write_markdown

    out = Path(args.out) if args.out else Path(tempfile.gettempdir()) / "eat-eval-bench"
    table = [
        {"run": f"baseline: one generate per turn per item ({calls} calls)", "wall s": f"{base:.2f}",
         "CPU s": f"{cpu_base:.2f}", "sentences/s": f"{n / base:.2f}"},
        {"run": "ours: batched turn by turn, KV kept", "wall s": f"{ours:.2f}", "CPU s": f"{cpu_ours:.2f}",
         "sentences/s": f"{n / ours:.2f}"},
    ]  # fmt: skip
    write_markdown(
        out / "eval_bench.md",
        "bench/eval_bench.py",
        [
            (None, f"{n} sentences of {args.data} ({args.lang}), model {Path(model).name}, max_new_tokens "
                   f"{args.max_new_tokens} (ours: capped per turn by the prompts), batch size {args.batch_size}, "
                   f"best of {args.rounds} alternating rounds; prompts: ours {prompts.path}, baseline "
                   f"{base_prompts.path}"),
            (None, md_table(table)),
            (None, f"speed-up: {base / ours:.1f}x wall, {cpu_base / cpu_ours:.1f}x CPU (target >= 5x)"),
        ],
    )  # fmt: skip
    bar_chart(out / "eval_bench.png", ["baseline (one chat at a time)", "ours (batched, KV kept)"],
              [n / base, n / ours], "sentences per second", "EAT stages 1 and 3 on CPU")  # fmt: skip
    print(f"wrote {out / 'eval_bench.md'} and {out / 'eval_bench.png'}")


if __name__ == "__main__":
    main()
