#!/usr/bin/env bash
# The main job: set up, build a small Sudoku dataset offline, train a small recursive model (TRM) and the
# same-size Transformer side by side on CPU for the same time, evaluate both, and solve a deep held-out puzzle
# with both, printing whether each answer is valid. The recursive model's checkpoint folder is Hub-ready
# (model card included); the trace of its solution is drawn step by step.
#
# Equal time: RECURSIVE_STEPS and BASELINE_STEPS are what each model does in 5 minutes on one core of a quiet machine
# (benchmarks/compare_depth.py measures the rates; docs/RESULTS.md, "Where recursion pays"). TRAIN_MINUTES caps
# each run on a slower or busy machine (fewer steps then, and lower accuracy).
#
#   bash scripts/quickstart.sh                  # defaults below; everything lands in outputs/quickstart/
#   MODEL=hrm bash scripts/quickstart.sh        # HRM instead of TRM (TRM won the equal-time comparison)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-outputs/quickstart}
TRAIN_MINUTES=${TRAIN_MINUTES:-9}
MODEL=${MODEL:-trm}
case "$MODEL" in
  trm) RECURSIVE_STEPS=${RECURSIVE_STEPS:-2064} ;;
  hrm) RECURSIVE_STEPS=${RECURSIVE_STEPS:-2333} ;;
  *) echo "MODEL must be trm or hrm, got '$MODEL'" >&2; exit 2 ;;
esac
BASELINE_STEPS=${BASELINE_STEPS:-3990}
SEED=${SEED:-0}
PY=.venv/bin/python

echo "== 1/5 setting up .venv"
bash scripts/setup.sh

echo "== 2/5 building a 4x4 Sudoku dataset (offline generator, unique solutions, depth = propagation rounds)"
$PY dataset_scripts/build_sudoku_dataset.py --source generate --size 4 --num-train 1000 --num-test 300 \
  --num-aug 20 --seed "$SEED" --output-dir "$OUT/data" --quiet

echo "== 3/5 training ${MODEL^^} ($RECURSIVE_STEPS steps) and the same-size Transformer ($BASELINE_STEPS steps) side by side, one CPU core each (~5 min on a quiet machine, at most $TRAIN_MINUTES)"
rm -rf "$OUT/run-$MODEL" "$OUT/run-baseline"
train() {  # config, steps, output folder, log
  OMP_NUM_THREADS=1 .venv/bin/accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no \
    --dynamo_backend no training/train.py --config "$1" --dataset "$OUT/data" --output_dir "$3" --seed "$SEED" \
    --max_steps "$2" --max_train_minutes "$TRAIN_MINUTES" --disable_tqdm true >"$4" 2>&1
}
train "training/configs/depth_$MODEL.yaml" "$RECURSIVE_STEPS" "$OUT/run-$MODEL" "$OUT/train-$MODEL.log" &
recursive_pid=$!
train training/configs/depth_baseline.yaml "$BASELINE_STEPS" "$OUT/run-baseline" "$OUT/train-baseline.log" &
baseline_pid=$!
wait "$recursive_pid" || { echo "training ${MODEL^^} failed; see $OUT/train-$MODEL.log"; exit 1; }
wait "$baseline_pid" || { echo "training the baseline failed; see $OUT/train-baseline.log"; exit 1; }
rm -rf "$OUT/model" "$OUT/baseline" && cp -r "$OUT/run-$MODEL/model" "$OUT/model" && cp -r "$OUT/run-baseline/model" "$OUT/baseline"

echo "== 4/5 evaluating both on the 300 held-out test puzzles"
.venv/bin/hrm-evaluate --model "$OUT/model" --dataset "$OUT/data" --split test --output-dir "$OUT/eval" --num-examples 0
.venv/bin/hrm-evaluate --model "$OUT/baseline" --dataset "$OUT/data" --split test --output-dir "$OUT/eval-baseline" \
  --num-examples 0 --scaling-steps none

echo "== 5/5 a deep held-out puzzle: ${MODEL^^} vs the same-size Transformer"
PUZZLE=$($PY - "$OUT" <<'EOF'
# The deepest test puzzle (most propagation rounds, then most blanks) that the recursive model solves and the
# Transformer gets wrong; if there is none, the deepest one the recursive model solves, else the deepest one.
import sys
import numpy as np
import torch
from dataset_scripts.common import dataset_arrays, load_hrm_dataset
from modeling_hrm.loading import load_pretrained_model
from training.evaluation import row_scores, run_solve

out = sys.argv[1]
torch.set_num_threads(1)
ds, meta = load_hrm_dataset(f"{out}/data", "test")
arrays = dataset_arrays(ds)
right = {}
for name in ("model", "baseline"):
    with torch.no_grad():
        res = run_solve(load_pretrained_model(f"{out}/{name}", device="cpu").eval(), arrays)
    right[name] = row_scores(res["predictions"], arrays["labels"])[0]
depth = np.asarray(ds["rounds"]) * 100 + (arrays["inputs"] == 1).sum(1)
for mask in (right["model"] & ~right["baseline"], right["model"], np.ones(len(depth), bool)):
    if mask.any():
        i = int(np.flatnonzero(mask)[np.argmax(depth[mask])])
        break
n = meta["grid_height"]
print("".join(str(v - 1) if v > 1 else "." for v in arrays["inputs"][i]))
print(f"test puzzle {i}: {int(ds['rounds'][i])} propagation rounds, {int((arrays['inputs'][i] == 1).sum())} blanks; "
      f"{int((right['model'] & ~right['baseline']).sum())} of {len(depth)} test puzzles are solved by the recursive "
      f"model and missed by the Transformer, {int((~right['model'] & right['baseline']).sum())} the other way round",
      file=sys.stderr)
EOF
)
echo "-- ${MODEL^^} (recursive, $OUT/model), all segments as evaluated:"
.venv/bin/hrm-solve --model "$OUT/model" --sudoku "$PUZZLE" --show-steps --no-early-exit --trace "$OUT/trace.gif"
echo "-- the same-size Transformer (one pass, $OUT/baseline):"
.venv/bin/hrm-solve --model "$OUT/baseline" --sudoku "$PUZZLE"

$PY - "$OUT" "$MODEL" <<'EOF'
import json, sys
out, model = sys.argv[1], sys.argv[2].upper()
rec = json.load(open(f"{out}/eval/results.json"))
base = json.load(open(f"{out}/eval-baseline/results.json"))
print(f"SUMMARY: on 300 held-out 4x4 Sudoku puzzles after the same training time, {model} exact accuracy "
      f"{rec['exact_accuracy']:.1%} (token {rec['token_accuracy']:.1%}, mean ACT steps {rec['mean_steps']:.2f}), "
      f"same-size Transformer {base['exact_accuracy']:.1%}; model in {out}/model (model card README.md), "
      f"trace in {out}/trace.gif, evaluations in {out}/eval*/")
EOF
