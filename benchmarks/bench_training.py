"""Training benchmarks: throughput / MFU of the real training loop, the loop's overhead over the model-only step,
and peak memory vs. H_cycles × L_cycles.

    python benchmarks/bench_training.py throughput --config training/configs/sudoku_cpu.yaml --dataset data/sudoku6
    python benchmarks/bench_training.py overhead --config training/configs/sudoku_cpu.yaml --dataset data/sudoku4
    python benchmarks/bench_training.py memory --config training/configs/sudoku_cpu.yaml --dataset data/sudoku6 \
        --cycles 2x2 8x8 --batch-size 32

`throughput` runs `training/train.py`'s `train()` in-process for warm-up + measured steps and reads the per-step
rates it logs (so the data stream, ACT carry, both optimizers and logging are all included). FLOPs:
`modeling_hrm.flops.training_step_flops` (the project's convention: every block application of the segment, the
token head, the extra no-grad segment of Q-learning ACT, 2× the forward for the backward of what carries
gradient). MFU = achieved FLOP/s ÷ this machine's dense fp32 matmul rate, measured in the same process before and
after the run (median), so contention from other processes hits both alike.

`overhead` compares, in one process and interleaved in rounds, the step time of `train()` (between its logging
calls, after a warm-up window) with the model-only step, both in CPU time of the process (one thread: the work
done, which contention from other processes on a shared machine does not change; wall clock is printed too).
The model-only step is the same model, batch size, optimizers and schedule on batches gathered beforehand, with
the ACT carry passed along: forward, backward, Adam-atan2 step and the puzzle-embedding sign-SGD, nothing else. Overhead = loop step / model-only step − 1:
the data stream, carry bookkeeping, metric reduction, LR schedule, Accelerate wrappers, progress and logging.

`memory` trains a few steps in a fresh subprocess per cycle setting and reports peak memory above the
post-setup baseline (CPU: peak RSS; CUDA: max_memory_allocated). With the one-step gradient only one L and one
H application keep activations, so 8×8 should need about what 2×2 needs.
Results are appended to benchmarks/results/bench_training.jsonl.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.harness import (RESULTS, TrainingStep, build_model, command_line, matmul_rate,  # noqa: E402
                                write_jsonl)
from modeling_hrm.flops import training_step_flops  # noqa: E402

OUTPUT = RESULTS / "bench_training.jsonl"


def append_result(record: dict) -> None:
    write_jsonl(OUTPUT, [record])


def cpu_matmul_rate() -> float:
    """Dense fp32 matmul FLOP/s on this CPU (median of 7 products of 1024³)."""
    return matmul_rate("cpu", torch.float32, size=1024, repeats=7)


def _train_argv(args, out: str, steps: int, logging_steps: int | None) -> list[str]:
    argv = ["--config", args.config, "--dataset", args.dataset, "--output_dir", out, "--max_steps", str(steps),
            "--report_to", "none", "--disable_tqdm", "--eval_max_examples", "64", "--save_steps", "100000",
            "--eval_steps", "100000"]
    if logging_steps:
        argv += ["--logging_steps", str(logging_steps)]
    if args.batch_size:
        argv += ["--global_batch_size", str(args.batch_size)]
    return argv + sum((["--set", s] for s in args.set), [])


def throughput(args) -> None:
    from training.train import check_arguments, parse_arguments, train

    rate_before = cpu_matmul_rate()
    with tempfile.TemporaryDirectory() as out:
        run = parse_arguments(_train_argv(args, out, args.warmup + args.steps, 1))
        plan = check_arguments(run)
        summary = train(run, plan)
        records = [json.loads(line) for line in open(Path(out) / "metrics.jsonl")]
    rate_after = cpu_matmul_rate()
    steps_per_s = [r["train/steps_per_second"] for r in records if "train/steps_per_second" in r][args.warmup:]
    model_cfg = plan.model_config
    batch = summary["global_batch_size"]
    flops = training_step_flops(model_cfg, batch)
    median_steps = statistics.median(steps_per_s)
    peak = statistics.median([rate_before, rate_after])
    append_result({
        "bench": "training_throughput", "config": args.config, "dataset": args.dataset, "set": args.set,
        "global_batch_size": batch, "threads": torch.get_num_threads(), "measured_steps": len(steps_per_s),
        "steps_per_second": round(median_steps, 4), "examples_per_second": round(median_steps * batch, 1),
        "gflop_per_step": round(flops / 1e9, 2), "achieved_gflops": round(median_steps * flops / 1e9, 2),
        "matmul_gflops": round(peak / 1e9, 2), "mfu": round(median_steps * flops / peak, 4),
        "model_type": model_cfg.model_type,
        "parameters": sum(p.numel() for p in plan.model_class(model_cfg).parameters()),
        "final_train_loss": [r["train/loss"] for r in records if "train/loss" in r][-1],
        "command": command_line(__file__), "time": time.strftime("%Y-%m-%d %H:%M:%S")})


def model_only_seconds(plan, training, arrays: dict, steps: int, warmup: int, clock=time.process_time) -> float:
    """Mean seconds (by `clock`) of one model-only training step (see module docstring) over `steps` steps.

    Every step gets fresh rows (gathered before timing) and the run's learning-rate schedule, as the loop does: a
    model trained on one fixed batch soon fits it, and the tiny gradients that follow (denormals on a CPU) would
    make its steps slower than real ones.
    """
    from training.optim import AdamATan2, lr_at_step, sign_sgd_puzzle_embedding_step

    model = build_model(plan.model_config, seed=0)
    optimizer = AdamATan2(model.parameters(), lr=training.learning_rate, betas=(training.beta1, training.beta2),
                          weight_decay=training.weight_decay)
    total, batch = warmup + steps, plan.micro_batch
    rows = torch.randperm(len(arrays["inputs"]), generator=torch.Generator().manual_seed(0))[:total * batch].numpy()
    x = torch.as_tensor(arrays["inputs"][rows]).long().view(total, batch, -1)
    y = torch.as_tensor(arrays["labels"][rows]).long().view(total, batch, -1)
    y = torch.where(y == 0, -100, y)
    pid = torch.as_tensor(arrays["puzzle_identifiers"][rows]).long().view(total, batch)
    schedule = (training.lr_warmup_steps, training.max_steps or total, training.lr_min_ratio)
    table, carry, times = model.puzzle_embedding, None, []
    for i in range(total):
        start = clock()
        optimizer.param_groups[0]["lr"] = lr_at_step(i + 1, training.learning_rate, *schedule)
        out = model(x[i], puzzle_identifiers=pid[i], labels=y[i], carry=carry)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if table is not None and table.local_weight is not None:
            sign_sgd_puzzle_embedding_step(table.weight, table.local_ids, table.local_weight.grad,
                                           lr_at_step(i + 1, training.puzzle_emb_lr, *schedule),
                                           training.puzzle_emb_weight_decay)
            table.local_weight = None
        carry = out.carry
        if i >= warmup:
            times.append(clock() - start)
    return statistics.mean(times)


def overhead(args) -> None:
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset
    from training.train import check_arguments, parse_arguments, train

    with tempfile.TemporaryDirectory() as out:
        run = parse_arguments(_train_argv(args, out, args.steps, None))
        logging_steps = run.training.logging_steps
        plan = check_arguments(run)
    if plan.num_processes != 1:
        raise SystemExit("overhead: run it as one process")
    ds, _ = load_hrm_dataset(args.dataset, "train")
    arrays = dataset_arrays(ds)
    # The loop's windows are delimited by its logging calls (`MetricWindow.read`, every `logging_steps` steps;
    # evaluation and saving are beyond the run), timed by CPU time of this process (what contention from other
    # processes does not change; one thread) and by wall clock.
    import training.train as train_module

    marks: list[tuple[float, float]] = []
    read = train_module.MetricWindow.read

    def timed_read(self, accelerator):
        result = read(self, accelerator)
        marks.append((time.process_time(), time.perf_counter()))
        return result

    train_module.MetricWindow.read = timed_read
    windows = max(2, args.steps // logging_steps)
    rounds = []
    for _ in range(args.rounds):
        model_cpu = model_only_seconds(plan, run.training, arrays, windows * logging_steps, logging_steps)
        model_wall = model_only_seconds(plan, run.training, arrays, windows * logging_steps // 4, logging_steps,
                                        clock=time.perf_counter)
        marks.clear()
        with tempfile.TemporaryDirectory() as out:
            train(parse_arguments(_train_argv(args, out, logging_steps * (windows + 1), None)))
        (cpu0, wall0), (cpu1, wall1) = marks[0], marks[-1]  # the first window is the warm-up
        loop_cpu, loop_wall = (cpu1 - cpu0) / (windows * logging_steps), (wall1 - wall0) / (windows * logging_steps)
        rounds.append({"model_only_cpu_ms": round(1e3 * model_cpu, 3), "loop_cpu_ms": round(1e3 * loop_cpu, 3),
                       "overhead": round(loop_cpu / model_cpu - 1, 4), "model_only_wall_ms": round(1e3 * model_wall, 3),
                       "loop_wall_ms": round(1e3 * loop_wall, 3)})
        print(json.dumps(rounds[-1]), flush=True)
    train_module.MetricWindow.read = read
    append_result({
        "bench": "training_loop_overhead", "config": args.config, "dataset": args.dataset, "set": args.set,
        "model_type": plan.model_config.model_type, "global_batch_size": plan.global_batch,
        "logging_steps": logging_steps, "threads": torch.get_num_threads(), "steps_per_round": args.steps,
        "rounds": rounds, "median_overhead": statistics.median(r["overhead"] for r in rounds),
        "median_model_only_cpu_ms": statistics.median(r["model_only_cpu_ms"] for r in rounds),
        "median_loop_cpu_ms": statistics.median(r["loop_cpu_ms"] for r in rounds),
        "command": command_line(__file__), "time": time.strftime("%Y-%m-%d %H:%M:%S")})


def memory_child(args) -> None:
    """In a fresh process: set up model + optimizer, then train `steps` steps; print peak memory above baseline."""
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset
    from training.optim import AdamATan2
    from training.train import check_arguments, parse_arguments

    h, l = (int(v) for v in args.cycle.split("x"))
    with tempfile.TemporaryDirectory() as out:
        plan = check_arguments(parse_arguments(["--config", args.config, "--dataset", args.dataset, "--output_dir", out,
                                                "--H_cycles", str(h), "--L_cycles", str(l)]))
    ds, meta = load_hrm_dataset(args.dataset, "train")
    arrays = dataset_arrays(ds)
    device = torch.device(args.device)
    model = build_model(plan.model_config, device, seed=0)
    optimizer = AdamATan2(model.parameters(), lr=1e-4, weight_decay=0.1)
    x = torch.as_tensor(arrays["inputs"][:args.batch_size]).long().to(device)
    y = torch.as_tensor(arrays["labels"][:args.batch_size]).long().to(device)
    y = torch.where(y == 0, -100, y)
    pid = torch.as_tensor(arrays["puzzle_identifiers"][:args.batch_size]).long().to(device)

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20

    baseline = rss_mb() if device.type == "cpu" else torch.cuda.memory_allocated() / 2 ** 20
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step, start = TrainingStep(model, optimizer, x, y, pid), time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if device.type == "cpu"
            else torch.cuda.max_memory_allocated() / 2 ** 20)
    print(json.dumps({"cycles": args.cycle, "baseline_mb": round(baseline, 1), "peak_mb": round(peak, 1),
                      "peak_above_baseline_mb": round(peak - baseline, 1), "seconds_per_step_incl_first": round(seconds, 3)}))


def memory(args) -> None:
    rows = []
    for cycle in args.cycles:
        cmd = [sys.executable, __file__, "memory-child", "--config", args.config, "--dataset", args.dataset,
               "--cycle", cycle, "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--device",
               args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    append_result({"bench": "training_peak_memory", "config": args.config, "dataset": args.dataset,
                   "device": args.device, "batch_size": args.batch_size, "steps": args.steps,
                   "threads": torch.get_num_threads(), "results": rows,
                   "ratio_last_to_first": round(rows[-1]["peak_above_baseline_mb"]
                                                / max(rows[0]["peak_above_baseline_mb"], 1e-9), 3),
                   "command": command_line(__file__), "time": time.strftime("%Y-%m-%d %H:%M:%S")})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("throughput", "overhead", "memory", "memory-child"):
        p = sub.add_parser(name)
        p.add_argument("--config", default=str(REPO / "training" / "configs" / "sudoku_cpu.yaml"))
        p.add_argument("--dataset", required=True)
        p.add_argument("--batch-size", type=int, default=32 if name.startswith("memory") else None)
        p.add_argument("--steps", type=int, default={"throughput": 20, "overhead": 200}.get(name, 3))
        p.add_argument("--device", default="cpu")
        if name in ("throughput", "overhead"):
            p.add_argument("--warmup", type=int, default=3 if name == "throughput" else 10)
            p.add_argument("--set", action="append", default=[], help="extra config overrides (SECTION.KEY=VALUE)")
        if name == "overhead":
            p.add_argument("--rounds", type=int, default=3, help="interleaved model-only / loop measurements")
        if name == "memory":
            p.add_argument("--cycles", nargs="+", default=["2x2", "8x8"])
        if name == "memory-child":
            p.add_argument("--cycle", required=True)
    args = parser.parse_args(argv)
    {"throughput": throughput, "overhead": overhead, "memory": memory, "memory-child": memory_child}[args.command](args)


if __name__ == "__main__":
    main()
