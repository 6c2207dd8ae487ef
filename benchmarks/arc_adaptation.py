"""Unseen ARC tasks, measured: pass@2 with the blank id, with adaptation (by adaptation steps) and with the tasks'
demonstrations trained on (the originals' upper bound), for HRM and TRM over seeds, on held-out tasks of the
procedural family; and the same mechanism on real ARC-AGI-1 evaluation tasks with the `arc_smoke` model.

    python benchmarks/arc_adaptation.py --plan                    # what the run does and its expected core-minutes
    python benchmarks/arc_adaptation.py                           # the full run, ~90 core-minutes (resumable: below)
    python benchmarks/arc_adaptation.py --smoke                   # the whole path in ~2 minutes, not a result

What it does, one command end to end (every step is skipped when its output already exists in --work-dir, so an
interrupted run continues where it stopped):
1. writes the procedural family (`dataset_scripts/build_arc_procedural.py`: --num-train training tasks of the six
   primitives and 11 compositions, --num-heldout held-out tasks of 4 new compositions and 2 new parameter ranges)
   and builds it twice with the ARC builder (--num-aug augmentations per task): `heldout` (the held-out tasks are
   never trained on; their test rows use the blank id) and `original` (their demonstrations are trained on, the
   originals' setting; their test pairs stay held out);
2. trains each model (`training/configs/arc_procedural_{hrm,trm}.yaml`, --train-steps steps) on each build for
   each seed, --jobs at a time (one thread each on CPU);
3. solves the held-out tasks: (a) `blank`: the heldout model, the task's versions (the same dihedral x colour
   versions adaptation makes) all with the blank id 0 (`blank_dihedral8`: today's pipeline default, the 8
   dihedral versions with id 0, also recorded); (b) `adapted`: the heldout model after `adapt_to_task` (--adapt-lr,
   seed = the run's seed), solved after each of --adapt-steps steps, with the adaptation seconds per task
   (solving excluded); (c) `upper_bound`: the original model with the versions it trained (as `hrm-evaluate`
   votes them); with --readapt-original also (d) `readapted`: new rows adapted on that model, which shows whether the
   optimizer finds working rows where the network is known to solve the task. pass@2 (and pass@1) by voting over
   the versions as `solve_arc_task`, per held-out kind too;
4. ARC-AGI-1: the `arc_smoke` model (trained here with `training/configs/arc_smoke.yaml` unless --arc-smoke-model
   is given) on --arc-agi-tasks evaluation tasks it never saw (blank vs adapted, same steps), and on the evaluation
   tasks it trained on (their trained versions), whatever it gives;
5. writes --out (JSON: settings, machine, per run and per task figures, means over seeds) and prints a markdown
   table and a last line `RESULT model=... blank=... adapted@N=... upper_bound=...` per model.

Sized for one CPU core: the family is built in its 11x11 canvas (`--canvas`, `arc_procedural.CANVAS`; grids are at
most 10x10), 121 positions instead of the 30x30 layout's 900; the configs train one ACT segment per step (every
step fresh rows) for 4,000 steps with a puzzle-embedding learning rate of 0.1, and the builds make one version per
task (`--num-aug 0`), so that each task's row is updated every epoch (~53 times in a run) and the networks do use it
(HRM, seed 0: upper bound 7.1% pass@2, blank id 0%; TRM 9.5%; the old 4-segment config learned nothing in 2,000
steps). Adaptation runs at the puzzle-embedding learning rate the model trained with. `--plan` prints what a run
will do and its expected core-minutes (from COST, measured on the 2-core development machine, one thread, under
load) and stops; every run prints the plan first and records the measured CPU seconds of each part in --out. The
default run is about 90 core-minutes (training 73 of them): --jobs N on N free cores divides the wall time of the
training and evaluation parts; --device cuda trains and solves on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = {"hrm": "training/configs/arc_procedural_hrm.yaml", "trm": "training/configs/arc_procedural_trm.yaml"}
ARC_SMOKE_CONFIG = "training/configs/arc_smoke.yaml"
ARC_SMOKE_TASKS = 4  # arc_smoke.yaml builds with --max-tasks 4: the first 4 evaluation tasks (sorted) are trained on
SMOKE = dict(models=["hrm"], seeds=[0], num_train=17, num_heldout=3, num_aug=1, train_steps=3, adapt_steps=[1, 2],
             arc_agi_tasks=1, arc_smoke_steps=2, arc_num_aug=1)
ARC_SMOKE_STEPS = 103  # the config's 50 epochs on its build (train.py --dry_run)
MEAN_DEMOS = {"family": 3.0, "arc": 3.3}  # demonstration pairs per task: the family draws 2-4, ARC-AGI-1 has ~3.3
#: Core-seconds of the units of a run, measured on the 2-core development machine with one thread while ~4 other
#: jobs ran (`--plan` multiplies them by the run's counts; the measured seconds of each part land in --out):
#: a train.py process besides its steps; a training step of each config (batch 16, the family's 11x11 canvas); an
#: adaptation step per demonstration row (one segment, forward and backward); a solved row (a version of a test
#: input, up to the config's segments); and the same for the arc_smoke model in the 30x30 canvas.
COST = {"startup": 8.0, "train_step": {"hrm": 0.068, "trm": 0.11}, "adapt_row_step": {"hrm": 0.0045, "trm": 0.0075},
        "solve_row": {"hrm": 0.003, "trm": 0.005}, "arc_smoke_step": 3.2, "arc_adapt_row_step": 0.07,
        "arc_solve_row": 0.03}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", default="runs/arc_adaptation", help="tasks, builds, runs and cached figures")
    p.add_argument("--out", default=None, help="result JSON (default benchmarks/results/arc_adaptation.json; "
                                                "with --smoke, arc_adaptation_smoke.json in the work dir)")
    p.add_argument("--models", nargs="+", choices=sorted(CONFIGS), default=["hrm", "trm"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--family-seed", type=int, default=0, help="seed of the procedural family (the same for all runs)")
    p.add_argument("--num-train", type=int, default=272, help="training tasks of the family (16 per kind)")
    p.add_argument("--num-heldout", type=int, default=42, help="held-out tasks (7 per held-out kind)")
    p.add_argument("--num-aug", type=int, default=0,
                   help="ARC builder augmentations per task (and adaptation's); 0: one version per task, whose row "
                        "is then updated every epoch")
    p.add_argument("--canvas", type=int, default=None,
                   help="canvas side of the family's builds (default arc_procedural.CANVAS = 11; 30: the ARC layout)")
    p.add_argument("--train-steps", type=int, default=None, help="optimizer steps per run (default: the config's)")
    p.add_argument("--adapt-steps", nargs="+", type=int, default=[10, 25, 50, 100],
                   help="adaptation step counts solved at (one adaptation of the largest, solved on the way)")
    p.add_argument("--adapt-lr", type=float, default=None,
                   help="sign-SGD learning rate of the adapted rows (default: the puzzle-embedding learning rate the "
                        "model trained with, from its run's train_config.yaml: 0.1 for the family's configs, 1e-2 "
                        "for arc_smoke)")
    p.add_argument("--readapt-original", action="store_true",
                   help="also adapt new rows on the model that trained the held-out tasks' demonstrations "
                        "(`readapted`): can the optimizer find rows that work where the network is known to work? "
                        "(doubles the adaptation cost)")
    p.add_argument("--arc-agi-tasks", type=int, default=4,
                   help="ARC-AGI-1 evaluation tasks the arc_smoke model never saw (0: skip the ARC-AGI-1 part)")
    p.add_argument("--arc-smoke-model", default=None, help="a trained arc_smoke model (default: train one here)")
    p.add_argument("--arc-smoke-data", default=None,
                   help="the arc_smoke model's dataset (default: built here; gives the tasks it trained on)")
    p.add_argument("--arc-smoke-steps", type=int, default=None, help="steps of the arc_smoke training (default: the "
                                                                      "config's 50 epochs)")
    p.add_argument("--arc-num-aug", type=int, default=1, help="adaptation versions besides the identity, ARC-AGI-1")
    p.add_argument("--jobs", type=int, default=1, help="trainings / evaluations run at the same time")
    p.add_argument("--device", default="cpu", help="cpu or cuda (training and solving)")
    p.add_argument("--plan", action="store_true", help="print what the run will do and its expected core-minutes, "
                                                     "then stop")
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes (one seed, HRM, 3 training steps, 3 held-out tasks, 1 ARC-AGI-1 task): checks the "
                        "path in a few minutes; the figures mean nothing")
    return p


def resolve_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.smoke:  # the smoke preset replaces the options the user did not give
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in (argv or sys.argv[1:]) if a.startswith("--")}
        for key, value in SMOKE.items():
            if key not in given:
                setattr(args, key, value)
        args.work_dir = args.work_dir if "work_dir" in given else "runs/arc_adaptation_smoke"
    args.out = args.out or (f"{args.work_dir}/arc_adaptation_smoke.json" if args.smoke else
                            "benchmarks/results/arc_adaptation.json")
    if args.canvas is None:
        from dataset_scripts.arc_procedural import CANVAS

        args.canvas = CANVAS
    if args.num_aug < 0:
        parser.error("--num-aug must be >= 0")
    for name in ("num_train", "num_heldout", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.adapt_steps) < 1:
        parser.error("--adapt-steps must be >= 1")
    if args.adapt_lr is not None and not args.adapt_lr > 0:
        parser.error("--adapt-lr must be > 0")
    if args.train_steps is not None and args.train_steps < 1:
        parser.error("--train-steps must be >= 1")
    args.adapt_steps = sorted(set(args.adapt_steps))
    return args


def run(cmd: list[str], log: Path, env: dict) -> None:
    with open(log, "w") as out:
        code = subprocess.call(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"error: {' '.join(cmd[1:3])} ... failed (exit {code}); see {log}")


def job_env(args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # Accelerate would take a GPU if one were there
    return env


# ----------------------------------------------------------------------------- plan
def config_steps(config: str) -> int:
    import yaml

    return int(yaml.safe_load((ROOT / config).read_text())["training"]["max_steps"])


def plan(args) -> list[tuple[str, str, float]]:
    """(part, what it runs, expected core-seconds) of this run, from COST."""
    versions = args.num_aug + 1
    adapt_rows = versions * MEAN_DEMOS["family"]
    solved_rows = versions * (1 + len(args.adapt_steps)) + 8  # blank, adapted at each count, blank_dihedral8
    parts = [("family and builds", f"{args.num_train} + {args.num_heldout} tasks, {versions} version(s) each, "
                                   f"{args.canvas}x{args.canvas} canvas", 10.0)]
    for model in args.models:
        steps = args.train_steps or config_steps(CONFIGS[model])
        runs = 2 * len(args.seeds)
        parts.append((f"{model.upper()} training", f"{runs} runs x {steps} steps",
                      runs * (COST["startup"] + steps * COST["train_step"][model])))
    for model in args.models:
        per_task = (max(args.adapt_steps) * adapt_rows * COST["adapt_row_step"][model]
                    + solved_rows * COST["solve_row"][model])
        upper = versions * COST["solve_row"][model] + (per_task if args.readapt_original else 0.0)
        parts.append((f"{model.upper()} held-out tasks", f"{len(args.seeds)} seeds x {args.num_heldout} tasks, "
                      f"adapted {max(args.adapt_steps)} steps, solved at {args.adapt_steps}",
                      len(args.seeds) * args.num_heldout * (per_task + upper)))
    if args.arc_agi_tasks > 0:
        versions = args.arc_num_aug + 1
        train = 0.0 if args.arc_smoke_model else COST["startup"] + 10.0 + (
            args.arc_smoke_steps or ARC_SMOKE_STEPS) * COST["arc_smoke_step"]
        unseen = args.arc_agi_tasks * (max(args.adapt_steps) * versions * MEAN_DEMOS["arc"] * COST["arc_adapt_row_step"]
                                       + (versions * (1 + len(args.adapt_steps)) + 8) * COST["arc_solve_row"])
        trained = ARC_SMOKE_TASKS * 16 * COST["arc_solve_row"]
        parts.append(("ARC-AGI-1 (arc_smoke, 30x30)", f"{'given model' if args.arc_smoke_model else 'train it'}, "
                      f"{args.arc_agi_tasks} unseen tasks x {versions} versions adapted, {ARC_SMOKE_TASKS} trained",
                      train + unseen + trained))
    return parts


def print_plan(args, parts) -> None:
    total = sum(seconds for _, _, seconds in parts)
    print(f"plan ({'smoke' if args.smoke else 'run'}, work dir {args.work_dir}; expected core-minutes from COST, for "
          f"a fresh work dir: parts already done there are skipped):")
    for name, what, seconds in parts:
        print(f"  {name:<32} {seconds / 60:6.1f} min   {what}")
    print(f"  {'total':<32} {total / 60:6.1f} min of one core"
          + (f" (about {total / 60 / args.jobs:.0f} min wall on {args.jobs} free cores)" if args.jobs > 1 else ""),
          flush=True)


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (builds, trainings, evaluation workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ----------------------------------------------------------------------------- data and training
def build_data(args, work: Path) -> tuple[Path, dict]:
    """The family's task files and its two builds; returns the tasks folder and the split listing. Files of other
    settings in --work-dir stop the run (one line): runs trained on them would not be this run's."""
    tasks = work / "tasks"
    if (tasks / "split.json").is_file():
        listing = json.loads((tasks / "split.json").read_text())
        found = (len(listing["training"]), len(listing["evaluation"]), listing["seed"])
        if found != (args.num_train, args.num_heldout, args.family_seed):
            raise SystemExit(f"error: {tasks} holds a family of {found[0]} training and {found[1]} held-out tasks, "
                             f"seed {found[2]}; this run asks for {args.num_train}, {args.num_heldout}, seed "
                             f"{args.family_seed}: choose another --work-dir")
    for mode in ("heldout", "original"):
        meta_file = work / mode / "hrm_dataset.json"
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            if (meta["num_aug"], meta["seq_len"]) != (args.num_aug, args.canvas ** 2):
                raise SystemExit(f"error: {work / mode} was built with --num-aug {meta['num_aug']}, seq_len "
                                 f"{meta['seq_len']}; this run asks for --num-aug {args.num_aug}, --canvas "
                                 f"{args.canvas}: choose another --work-dir")
    if not (tasks / "split.json").is_file():
        run([sys.executable, "dataset_scripts/build_arc_procedural.py", "--output-dir", str(tasks),
             "--num-train", str(args.num_train), "--num-heldout", str(args.num_heldout),
             "--seed", str(args.family_seed), "--quiet"], work / "tasks.log", job_env(args))
    for mode in ("heldout", "original"):
        if not (work / mode / "hrm_dataset.json").is_file():
            run([sys.executable, "dataset_scripts/build_arc_dataset.py", "--arc-dir", str(tasks), "--split-mode",
                 mode, "--num-aug", str(args.num_aug), "--canvas", str(args.canvas), "--seed", str(args.family_seed),
                 "--output-dir", str(work / mode), "--quiet"], work / f"build-{mode}.log", job_env(args))
    return tasks, json.loads((tasks / "split.json").read_text())


