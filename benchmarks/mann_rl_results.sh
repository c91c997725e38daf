#!/bin/sh
# Train MANN-RL, LSTM and NTM on logic, POS and sentences one after the other
# (single-threaded XLA), then score every run on train and held-out data.
# Budget: train.max_seconds in each config (MANN-RL 180 s, LSTM/NTM 120 s).
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/results}
mkdir -p "$OUT"
for model in mann-rl lstm ntm; do
  for task in logic pos sentences; do
    [ -d "$OUT/$model-$task" ] && continue
    .venv/bin/mannlab --threads single train configs/$model-$task.yaml \
      --run-dir "$OUT/$model-$task" --no-progress
  done
done
.venv/bin/python benchmarks/mann_rl_results.py "$OUT"/*-logic "$OUT"/*-pos "$OUT"/*-sentences \
  --json "$OUT/results.json" | tee "$OUT/results.md"
