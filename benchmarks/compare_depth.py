"""HRM vs TRM vs the same-size Transformer on a task with a depth knob, at equal time and at equal steps.

    python benchmarks/compare_depth.py speed --dataset data/depth/sudoku4
    python benchmarks/compare_depth.py run --task sudoku4 --dataset data/depth/sudoku4 --minutes 8 --seeds 0
    python benchmarks/compare_depth.py report --task sudoku4 --dataset data/depth/sudoku4 --minutes 8 --seeds 0

Timing on a shared 2-core machine is noisy, so "equal wall clock" is made robust this way: `speed` times one
training step of every model back to back in one process (interleaved rounds, one thread, median), which gives
steps/s ratios that other jobs on the machine disturb about equally; `run` then trains each model for
`minutes x 60 x its steps/s` optimizer steps (its whole schedule: warm-up, then cosine decay), one thread per run,
with cheap evaluations on a test subset along the way; `report` evaluates the final checkpoints on the whole test
split (exact accuracy, accuracy per depth, inference-time scaling), draws the plots and prints, last,
`RESULT task=... minutes=... hrm=... trm=... baseline=...` (means over the seeds). The wall clock each run actually
took (other jobs included) is recorded next to it; the headline uses the benchmarked time.
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

MODELS = {"hrm": "training/configs/depth_hrm.yaml", "trm": "training/configs/depth_trm.yaml",
          "baseline": "training/configs/depth_baseline.yaml"}
DEPTH_COLUMNS = ("rounds", "path_length")  # Sudoku propagation rounds, maze shortest-path moves


def load_yaml(path: str) -> dict:
    """A recipe of training/configs, read as train.py reads it (a key given twice is refused)."""
    from dataset_scripts.validation import load_yaml as load_unique_yaml

    return load_unique_yaml((ROOT / path).read_text())


def build(name: str, meta: dict, overrides: dict | None = None):
    """The model of `MODELS[name]` for this dataset, with its optimizer, as train.py builds them."""
    import torch

    from modeling_hrm import MODEL_CLASSES
    from training.optim import build_optimizer

    cfg = load_yaml(MODELS[name])
    fields = dict(cfg["model"])
    fields.update(overrides or {})
    config_class, model_class = MODEL_CLASSES[fields.pop("type", "hrm")]
    model = model_class(config_class.from_dataset_metadata(meta, **fields)).train()
    t = cfg["training"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(t["optimizer"], params, t["learning_rate"], (t["beta1"], t["beta2"]),
                                t["weight_decay"])
    torch.manual_seed(0)
    return model, optimizer, t["global_batch_size"]


def measure_speed(dataset: str, models: list[str], rounds: int = 5, steps_per_round: int = 10,
                  overrides: dict | None = None) -> dict:
    """Steps/s of each model's training step (ACT segment with carry, backward, optimizer step), interleaved."""
    import numpy as np
    import torch

    from dataset_scripts.common import dataset_arrays, load_hrm_dataset

    torch.set_num_threads(1)
    ds, meta = load_hrm_dataset(dataset, "train")
    arrays = dataset_arrays(ds)
    rng = np.random.default_rng(0)
    state = {}
    for name in models:
        model, optimizer, batch = build(name, meta, (overrides or {}).get(name))
        state[name] = {"model": model, "opt": optimizer, "batch": batch, "carry": None, "times": []}

    def one_step(s):
        rows = rng.choice(len(arrays["inputs"]), s["batch"], replace=False)
        x = torch.as_tensor(arrays["inputs"][rows]).long()
        y = torch.as_tensor(arrays["labels"][rows]).long()
        y = torch.where(y == 0, -100, y)
        out = s["model"](x, labels=y, carry=s["carry"])
        out.loss.backward()
        s["opt"].step()
        s["opt"].zero_grad(set_to_none=True)
        s["carry"] = out.carry

    for s in state.values():  # warm-up
        for _ in range(3):
            one_step(s)
    for _ in range(rounds):
        for s in state.values():
            start = time.perf_counter()
            for _ in range(steps_per_round):
                one_step(s)
            s["times"].append((time.perf_counter() - start) / steps_per_round)
    load = os.getloadavg()[0]
    speeds = {name: 1.0 / statistics.median(s["times"]) for name, s in state.items()}
    fastest = {name: 1.0 / min(s["times"]) for name, s in state.items()}
    return {"dataset": dataset, "steps_per_second": speeds, "best_round_steps_per_second": fastest,
            "relative_to_baseline": {n: v / speeds["baseline"] for n, v in speeds.items()} if "baseline" in speeds
            else None, "load_average_1min": load, "rounds": rounds, "steps_per_round": steps_per_round}


