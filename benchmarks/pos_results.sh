#!/bin/sh
# docs/results.md, POS section: MANN-RL (both schedule readings), its
# no-memory control, an LSTM and an NTM on UPOS tagging of UD English EWT with
# frozen GloVe 6B 50-d vectors (pip install -e '.[glove]'), each for SECONDS
# of training clock (default 1800; single-threaded XLA, one run at a time
# unless JOBS=2), scored on the whole training and held-out splits, then the
# table and the learning curves (train.score_every: F1 on 2,000 training
# sentences and the held-out split).
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/pos}
SECONDS_=${SECONDS:-1800}
mkdir -p "$OUT"
run() {  # name config overrides...
  name=$1; shift
  [ -d "$OUT/$name" ] || .venv/bin/mannlab --threads single train "$@" \
    train.max_seconds="$SECONDS_" --run-dir "$OUT/$name" --no-progress
  .venv/bin/mannlab eval "$OUT/$name" --lengths > /dev/null
}
run mann-rl mann-rl-pos-glove
run mann-rl-time-steps mann-rl-pos-glove train.mann_rl.schedule=time_steps
run mann-rl-no-memory mann-rl-pos-glove model.no_memory=true
run lstm lstm-pos task.vectors=glove-6b-50d
run ntm ntm-pos task.vectors=glove-6b-50d
.venv/bin/python benchmarks/results_table.py --curves "$OUT"/mann-rl "$OUT"/mann-rl-time-steps \
  "$OUT"/mann-rl-no-memory "$OUT"/lstm "$OUT"/ntm | tee "$OUT/results.md"
