"""Time to accuracy: train a recipe until its exact accuracy on a validation split reaches a target; report the
wall-clock training time and the training FLOPs it took, per variant and seed.

    python benchmarks/time_to_accuracy.py --config training/configs/open_hrm.yaml --dataset data/open/sudoku6 \
        --target 0.95 --seeds 0 1 2 --variants eager compiled q-learning halt-only curriculum --max-steps 20000

Variants (each the recipe with one change; runs are `training/train.py` subprocesses, one after another unless
`--parallel`):
- `eager`: the recipe as written (compile off);
- `compiled`: `--compile true` (the segment compiled; compilation time counts: it is part of the wait);
- `q-learning` / `halt-only`: Q-learning ACT (`no_ACT_continue: false`, the original HRM) or halt-only ACT (TRM's
  rule, no extra target segment per step);
- `curriculum`: a depth curriculum (`--depth_curriculum`, default `--curriculum`): shallow cycles first.

Every run evaluates the validation split every `--eval-steps` steps and stops at the first evaluation that reaches
`--target` (`training.target_exact_accuracy`), or at `--max-steps` (reported as not reached). Training time is the
run's wall clock minus its evaluations (compilation included); training FLOPs are
`modeling_hrm.flops.training_step_flops` summed over the steps run, at each step's depth. Steps and FLOPs do not
depend on the machine's load; wall time does (run on a quiet machine, or compare within one invocation).
Results: benchmarks/results/time_to_accuracy_<name>.json and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.harness import RESULTS, command_line, write_json  # noqa: E402

VARIANTS = ("eager", "compiled", "q-learning", "halt-only", "curriculum")


def variant_options(variant: str, curriculum: str) -> list[str]:
    return {"eager": [], "compiled": ["--compile", "true"], "q-learning": ["--no_ACT_continue", "false"],
            "halt-only": ["--no_ACT_continue", "true"], "curriculum": ["--depth_curriculum", curriculum]}[variant]


def train_command(args, variant: str, seed: int, out: Path) -> list[str]:
    cmd = [sys.executable, "training/train.py", "--config", args.config, "--output_dir", str(out), "--seed", str(seed),
           "--max_steps", str(args.max_steps), "--eval_steps", str(args.eval_steps), "--eval_split", args.split,
           "--target_exact_accuracy", str(args.target), "--save_steps", str(args.max_steps),
           "--logging_steps", str(args.eval_steps), "--report_to", "none", "--disable_tqdm", "true"]
    if args.dataset:
        cmd += ["--dataset", args.dataset]
    if args.eval_max_examples:
        cmd += ["--eval_max_examples", str(args.eval_max_examples)]
    for override in args.set:
        cmd += ["--set", override]
    return cmd + variant_options(variant, args.curriculum)


def training_flops(model_dir: Path, steps: int, max_steps: int, global_batch: int, curriculum: str | None) -> float:
    """Training FLOPs of `steps` optimizer steps of the trained model's config, at each step's depth."""
    from modeling_hrm.flops import training_step_flops
    from modeling_hrm.loading import load_config
    from training.curriculum import depth_at_step, parse_depth_curriculum

    config = load_config(model_dir)
    stages = parse_depth_curriculum(curriculum) if curriculum else []
    per_depth: dict[tuple[int, int], int] = {}
    for step in range(steps):
        depth = depth_at_step(stages, step, max_steps) or (config.H_cycles, config.L_cycles)
        per_depth[depth] = per_depth.get(depth, 0) + 1
    total = 0.0
    for (h, l), count in per_depth.items():
        shallow = type(config).from_dict({**config.to_dict(), "H_cycles": h, "L_cycles": l})
        total += count * training_step_flops(shallow, global_batch)
    return total


def read_run(args, variant: str, seed: int, out: Path, log: Path) -> dict:
    lines = [line for line in log.read_text().splitlines() if line.startswith("{") and '"stopped_by"' in line]
    if not lines:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        return {"variant": variant, "seed": seed, "error": tail[0]}
    summary = json.loads(lines[-1])
    curve = [(r["step"], r["eval/exact_accuracy"]) for r in map(json.loads, open(out / "metrics.jsonl"))
             if "eval/exact_accuracy" in r]
    reached = summary["eval"].get("exact_accuracy", 0.0) >= args.target
    curriculum = args.curriculum if variant == "curriculum" else None
    return {"variant": variant, "seed": seed, "reached": reached, "steps": summary["step"],
            "train_seconds": round(summary["train_seconds"] - summary.get("eval_seconds", 0.0), 2),
            "eval_seconds": summary.get("eval_seconds"), "exact_accuracy": summary["eval"].get("exact_accuracy"),
            "training_flops": training_flops(Path(summary["model_dir"]), summary["step"], summary["max_steps"],
                                             summary["global_batch_size"], curriculum),
            "stopped_by": summary["stopped_by"], "eval_curve": curve}


def run_all(args) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TOKENIZERS_PARALLELISM="false")
    runs_dir = Path(args.runs_dir) / args.name
    jobs = [(variant, seed) for seed in args.seeds for variant in args.variants]
    if not args.summarise_only:
        runs_dir.mkdir(parents=True, exist_ok=True)
        pending, running = list(jobs), []
        while pending or running:
            while pending and len(running) < args.parallel:
                variant, seed = pending.pop(0)
                out = runs_dir / f"{variant}-seed{seed}"
                log = open(runs_dir / f"{variant}-seed{seed}.log", "w")
                proc = subprocess.Popen(train_command(args, variant, seed, out), cwd=ROOT, env=env, stdout=log,
                                        stderr=subprocess.STDOUT)
                running.append((variant, seed, proc, log))
                print(f"started {variant} seed {seed}", flush=True)
            time.sleep(1)
            for item in list(running):
                if item[2].poll() is not None:
                    running.remove(item)
                    item[3].close()
                    print(f"finished {item[0]} seed {item[1]} (exit {item[2].returncode})", flush=True)
    return [read_run(args, v, s, runs_dir / f"{v}-seed{s}", runs_dir / f"{v}-seed{s}.log") for v, s in jobs]


def summarise(args, results: list[dict]) -> tuple[list[dict], str]:
    rows = []
    for variant in args.variants:
        runs = [r for r in results if r["variant"] == variant and "error" not in r]
        done = [r for r in runs if r["reached"]]
        rows.append({"variant": variant, "runs": len(runs), "reached": len(done),
                     "median_steps": statistics.median(r["steps"] for r in done) if done else None,
                     "median_train_seconds": statistics.median(r["train_seconds"] for r in done) if done else None,
                     "median_training_pflop": (statistics.median(r["training_flops"] for r in done) / 1e15
                                               if done else None)})
    base = next((r for r in rows if r["variant"] == "eager" and r["reached"]), None)
    lines = [f"Time to {args.target:.0%} exact accuracy on {args.dataset or 'the recipe dataset'}:{args.split} "
             f"({args.config}; seeds {', '.join(map(str, args.seeds))}; medians over the seeds that reached it)", "",
             "| variant | reached | steps | training time | training PFLOP | time vs eager | FLOPs vs eager |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        if not row["reached"]:
            lines.append(f"| {row['variant']} | 0/{row['runs']} | | | | | |")
            continue
        vs_time = vs_flops = ""
        if base is not None:
            vs_time = f"{base['median_train_seconds'] / row['median_train_seconds']:.2f}x"
            vs_flops = f"{base['median_training_pflop'] / row['median_training_pflop']:.2f}x"
        lines.append(f"| {row['variant']} | {row['reached']}/{row['runs']} | {row['median_steps']:.0f} | "
                     f"{row['median_train_seconds'] / 60:.1f} min | {row['median_training_pflop']:.3f} | {vs_time} | "
                     f"{vs_flops} |")
    return rows, "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="training/configs/open_hrm.yaml", help="the recipe (training YAML)")
    parser.add_argument("--dataset", default=None, help="dataset folder (default: the recipe's)")
    parser.add_argument("--split", default="validation", help="the split the target is measured on")
    parser.add_argument("--target", type=float, default=0.95, help="exact accuracy to reach, in (0, 1]")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--curriculum", default="1x1:0.1,2x2:0.25",
                        help="the curriculum variant's stages (training.depth_curriculum; fractions of --max-steps "
                             "or steps)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=20000, help="a run that has not reached the target by then stops")
    parser.add_argument("--eval-steps", type=int, default=100, help="evaluate (and check the target) every N steps")
    parser.add_argument("--eval-max-examples", type=int, default=None, help="evaluate on a fixed subset of the split")
    parser.add_argument("--set", action="append", default=[], help="extra --set SECTION.KEY=VALUE for every run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--parallel", type=int, default=1, help="runs side by side (wall times then share the CPU)")
    parser.add_argument("--name", default=None, help="results name (default: the recipe and dataset names)")
    parser.add_argument("--runs-dir", default=str(ROOT / "outputs" / "time_to_accuracy"))
    parser.add_argument("--output", default=None, help="results file (default: benchmarks/results/"
                                                        "time_to_accuracy_<name>.json)")
    parser.add_argument("--summarise-only", action="store_true", help="only read finished runs in --runs-dir")
    args = parser.parse_args(argv)
    if not 0 < args.target <= 1:
        parser.error(f"--target must be in (0, 1], got {args.target}")
    for key in ("max_steps", "eval_steps", "threads", "parallel"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1")
    args.name = args.name or "_".join(filter(None, (Path(args.config).stem, args.dataset and Path(args.dataset).name)))

    results = run_all(args)
    rows, table = summarise(args, results)
    command = command_line(__file__, [a for a in (sys.argv[1:] if argv is None else argv) if a != "--summarise-only"])
    write_json(args.output or RESULTS / f"time_to_accuracy_{args.name}.json",
               {"target": args.target, "split": args.split, "config": args.config, "dataset": args.dataset,
                "curriculum": args.curriculum, "summary": rows, "runs": results, "table": table}, command)
    print(table)
    failed = [r for r in results if "error" in r]
    for run in failed:
        print(f"{run['variant']} seed {run['seed']} failed: {run['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