# ----------------------------------------------------------------------------- training runs


def train_command(args, model: str, seed: int, steps: int, out_dir: Path) -> list[str]:
    eval_steps = max(1, steps // args.evals)
    cmd = [sys.executable, "training/train.py", "--config", MODELS[model], "--dataset", args.dataset,
           "--output_dir", str(out_dir), "--seed", str(seed), "--max_steps", str(steps),
           "--eval_steps", str(eval_steps), "--eval_max_examples", str(args.eval_examples),
           "--save_steps", "100000000", "--disable_tqdm", "true", "--report_to", "none"]
    for override in args.set:
        cmd += ["--set", override]
    for item in args.model_set:
        name, _, override = item.partition(":")
        if name == model:
            cmd += ["--set", override]
    return cmd


def steps_per_second(args, speed: dict, model: str) -> float:
    """The benchmarked rate, or, with --anchor-steps-per-second, the baseline's quiet-machine rate times the
    in-process ratio (the ratio survives load on a shared machine; the absolute rate does not)."""
    rate = speed["steps_per_second"][model]
    if args.anchor_steps_per_second:
        rate *= args.anchor_steps_per_second / speed["steps_per_second"]["baseline"]
    return rate


def planned_steps(args, speed: dict, model: str) -> int:
    if args.steps:
        return args.steps
    return max(1, int(round(args.minutes * 60 * steps_per_second(args, speed, model))))


def run_all(args) -> None:
    speed = json.loads(Path(args.speed_file).read_text())
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    runs_dir = Path(args.runs_dir) / args.task
    runs_dir.mkdir(parents=True, exist_ok=True)
    pending = [(m, s) for s in args.seeds for m in args.models]
    running = []
    while pending or running:
        while pending and len(running) < args.parallel:
            model, seed = pending.pop(0)
            out = runs_dir / f"{model}-seed{seed}"
            steps = planned_steps(args, speed, model)
            log = open(runs_dir / f"{model}-seed{seed}.log", "w")
            proc = subprocess.Popen(train_command(args, model, seed, steps, out), cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            running.append((model, seed, proc, time.monotonic()))
            print(f"started {model} seed {seed}: {steps} steps", flush=True)
        time.sleep(5)
        for item in list(running):
            if item[2].poll() is not None:
                running.remove(item)
                if item[2].returncode != 0:
                    raise SystemExit(f"error: {item[0]} seed {item[1]} failed (exit {item[2].returncode}); "
                                     f"see {runs_dir / f'{item[0]}-seed{item[1]}.log'}")
                print(f"finished {item[0]} seed {item[1]} in {time.monotonic() - item[3]:.0f} s", flush=True)


# ----------------------------------------------------------------------------- evaluation and report


def curve(run_dir: Path) -> list[dict]:
    """Eval points of a run: step, exact accuracy on the subset, wall-clock seconds seen so far."""
    points, wall, last_step = [], 0.0, 0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "train/steps_per_second" in rec:
            wall += (rec["step"] - last_step) / max(rec["train/steps_per_second"], 1e-9)
            last_step = rec["step"]
        if "eval/exact_accuracy" in rec:
            points.append({"step": rec["step"], "exact": rec["eval/exact_accuracy"], "wall_seconds": wall})
    return points


def evaluate_run(run_dir: Path, dataset: str, scaling: list[int]) -> dict:
    """Whole-test-split exact accuracy, per depth, and (recursive models) accuracy vs segments."""
    import numpy as np
    import torch

    from dataset_scripts.common import dataset_arrays, load_hrm_dataset
    from modeling_hrm.loading import load_pretrained_model
    from training.evaluation import row_scores, run_solve

    torch.set_num_threads(1)
    ds, _ = load_hrm_dataset(dataset, "test")
    arrays = dataset_arrays(ds)
    depth_col = next((c for c in DEPTH_COLUMNS if c in ds.column_names), None)
    depth = np.asarray(ds[depth_col]) if depth_col else np.zeros(len(ds), int)
    model = load_pretrained_model(str(run_dir / "model"), device="cpu").eval()
    budgets = [1] if model.config.halt_max_steps == 1 else scaling
    by_budget = {}
    with torch.no_grad():
        for budget in budgets:
            res = run_solve(model, arrays, batch_size=512, max_steps=budget)
            exact, _, _ = row_scores(res["predictions"], arrays["labels"])
            by_budget[budget] = exact
    trained = model.config.halt_max_steps
    exact = by_budget[trained if trained in by_budget else budgets[0]]
    per_depth = {str(int(d)): float(exact[depth == d].mean()) for d in np.unique(depth)}
    counts = {str(int(d)): int((depth == d).sum()) for d in np.unique(depth)}
    return {"exact_accuracy": float(exact.mean()), "depth_column": depth_col, "per_depth": per_depth,
            "depth_counts": counts, "scaling": {str(b): float(v.mean()) for b, v in by_budget.items()},
            "halt_max_steps": trained}


def report(args) -> dict:
    speed = json.loads(Path(args.speed_file).read_text())
    runs_dir = Path(args.runs_dir) / args.task
    scaling = [int(s) for s in args.scaling_steps.split(",")]
    results = []
    for model in args.models:
        for seed in args.seeds:
            run_dir = runs_dir / f"{model}-seed{seed}"
            summary = json.loads((run_dir / "train_summary.json").read_text()) if (
                run_dir / "train_summary.json").is_file() else None
            results.append({"model": model, "seed": seed, "steps": planned_steps(args, speed, model),
                            "curve": curve(run_dir), "eval": evaluate_run(run_dir, args.dataset, scaling),
                            "train_summary": summary})
    speed = dict(speed, used_steps_per_second={m: steps_per_second(args, speed, m) for m in speed["steps_per_second"]},
                 anchor_steps_per_second=args.anchor_steps_per_second)
    record = {"command": "python " + " ".join(sys.argv), "speed": speed, "minutes": args.minutes,
              "seeds": args.seeds, "results": results}
    out = ROOT / "benchmarks" / "results" / f"depth_{args.task}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    table = markdown(record)
    plots(record, args.task)
    print(table)
    means = {m: statistics.mean(r["eval"]["exact_accuracy"] for r in results if r["model"] == m)
             for m in args.models}
    fields = " ".join(f"{m}={100 * means[m]:.1f}" if m in means else f"{m}=n/a" for m in MODELS)
    budget = f"steps={args.steps}" if args.steps else f"minutes={args.minutes:g}"
    print(f"RESULT task={args.task} {budget} {fields} seeds={','.join(map(str, args.seeds))}")
    return record


def markdown(record: dict) -> str:
    res, speed = record["results"], record["speed"]
    models = list(dict.fromkeys(r["model"] for r in res))
    lines = [f"| model | steps/s (benchmark) | optimizer steps | exact accuracy (mean over seeds "
             f"{', '.join(map(str, record['seeds']))}) | per seed | wall clock seen (min) |", "|---|---|---|---|---|---|"]
    for m in models:
        rows = [r for r in res if r["model"] == m]
        exact = [r["eval"]["exact_accuracy"] for r in rows]
        walls = [r["curve"][-1]["wall_seconds"] / 60 if r["curve"] else float("nan") for r in rows]
        lines.append(f"| {m} | {speed['used_steps_per_second'][m]:.2f} | {rows[0]['steps']} | "
                     f"{statistics.mean(exact):.1%} | {', '.join(f'{e:.1%}' for e in exact)} | "
                     f"{', '.join(f'{w:.1f}' for w in walls)} |")
    depths = list(res[0]["eval"]["per_depth"])
    col = res[0]["eval"]["depth_column"] or "depth"
    lines += ["", f"Exact accuracy per depth (`{col}`; puzzles per depth: "
              + ", ".join(f"{d}: {res[0]['eval']['depth_counts'][d]}" for d in depths) + "):", "",
              "| model | " + " | ".join(depths) + " |", "|---|" + "---|" * len(depths)]
    for m in models:
        rows = [r for r in res if r["model"] == m]
        lines.append(f"| {m} | " + " | ".join(f"{statistics.mean(r['eval']['per_depth'][d] for r in rows):.1%}"
                                              for d in depths) + " |")
    rec = [m for m in models if len(res[[r["model"] for r in res].index(m)]["eval"]["scaling"]) > 1]
    if rec:
        budgets = list(res[[r["model"] for r in res].index(rec[0])]["eval"]["scaling"])
        lines += ["", "Inference-time scaling (exact accuracy when every row runs max_steps segments):", "",
                  "| model | " + " | ".join(budgets) + " |", "|---|" + "---|" * len(budgets)]
        for m in rec:
            rows = [r for r in res if r["model"] == m]
            lines.append(f"| {m} | " + " | ".join(f"{statistics.mean(r['eval']['scaling'][b] for r in rows):.1%}"
                                                  for b in budgets) + " |")
    return "\n".join(lines)


def plots(record: dict, task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, speed = record["results"], record["speed"]
    models = list(dict.fromkeys(r["model"] for r in res))
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    fig, (ax_time, ax_steps) = plt.subplots(1, 2, figsize=(10, 4))
    for m in models:
        for r in (r for r in res if r["model"] == m):
            steps = [p["step"] for p in r["curve"]]
            exact = [100 * p["exact"] for p in r["curve"]]
            label = m if r["seed"] == record["seeds"][0] else None
            color = {"hrm": "C0", "trm": "C1", "baseline": "C2"}.get(m)
            ax_time.plot([s / speed["used_steps_per_second"][m] / 60 for s in steps], exact, "o-", color=color,
                         label=label, ms=3)
            ax_steps.plot(steps, exact, "o-", color=color, label=label, ms=3)
    ax_time.set(xlabel="training minutes (benchmarked steps/s, 1 thread)", ylabel="exact accuracy (%), test subset",
                title=f"{task}: equal time")
    ax_steps.set(xlabel="optimizer steps", title=f"{task}: equal steps")
    for ax in (ax_time, ax_steps):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(images / f"depth_{task}_curves.png", dpi=110)
    plt.close(fig)

    depths = list(res[0]["eval"]["per_depth"])
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for m in models:
        rows = [r for r in res if r["model"] == m]
        ax.plot(depths, [100 * statistics.mean(r["eval"]["per_depth"][d] for r in rows) for d in depths], "o-",
                label=m)
    ax.set(xlabel=res[0]["eval"]["depth_column"] or "depth", ylabel="exact accuracy (%)",
           title=f"{task}: accuracy per depth ({record['minutes']:g} min)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(images / f"depth_{task}_per_depth.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("speed", "run", "report", "all"))
    parser.add_argument("--task", default="depth")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--minutes", type=float, default=8.0, help="training time per run (benchmarked steps/s)")
    parser.add_argument("--steps", type=int, default=None, help="equal steps instead of equal time")
    parser.add_argument("--anchor-steps-per-second", type=float, default=None,
                        help="the baseline's steps/s on a quiet machine; the others follow by the measured ratios")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--evals", type=int, default=8, help="evaluations along each run")
    parser.add_argument("--eval-examples", type=int, default=300, help="test subset of the evaluations along a run")
    parser.add_argument("--scaling-steps", default="1,2,4,8,16")
    parser.add_argument("--set", action="append", default=[], help="extra --set overrides for every model")
    parser.add_argument("--model-set", action="append", default=[], metavar="MODEL:SECTION.KEY=VALUE",
                        help="an extra --set override for one model, e.g. hrm:training.learning_rate=1e-3")
    parser.add_argument("--runs-dir", default=str(ROOT / "outputs" / "depth"))
    parser.add_argument("--speed-file", default=None, help="default: benchmarks/results/depth_speed_<task>.json")
    args = parser.parse_args(argv)
    for item in args.model_set:
        if item.partition(":")[0] not in MODELS or "=" not in item:
            parser.error(f"--model-set {item!r}: expected MODEL:SECTION.KEY=VALUE with MODEL in {', '.join(MODELS)}")
    if not Path(args.dataset).is_dir():
        parser.error(f"--dataset {args.dataset} is not a folder (build it first; see benchmarks/depth_pays.sh)")
    args.speed_file = args.speed_file or str(ROOT / "benchmarks" / "results" / f"depth_speed_{args.task}.json")
    if args.action in ("speed", "all"):
        speed = measure_speed(args.dataset, list(MODELS))
        Path(args.speed_file).parent.mkdir(parents=True, exist_ok=True)
        Path(args.speed_file).write_text(json.dumps(speed, indent=1))
        print(json.dumps(speed, indent=1))
    if args.action in ("run", "all"):
        run_all(args)
    if args.action in ("report", "all"):
        report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
