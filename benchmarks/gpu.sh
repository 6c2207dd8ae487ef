#!/usr/bin/env bash
# GPU figures in one call (issue 12.5): training steps of HRM and TRM at the papers' sizes (fp32, bf16 as the
# original, bf16 compiled), solve throughput, and a short Sudoku 9x9 training run on freshly generated data.
# Everything goes to $OUT (default benchmarks/results/gpu/): gpu_figures.jsonl (one JSON line per figure, with
# the GPU's name and the command), gpu_figures.md (the tables), gpu.log (the whole output).
#
#   bash benchmarks/gpu.sh --wheels   # on the development machine, once: wheels the GPU image lacks -> .gpuwhl/
#   bash benchmarks/gpu.sh            # on a GPU machine (carry .gpuwhl): about 6 minutes
#   bash benchmarks/gpu.sh --smoke    # tiny sizes on the CPU: checks the script end to end
#   bash benchmarks/gpu.sh reproduce  # TRM-MLP Sudoku-Extreme-1k for ~8 minutes, exact accuracy vs steps on a fixed
#                                     # 10,000-puzzle sample of the test set -> $OUT/reproduce_trm_mlp_sudoku.{jsonl,md}
#                                     # (needs the sapientinc/sudoku-extreme CSVs: SUDOKU_CSV=folder, else the Hub)
#
# The GPU image lacks datasets, evaluate and adam-atan2; `--wheels` downloads them (about 57 MB, git-ignored
# through .git/info/exclude) and the script installs them into /tmp/site when it finds them missing.
# Env: PYTHON (interpreter, default python3), OUT, BUDGET_S (wall seconds for the whole script, default 360),
# PARTS (default "bench train"; "train" runs only the training run).
set -u
if [ "${1:-}" = "--wheels" ]; then
    grep -qxF '/.gpuwhl/' .git/info/exclude 2> /dev/null || echo '/.gpuwhl/' >> .git/info/exclude
    # pyarrow 26 as on the development machine: with pyarrow 24, evaluate.load failed on the GPU image
    # (PicklingError on pyarrow's MonthDayNano while hashing).
    exec "${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpuwhl \
        datasets==5.2.0 evaluate==0.4.6 dill==0.4.1 multiprocess==0.70.19 pyarrow==26.0.1 adam-atan2-pytorch==0.4.1
fi
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ "${1:-}" = "reproduce" ]; then PARTS=reproduce; OUT=${OUT:-benchmarks/results/gpu/reproduce}; fi
PY=${PYTHON:-python3}
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
START=$(date +%s)
BUDGET_S=${BUDGET_S:-360}