def train_jobs(args, work: Path) -> list[tuple[list[str], Path]]:
    jobs = []
    for model in args.models:
        for seed in args.seeds:
            for mode in ("heldout", "original"):
                out = work / "runs" / f"{model}-{mode}-seed{seed}"
                if (out / "model" / "config.json").is_file():
                    continue
                cmd = [sys.executable, "training/train.py", "--config", CONFIGS[model], "--dataset", str(work / mode),
                       "--output_dir", str(out), "--seed", str(seed), "--disable_tqdm", "true", "--report_to", "none"]
                if args.train_steps:
                    cmd += ["--max_steps", str(args.train_steps)]
                jobs.append((cmd, out.with_suffix(".log")))
    return jobs


def run_parallel(jobs: list[tuple[list[str], Path]], parallel: int, env: dict) -> None:
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < parallel:
            cmd, log = pending.pop(0)
            log.parent.mkdir(parents=True, exist_ok=True)
            running.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT),
                            log, time.monotonic()))
            print(f"started {log.stem}", flush=True)
        time.sleep(2)
        for item in list(running):
            proc, log, start = item
            if proc.poll() is not None:
                running.remove(item)
                if proc.returncode != 0:
                    raise SystemExit(f"error: {log.stem} failed (exit {proc.returncode}); see {log}")
                print(f"finished {log.stem} in {time.monotonic() - start:.0f} s", flush=True)


