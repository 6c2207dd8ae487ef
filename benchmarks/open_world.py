"""The open-world depth benchmark: HRM and TRM against parameter- and compute-matched Transformers, each tuned
alike on the validation split, at one training-FLOP budget, 3 seeds, reported by depth bucket.

    python benchmarks/open_world.py plan   --dataset data/open/sudoku6 --budget-tflops 16
    python benchmarks/open_world.py tune   --dataset data/open/sudoku6 --budget-tflops 16    # grid, seed 0
    python benchmarks/open_world.py seeds  --dataset data/open/sudoku6 --budget-tflops 16    # chosen cell, seeds 1 2
    python benchmarks/open_world.py report --dataset data/open/sudoku6 --budget-tflops 16    # test, plots, RESULT

Protocol (every step is the same for every model):
- budget: each run gets `budget` training FLOPs (modeling_hrm/flops.py, one convention for every model), i.e.
  floor(budget / FLOPs of its optimizer step) steps; the wall-clock time each run took here is recorded beside it;
- training: batch 64, Adam-atan2, cosine decay to 0.1 x lr, weight decay 0.1, EMA of the weights over the last
  tenth of the run (the evaluated weights), the same for every model;
- tuning: the grid learning rate x warm-up (warm-up as a fraction of the run, so that models with few steps get
  the same schedule shape) runs at seed 0; the cell with the best exact accuracy on the validation split wins;
- inference setting: segments in 1, 2, 4, 8, 16, with or without early exit (halting on the Q head), chosen per
  run on the validation split; the one-pass baselines have one setting; TRM/HRM are also reported at 1 segment;
- seeds: the winning cell runs again with seeds 1 and 2 (seed 0 is the tuning run itself);
- records: each run is evaluated as soon as it is trained; its evaluations and wall clock go to
  benchmarks/results/open_world/TASK/MODEL/CELL/ (small, committed), checkpoints to outputs/ (large, not), so the
  benchmark resumes where it stopped, in this session or a later one;
- report: exact accuracy on the test split (never used for a choice), overall and per depth bucket (the training
  puzzles stop at a shallower depth than the deepest buckets: those measure extrapolation), mean and range over
  seeds, accuracy vs training FLOPs (validation, checkpoints at 1/4, 1/2, 3/4 of each run), plots, and a last line
  `RESULT task=... budget_tflops=... hrm=... trm=... baseline_params=... baseline_compute=... seeds=...
  deepest_bucket=... deep_trm=... deep_baseline_best=...` (means over seeds; baseline_params is the
  parameter-matched baseline that is better on validation; deep_baseline_best the best baseline on the deepest
  test bucket, the comparison least favourable to the recursive models).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {"trm": "training/configs/open_trm.yaml", "hrm": "training/configs/open_hrm.yaml",
          "baseline_params_trm": "training/configs/open_baseline_params_trm.yaml",
          "baseline_params_hrm": "training/configs/open_baseline_params_hrm.yaml",
          "baseline_compute": "training/configs/open_baseline_compute.yaml"}
RECURSIVE = ("trm", "hrm")
LEARNING_RATES = (1e-2, 3e-3, 1e-3)  # 1e-2 joined when 3e-3, the grid's edge, won for most models
WARMUP_FRACTIONS = (0.05, 0.2)
SEGMENT_BUDGETS = (1, 2, 4, 8, 16)
CHECKPOINT_FRACTIONS = (0.25, 0.5, 0.75)
EMA_FRACTION = 0.1


class BenchmarkError(ValueError):
    """Bad input to the benchmark: reported as one line, exit 2."""


# ----------------------------------------------------------------------------- models and budgets


def recipe(name: str) -> dict:
    """The training YAML of MODELS[name]."""
    from dataset_scripts.validation import load_yaml

    return load_yaml((ROOT / MODELS[name]).read_text())


def model_config(name: str, meta: dict):
    """The config of MODELS[name] for this dataset (as train.py resolves it)."""
    from modeling_hrm import MODEL_CLASSES

    fields = dict(recipe(name)["model"])
    config_class, _ = MODEL_CLASSES[fields.pop("type", "hrm")]
    return config_class.from_dataset_metadata(meta, **fields)


def batch_size(name: str) -> int:
    return int(recipe(name)["training"]["global_batch_size"])


def trained_segments(name: str) -> int | None:
    """A recursive model's ACT segments in training (the compute the compute-matched baseline is matched to)."""
    return int(recipe(name)["model"]["halt_max_steps"]) if name in RECURSIVE else None


