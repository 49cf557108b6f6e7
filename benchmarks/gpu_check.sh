#!/bin/bash
# The first GPU run (#19), one command: on a CUDA machine, from the repository root,
#   bash benchmarks/gpu_check.sh [FOLDER]          (default: gpu-check-DATE/)
# reports what is installed, runs every gpu/trt test, builds fp32 and fp16 engines for every zoo model,
# compares each with its PyTorch weights, and benches trt, ort-trt, ort-cuda and torch, writing every
# result into FOLDER (summary.txt lists each step and its exit status). Without a GPU it exits 2.
# Settings: MODELS (zoo names), BENCH_MODELS, ROUNDS, BATCHES, GOLDEN (a folder of golden .npz files made
# elsewhere with `gantool compare MODEL --save-golden`: each is checked against this machine's engines),
# GANTOOL and PY (the commands), STEP_TIMEOUT (seconds per step).
set -uo pipefail
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi is missing or fails); nothing was run." >&2
  exit 2
fi
OUT=${1:-gpu-check-$(date +%Y%m%d-%H%M%S)}
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}
GANTOOL=${GANTOOL:-$PY -m gantool.cli}
MODELS=${MODELS:-gan dcgan cgan cdcgan cgan-in cwgan}
BENCH_MODELS=${BENCH_MODELS:-cdcgan dcgan}
ROUNDS=${ROUNDS:-5}
BATCHES=${BATCHES:-1,8,64,256}
STEP_TIMEOUT=${STEP_TIMEOUT:-1800}
mkdir -p "$OUT"/engines "$OUT"/compare "$OUT"/bench
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=0

step() {  # step NAME LOG COMMAND...: run it with its output in LOG, and record its exit status
  local name=$1 log=$2
  shift 2
  echo "== $name" >&2
  local t0=$SECONDS
  timeout "$STEP_TIMEOUT" "$@" > "$log" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && FAILED=$((FAILED + 1))
  printf '%-52s rc=%-4s %5ss  %s\n' "$name" "$rc" "$((SECONDS - t0))" "${log#"$OUT"/}" | tee -a "$SUMMARY" >&2
  return 0
}

# 1. what is installed
{
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
  command -v nvcc >/dev/null && nvcc --version
  $PY - <<'PYEOF'
import importlib, json, platform
info = {"python": platform.python_version()}
for name in ("gantool", "numpy", "onnx", "onnxruntime", "tensorrt", "torch", "cuda.bindings"):
    try:
        m = importlib.import_module(name)
        info[name] = getattr(m, "__version__", "installed")
    except Exception as e:
        info[name] = f"missing ({type(e).__name__})"
try:
    import onnxruntime as ort
    info["onnxruntime_providers"] = ort.get_available_providers()
except Exception:
    pass
try:
    import torch
    info["torch_cuda"] = torch.version.cuda
    info["torch_cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        info["torch_device"] = torch.cuda.get_device_name(0)
        info["torch_capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
except Exception:
    pass
print(json.dumps(info, indent=2))
PYEOF
} > "$OUT/environment.txt" 2>&1
echo "environment: $OUT/environment.txt" | tee -a "$SUMMARY" >&2

# 2. every gpu/trt test
step "pytest -m 'gpu or trt'" "$OUT/pytest.txt" $PY -m pytest -m "gpu or trt" -rs -q --junitxml="$OUT/pytest.xml"

# 3. fp32 and fp16 engines for every zoo model, and 4. each compared with its PyTorch weights
for m in $MODELS; do
  for p in fp32 fp16; do
    plan="$OUT/engines/$m.$p.plan"
    step "build $m $p" "$OUT/engines/$m.$p.txt" $GANTOOL build --model "$m" --precision "$p" -o "$plan" \
      --timing-cache "$OUT/engines/gantool.timing-cache"
    if [ -f "$plan" ]; then
      step "compare $m (torch) $m.$p.plan" "$OUT/compare/$m.$p.txt" $GANTOOL compare "$m" "$plan" \
        --json "$OUT/compare/$m.$p.json"
    fi
  done
  step "compare $m (torch) $m (torch-cuda)" "$OUT/compare/$m.torch-cuda.txt" $GANTOOL compare "$m" "$m" \
    --engine-b torch-cuda --tolerance fp16 --json "$OUT/compare/$m.torch-cuda.json"
done
if [ -n "${GOLDEN:-}" ]; then
  for g in "$GOLDEN"/*.npz; do
    [ -f "$g" ] || continue
    stem=$(basename "$g" .npz)
    for plan in "$OUT"/engines/"$stem".*.plan; do
      [ -f "$plan" ] || continue
      step "compare golden $stem $(basename "$plan")" "$OUT/compare/golden.$(basename "$plan").txt" \
        $GANTOOL compare "$g" "$plan" --json "$OUT/compare/golden.$(basename "$plan").json"
    done
  done
fi

# 5. the GPU engines side by side, on the plain and the lowered graph
for m in $BENCH_MODELS; do
  step "bench $m" "$OUT/bench/$m.txt" $GANTOOL bench --model "$m" --engine trt,ort-trt,ort-cuda,torch \
    --graph plain,lowered --batch "$BATCHES" --rounds "$ROUNDS" --no-cold-start --json "$OUT/bench/$m.json"
  step "bench $m, CUDA graphs" "$OUT/bench/$m.cuda-graph.txt" $GANTOOL bench --model "$m" --engine trt \
    --cuda-graph --batch "$BATCHES" --rounds "$ROUNDS" --no-cold-start --json "$OUT/bench/$m.cuda-graph.json"
done

echo "gpu_check: $FAILED step(s) failed; results in $OUT (summary.txt)" | tee -a "$SUMMARY" >&2
[ "$FAILED" -eq 0 ]
