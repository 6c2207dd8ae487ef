#!/usr/bin/env bash
# Where recursion pays (issue 11): rebuild the depth-knob data set and reproduce the headline comparison of HRM,
# TRM and the same-size Transformer at equal training time, then print the RESULT line (means over SEEDS).
#
#   bash benchmarks/depth_pays.sh                      # seeds 0 1 2 (about 3 x 5 x 3 = 45 minutes on a quiet machine)
#   SEEDS=0 bash benchmarks/depth_pays.sh              # one seed
#   PYTHON=/path/to/python MINUTES=8 bash benchmarks/depth_pays.sh
#
# Timing: benchmarks/compare_depth.py measures every model's training-step rate back to back in one process (ratios
# that survive a busy machine) and trains each model for MINUTES x 60 x its rate steps, one thread per run, two runs
# side by side. ANCHOR is the baseline's steps/s on a quiet machine (3,189 steps in 4 minutes, docs/RESULTS.md §2):
# with it, MINUTES are quiet-machine minutes whatever else runs; ANCHOR= (empty) uses the rates measured now.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
MINUTES=${MINUTES:-5}
ANCHOR=${ANCHOR-13.3}
TASK=${TASK:-sudoku4}
DATA=${DATA:-data/depth/sudoku4}

echo "== building $DATA (4x4 Sudoku, depth = rounds of parallel single-propagation, stated in its card)"
"$PYTHON" dataset_scripts/build_sudoku_dataset.py --source generate --size 4 --num-train 1000 --num-test 300 \
  --num-aug 20 --seed 0 --output-dir "$DATA" --quiet

anchor=()
[ -n "$ANCHOR" ] && anchor=(--anchor-steps-per-second "$ANCHOR")
# shellcheck disable=SC2086
common=(--task "$TASK" --dataset "$DATA" --minutes "$MINUTES" --seeds $SEEDS "${anchor[@]}")

echo "== measuring the training-step rate of each model (one process, interleaved, one thread)"
"$PYTHON" benchmarks/compare_depth.py speed "${common[@]}"
echo "== training HRM, TRM and the baseline for $MINUTES minutes each, seeds: $SEEDS"
"$PYTHON" benchmarks/compare_depth.py run "${common[@]}"
echo "== evaluating on the whole test split (per depth, inference-time scaling) and plotting"
"$PYTHON" benchmarks/compare_depth.py report "${common[@]}"
