#!/usr/bin/env bash
# GPU check, one command on a fresh CUDA machine, from anywhere:  bash benchmarks/gpu_check.sh
#
# 1. picks a Python whose torch sees CUDA ($PYTHON, else .venv/bin/python, else python3; no
#    network needed: fermixnet runs from src/ with PYTHONPATH, the image's packages are used);
# 2. runs the tests that need CUDA (pytest -m cuda);
# 3. times FERMix co-training at 224 px, bf16 autocast, channels_last, batch 64 + 64 mixed, on a
#    RAF-DB-sized uint8 set kept on the GPU (and through DataLoader workers), and prints images/s
#    and the projected time of the paper's RAF-DB recipe (50 epochs);
# 4. runs `fermixnet train` itself (the RAF-DB recipe on generated faces, data.on_device, AMP
#    auto = bf16, channels_last auto) for two short epochs: the engine's own GPU path;
# 5. writes everything to benchmarks/gpu_results/ (and to $OUT when set, for remote runners).
# Paste the printed summary into benchmarks/RESULTS.md.
#
# Options via the environment: PYTHON=/path/to/python, GPU_STEPS=60 (timed steps per path),
# GPU_WORKERS=8 (DataLoader workers, 0 to skip), GPU_COMPILE=1 (also time torch.compile),
# SKIP_TESTS=1, DRY_RUN=1 (CPU, tiny sizes: checks this script itself on a machine without GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RESULTS=${OUT:-$ROOT/benchmarks/gpu_results}
mkdir -p "$RESULTS"
LOG="$RESULTS/gpu_check.log"
exec > >(tee "$LOG") 2>&1

DEVICE=cuda
if [ "${DRY_RUN:-0}" = "1" ]; then DEVICE=cpu; fi
has_cuda_torch() {
    [ "$DEVICE" = cpu ] && "$1" -c "import torch" 2>/dev/null && return 0
    "$1" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null
}

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    for candidate in "$ROOT/.venv/bin/python" python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && has_cuda_torch "$candidate"; then
            PY=$candidate
            break
        fi
    done
fi
if [ -z "$PY" ] || ! has_cuda_torch "$PY"; then
    echo "gpu_check: no Python whose torch sees a CUDA device."
    echo "Make one: python3 -m venv .venv && .venv/bin/pip install torch torchvision" \
         "&& .venv/bin/pip install -e '.[test]', or set PYTHON=..."
    nvidia-smi 2>/dev/null || echo "(nvidia-smi not found)"
    exit 2
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
echo "== gpu_check $(date -u '+%Y-%m-%d %H:%M UTC') in $ROOT, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== python: $PY"
"$PY" - <<'EOF'
import platform, torch
gpu = (f"GPU {torch.cuda.get_device_name(0)}, "
       f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB"
       if torch.cuda.is_available() else "no GPU (dry run)")
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}, {gpu}")
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null
missing=$("$PY" - <<'EOF'
import importlib.util
need = ["numpy", "PIL", "safetensors", "yaml", "tqdm", "torchvision", "pytest"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then
    echo "gpu_check: missing Python packages: $missing (pip install -e '.[test]' where a registry is reachable)"
fi

status=0
if [ "${SKIP_TESTS:-0}" != "1" ]; then
    echo "== pytest -m cuda"
    "$PY" -m pytest -m cuda -q -p no:cacheprovider tests 2>&1 | tail -n 25
    rc=${PIPESTATUS[0]}
    # 5: no tests collected (no CUDA-marked tests): not a failure of the machine.
    if [ "$rc" != 0 ] && [ "$rc" != 5 ]; then status=1; fi
    echo "pytest -m cuda exit status: $rc"
fi

echo "== co-training throughput, 224 px, bf16, channels_last, B=64 + 64 mixed"
args=(--device "$DEVICE" --size 224 --batch 64 --steps "${GPU_STEPS:-60}" --workers "${GPU_WORKERS:-8}"
      --out "$RESULTS/gpu_train.json")
if [ "${GPU_COMPILE:-0}" = "1" ]; then args+=(--compile); fi
if [ "$DEVICE" = cpu ]; then args+=(--smoke); fi
"$PY" benchmarks/gpu_train.py "${args[@]}" >/dev/null || status=1
"$PY" - "$RESULTS/gpu_train.json" <<'EOF' || status=1
import json, sys
d = json.load(open(sys.argv[1]))
r, m = d["results"], d["machine"]
print(f"machine: {m.get('gpu')}, torch {m['torch']}, {m['date']}")
print(f"| data path | step ms | main images/s | main + mixed images/s | projected RAF-DB 50 epochs |")
print(f"|---|---|---|---|---|")
for path in ("device", "workers", "compiled_device"):
    if f"{path}_step_s" in r:
        s = r[f"{path}_step_s"]
        print(f"| {path} | {1e3 * s:.1f} | {r[f'{path}_images_per_s']:.0f} | "
              f"{2 * r[f'{path}_images_per_s']:.0f} | {r[f'{path}_projected_50_epochs_min']:.1f} min |")
print(f"evaluation of 3,068 test images: {r['eval_s']:.2f} s; CUDA peak {r.get('cuda_peak_gib', float('nan')):.1f} GiB")
best = min(v for k, v in r.items() if k.endswith("_projected_50_epochs_min"))
print(f"target: RAF-DB 50-epoch recipe under 10 min -> {'PASS' if best < 10 else 'MISS'} ({best:.1f} min)")
EOF
echo "== engine smoke: fermixnet train, RAF-DB recipe on synthetic faces, data.on_device, amp auto (bf16)"
ENGINE="$RESULTS/engine"
rm -rf "$ENGINE"
if [ "$DEVICE" = cpu ]; then synth=(--size 32 --train 128 --val 32 --test 32); size=32; epochs=1
else synth=(--size 224 --train 2048 --val 256 --test 512); size=224; epochs=2; fi
"$PY" -m fermixnet.cli data synth --out "$ENGINE/synth" "${synth[@]}" --workers "$(nproc)" >/dev/null \
  && "$PY" -m fermixnet.cli train --config configs/rafdb_resnet18.yaml --out "$ENGINE/run" --set \
       "data.train=[manifest:$ENGINE/synth]" "data.test=[manifest:$ENGINE/synth]" \
       "data.cache_dir=$ENGINE/cache" data.on_device=true model.input_size=$size \
       train.epochs=$epochs train.device=$DEVICE 2>&1 | grep -E "^epoch|rror" \
  || status=1
"$PY" - "$ENGINE/run/metrics.json" <<'EOF' || status=1
import json, sys
d = json.load(open(sys.argv[1]))
h = d["history"][-1]
print(f"engine: status {d['status']}, last epoch {h['images_per_s']:.0f} main images/s, "
      f"{h['time_s']:.1f} s (train + validation)")
EOF
echo "== done (status $status); log: $LOG"
exit $status
