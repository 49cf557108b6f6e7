#!/bin/bash
# The full benchmark run behind benchmarks/results/ and the README's tables. Run it on an idle
# machine from the repository root with the dev extras (and openvino) installed:
#   bash benchmarks/run_all.sh
set -euo pipefail
GANTOOL=${GANTOOL:-.venv/bin/gantool}
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/bench
mkdir -p "$OUT"
ALL=runtime,ort,ort-plain,ort-fp16,ort-int8,openvino,torch,torch-compile,trt,ort-cuda,ort-trt
for m in cdcgan dcgan; do
  $GANTOOL bench --model $m --engine $ALL --batch 1,8,64,256 --threads 2 --rounds 20 --json $OUT/$m.json -o $OUT/$m.png | tee $OUT/$m.txt
done
for m in gan cgan cwgan cgan-in; do
  $GANTOOL bench --model $m --engine runtime,ort,ort-plain,openvino,torch --batch 1,8,64,256 --threads 2 --rounds 20 --json $OUT/$m.json -o $OUT/$m.png | tee $OUT/$m.txt
done
$PY benchmarks/lowering.py --model cdcgan --model dcgan --threads 2 --json benchmarks/results/lowering.json | tee benchmarks/results/lowering.txt
$PY benchmarks/load_test.py --model cdcgan --threads 2 --requests 512 --json benchmarks/results/serve_load.json | tee benchmarks/results/serve_load.txt
$PY benchmarks/overhead.py --model cdcgan --model gan --model dcgan --batch 1,64 --threads 2 --rounds 20 --json benchmarks/results/overhead.json | tee benchmarks/results/overhead.txt
