#!/usr/bin/env bash
# The main job: set up, build a small Sudoku dataset offline, train a small HRM on CPU with the
# Accelerate script for a bounded time, evaluate it, write a Hub-ready checkpoint folder with its
# model card, and solve a held-out puzzle, printing and drawing its reasoning steps.
#
#   bash scripts/quickstart.sh                 # defaults below; everything lands in outputs/quickstart/
#   TRAIN_MINUTES=5 bash scripts/quickstart.sh # a shorter run
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-outputs/quickstart}
TRAIN_MINUTES=${TRAIN_MINUTES:-12}
SIZE=${SIZE:-4}
SEED=${SEED:-0}
PY=.venv/bin/python

echo "== 1/5 setting up .venv"
bash scripts/setup.sh

echo "== 2/5 building a ${SIZE}x${SIZE} Sudoku dataset (offline generator, unique solutions)"
$PY dataset_scripts/build_sudoku_dataset.py --source generate --size "$SIZE" --num-train 1000 --num-test 300 \
  --num-aug 20 --seed "$SEED" --output-dir "$OUT/data"

echo "== 3/5 training HRM for up to ${TRAIN_MINUTES} minutes on CPU (accelerate launch)"
.venv/bin/accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  training/train.py --config training/configs/sudoku_cpu.yaml --dataset "$OUT/data" --output_dir "$OUT/run" \
  --seed "$SEED" --max_train_minutes "$TRAIN_MINUTES"
MODEL=$(ls -d "$OUT"/run/checkpoint-*/model | sort -V | tail -1)
rm -rf "$OUT/model" && cp -r "$MODEL" "$OUT/model"

echo "== 4/5 evaluating $OUT/model on the held-out test split"
.venv/bin/hrm-evaluate --model "$OUT/model" --dataset "$OUT/data" --split test --output-dir "$OUT/eval"

echo "== 5/5 solving the held-out puzzle with the most blanks"
PUZZLE=$($PY - "$OUT/data" <<'EOF'
import sys
from dataset_scripts.common import load_hrm_dataset
from dataset_scripts.formats import decode_sudoku
import numpy as np
from dataset_scripts.common import dataset_arrays
ds, meta = load_hrm_dataset(sys.argv[1], "test")
inputs = dataset_arrays(ds)["inputs"]
hardest = int(np.argmax((inputs == 1).sum(1)))  # the test puzzle with the most blanks (token 1 = blank)
grid = decode_sudoku(inputs[hardest], meta["grid_height"])
print("".join(str(v) if v else "." for v in grid.reshape(-1)))
EOF
)
.venv/bin/hrm-solve --model "$OUT/model" --sudoku "$PUZZLE" --show-steps --trace "$OUT/trace.gif"

$PY - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
res = json.load(open(f"{out}/eval/results.json"))
m = res.get("metrics", res)
print(f"SUMMARY: HRM on held-out {res.get('num_examples', m.get('num_examples'))} Sudoku puzzles: "
      f"exact accuracy {m['exact_accuracy']:.1%}, token accuracy {m['token_accuracy']:.1%}, "
      f"mean ACT steps {m['mean_steps']:.2f}; model in {out}/model (model card README.md), "
      f"trace in {out}/trace.gif, evaluation in {out}/eval/")
EOF
