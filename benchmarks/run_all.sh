#!/bin/bash
# The full benchmark run behind benchmarks/results/ and the README's tables. Run it on an idle
# machine from the repository root with the dev extras (and openvino) installed:
#   bash benchmarks/run_all.sh            (ROUNDS=10 for a shorter run)
set -euo pipefail
GANTOOL=${GANTOOL:-.venv/bin/gantool}
PY=${PY:-.venv/bin/python}
# Another machine's run goes beside the first: OUT=benchmarks/results/bench/xeon-amx MORE=$OUT
OUT=${OUT:-benchmarks/results/bench}
MORE=${MORE:-benchmarks/results}
# A part of the run: STEPS="tune bench auto overhead" (default: every step, in this order)
STEPS=${STEPS:-export tune bench auto lowering serve overhead}
for s in $STEPS; do
  case $s in export|tune|bench|auto|lowering|serve|overhead) ;; *) echo "run_all.sh: unknown step $s; allowed: export tune bench auto lowering serve overhead" >&2; exit 2;; esac
done
step() { [[ " $STEPS " == *" $1 "* ]]; }
mkdir -p "$OUT"
ALL=runtime,ort,ort-plain,ort-fp16,ort-int8,ort-int8u,openvino,openvino-bf16,torch,torch-bf16,torch-compile,trt,ort-cuda,ort-trt
# The 64x64 models' variant families go into the runtime's cache (the 28x28 ones ship theirs).
step export && for m in dcgan cgan-in; do $GANTOOL export --model $m --variants --to-cache; done
# No --threads: the runtime row is what an app gets (its tuned choice); the other engines use every core.
# First each model's tuning, on its own, so that it is cached before the timed rounds.
step tune && for m in cdcgan dcgan gan cgan cwgan cgan-in; do
  for p in fp32 auto; do $GANTOOL tune --model $m --precision $p --json $OUT/$m.tune-$p.json; done
done
step bench && for m in cdcgan dcgan; do
  $GANTOOL bench --model $m --engine $ALL --batch 1,8,64,256 --rounds ${ROUNDS:-20} --json $OUT/$m.json -o $OUT/$m.png | tee $OUT/$m.txt
done
step bench && for m in gan cgan cwgan cgan-in; do
  $GANTOOL bench --model $m --engine runtime,ort,ort-plain,ort-int8u,openvino,openvino-bf16,torch,torch-bf16 --batch 1,8,64,256 --rounds ${ROUNDS:-20} \
    --json $OUT/$m.json -o $OUT/$m.png | tee $OUT/$m.txt
done
step auto && for m in cdcgan dcgan gan cgan cwgan cgan-in; do
  $GANTOOL bench --model $m --precision auto --engine runtime,ort,openvino-bf16,torch-bf16 --batch 1,256 --rounds ${ROUNDS:-20} \
    --no-cold-start --json $OUT/$m-auto.json | tee $OUT/$m-auto.txt
done
step lowering && $PY benchmarks/lowering.py --model cdcgan --model dcgan --threads 2 --json $MORE/lowering.json | tee $MORE/lowering.txt
step serve && $PY benchmarks/load_test.py --model cdcgan --threads 2 --requests 512 --json $MORE/serve_load.json | tee $MORE/serve_load.txt
step overhead && $PY benchmarks/overhead.py --model cdcgan --model gan --model dcgan --batch 1,64 --threads 2 --rounds ${ROUNDS:-20} --json $MORE/overhead.json | tee $MORE/overhead.txt
exit 0
