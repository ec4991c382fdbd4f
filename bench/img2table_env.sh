#!/usr/bin/env bash
# Create .venv-img2table for bench/speed.py's img2table contender. It is a virtualenv of its own:
# img2table pulls opencv-contrib-python, which clashes with formscan's opencv-python-headless.
# Tesseract itself (with chi_sim) comes from the Debian packages scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${IMG2TABLE_VENV:-.venv-img2table}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "img2table_env: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q 'img2table>=2,<3'
"$VENV/bin/python" -c "import img2table, importlib.metadata as m; print('img2table', m.version('img2table'), 'in $VENV')"
