#!/usr/bin/env bash
# Set up an isolated environment and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || sudo apt-get install -y -qq chromium
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
# pytest exits 5 when it collects no tests; treat that as failure like any other.
.venv/bin/python -m pytest tests
