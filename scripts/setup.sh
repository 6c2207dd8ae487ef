#!/usr/bin/env bash
# Create .venv (if missing) and install hrm with its dependencies, CPU torch first so that
# pip never pulls a multi-GB CUDA build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "hrm installed in $(pwd)/.venv"