def adapt_lr_for(args, model_dir: Path) -> float:
    """--adapt-lr, else the puzzle-embedding learning rate the model trained with (its run's train_config.yaml):
    the rows then move as fast as the trained ones did."""
    import yaml

    from modeling_hrm.adaptation import DEFAULT_LR

    if args.adapt_lr is not None:
        return args.adapt_lr
    config = Path(model_dir).parent / "train_config.yaml"
    if config.is_file():
        return float(yaml.safe_load(config.read_text())["training"]["puzzle_emb_lr"])
    return DEFAULT_LR


def train_summary(log: Path) -> dict:
    """train.py's closing JSON line (steps, train_seconds, the test split's blank-id exact accuracy)."""
    for line in reversed(log.read_text().splitlines() if log.is_file() else []):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    return {}


# ----------------------------------------------------------------------------- solving
def solve_pass(model, task: dict, versions) -> dict:
    """pass@1 / pass@2 of one task (every test input among the best 1 / 2 voted answers)."""
    import numpy as np

    from modeling_hrm.solve import solve_arc_task

    results = solve_arc_task(model, task, versions=versions)

    def hit(result, k):
        return any(a.shape == result.expected.shape and np.array_equal(a, result.expected) for a in result.attempts[:k])

    return {"pass@1": all(hit(r, 1) for r in results), "pass@2": all(hit(r, 2) for r in results)}