if ls .gpuwhl/*.whl > /dev/null 2>&1 && ! "$PY" -c "import datasets, evaluate, adam_atan2_pytorch" 2> /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpuwhl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__,
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2> /dev/null || true

PARTS=${PARTS:-bench train}
# ---- 1. model benchmarks: one process, so CUDA and imports start once ----
[[ " $PARTS " == *" bench "* ]] && SMOKE=$SMOKE OUT=$OUT START=$START BUDGET_S=$BUDGET_S "$PY" - << 'EOF'
import gc, json, os, sys, time, traceback
import torch
sys.path.insert(0, "benchmarks")
import bench_model

smoke = os.environ["SMOKE"] == "1"
out = os.environ["OUT"] + "/gpu_figures.jsonl"
deadline = int(os.environ["START"]) + int(os.environ["BUDGET_S"]) - (30 if smoke else 160)  # leave time to train
if smoke:
    common = ["--device", "cpu", "--threads", "2", "--batch-size", "8", "--hidden-size", "32", "--num-heads", "4",
              "--steps", "2", "--warmup", "1", "--no-peak"]
    hrm, trm, segments = ["--layers", "1"], ["--model", "trm", "--layers", "1", "--cycles", "2", "2"], "2"
else:
    common = ["--device", "cuda", "--batch-size", "768", "--hidden-size", "512", "--num-heads", "8",
              "--steps", "10", "--warmup", "3"]
    hrm, trm, segments = ["--layers", "4"], ["--model", "trm", "--layers", "2"], "16"
runs = [  # most wanted first: the script stops starting new runs at its deadline
    hrm + ["--dtype", "bf16", "--compare-compile"],
    hrm + ["--dtype", "fp32"],
    trm + ["--dtype", "bf16"],
    trm + ["--dtype", "fp32"],
    hrm + ["--dtype", "bf16", "--halt-only"],
    trm + ["--mlp-t", "--dtype", "bf16"],
    hrm + ["--dtype", "bf16", "--solve", segments],
    trm + ["--dtype", "bf16", "--solve", segments],
    trm + ["--mlp-t", "--dtype", "bf16", "--solve", segments],
    trm + ["--dtype", "bf16", "--compare-compile"],
    hrm + ["--dtype", "bf16", "--solve", segments, "--compare-compile"],
]
for extra in runs:
    if smoke:  # compilation is covered by tests/test_compile.py and takes minutes on a small CPU
        extra = [a for a in extra if a not in ("--compile", "--compare-compile")]
    argv = common + extra + ["--output", out]
    compiling = "--compile" in extra or "--compare-compile" in extra
    if time.time() + (0 if smoke else 110 if compiling else 20) > deadline:
        print("SKIPPED (time budget):", " ".join(extra))
        continue
    batch = int(argv[argv.index("--batch-size") + 1])
    while True:  # the paper's batch, halved until it fits
        try:
            t0 = time.time()
            bench_model.main(argv)
            print(f"  ({time.time() - t0:.0f} s)")
            break
        except torch.cuda.OutOfMemoryError:
            batch //= 2
            print("out of memory; batch", batch)
            argv[argv.index("--batch-size") + 1] = str(batch)
            if batch < 32:
                break
        except Exception:
            traceback.print_exc()
            print("FAILED:", " ".join(extra))
            break
        finally:
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
EOF

# ---- 2. a short Sudoku 9x9 training run: the paper's HRM recipe (27M, batch 768, bf16 forward as the original) on
#         freshly generated puzzles; eager (compilation would eat a minute of the two), evaluated at the end ----
if [[ " $PARTS " == *" train "* ]]; then
DATA=/tmp/hrm-gpu-sudoku9
RUN=/tmp/hrm-gpu-run
rm -rf "$DATA" "$RUN"
if [ "$SMOKE" = 1 ]; then
    BUILD=(--num-train 20 --num-test 10 --num-aug 2)
    TRAIN=(--hidden_size 32 --num_heads 4 --H_layers 1 --L_layers 1 --puzzle_emb_ndim 32 --global_batch_size 16
           --max_steps 6 --halt_max_steps 2 --mixed_precision no --forward_dtype bfloat16 --eval_batch_size 16
           --logging_steps 2)
else
    BUILD=(--num-train 300 --num-test 100 --num-aug 300)
    TRAIN=(--global_batch_size 768 --learning_rate 1e-4 --lr_warmup_steps 100 --logging_steps 20
           --mixed_precision no --forward_dtype bfloat16 --eval_batch_size 100)
fi
"$PY" dataset_scripts/build_sudoku_dataset.py --source generate --size 9 --seed 0 --quiet --output-dir "$DATA" "${BUILD[@]}"
LEFT=$(( BUDGET_S - ($(date +%s) - START) - 45 ))
MINUTES=$(awk -v s="$LEFT" 'BEGIN { m = s / 60; if (m < 0.5) m = 0.5; printf "%.2f", m }')
echo "training for at most $MINUTES minutes"
TRAIN_CMD=("$PY" training/train.py --config training/configs/sudoku_extreme_1k.yaml --dataset "$DATA" --output_dir "$RUN"
           --max_train_minutes "$MINUTES" --eval_steps 100000 --save_steps 100000 --report_to none --disable_tqdm true
           "${TRAIN[@]}")
echo "${TRAIN_CMD[*]}"
T0=$(date +%s)
"${TRAIN_CMD[@]}" > "$OUT/train_stdout.txt"
echo "training exit code $? after $(( $(date +%s) - T0 )) s"
fi

# ---- 2b. reproduce (issue 19): the TRM-MLP Sudoku-Extreme-1k recipe as published (data, model, batch, optimiser,
#          EMA, bf16) for REPRODUCE_MINUTES, evaluated every REPRODUCE_EVAL_STEPS steps on a fixed 10,000-puzzle sample
#          of the full test set (seed 0), so the curve can be set against the published time-to-accuracy ----
if [[ " $PARTS " == *" reproduce "* ]]; then
SRC=${SUDOKU_CSV:-sapientinc/sudoku-extreme}
DATA=/tmp/hrm-gpu-sudoku-extreme
REPRO_RUN=/tmp/hrm-gpu-reproduce
rm -rf "$DATA" "$REPRO_RUN"
"$PY" dataset_scripts/build_sudoku_dataset.py --output-dir "$DATA" --source csv --csv-dir "$SRC" --subsample-size 1000 \
    --num-aug 1000 --test-subsample-size 10000 --seed 0 --quiet || echo "reproduce: build failed (is $SRC reachable?)"
if [ -f "$DATA/hrm_dataset.json" ]; then
    REPRO_CMD=("$PY" training/train.py --config training/configs/trm_sudoku_extreme_1k_mlp.yaml --dataset "$DATA"
               --output_dir "$REPRO_RUN" --max_train_minutes "${REPRODUCE_MINUTES:-8}" --eval_steps "${REPRODUCE_EVAL_STEPS:-300}"
               --save_steps 100000 --report_to none --disable_tqdm true --logging_steps 50 --eval_batch_size 2000
               ${REPRODUCE_ARGS:-})  # REPRODUCE_ARGS: extra options, e.g. a tiny model to check the script on a CPU
    echo "${REPRO_CMD[*]}"
    T0=$(date +%s)
    "${REPRO_CMD[@]}" > "$OUT/reproduce_stdout.txt"
    echo "reproduce: training exit code $? after $(( $(date +%s) - T0 )) s"
    OUT=$OUT RUN=$REPRO_RUN CMD="${REPRO_CMD[*]}" "$PY" - << 'EOF'
import json, os
from pathlib import Path

out, run = Path(os.environ["OUT"]), Path(os.environ["RUN"])
records = [json.loads(line) for line in open(run / "metrics.jsonl")] if (run / "metrics.jsonl").exists() else []
train = [r for r in records if "train/loss" in r]
evals = [r for r in records if "eval/exact_accuracy" in r]
import yaml

batch = yaml.safe_load((run / "train_config.yaml").read_text())["training"]["global_batch_size"]
rate = sorted(r["train/examples_per_second"] for r in train[1:] or train)
step_s = batch / rate[len(rate) // 2] if rate else None
rows = [{"step": r["step"], "exact_accuracy": r["eval/exact_accuracy"],
         "hours_at_median_step_time": r["step"] * step_s / 3600 if step_s else None} for r in evals]
(out / "reproduce_trm_mlp_sudoku.jsonl").write_text("".join(
    json.dumps(dict(r, median_step_s=step_s, command=os.environ["CMD"])) + "\n" for r in rows))
lines = ["TRM-MLP Sudoku-Extreme-1k (trm_sudoku_extreme_1k_mlp.yaml), exact accuracy on a fixed 10,000-puzzle "
         "sample of the test set (seed 0):", "", f"`{os.environ['CMD']}`", "",
         f"median step time {step_s * 1000:.0f} ms at batch {batch}" if step_s else "no step time recorded", "",
         "| step | exact accuracy | H200-hours at the median step time |", "|---|---|---|"]
lines += [f"| {r['step']} | {100 * r['exact_accuracy']:.2f}% | {r['hours_at_median_step_time']:.3f} |" for r in rows]
(out / "reproduce_trm_mlp_sudoku.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
fi
if [ "$PARTS" = reproduce ]; then echo "gpu.sh reproduce done in $(( $(date +%s) - START )) s; figures in $OUT"; exit 0; fi
fi

# ---- 3. tables ----
OUT=$OUT TRAIN_CMD="${TRAIN_CMD[*]}" RUN=$RUN "$PY" - << 'EOF'
import json, os
from pathlib import Path

out = Path(os.environ["OUT"])
rows = [json.loads(line) for line in open(out / "gpu_figures.jsonl")] if (out / "gpu_figures.jsonl").exists() else []
lines = []
if rows:
    lines += [f"Device: {rows[0]['device']}, torch {rows[0]['torch']}.", "",
              "| model | dtype | compiled | batch | step time | examples/s | achieved TFLOP/s | MFU | compile speed-up |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("benchmark") == "solve":
            continue
        mfu = f"{r['mfu']:.3f}" if "mfu" in r else "–"
        lines.append(f"| {r['model']} ({r['params_m']}M, hidden {r['hidden_size']}, cycles {r['cycles']}) | {r['dtype']} "
                     f"| {'yes' if r['compile'] else 'no'} | {r['batch_size']} | {r['step_time_s'] * 1000:.1f} ms "
                     f"| {r['examples_per_s']:.0f} | {r['achieved_gflops'] / 1000:.1f} | {mfu} "
                     f"| {r.get('compile_speedup', '–')} |")
    lines += ["", "| solve | dtype | compiled | batch | segments | time | puzzles/s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("benchmark") == "solve":
            lines.append(f"| {r['model']} | {r['dtype']} | {'yes' if r['compile'] else 'no'} | {r['batch_size']} "
                         f"| {r['segments']} | {r['seconds']:.3f} s | {r['puzzles_per_s']:.0f} |")
    lines += ["", "Commands:", ""] + [f"- `{c}`" for c in dict.fromkeys(r["command"].split(" --output")[0] for r in rows)]
metrics = Path(os.environ["RUN"]) / "metrics.jsonl"
if metrics.exists():
    records = [json.loads(line) for line in open(metrics)]
    train = [r for r in records if "train/loss" in r]
    evals = [r for r in records if any(k.startswith("eval/") for k in r)]
    (out / "train_metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    lines += ["", "Short Sudoku 9x9 training run: `" + os.environ["TRAIN_CMD"] + "`", ""]
    if train:
        last = ([r for r in train if r.get("train/halted_rows")] or train)[-1]  # a window where rows finished
        rate = sorted(r["train/examples_per_second"] for r in train[1:] or train)
        lines.append(f"- {last['step']} steps; median {rate[len(rate) // 2]:.0f} examples/s; last window: loss "
                     f"{last['train/loss']:.3f}, exact {last['train/exact_accuracy']:.3f}, "
                     f"token {last['train/token_accuracy']:.3f}, mean steps {last['train/mean_steps']:.2f}")
    if evals:
        lines.append("- final eval: " + json.dumps({k: v for k, v in evals[-1].items() if k.startswith("eval/")}))
(out / "gpu_figures.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "gpu.sh done in $(( $(date +%s) - START )) s; figures in $OUT"
