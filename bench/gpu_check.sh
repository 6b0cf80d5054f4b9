#!/usr/bin/env bash
# Every check that needs a GPU, in one run of under 8 minutes on one H100/H200, all output in one folder:
#   bash bench/gpu_check.sh [OUT]        (default OUT: runs/gpu-check-<UTC date>)
# 1. CUDA smoke tests: `eat train` LoRA bf16 and QLoRA 4-bit, and `eat eval`, on the tiny models (tests/gpu);
# 2. bench/train_gpu_bench.py: Qwen2.5-7B-shaped LoRA and QLoRA, packing full/off/on (flash-attention varlen
#    where flash_attn is installed), tokens/s and peak memory beside torchtune's 8B figures;
# 3. bench/eval_gpu_bench.py: hf backend sentences/s at batch 32 and 128 on the same shape.
# Each step has its own time limit (a stuck step cannot eat the others' time); OUT/summary.md collects the
# exit codes, durations and the figures. Needs the project's venv (.venv, or $PYTHON) with a CUDA torch.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-runs/gpu-check-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$OUT"
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "error: no CUDA GPU visible to $PY (torch.cuda.is_available() is False)" >&2
    exit 2
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" -c "import torch, transformers, peft, trl; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| peft', peft.__version__, '| trl', trl.__version__)" > "$OUT/versions.txt" 2>&1
echo "# GPU check $(date -u +%Y-%m-%dT%H:%MZ)" > "$OUT/summary.md"
echo "$(head -1 "$OUT/versions.txt"); $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)" >> "$OUT/summary.md"
echo "| step | exit | seconds |" >> "$OUT/summary.md"
echo "|---|---:|---:|" >> "$OUT/summary.md"
failed=0
step() {  # step NAME LIMIT_SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s)"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "| $name | $rc | $((SECONDS - start)) |" >> "$OUT/summary.md"
    tail -5 "$OUT/$name.log"
    [ "$rc" -eq 0 ] || failed=1
}
# Limits add up to 7.5 minutes; a typical run takes less. QLoRA builds its 7B model on the CPU before
# quantising it, so it runs once (full rows); LoRA builds on the GPU and runs all three packing modes.
step cuda_smoke 90 "$PY" -m pytest tests/gpu -m gpu -p no:xdist -q -p no:cacheprovider
step train_gpu_bench_lora 150 "$PY" bench/train_gpu_bench.py --methods lora --packing full,off,on --steps 5 \
    --warmup 2 --json "$OUT/train_gpu_bench_lora.json"
step train_gpu_bench_qlora 120 "$PY" bench/train_gpu_bench.py --methods qlora --packing full --steps 5 \
    --warmup 2 --json "$OUT/train_gpu_bench_qlora.json"
step eval_gpu_bench 90 "$PY" bench/eval_gpu_bench.py --batch-sizes 32,128 --n 128 --json "$OUT/eval_gpu_bench.json"
{
    echo
    echo '## train_gpu_bench'
    echo '```'
    grep -hE "^(ours|run|Qwen|flash)" "$OUT"/train_gpu_bench_*.log || true
    echo '```'
    echo '## eval_gpu_bench'
    echo '```'
    grep -E "^(batch|NVIDIA|.*written)" "$OUT/eval_gpu_bench.log" || true
    echo '```'
} >> "$OUT/summary.md"
cat "$OUT/summary.md"
exit $failed
