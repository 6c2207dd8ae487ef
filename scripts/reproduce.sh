#!/usr/bin/env bash
# Reproduce one published result: build the exact dataset, train with the paper's recipe, evaluate with the
# paper's protocol (scripts/reproduce.py does the work; docs/REPRODUCE.md has the table).
#
#   bash scripts/reproduce.sh TASK MODEL --dry-run     # the plan: dataset, build command, steps, evaluations, GPU-hours
#   bash scripts/reproduce.sh sudoku-extreme trm-mlp   # build data/..., train runs/sudoku-extreme-trm-mlp, evaluate
#   bash scripts/reproduce.sh arc-agi-1 trm-att --source PATH/TO/arc-agi_concept_challenges.json \
#       --launcher "accelerate launch --num_processes 4"
#
# TASK: sudoku-extreme | maze-hard | arc-agi-1 | arc-agi-2; MODEL: hrm | trm-att | trm-mlp (Sudoku only).
# Env: PYTHON (default: the repository's .venv, else python3).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
cd "$ROOT"
exec "$PY" scripts/reproduce.py "$@"
