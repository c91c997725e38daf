#!/bin/sh
# docs/results.md: train MANN-RL, LSTM and NTM on logic, POS and sentences one
# after the other (single-threaded XLA; budget: train.max_seconds in each
# config, MANN-RL 180 s, LSTM/NTM 120 s), score every run on its training and
# held-out splits (`mannlab eval`), and print the markdown table.
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/results}
mkdir -p "$OUT"
for model in mann-rl lstm ntm; do
  for task in logic pos sentences; do
    [ -d "$OUT/$model-$task" ] && continue
    .venv/bin/mannlab --threads single train "$model-$task" --run-dir "$OUT/$model-$task" --no-progress
    .venv/bin/mannlab eval "$OUT/$model-$task" --lengths
  done
done
.venv/bin/python benchmarks/results_table.py "$OUT"/*-logic "$OUT"/*-pos "$OUT"/*-sentences | tee "$OUT/results.md"
