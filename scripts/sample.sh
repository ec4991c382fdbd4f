#!/usr/bin/env bash
# Set up, then run formscan on the bundled sample scans and print the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/formscan extract fixtures/scans -o out/sample.jsonl
.venv/bin/python -m bench.accuracy out/sample.jsonl --truth fixtures/truth