def setting_name(segments: int, early_exit: bool) -> str:
    """The key of an inference setting in the records: "16", "4-exit"."""
    return f"{segments}{'-exit' if early_exit else ''}"


def plan(args, meta: dict) -> dict:
    """Per model: parameters, FLOPs per step and per puzzle at inference, and the steps the budget buys."""
    import torch

    from modeling_hrm import MODEL_CLASSES
    from modeling_hrm.flops import inference_flops, training_step_flops

    budget = args.budget_tflops * 1e12
    out = {}
    for name in args.models:
        config = model_config(name, meta)
        with torch.device("meta"):
            params = sum(p.numel() for p in MODEL_CLASSES[config.model_type][1](config).parameters())
        step = training_step_flops(config, batch_size(name))
        steps = math.floor(budget / step)
        if steps < 1:
            raise BenchmarkError(f"--budget-tflops {args.budget_tflops:g} buys no optimizer step of {name} "
                                 f"({step / 1e12:.3g} TFLOP per step); ask for at least that")
        out[name] = {"parameters": params, "gflop_per_step": step / 1e9, "steps": steps,
                     "inference_mflop_per_puzzle_trained_segments": inference_flops(config, config.halt_max_steps) / 1e6,
                     "halt_max_steps": config.halt_max_steps}
    return out


def cells() -> list[tuple[float, float]]:
    return list(itertools.product(LEARNING_RATES, WARMUP_FRACTIONS))


def cell_name(lr: float, warmup: float, seed: int) -> str:
    return f"lr{lr:g}-wu{warmup:g}-seed{seed}"


def run_dir(args, name: str, lr: float, warmup: float, seed: int) -> Path:
    """Checkpoints and logs of a run (large, under outputs/)."""
    return Path(args.runs_dir) / args.task / name / cell_name(lr, warmup, seed)


def record_dir(args, name: str, lr: float, warmup: float, seed: int) -> Path:
    """The run's small records (evaluations, wall clock), kept under benchmarks/results/ across sessions."""
    return Path(args.results_dir) / args.task / name / cell_name(lr, warmup, seed)


# ----------------------------------------------------------------------------- one run: train, then evaluate


def train_command(args, name: str, lr: float, warmup: float, seed: int, steps: int) -> list[str]:
    save_every = max(1, round(steps * CHECKPOINT_FRACTIONS[0]))
    return [sys.executable, "training/train.py", "--config", MODELS[name], "--dataset", args.dataset,
            "--output_dir", str(run_dir(args, name, lr, warmup, seed)), "--seed", str(seed),
            "--max_steps", str(steps), "--learning_rate", str(lr),
            "--lr_warmup_steps", str(max(1, round(warmup * steps))), "--ema_decay", str(ema_decay(steps)),
            "--save_steps", str(save_every), "--save_total_limit", "0", "--eval_max_examples", "64",
            "--disable_tqdm", "true", "--report_to", "none",
            # a run cut off by the end of a session goes on from its newest checkpoint (resume is bitwise)
            "--resume_from_checkpoint", "latest"]


def ema_decay(steps: int) -> float:
    """EMA of the weights over about the last tenth of the run, for every model alike (a fixed decay would leave a
    166-step run mostly at its initial weights and barely average an 8,000-step one)."""
    return round(1 - 1 / max(2.0, EMA_FRACTION * steps), 6)


