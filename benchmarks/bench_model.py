"""Training-step throughput and MFU of HRM / TRM (one ACT segment + backward + AdamW step): eager, our compiled
step, and a plain `torch.compile(model, dynamic=False)` of the same model (what the original's training script
does: the stand-in for the original's compiled step), interleaved in one process.

    python benchmarks/bench_model.py --threads 2                    # HRM, CPU, fp32, hidden 256, 2+2 layers, Sudoku
    python benchmarks/bench_model.py --threads 2 --compare-compile  # eager, ours compiled, plain compile: rates, ratios
    python benchmarks/bench_model.py --model trm --threads 2        # TRM (H 3 x L 6 cycles unless --cycles)
    python benchmarks/bench_model.py --halt-only --threads 2        # HRM with halt-only ACT (no target segment)
    python benchmarks/bench_model.py --device cuda --dtype bf16 --batch-size 768 --hidden-size 512 --layers 4

`--dtype bf16` is the original's precision (`forward_dtype="bfloat16"`: the whole forward in bf16, fp32 master
weights); `--dtype bf16-autocast` is torch.autocast over an fp32 model. `--compile` times our compiled step:
`model.compile_segment()` (the segment's tensor work and loss as one graph, fullgraph, static shapes), as
`train.py` with `compile: true`. `--compare-compile` alternates three variants on one model and optimizer in one
process, one step each per round (so load from other processes hits all alike), and reports the median step
rates and their ratios: ours compiled / eager, ours compiled / plain compile, plain compile / eager.

FLOPs: `modeling_hrm.flops.training_step_flops` (the project's convention). MFU = achieved FLOP/s ÷ the dense
matmul rate measured in the same process, interleaved with the steps. Records are appended to
benchmarks/results/bench_model.jsonl.
"""

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import (RESULTS, TrainingStep, build_model, command_line, device_name,  # noqa: E402
                                matmul_rate, model_config, paired_ratio, time_interleaved, write_jsonl)
from modeling_hrm.flops import training_step_flops  # noqa: E402

# (ratio name, slower variant, faster variant)
RATIOS = (("compiled_over_eager", "eager", "compiled"), ("compiled_over_plain_compile", "plain_compile", "compiled"),
          ("plain_compile_over_eager", "eager", "plain_compile"))
VARIANTS = {"eager": "ours, eager", "compiled": "ours, compiled (train.py compile: true)",
            "plain_compile": "plain torch.compile(model, dynamic=False) of ours (the original's, stand-in)"}


def config_from_args(args):
    fields = dict(vocab_size=args.vocab_size, seq_len=args.seq_len, hidden_size=args.hidden_size,
                  num_heads=args.num_heads, L_layers=args.layers, puzzle_emb_ndim=args.hidden_size, halt_max_steps=16,
                  forward_dtype="bfloat16" if args.dtype == "bf16" else "float32")
    if args.cycles:
        fields["H_cycles"], fields["L_cycles"] = args.cycles
    if args.model == "hrm":
        fields.update(H_layers=args.layers, no_ACT_continue=args.halt_only)
    else:
        fields.update(mlp_t=args.mlp_t, pos_encodings="none" if args.mlp_t else "rope")
    return model_config(args.model, **fields)


def model_name(args) -> str:
    return args.model + ("-mlp_t" if args.model == "trm" and args.mlp_t else "") + (
        " halt-only" if args.model == "hrm" and args.halt_only else "")


