#!/usr/bin/env bash
# Set up, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_THREAD_LIMIT=1
# Two processes: the suite is mostly OCR, and each test file is independent.
exec .venv/bin/python -m pytest -n 2 "$@"