def run_one(args, name: str, lr: float, warmup: float, seed: int, steps: int) -> None:
    """Train the run (unless its model exists), then evaluate it: every inference setting on validation, the best
    of them (and 1 segment) on test, and the checkpoints along the run at that setting on validation."""
    out, records = run_dir(args, name, lr, warmup, seed), record_dir(args, name, lr, warmup, seed)
    records.mkdir(parents=True, exist_ok=True)
    if not (out / "model" / "config.json").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
        started, load = time.time(), os.getloadavg()[0]
        resumed = max((int(c.name.split("-")[1]) for c in out.glob("checkpoint-*")), default=0)
        with open(out.parent / f"{out.name}.log", "w") as log:
            code = subprocess.call(train_command(args, name, lr, warmup, seed, steps), cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        if code != 0:
            raise SystemExit(f"error: training {name} {out.name} failed (exit {code}); see {out.parent / out.name}.log")
        wall = {"wall_seconds": time.time() - started, "load_at_start": load, "load_at_end": os.getloadavg()[0]}
        if resumed:  # wall clock of the steps after the checkpoint only
            wall["resumed_from_step"] = resumed
        (records / "wall.json").write_text(json.dumps(wall))
    validation = load_split(args.dataset, "validation")
    val = cached_eval(records / "validation.json", lambda: evaluate(out / "model", *validation))
    setting = best_setting(val)
    picked = [(val[setting]["segments"], val[setting]["early_exit"])]
    if name in RECURSIVE:  # also 1 segment, and the trained segments: the compute the compute-matched baseline has
        picked += [s for s in ((1, False), (trained_segments(name), False)) if s not in picked]
    test = json.loads((records / "test.json").read_text()) if (records / "test.json").is_file() else {}
    missing = [s for s in picked if setting_name(*s) not in test]
    if missing:  # (records written before a setting joined the list get just that setting)
        test.update(evaluate(out / "model", *load_split(args.dataset, "test"), missing))
        (records / "test.json").write_text(json.dumps(test, indent=1))

    def along_the_run():
        curve = []
        for ckpt in sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
            step = int(ckpt.name.split("-")[1])
            if step < steps:
                res = evaluate(ckpt, *validation, picked[:1])
                curve.append({"step": step, "validation_exact": res[setting]["exact"]})
        return curve + [{"step": steps, "validation_exact": val[setting]["exact"]}]

    cached_eval(records / "curve.json", along_the_run)


def lock_file(args, name: str, lr: float, warmup: float, seed: int) -> Path:
    """Holds the pid of the process working on a run, so that two invocations never run it twice."""
    out = run_dir(args, name, lr, warmup, seed)
    return out.parent / f"{out.name}.lock"


def running_elsewhere(args, job) -> bool:
    try:
        os.kill(int(lock_file(args, *job).read_text()), 0)
    except (OSError, ValueError):  # no lock, or its process is gone
        return False
    return True


def claim(args, job, pid: int | None = None) -> bool:
    """Take the run's lock for `pid` (default this process), atomically: False if a live process holds it. An
    invocation claims a run before it starts the run's process, so two invocations cannot both start it."""
    lock = lock_file(args, *job)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if running_elsewhere(args, job):
                return False
            lock.unlink(missing_ok=True)  # left by a process that is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(pid or os.getpid()))
        return True
    return False


def run_queue(args, jobs: list[tuple[str, float, float, int]]) -> None:
    """Every (model, lr, warm-up, seed) whose records are incomplete, `args.parallel` at a time, each as its own
    process (`open_world.py job ...`: train with one thread, then evaluate)."""
    def done(job):
        return (record_dir(args, *job) / "curve.json").is_file()

    pending = [j for j in jobs if not done(j)]
    running = []
    while pending or running:
        pending = [j for j in pending if not done(j)]  # (finished by another invocation meanwhile)
        elsewhere = [j for j in pending if running_elsewhere(args, j)]  # they count against --parallel too
        startable = [j for j in pending if j not in elsewhere]
        while startable and len(running) + len(elsewhere) < args.parallel:
            name, lr, warmup, seed = job = startable.pop(0)
            pending.remove(job)
            if not claim(args, job):  # started by another invocation since the check above
                continue
            cmd = [sys.executable, __file__, "job", "--task", args.task, "--dataset", args.dataset,
                   "--budget-tflops", str(args.budget_tflops), "--runs-dir", args.runs_dir,
                   "--results-dir", args.results_dir, "--models", name, "--lr", str(lr), "--warmup", str(warmup),
                   "--seeds", str(seed)]
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
            lock_file(args, *job).write_text(str(proc.pid))  # the job holds it from now on
            running.append((job, proc, time.time()))
            print(f"started {name} lr={lr:g} warm-up={warmup:g} seed={seed}", flush=True)
        time.sleep(5)
        for item in list(running):
            job, proc, started = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode != 0:
                raise SystemExit(f"error: run {job} failed (exit {proc.returncode})")
            print(f"finished {job[0]} lr={job[1]:g} warm-up={job[2]:g} seed={job[3]} (trained and evaluated) in "
                  f"{(time.time() - started) / 60:.1f} min", flush=True)


# ----------------------------------------------------------------------------- evaluation


def load_split(dataset: str, split: str) -> tuple[dict, list[int], str]:
    """Arrays of a split, each row's depth (`rounds`), and the dataset's depth buckets (shallow to deep)."""
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset

    ds, meta = load_hrm_dataset(dataset, split)
    if "depth_buckets" not in meta:
        raise BenchmarkError(f"{dataset} has no depth buckets: build it with --eval-buckets (see depth_pays.sh)")
    return dataset_arrays(ds), ds["rounds"], meta["depth_buckets"]


def evaluate(model_dir: Path, arrays: dict, rounds: list[int], buckets: str, settings=None) -> dict:
    """Exact accuracy of every inference setting (segments, early exit), overall and per bucket.

    One pass of the largest segment budget yields every smaller budget with and without early exit
    (`training.evaluation.run_segments`); `settings` limits the work to the listed ones."""
    import numpy as np
    import torch

    from modeling_hrm.flops import inference_flops
    from modeling_hrm.loading import load_pretrained_model
    from training.evaluation import budget_view, run_segments
    from training.evaluation_report import depth_table

    torch.set_num_threads(1)
    model = load_pretrained_model(str(model_dir), device="cpu").eval()
    one_pass = model.config.halt_max_steps == 1
    if settings is None:
        settings = [(1, False)] if one_pass else [(b, e) for b in SEGMENT_BUDGETS for e in (False, True)]
    with torch.no_grad():
        seg = run_segments(model, arrays, max_steps=max(b for b, _ in settings), batch_size=512)
    rounds = np.asarray(rounds)
    results = {}
    for budget, early in settings:
        view = budget_view(seg, budget, early)
        results[setting_name(budget, early)] = {
            "segments": budget, "early_exit": early, "exact": float(view["exact"].mean()),
            "mean_segments": float(view["steps"].mean()),
            "inference_mflop_per_puzzle": inference_flops(model.config, float(view["steps"].mean())) / 1e6,
            "per_bucket": {b: t["exact_accuracy"] for b, t in depth_table(rounds, buckets, view["exact"]).items()}}
    return results


def best_setting(results: dict) -> str:
    """The setting with the best exact accuracy (ties: fewer segments run on average)."""
    return max(results, key=lambda k: (results[k]["exact"], -results[k]["mean_segments"]))


def cached_eval(path: Path, compute):
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    path.write_text(json.dumps(result, indent=1))
    return result


def read_run(args, name: str, lr: float, warmup: float, seed: int) -> dict | None:
    """A finished run's records, or None."""
    records = record_dir(args, name, lr, warmup, seed)
    if not (records / "curve.json").is_file():
        return None
    val = json.loads((records / "validation.json").read_text())
    setting = best_setting(val)
    test = json.loads((records / "test.json").read_text())
    wall = json.loads((records / "wall.json").read_text()) if (records / "wall.json").is_file() else {}
    return {"model": name, "seed": seed, "lr": lr, "warmup": warmup, "setting": setting,
            "validation_exact": val[setting]["exact"], "test": test[setting], "test_one_segment": test.get("1"),
            "test_trained_segments": test.get(setting_name(trained_segments(name), False)) if name in RECURSIVE
            else None,
            "curve": json.loads((records / "curve.json").read_text()),
            "wall_minutes": wall.get("wall_seconds", float("nan")) / 60}


def tuning(args) -> dict:
    """Validation results of the grid (seed 0) and the winning cell per model (None until its grid is complete)."""
    grid, chosen = {}, {}
    for name in args.models:
        runs = {(lr, wu): read_run(args, name, lr, wu, 0) for lr, wu in cells()}
        grid[name] = {f"lr={lr:g} warm-up={wu:g}": (None if r is None else
                                                     {"lr": lr, "warmup": wu, "setting": r["setting"],
                                                      "validation_exact": r["validation_exact"]})
                      for (lr, wu), r in runs.items()}
        done = [c for c in grid[name].values() if c is not None]
        chosen[name] = max(done, key=lambda c: c["validation_exact"]) if len(done) == len(runs) else None
    return {"grid": grid, "chosen": chosen}


# ----------------------------------------------------------------------------- actions


def do_tune(args):
    run_queue(args, [(m, lr, wu, 0) for lr, wu in cells() for m in args.models])
    for name, cell in tuning(args)["chosen"].items():
        print(f"{name}: lr={cell['lr']:g} warm-up={cell['warmup']:g} setting={cell['setting']} "
              f"validation exact={cell['validation_exact']:.1%}")


def do_seeds(args):
    chosen = tuning(args)["chosen"]
    missing = [m for m in args.models if chosen[m] is None]
    if missing:
        raise BenchmarkError(f"the tuning grid of {', '.join(missing)} is not complete: run `tune` first")
    run_queue(args, [(m, chosen[m]["lr"], chosen[m]["warmup"], s) for s in args.seeds if s != 0
                     for m in args.models])


def do_report(args, the_plan) -> dict:
    tuned = tuning(args)
    runs = []
    for name in args.models:
        cell = tuned["chosen"][name]
        if cell is None:
            raise BenchmarkError(f"the tuning grid of {name} is not complete: run `tune` first")
        for seed in args.seeds:
            run = read_run(args, name, cell["lr"], cell["warmup"], seed)
            if run is None:
                raise BenchmarkError(f"{name} seed {seed} has not run: run `seeds` first")
            for point in run["curve"]:
                point["tflops"] = point["step"] * the_plan[name]["gflop_per_step"] / 1e3
            runs.append(run)
    meta = _meta(args.dataset)
    record = {"command": "python " + " ".join(sys.argv), "task": args.task, "dataset": args.dataset,
              "build_command": meta.get("build_command"), "budget_tflops": args.budget_tflops,
              "seeds": args.seeds, "plan": the_plan, "tuning": tuned,
              "bucket_order": meta["depth_buckets"].split(","), "train_max_rounds": meta.get("train_max_rounds"),
              "runs": runs}
    out = Path(args.results_dir) / f"{args.task}.json"
    out.write_text(json.dumps(record, indent=1))
    print(markdown(record))
    plots(record)
    print(result_line(record))
    return record


def _meta(dataset: str) -> dict:
    from dataset_scripts.common import load_hrm_metadata

    return load_hrm_metadata(dataset)


def _mean(runs, key=lambda r: r["test"]["exact"]):
    values = [key(r) for r in runs]
    return statistics.mean(values), min(values), max(values)


def by_model(record: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in record["runs"]:
        out.setdefault(r["model"], []).append(r)
    return out


def best_baseline(record: dict, prefix: str = "baseline") -> dict | None:
    """The baseline (model name starting with `prefix`) whose chosen cell is best on validation: its name and its
    test exact accuracy, overall and on the deepest bucket, as means over the report's seeds."""
    models, deepest = by_model(record), record["bucket_order"][-1]
    names = [m for m in models if m.startswith(prefix)]
    if not names:
        return None
    name = max(names, key=lambda m: record["tuning"]["chosen"][m]["validation_exact"])
    return {"name": name, "seeds": len(models[name]), "test": _mean(models[name])[0],
            "deep": _mean(models[name], lambda r: r["test"]["per_bucket"][deepest])[0], "deepest_bucket": deepest}


def result_line(record: dict) -> str:
    models, order = by_model(record), record["bucket_order"]
    deepest = order[-1]
    test = {m: _mean(rs)[0] for m, rs in models.items()}
    deep = {m: _mean(rs, lambda r: r["test"]["per_bucket"][deepest])[0] for m, rs in models.items()}
    best_params = best_baseline(record, prefix="baseline_params")
    baselines = [m for m in models if m.startswith("baseline")]

    def pct(value):
        return "n/a" if value is None else f"{100 * value:.1f}"

    return (f"RESULT task={record['task']} budget_tflops={record['budget_tflops']:g} hrm={pct(test.get('hrm'))} "
            f"trm={pct(test.get('trm'))} baseline_params={pct(best_params and best_params['test'])} "
            f"baseline_compute={pct(test.get('baseline_compute'))} seeds={','.join(map(str, record['seeds']))} "
            f"deepest_bucket={deepest} deep_trm={pct(deep.get('trm'))} "
            f"deep_baseline_best={pct(max((deep[m] for m in baselines), default=None))}")


def markdown(record: dict) -> str:
    models, order, plan_ = by_model(record), record["bucket_order"], record["plan"]
    pct = lambda m, lo, hi: f"{100 * m:.1f} ({100 * lo:.1f}–{100 * hi:.1f})"  # noqa: E731
    lines = [f"Budget: {record['budget_tflops']:g} training TFLOP per run; seeds {', '.join(map(str, record['seeds']))}; "
             "test exact accuracy, mean (range) over seeds.", "",
             "| model | parameters | steps | GFLOP/step | lr, warm-up (chosen on validation) | inference (chosen on "
             "validation) | MFLOP/puzzle | wall min/run | test exact | 1 segment | trained segments |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, rs in models.items():
        one = (pct(*_mean(rs, lambda r: r["test_one_segment"]["exact"])) if rs[0]["test_one_segment"] else "–")
        trained = (pct(*_mean(rs, lambda r: r["test_trained_segments"]["exact"]))
                   if all(r.get("test_trained_segments") for r in rs) else "–")
        lines.append(f"| {m} | {plan_[m]['parameters']:,} | {plan_[m]['steps']:,} | {plan_[m]['gflop_per_step']:.2f} | "
                     f"{rs[0]['lr']:g}, {rs[0]['warmup']:g} | {', '.join(sorted({r['setting'] for r in rs}))} | "
                     f"{statistics.mean(r['test']['inference_mflop_per_puzzle'] for r in rs):.0f} | "
                     f"{statistics.mean(r['wall_minutes'] for r in rs):.1f} | {pct(*_mean(rs))} | {one} | {trained} |")
    lines += ["", "Exact accuracy per depth bucket (test; rounds of parallel single-propagation; training puzzles "
              f"need at most {record['train_max_rounds']} rounds):", "",
              "| model | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
    for m, rs in models.items():
        lines.append(f"| {m} | " + " | ".join(pct(*_mean(rs, lambda r, b=b: r["test"]["per_bucket"][b]))
                                              for b in order) + " |")
    grid = record["tuning"]["grid"]
    heads = list(next(iter(grid.values())))
    lines += ["", "Tuning grid (seed 0, validation exact accuracy at each cell's best inference setting):", "",
              "| model | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for m, g in grid.items():
        lines.append(f"| {m} | " + " | ".join(f"{100 * g[h]['validation_exact']:.1f}" for h in heads) + " |")
    return "\n".join(lines)


def plots(record: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, order = by_model(record), record["bucket_order"]
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    fig, (ax_depth, ax_budget) = plt.subplots(1, 2, figsize=(11, 4))
    x = list(range(len(order)))
    for m, rs in models.items():
        stats = [_mean(rs, lambda r, b=b: r["test"]["per_bucket"][b]) for b in order]
        mean = [100 * s[0] for s in stats]
        err = [[100 * (s[0] - s[1]) for s in stats], [100 * (s[2] - s[0]) for s in stats]]
        ax_depth.errorbar(x, mean, yerr=err, marker="o", capsize=3, label=m)
        steps = sorted({p["tflops"] for r in rs for p in r["curve"]})
        curve = [statistics.mean(p["validation_exact"] for r in rs for p in r["curve"] if p["tflops"] == t)
                 for t in steps]
        ax_budget.plot(steps, [100 * c for c in curve], "o-", label=m)
    if record.get("train_max_rounds"):
        shallow = [i for i, b in enumerate(order) if b.rstrip("+").split("-")[-1].isdigit()
                   and int(b.rstrip("+").split("-")[-1]) <= record["train_max_rounds"]]
        if shallow:
            ax_depth.axvspan(-0.4, max(shallow) + 0.4, color="0.9", zorder=0, label="depths trained on")
    ax_depth.set_xticks(x, order)
    ax_depth.set(xlabel="depth bucket (propagation rounds; search = singles stall)", ylabel="exact accuracy (%), test",
                 title=f"{record['task']}: accuracy by depth ({record['budget_tflops']:g} TFLOP, "
                       f"{len(record['seeds'])} seeds)")
    ax_budget.set(xlabel="training TFLOP", ylabel="exact accuracy (%), validation",
                  title="accuracy vs training budget (checkpoints)")
    for ax in (ax_depth, ax_budget):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(images / f"open_world_{record['task']}.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("plan", "tune", "seeds", "report", "all", "job"))
    parser.add_argument("--task", default="sudoku6")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--budget-tflops", type=float, default=16.0, help="training FLOPs per run (TFLOP)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2, help="runs side by side (one thread each)")
    parser.add_argument("--runs-dir", default=str(ROOT / "outputs" / "open_world"), help="checkpoints and logs")
    parser.add_argument("--results-dir", default=str(ROOT / "benchmarks" / "results" / "open_world"),
                        help="small per-run records (evaluations, wall clock) and the report")
    parser.add_argument("--lr", type=float, help=argparse.SUPPRESS)  # `job`: one run of the queue
    parser.add_argument("--warmup", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if not Path(args.dataset).is_dir():
            raise BenchmarkError(f"--dataset {args.dataset} is not a folder (build it first: benchmarks/depth_pays.sh)")
        if not args.budget_tflops > 0 or not math.isfinite(args.budget_tflops):
            raise BenchmarkError(f"--budget-tflops must be a positive number, got {args.budget_tflops}")
        the_plan = plan(args, _meta(args.dataset))
        steps = {m: p["steps"] for m, p in the_plan.items()}
        if args.action == "plan":
            print(json.dumps(the_plan, indent=1))
        if args.action == "job":
            job = (args.models[0], args.lr, args.warmup, args.seeds[0])
            lock = lock_file(args, *job)
            held_for_us = lock.is_file() and lock.read_text().strip() in (str(os.getpid()), str(os.getppid()))
            if not held_for_us and not claim(args, job):
                raise BenchmarkError(f"{job[0]} {cell_name(*job[1:])} is being run by process "
                                     f"{lock.read_text().strip()} ({lock})")
            try:
                run_one(args, *job, steps[args.models[0]])
            finally:
                lock.unlink(missing_ok=True)
        if args.action in ("tune", "all"):
            do_tune(args)
        if args.action in ("seeds", "all"):
            do_seeds(args)
        if args.action in ("report", "all"):
            do_report(args, the_plan)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
