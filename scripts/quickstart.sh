#!/usr/bin/env bash
# Set up an isolated environment, train an NTM on the copy task until it
# converges, evaluate how far it generalises, and write figures and a report.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
RUN="runs/ntm-copy-$(date +%Y%m%d-%H%M%S)"
.venv/bin/mannlab train configs/ntm-copy.yaml --run-dir "$RUN"
.venv/bin/mannlab eval "$RUN" --lengths 10 20 30 50 120
.venv/bin/mannlab show "$RUN" --length 20 -o "$RUN/copy-20.png"
.venv/bin/mannlab show "$RUN" --length 100 -o "$RUN/copy-100.png"
.venv/bin/mannlab report "$RUN" -o "$RUN/report.html"
echo "figures: $RUN/copy-20.png $RUN/copy-100.png; report: $RUN/report.html"