def evaluate_tasks(model_dir: str, tasks: dict[str, dict], seed: int, adapt_steps: list[int], num_aug: int,
                   lr: float, device: str, trained_versions: dict | None = None, adapt: bool = True) -> dict:
    """Per task: blank (adaptation's versions with id 0), blank_dihedral8 (the pipeline default) and adapted@steps
    with the adaptation seconds up to each; with `trained_versions` {task: versions}, the upper bound instead, and
    with `adapt` too, `readapted`@steps: new rows adapted on the model that trained the task's own rows (the
    optimizer's reach where the network is known to solve the task). Runs in a worker process, one thread."""
    import torch

    from modeling_hrm.adaptation import adapt_to_task
    from modeling_hrm.loading import load_pretrained_model

    torch.set_num_threads(1)
    model = load_pretrained_model(model_dir, device=device)
    out = {}
    for tid, task in tasks.items():
        if trained_versions is not None:
            out[tid] = {"upper_bound": solve_pass(model, task, trained_versions[tid])}
            if not adapt:
                continue
        entry = {"adapted": {}}
        clock = {"start": time.perf_counter(), "solving": 0.0}

        def callback(step, versions):
            if step in adapt_steps:
                start = time.perf_counter()
                entry["adapted"][str(step)] = {**solve_pass(model, task, versions),
                                               "seconds": start - clock["start"] - clock["solving"]}
                clock["solving"] += time.perf_counter() - start

        result = adapt_to_task(model, task, steps=max(adapt_steps), num_aug=num_aug, lr=lr, seed=seed,
                               callback=callback)
        entry.update(adapt_seconds=result.seconds, num_rows=result.num_rows, num_versions=len(result.versions),
                     first_loss=result.losses[0], final_loss=result.losses[-1],
                     blank=solve_pass(model, task, [(k, perm, 0) for k, perm, _ in result.versions]),
                     blank_dihedral8=solve_pass(model, task, None))
        if trained_versions is None:
            out[tid] = entry
        else:
            out[tid]["readapted"] = entry["adapted"]
    return out


