#!/bin/bash
# session 15's trimmed run (the run_all.sh steps tune, fp32 bench at 1 and 256, auto, overhead), ROUNDS=6
set -e
cd /work/main
G=.venv/bin/gantool
OUT=benchmarks/results/bench/epyc-s15
mkdir -p $OUT
for m in cdcgan dcgan gan cgan cwgan cgan-in; do
  for p in fp32 auto; do $G tune --model $m --precision $p --json $OUT/$m.tune-$p.json > /dev/null 2>>$OUT/tune.log; done
done
echo "tuned $(date)"
for m in cdcgan dcgan gan cgan cwgan cgan-in; do
  $G bench --model $m --engine runtime,ort,ort-plain,ort-int8,ort-int8u,openvino,openvino-bf16,torch-bf16 --batch 1,256 --rounds 6 --no-cold-start --json $OUT/$m.json | tee $OUT/$m.txt
done
echo "fp32 done $(date)"
for m in cdcgan dcgan gan cgan cwgan cgan-in; do
  $G bench --model $m --precision auto --engine runtime,ort,openvino-bf16,torch-bf16 --batch 1,256 --rounds 6 --no-cold-start --json $OUT/$m-auto.json | tee $OUT/$m-auto.txt
done
echo "auto done $(date)"
.venv/bin/python benchmarks/overhead.py --model gan --model cgan --model cdcgan --batch 1 --threads 2 --rounds 10 --json $OUT/overhead.json | tee $OUT/overhead.txt
echo "all done $(date)"
