"""Training benchmarks: throughput / MFU of the real training loop, and peak memory vs. H_cycles × L_cycles.

    python benchmarks/bench_training.py throughput --config training/configs/sudoku_cpu.yaml --dataset data/sudoku6
    python benchmarks/bench_training.py memory --config training/configs/sudoku_cpu.yaml --dataset data/sudoku6 \
        --cycles 2x2 8x8 --batch-size 32

`throughput` runs `training/train.py`'s `train()` in-process for warm-up + measured steps and reads the per-step
rates it logs (so the data stream, ACT carry, both optimizers and logging are all included). FLOPs follow the
project's convention: 2 × (parameters of one block) × tokens per block application, for every block application
in a forward pass — the no-grad cycles, the one-step-gradient L and H steps, and the extra no-grad segment ACT
training runs for the Q-continue target — plus 2× that again for the backward of the applications that carry
gradient. MFU = achieved FLOP/s ÷ this machine's dense fp32 matmul rate, measured in the same process before and
after the run (median), so contention from other processes hits both alike.

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
RESULTS = REPO / "benchmarks" / "results" / "bench_training.jsonl"


def matmul_rate(size: int = 1024, repeats: int = 7) -> float:
    """Dense fp32 matmul FLOP/s on this CPU (median of `repeats` products of size³)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times)


def step_flops(cfg, batch_size: int, act_training: bool = True) -> float:
    """FLOPs of one training step (one segment + backward) by the project's convention (see module docstring)."""
    block_params = 4 * cfg.hidden_size ** 2 + 3 * cfg.hidden_size * cfg.intermediate_size
    tokens = batch_size * cfg.total_seq_len
    per_segment = cfg.H_cycles * cfg.L_cycles * cfg.L_layers + cfg.H_cycles * cfg.H_layers  # block applications
    forward = per_segment * (2 if act_training and cfg.halt_max_steps > 1 else 1)
    backward = 2 * (cfg.L_layers + cfg.H_layers)  # the L and H steps that carry gradient, 2× their forward
    return 2 * block_params * tokens * (forward + backward)


def append_result(record: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def throughput(args) -> None:
    from modeling_hrm import HRMConfig, HRMForPuzzleSolving
    from training.train import load_config, train

    rate_before = matmul_rate()
    with tempfile.TemporaryDirectory() as out:
        argv = ["--config", args.config, "--dataset", args.dataset, "--output_dir", out, "--max_steps",
                str(args.warmup + args.steps), "--logging_steps", "1", "--report_to", "none", "--disable_tqdm",
                "--eval_max_examples", "64", "--save_steps", "100000"]
        if args.batch_size:
            argv += ["--global_batch_size", str(args.batch_size)]
        config = load_config(argv + sum((["--set", s] for s in args.set), []))
        summary = train(config)
        records = [json.loads(line) for line in open(Path(out) / "metrics.jsonl")]
    rate_after = matmul_rate()
    steps_per_s = [r["train/steps_per_second"] for r in records if "train/steps_per_second" in r][args.warmup:]
    model_cfg = HRMConfig(**config["model_config"])
    batch = summary["global_batch_size"]
    flops = step_flops(model_cfg, batch)
    median_steps = statistics.median(steps_per_s)
    peak = statistics.median([rate_before, rate_after])
    append_result({
        "bench": "training_throughput", "config": args.config, "dataset": args.dataset, "set": args.set,
        "global_batch_size": batch, "threads": torch.get_num_threads(), "measured_steps": len(steps_per_s),
        "steps_per_second": round(median_steps, 4), "examples_per_second": round(median_steps * batch, 1),
        "gflop_per_step": round(flops / 1e9, 2), "achieved_gflops": round(median_steps * flops / 1e9, 2),
        "matmul_gflops": round(peak / 1e9, 2), "mfu": round(median_steps * flops / peak, 4),
        "parameters": sum(p.numel() for p in HRMForPuzzleSolving(model_cfg).parameters()), "final_train_loss": [r["train/loss"] for r in records if "train/loss" in r][-1],
        "time": time.strftime("%Y-%m-%d %H:%M:%S")})


def memory_child(args) -> None:
    """In a fresh process: set up model + optimizer, then train `steps` steps; print peak memory above baseline."""
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset
    from modeling_hrm import HRMConfig, HRMForPuzzleSolving
    from training.optim import AdamATan2
    from training.train import load_config

    h, l = (int(v) for v in args.cycle.split("x"))
    config = load_config(["--config", args.config, "--dataset", args.dataset, "--output_dir", "unused",
                          "--set", f"model.H_cycles={h}", "--set", f"model.L_cycles={l}"])
    ds, meta = load_hrm_dataset(args.dataset, "train")
    arrays = dataset_arrays(ds)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = HRMForPuzzleSolving(HRMConfig.from_dataset_metadata(meta, **config["model"])).to(device).train()
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
    carry, start = None, time.perf_counter()
    for _ in range(args.steps):
        out = model(x, puzzle_identifiers=pid, labels=y, carry=carry)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        carry = out.carry
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
                   "time": time.strftime("%Y-%m-%d %H:%M:%S")})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("throughput", "memory", "memory-child"):
        p = sub.add_parser(name)
        p.add_argument("--config", default=str(REPO / "training" / "configs" / "sudoku_cpu.yaml"))
        p.add_argument("--dataset", required=True)
        p.add_argument("--batch-size", type=int, default=None if name == "throughput" else 32)
        p.add_argument("--steps", type=int, default=20 if name == "throughput" else 3)
        p.add_argument("--device", default="cpu")
        if name == "throughput":
            p.add_argument("--warmup", type=int, default=3)
            p.add_argument("--set", action="append", default=[], help="extra config overrides (SECTION.KEY=VALUE)")
        if name == "memory":
            p.add_argument("--cycles", nargs="+", default=["2x2", "8x8"])
        if name == "memory-child":
            p.add_argument("--cycle", required=True)
    args = parser.parse_args(argv)
    {"throughput": throughput, "memory": memory, "memory-child": memory_child}[args.command](args)


if __name__ == "__main__":
    main()
