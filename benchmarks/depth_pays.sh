#!/usr/bin/env bash
# Where recursion pays, in an open world: rebuild the 6x6 Sudoku family (distinct puzzles, a validation split,
# test buckets by depth, training puzzles no deeper than 4 propagation rounds; its card proves that no test answer
# is a training answer) and run the headline of docs/RESULTS.md §1: TRM and HRM against parameter- and
# compute-matched Transformers, each tuned on the same learning-rate x warm-up grid on the validation split, at
# one training-FLOP budget per run, 3 seeds; then print, last, the RESULT line.
#
#   bash benchmarks/depth_pays.sh                        # seeds 0 1 2, 16 TFLOP per run (6 grid cells x 5 models + 2 seeds x 5: 40 runs)
#   SEEDS="0 1" BUDGET_TFLOPS=8 bash benchmarks/depth_pays.sh
#   PYTHON=/path/to/python TASK=sudoku6 bash benchmarks/depth_pays.sh
#
# Runs two trainings side by side, one thread each; finished runs are kept (outputs/open_world/TASK/) and skipped
# when the script runs again, so an interrupted benchmark resumes. Budgets are FLOPs (modeling_hrm/flops.py); the
# wall clock each run took is recorded beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
TASK=${TASK:-sudoku6}
BUDGET_TFLOPS=${BUDGET_TFLOPS:-16}
DATA=${DATA:-data/open/$TASK}

case "$TASK" in
  sudoku6) build=(--size 6 --num-train 30000 --train-max-rounds 4 --num-val 50 --num-test 200
                  --eval-buckets "1-2,3,4,5,6,7+,search" --num-aug 0 --seed 0) ;;
  *) echo "error: TASK must be sudoku6, got '$TASK'" >&2; exit 2 ;;
esac

# The build is deterministic (seeded, the same for any number of worker processes): rebuilding a finished
# benchmark's folder gives the same rows. SKIP_BUILD=1 reuses the folder as it is.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building $DATA (open-world $TASK: its card states the overlap with training and the depth histogram)"
  "$PYTHON" dataset_scripts/build_sudoku_dataset.py --source generate "${build[@]}" --output-dir "$DATA" --quiet
fi
# shellcheck disable=SC2086
"$PYTHON" benchmarks/open_world.py all --task "$TASK" --dataset "$DATA" --budget-tflops "$BUDGET_TFLOPS" --seeds $SEEDS