def load_tasks(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def trained_versions_of(dataset: Path, task_ids) -> dict:
    from dataset_scripts.arc import task_versions_from_metadata
    from dataset_scripts.common import load_hrm_metadata

    meta = load_hrm_metadata(dataset)
    return {tid: task_versions_from_metadata(meta, tid) for tid in task_ids}


def evaluation_jobs(args, work: Path, heldout: dict[str, dict]) -> list[tuple[Path, tuple]]:
    """(cache file, evaluate_tasks arguments) of every run not evaluated yet with these settings."""
    jobs = []
    upper = trained_versions_of(work / "original", heldout)
    for model in args.models:
        for seed in args.seeds:
            for mode in ("heldout", "original"):
                run_dir = work / "runs" / f"{model}-{mode}-seed{seed}"
                cache = run_dir / "held_out_tasks.json"
                lr = adapt_lr_for(args, run_dir / "model")
                settings = {"adapt_steps": args.adapt_steps, "adapt_lr": lr, "num_aug": args.num_aug,
                            "tasks": sorted(heldout), "readapt": mode == "original" and args.readapt_original}
                if cache.is_file() and json.loads(cache.read_text()).get("settings") == settings:
                    continue
                jobs.append((cache, settings, (str(run_dir / "model"), heldout, seed, args.adapt_steps, args.num_aug,
                                               lr, args.device, upper if mode == "original" else None,
                                               mode == "heldout" or args.readapt_original)))
    return jobs


def run_evaluations(jobs, parallel: int) -> None:
    def write(cache, settings, figures):
        cache.write_text(json.dumps({"settings": settings, "tasks": figures}, indent=1))
        print(f"evaluated {cache.parent.name}", flush=True)

    if parallel == 1 or len(jobs) == 1:
        for cache, settings, call in jobs:
            write(cache, settings, evaluate_tasks(*call))
        return
    with ProcessPoolExecutor(max_workers=parallel, mp_context=get_context("spawn")) as pool:
        futures = [(cache, settings, pool.submit(evaluate_tasks, *call)) for cache, settings, call in jobs]
        for cache, settings, future in futures:
            write(cache, settings, future.result())


# ----------------------------------------------------------------------------- ARC-AGI-1 with arc_smoke
def arc_agi(args, work: Path) -> dict:
    """blank vs adapted on ARC-AGI-1 evaluation tasks the arc_smoke model never saw; its trained evaluation tasks
    with their trained versions."""
    from dataset_scripts.arc import load_release
    from dataset_scripts.common import load_hrm_metadata

    data = Path(args.arc_smoke_data or work / "arc-smoke-data")
    model_dir = Path(args.arc_smoke_model or work / "arc-smoke" / "model")
    if not args.arc_smoke_model and not (model_dir / "config.json").is_file():
        if not (data / "hrm_dataset.json").is_file():
            run([sys.executable, "dataset_scripts/build_arc_dataset.py", "--output-dir", str(data), "--source",
                 "arc-agi-1", "--max-tasks", str(ARC_SMOKE_TASKS), "--num-aug", "15", "--allow-demo-variants",
                 "--quiet"], work / "arc-smoke-data.log", job_env(args))
        cmd = [sys.executable, "training/train.py", "--config", ARC_SMOKE_CONFIG, "--dataset", str(data),
               "--output_dir", str(model_dir.parent), "--disable_tqdm", "true", "--report_to", "none"]
        if args.arc_smoke_steps:
            cmd += ["--max_steps", str(args.arc_smoke_steps)]
        print("training the arc_smoke model", flush=True)
        run(cmd, work / "arc-smoke.log", job_env(args))
    _, evaluation, release, _ = load_release("arc-agi-1-2024")
    if (data / "hrm_dataset.json").is_file():
        trained = load_hrm_metadata(data)["evaluation_task_ids"]
    else:  # a given model without its data: arc_smoke.yaml trains on the first evaluation tasks
        trained = sorted(evaluation)[:ARC_SMOKE_TASKS]
    unseen = [tid for tid in sorted(evaluation) if tid not in trained][:args.arc_agi_tasks]
    cache = work / "arc_agi_1.json"
    settings = {"model": str(model_dir), "unseen": unseen, "trained": trained, "adapt_steps": args.adapt_steps,
                "adapt_lr": adapt_lr_for(args, model_dir), "num_aug": args.arc_num_aug}
    if cache.is_file() and json.loads(cache.read_text()).get("settings") == settings:
        return json.loads(cache.read_text())
    figures = evaluate_tasks(str(model_dir), {t: evaluation[t] for t in unseen}, 0, args.adapt_steps,
                             args.arc_num_aug, settings["adapt_lr"], args.device)
    record = {"settings": settings, "release": release.name, "unseen_tasks": figures,
              "unseen": summarize_tasks(figures, args.adapt_steps)}
    if (data / "hrm_dataset.json").is_file():
        versions = trained_versions_of(data, trained)
        seen = evaluate_tasks(str(model_dir), {t: evaluation[t] for t in trained}, 0, args.adapt_steps,
                              args.arc_num_aug, settings["adapt_lr"], args.device, trained_versions=versions)
        record["trained_tasks"] = seen
        record["trained_pass@2"] = statistics.mean(float(v["upper_bound"]["pass@2"]) for v in seen.values())
    cache.write_text(json.dumps(record, indent=1))
    return record


# ----------------------------------------------------------------------------- figures
def summarize_tasks(figures: dict, adapt_steps: list[int]) -> dict:
    """Means over tasks: pass@1/2 of each condition, adaptation seconds per task at each step count."""
    def mean(values):
        values = [float(v) for v in values]
        return statistics.mean(values) if values else None

    entries = list(figures.values())
    summary = {}
    for condition in ("blank", "blank_dihedral8", "upper_bound"):
        if entries and condition in entries[0]:
            summary[condition] = {k: mean(e[condition][k] for e in entries) for k in ("pass@1", "pass@2")}
    if entries and "readapted" in entries[0]:
        summary["readapted"] = {str(s): {k: mean(e["readapted"][str(s)][k] for e in entries)
                                         for k in ("pass@1", "pass@2", "seconds")} for s in adapt_steps}
    if entries and "adapted" in entries[0]:
        summary["adapted"] = {str(s): {k: mean(e["adapted"][str(s)][k] for e in entries)
                                       for k in ("pass@1", "pass@2", "seconds")} for s in adapt_steps}
        summary["rows_per_task"] = mean(e["num_rows"] for e in entries)
    return summary


def collect(args, work: Path, listing: dict) -> dict:
    """Per model and seed: the conditions (means over the held-out tasks), by held-out kind, and training cost."""
    kinds = {tid: f"{entry['heldout']}: " + "+".join(s["op"] for s in entry["program"])
             for tid, entry in listing["tasks"].items() if entry["heldout"]}
    runs, summary = {}, {}
    for model in args.models:
        runs[model] = {}
        for seed in args.seeds:
            merged = defaultdict(dict)
            train = {}
            for mode in ("heldout", "original"):
                run_dir = work / "runs" / f"{model}-{mode}-seed{seed}"
                for tid, entry in json.loads((run_dir / "held_out_tasks.json").read_text())["tasks"].items():
                    merged[tid].update(entry)
                log = train_summary(run_dir.with_suffix(".log"))
                train[mode] = {k: log.get(k) for k in ("step", "train_seconds", "eval")}
            by_kind = defaultdict(dict)
            for tid, entry in merged.items():
                by_kind[kinds[tid]][tid] = entry
            runs[model][str(seed)] = {**summarize_tasks(merged, args.adapt_steps), "training": train,
                                      "by_kind": {k: summarize_tasks(v, args.adapt_steps) for k, v in by_kind.items()},
                                      "tasks": merged}
        per_seed = list(runs[model].values())

        def over_seeds(get):
            values = [get(r) for r in per_seed]
            return {"mean": statistics.mean(values), "min": min(values), "max": max(values), "per_seed": values}

        summary[model] = {
            "blank": over_seeds(lambda r: r["blank"]["pass@2"]),
            "blank_dihedral8": over_seeds(lambda r: r["blank_dihedral8"]["pass@2"]),
            "adapted": {str(s): over_seeds(lambda r, s=s: r["adapted"][str(s)]["pass@2"]) for s in args.adapt_steps},
            "adapt_seconds_per_task": {str(s): over_seeds(lambda r, s=s: r["adapted"][str(s)]["seconds"])
                                       for s in args.adapt_steps},
            "upper_bound": over_seeds(lambda r: r["upper_bound"]["pass@2"]),
        }
        if "readapted" in per_seed[0]:
            summary[model]["readapted"] = {str(s): over_seeds(lambda r, s=s: r["readapted"][str(s)]["pass@2"])
                                           for s in args.adapt_steps}
    return {"runs": runs, "summary": summary}


def markdown(result: dict, adapt_steps: list[int]) -> str:
    pct = lambda d: f"{100 * d['mean']:.1f}% ({100 * d['min']:.0f}–{100 * d['max']:.0f})"  # noqa: E731
    head = ["model", "blank id", *[f"adapted, {s} steps" for s in adapt_steps], "trained on the demos (upper bound)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, s in result["summary"].items():
        adapted = [f"{pct(s['adapted'][str(k)])}, {s['adapt_seconds_per_task'][str(k)]['mean']:.0f} s/task"
                   for k in adapt_steps]
        lines.append(f"| {model.upper()} | {pct(s['blank'])} | " + " | ".join(adapted)
                     + f" | {pct(s['upper_bound'])} |")
    for model, s in result["summary"].items():
        if "readapted" in s:
            lines.append(f"\n{model.upper()}, new rows adapted on the model trained with the demos: "
                         + ", ".join(f"{k} steps {pct(v)}" for k, v in s["readapted"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = resolve_args(argv)
    work = (ROOT / args.work_dir) if not Path(args.work_dir).is_absolute() else Path(args.work_dir)
    parts = plan(args)
    print_plan(args, parts)
    if args.plan:
        return 0
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    timing = {}

    def timed(name, fn, *fn_args):
        start = cpu_seconds()
        value = fn(*fn_args)
        timing[name] = round(cpu_seconds() - start, 1)
        return value

    tasks_dir, listing = timed("family_and_builds", build_data, args, work)
    timed("training", run_parallel, train_jobs(args, work), args.jobs, job_env(args))
    heldout = load_tasks(tasks_dir / "evaluation")
    timed("held_out_tasks", run_evaluations, evaluation_jobs(args, work, heldout), args.jobs)
    result = {"benchmark": "arc_adaptation", "command": " ".join(["python benchmarks/arc_adaptation.py",
                                                                   *(sys.argv[1:] if argv is None else argv)]),
              "smoke": args.smoke, "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
              "configs": {m: CONFIGS[m] for m in args.models},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "device": args.device,
                          "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None},
              "family": {k: listing[k] for k in ("train_compositions", "heldout_compositions", "heldout_parameters")},
              **collect(args, work, listing)}
    if args.arc_agi_tasks > 0:
        result["arc_agi_1"] = timed("arc_agi_1", arc_agi, args, work)
    result["wall_seconds"] = round(time.time() - started, 1)
    result["cpu_seconds"] = {**timing, "total": round(sum(timing.values()), 1),
                             "planned": {name: round(seconds, 1) for name, _, seconds in parts}}
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(markdown(result, args.adapt_steps))
    if "arc_agi_1" in result:
        unseen = result["arc_agi_1"]["unseen"]
        print(f"ARC-AGI-1 ({len(result['arc_agi_1']['unseen_tasks'])} unseen evaluation tasks, arc_smoke model): "
              f"blank {unseen['blank']['pass@2']:.2f}, "
              + ", ".join(f"adapted@{k} {v['pass@2']:.2f}" for k, v in unseen["adapted"].items()))
    print(f"wrote {out}")
    for model, s in result["summary"].items():
        print(f"RESULT model={model} blank={s['blank']['mean']:.3f} "
              + " ".join(f"adapted@{k}={v['mean']:.3f}" for k, v in s["adapted"].items())
              + f" upper_bound={s['upper_bound']['mean']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
