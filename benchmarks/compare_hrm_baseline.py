"""HRM vs the same-size direct-prediction Transformer, same data, same wall-clock budget, several seeds.

    python benchmarks/compare_hrm_baseline.py --task sudoku --dataset data/sudoku4 --minutes 4 --seeds 0 1 2
    python benchmarks/compare_hrm_baseline.py --task maze --dataset data/maze8 --minutes 4 --seeds 0 1 2

Each run is `training/train.py` with `--max_train_minutes`, one thread per run (`--parallel` runs side by
side on separate cores), then `hrm-evaluate` on the whole test split, with an accuracy-vs-max_steps
scan for HRM (inference-time scaling). Results go to benchmarks/results/compare_<task>.json and a markdown
table is printed.
"""

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

MODELS = {"hrm": "training/configs/sudoku_cpu.yaml", "baseline": "training/configs/baseline_transformer.yaml"}


def train_command(args, model, seed, out_dir):
    cmd = [sys.executable, "training/train.py", "--config", MODELS[model], "--dataset", args.dataset,
           "--output_dir", str(out_dir), "--seed", str(seed), "--max_train_minutes", str(args.minutes),
           "--eval_steps", "1000000", "--save_steps", "1000000"]
    for override in args.set:
        cmd += ["--set", override]
    return cmd


def evaluate_command(args, model, out_dir):
    cmd = [sys.executable, "-m", "training.hrm_evaluate", "--model", str(out_dir / "model"), "--dataset", args.dataset,
           "--split", "test", "--output-dir", str(out_dir / "eval"), "--num-examples", "0"]
    if model == "hrm":
        cmd += ["--scaling-steps", args.scaling_steps]
    return cmd


def collect(args, jobs, runs_dir):
    results = []
    for model, seed in jobs:
        out = runs_dir / f"{model}-seed{seed}"
        summary = [json.loads(line) for line in (runs_dir / f"{model}-seed{seed}.log").read_text().splitlines()
                   if line.startswith('{"step"')]
        evaluation = json.loads((out / "eval" / "results.json").read_text())
        results.append({"model": model, "seed": seed, "train": summary[-1] if summary else None, "eval": evaluation})
    return results


def run_all(args):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    jobs = [(model, seed) for seed in args.seeds for model in MODELS]
    runs_dir = Path(args.runs_dir) / args.task
    if args.summarise_only:
        return collect(args, jobs, runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < args.parallel:
            model, seed = pending.pop(0)
            out = runs_dir / f"{model}-seed{seed}"
            log = open(runs_dir / f"{model}-seed{seed}.log", "w")
            cmd = train_command(args, model, seed, out) + ["&&"] + evaluate_command(args, model, out)
            shell = " ".join(c if c == "&&" else repr(c) for c in cmd)
            running.append((model, seed, out, subprocess.Popen(shell, shell=True, cwd=ROOT, env=env, stdout=log,
                                                               stderr=subprocess.STDOUT)))
            print(f"started {model} seed {seed}", flush=True)
        time.sleep(5)
        for item in list(running):
            if item[3].poll() is not None:
                running.remove(item)
                print(f"finished {item[0]} seed {item[1]} (exit {item[3].returncode})", flush=True)
    return collect(args, jobs, runs_dir)


def summarise(args, results):
    lines = [f"| model | exact accuracy (mean ± std over seeds {', '.join(map(str, args.seeds))}) | per seed | "
             "token accuracy | optimizer steps in the budget |", "|---|---|---|---|---|"]
    for model in MODELS:
        rows = [r for r in results if r["model"] == model]
        exact = [r["eval"]["exact_accuracy"] for r in rows]
        token = [r["eval"]["token_accuracy"] for r in rows]
        steps = [r["train"]["step"] for r in rows if r["train"]]
        spread = statistics.stdev(exact) if len(exact) > 1 else 0.0
        lines.append(f"| {model} | {statistics.mean(exact):.1%} ± {spread:.1%} | "
                     f"{', '.join(f'{e:.1%}' for e in exact)} | {statistics.mean(token):.1%} | "
                     f"{', '.join(map(str, steps))} |")
    hrm = [r for r in results if r["model"] == "hrm"]
    budgets = hrm[0]["eval"]["scaling"]["max_steps"]
    lines += ["", "HRM inference-time scaling (exact accuracy when every row runs max_steps segments; trained with "
              f"halt_max_steps={hrm[0]['eval']['max_steps']}):", "",
              "| max_steps | " + " | ".join(map(str, budgets)) + " |", "|---|" + "---|" * len(budgets)]
    for mode in ("full", "act"):
        values = [statistics.mean(r["eval"]["scaling"][mode][i] for r in hrm) for i in range(len(budgets))]
        label = "all segments" if mode == "full" else "ACT early exit"
        lines.append(f"| {label} (mean of seeds) | " + " | ".join(f"{v:.1%}" for v in values) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--minutes", type=float, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="extra --set overrides for both models")
    parser.add_argument("--scaling-steps", default="1,2,4,8,16")
    parser.add_argument("--summarise-only", action="store_true", help="only read finished runs in --runs-dir")
    parser.add_argument("--runs-dir", default=str(ROOT / "outputs" / "compare"))
    args = parser.parse_args()
    results = run_all(args)
    table = summarise(args, results)
    command = command_line(__file__, [a for a in sys.argv[1:] if a != "--summarise-only"])
    write_json(RESULTS / f"compare_{args.task}.json", {"results": results, "table": table}, command)
    print(table)


if __name__ == "__main__":
    main()