def bench_solve(args, model, device):
    """Puzzles/s of `model.solve(max_steps=args.solve, early_exit=False)`, eager and/or compiled, interleaved."""
    model.eval()
    if args.compile or args.compare_compile:
        model.compile_segment()
    compiled_step = model._compiled_solve_step
    inputs = torch.randint(1, args.vocab_size, (args.batch_size, args.seq_len), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16-autocast")

    def solve(compiled: bool):
        def run():
            model._compiled_solve_step = compiled_step if compiled else None
            with autocast:
                model.solve(inputs, max_steps=args.solve, early_exit=False)
        return run

    names = ["eager", "compiled"] if args.compare_compile else ["compiled" if args.compile else "eager"]
    times = time_interleaved({n: solve(n == "compiled") for n in names}, args.steps, args.warmup, device)
    config = model.config
    results = []
    for name in names:
        seconds = statistics.median(times[name])
        results.append({
            "device": device_name(device), "benchmark": "solve", "model": model_name(args), "dtype": args.dtype,
            "compile": name == "compiled", "batch_size": args.batch_size, "hidden_size": args.hidden_size,
            "layers": args.layers, "cycles": [config.H_cycles, config.L_cycles], "segments": args.solve,
            "seconds": round(seconds, 4), "puzzles_per_s": round(args.batch_size / seconds, 1),
            "segments_per_s": round(args.batch_size * args.solve / seconds, 1), "torch": torch.__version__})
    if args.compare_compile:
        for result in results:
            result["compile_speedup"] = round(statistics.median(times["eager"]) / statistics.median(times["compiled"]), 3)
    return write_jsonl(args.output, results, command_line(__file__, args.argv))


def bench_training_step(args, model, device):
    config = model.config
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    inputs = torch.randint(1, args.vocab_size, (args.batch_size, args.seq_len), device=device)
    labels = torch.randint(2, args.vocab_size, (args.batch_size, args.seq_len), device=device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bf16-autocast" else None)
    step = TrainingStep(model, optimizer, inputs, labels, autocast=autocast)

    names = (list(VARIANTS) if args.compare_compile else ["compiled" if args.compile else "eager"])
    compiled_segment = model.compile_segment(solve=False)._compiled_segment if "compiled" in names else None
    # The plain compile wraps the model itself (its forward, checks and all, with graph breaks where it must);
    # it runs the uncompiled segment inside its own graph.
    plain = torch.compile(model, dynamic=False) if "plain_compile" in names else None

    def variant(name):
        def run():
            model._compiled_segment = compiled_segment if name == "compiled" else None
            step(plain if name == "plain_compile" else None)
        return run

    rates = []
    mm_dtype = torch.float32 if args.dtype == "fp32" else torch.bfloat16
    probe = None if args.no_peak else (
        lambda: rates.append(matmul_rate(device, mm_dtype, 2048 if device.type == "cpu" else 8192)))
    times = time_interleaved({n: variant(n) for n in names}, args.steps, args.warmup, device, between=probe)

    peak = statistics.median(rates) if rates else None
    flops = training_step_flops(config, args.batch_size)
    base = {
        "device": device_name(device), "model": model_name(args), "dtype": args.dtype, "batch_size": args.batch_size,
        "hidden_size": args.hidden_size, "layers": args.layers, "cycles": [config.H_cycles, config.L_cycles],
        "seq_len": config.total_seq_len, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "torch": torch.__version__, "gflop_per_step": round(flops / 1e9, 2), "rounds": args.steps,
    }
    median = {name: statistics.median(times[name]) for name in names}
    results = []
    for name in names:
        result = {**base, "variant": name, "compile": name != "eager", "step_time_s": round(median[name], 4),
                  "cpu_time_s": round(statistics.median(times[f"{name}:cpu"]), 4),
                  "examples_per_s": round(args.batch_size / median[name], 1),
                  "achieved_gflops": round(flops / median[name] / 1e9, 2)}
        if peak:
            result.update(matmul_peak_gflops=round(peak / 1e9, 2), mfu=round(flops / median[name] / peak, 3))
        if name != "eager":
            result["first_compiled_step_s"] = round(times[f"{name}:first"][0], 1)
        results.append(result)
    if args.compare_compile:
        # Ratios: medians over rounds of the per-round ratio (the steps of one round ran back to back, under the
        # same load), of wall-clock time and of this process's CPU time (the work done; waiting for a core on a
        # shared machine does not add to it).
        ratios = {key: paired_ratio(times, slow, fast) for key, slow, fast in RATIOS}
        ratios.update({f"{key}_cpu_time": paired_ratio(times, f"{slow}:cpu", f"{fast}:cpu") for key, slow, fast in RATIOS})
        per_round = [round(p / c, 3) for p, c in zip(times["plain_compile"], times["compiled"])]
        for result in results:
            result.update({k: round(v, 3) for k, v in ratios.items()})
            result["compiled_over_plain_compile_per_round"] = per_round
            result["compile_speedup"] = round(ratios["compiled_over_eager"], 3)
    write_jsonl(args.output, results, command_line(__file__, args.argv))
    if args.compare_compile:
        print(f"\n{base['model']}, hidden {args.hidden_size}, {args.layers}+{args.layers} layers, batch "
              f"{args.batch_size}, {args.dtype}, {base['device']}, median of {args.steps} interleaved rounds")
        for name in names:
            print(f"  {VARIANTS[name]:76s} {args.batch_size / median[name]:8.1f} examples/s")
        for clock, suffix in (("wall clock", ""), ("CPU time", "_cpu_time")):
            print(f"  {clock:10s}: ours compiled / eager {ratios['compiled_over_eager' + suffix]:.2f}x, ours compiled "
                  f"/ plain compile {ratios['compiled_over_plain_compile' + suffix]:.2f}x, plain compile / eager "
                  f"{ratios['plain_compile_over_eager' + suffix]:.2f}x (median of per-round ratios)")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="hrm", choices=["hrm", "trm"])
    parser.add_argument("--halt-only", action="store_true", help="HRM: halt-only ACT (no_ACT_continue=True)")
    parser.add_argument("--mlp-t", action="store_true", help="TRM: SwiGLU across positions instead of attention")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "bf16-autocast"],
                        help="bf16 = forward_dtype bfloat16 (the original's); bf16-autocast = autocast, fp32 model")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2, help="L_layers (and H_layers for HRM)")
    parser.add_argument("--cycles", type=int, nargs=2, default=None, metavar=("H", "L"),
                        help="H_cycles L_cycles (default: HRM 2 2, TRM 3 6)")
    parser.add_argument("--seq-len", type=int, default=81)
    parser.add_argument("--vocab-size", type=int, default=11)
    parser.add_argument("--steps", type=int, default=10, help="timed rounds (one step of each variant per round)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each variant first (compilation)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="model.compile_segment() (as train.py compile: true)")
    parser.add_argument("--compare-compile", action="store_true",
                        help="eager, ours compiled and a plain torch.compile(model, dynamic=False), interleaved: "
                             "rates and ratios (with --solve: eager vs compiled solve)")
    parser.add_argument("--no-peak", action="store_true", help="skip the interleaved matmul-rate measurement")
    parser.add_argument("--solve", type=int, default=None, metavar="SEGMENTS",
                        help="measure inference instead: model.solve with this many segments, every row running "
                             "all of them (early_exit=False), puzzles/s; --compile / --compare-compile apply")
    parser.add_argument("--output", default=str(RESULTS / "bench_model.jsonl"))
    args = parser.parse_args(argv)
    args.argv = argv

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build_model(config_from_args(args), device)
    if args.solve:
        return bench_solve(args, model, device)
    return bench_training_step(args, model, device)


if __name__ == "__main__":
    main()
