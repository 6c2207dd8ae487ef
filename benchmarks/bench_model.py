"""Training-step throughput and MFU of HRM / TRM (one ACT segment + backward + AdamW step), eager vs compiled.

    python benchmarks/bench_model.py --threads 2                    # HRM, CPU, fp32, hidden 256, 2+2 layers, Sudoku
    python benchmarks/bench_model.py --threads 2 --compare-compile  # eager and compiled steps, interleaved: ratio
    python benchmarks/bench_model.py --model trm --threads 2        # TRM (H 3 x L 6 cycles unless --cycles)
    python benchmarks/bench_model.py --halt-only --threads 2        # HRM with halt-only ACT (no target segment)
    python benchmarks/bench_model.py --device cuda --dtype bf16 --batch-size 768 --hidden-size 512 --layers 4

`--dtype bf16` is the original's precision (`forward_dtype="bfloat16"`: the whole forward in bf16, fp32 master
weights); `--dtype bf16-autocast` is torch.autocast over an fp32 model. `--compile` uses
`model.compile_segment()` (the whole segment and loss as one graph, fullgraph, static shapes), as
`train.py` with `compile: true`. `--compare-compile` alternates eager and compiled steps on one model in one
process, so load from other processes hits both alike, and reports the ratio of the medians.

FLOPs by the project's convention: 2 × (matmul parameters of one block) × tokens per block application for every
forward application (the no-grad cycles, the gradient part and, with Q-learning ACT, the extra no-grad segment
for the Q-continue target), plus 2× that again for the backward of the applications that carry gradient
(HRM: one L and one H step; TRM: the last full cycle). MFU = achieved FLOP/s ÷ the dense matmul rate measured in
the same process, interleaved. Figures are appended to benchmarks/results/bench_model.jsonl.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modeling_hrm import MODEL_CLASSES  # noqa: E402
from modeling_hrm.configuration_hrm import swiglu_width  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device, dtype, size, repeats=5):
    """Dense matmul FLOP/s (median of `repeats` timings of a size³ product)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times)


def block_flops(config, batch_size: int) -> float:
    """Forward FLOPs of one block application (2 × matmul parameters × the tokens they act on)."""
    hidden, seq = config.hidden_size, config.total_seq_len
    mlp = 3 * hidden * config.intermediate_size * batch_size * seq
    if getattr(config, "mlp_t", False):  # SwiGLU across positions, applied to every (row, channel)
        mixer = 3 * seq * swiglu_width(seq, config.expansion) * batch_size * hidden
    else:
        mixer = 4 * hidden * hidden * batch_size * seq
    return 2 * (mlp + mixer)


def step_flops(config, batch_size: int) -> float:
    """FLOPs of one training step (see the module docstring)."""
    layers_L = config.L_layers
    if config.model_type == "trm":
        applications = config.H_cycles * (config.L_cycles + 1) * layers_L
        backward = (config.L_cycles + 1) * layers_L
    else:
        applications = config.H_cycles * config.L_cycles * layers_L + config.H_cycles * config.H_layers
        backward = layers_L + config.H_layers
    forward = applications * (1 if config.no_ACT_continue else 2)
    return block_flops(config, batch_size) * (forward + 2 * backward)


def build(args, device):
    config_class, model_class = MODEL_CLASSES[args.model]
    fields = dict(vocab_size=args.vocab_size, seq_len=args.seq_len, hidden_size=args.hidden_size,
                  num_heads=args.num_heads, L_layers=args.layers, puzzle_emb_ndim=args.hidden_size, halt_max_steps=16,
                  forward_dtype="bfloat16" if args.dtype == "bf16" else "float32")
    if args.cycles:
        fields["H_cycles"], fields["L_cycles"] = args.cycles
    if args.model == "hrm":
        fields.update(H_layers=args.layers, no_ACT_continue=args.halt_only)
    else:
        fields.update(mlp_t=args.mlp_t, pos_encodings="none" if args.mlp_t else "rope")
    torch.manual_seed(0)
    return model_class(config_class(**fields)).to(device).train()


def bench_solve(args, model, device):
    """Puzzles/s of `model.solve(max_steps=args.solve, early_exit=False)`, eager and/or compiled, interleaved."""
    model.eval()
    if args.compile or args.compare_compile:
        model.compile_segment()
    compiled_step = model._compiled_solve_step
    inputs = torch.randint(1, args.vocab_size, (args.batch_size, args.seq_len), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16-autocast")

    def timed(compiled: bool) -> float:
        model._compiled_solve_step = compiled_step if compiled else None
        sync(device)
        start = time.perf_counter()
        with autocast:
            model.solve(inputs, max_steps=args.solve, early_exit=False)
        sync(device)
        return time.perf_counter() - start

    variants = [False, True] if args.compare_compile else [args.compile]
    for compiled in variants:
        for _ in range(args.warmup):
            timed(compiled)
    times = {v: [] for v in variants}
    for _ in range(args.steps):
        for compiled in variants:
            times[compiled].append(timed(compiled))
    config = model.config
    name = args.model + ("-mlp_t" if args.model == "trm" and args.mlp_t else "")
    results = []
    for compiled in variants:
        seconds = statistics.median(times[compiled])
        results.append({
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
            "benchmark": "solve", "model": name, "dtype": args.dtype, "compile": compiled,
            "batch_size": args.batch_size, "hidden_size": args.hidden_size, "layers": args.layers,
            "cycles": [config.H_cycles, config.L_cycles], "segments": args.solve, "seconds": round(seconds, 4),
            "puzzles_per_s": round(args.batch_size / seconds, 1),
            "segments_per_s": round(args.batch_size * args.solve / seconds, 1), "torch": torch.__version__})
    if args.compare_compile:
        for result in results:
            result["compile_speedup"] = round(statistics.median(times[False]) / statistics.median(times[True]), 3)
    return write_results(args, results)


def command_line(argv=None) -> str:
    return "python benchmarks/bench_model.py " + " ".join(sys.argv[1:] if argv is None else argv)


def write_results(args, results):
    command = command_line(args.argv)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "a") as f:
        for result in results:
            result["command"] = command
            print(json.dumps(result), flush=True)
            f.write(json.dumps(result) + "\n")
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
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="model.compile_segment() (as train.py compile: true)")
    parser.add_argument("--compare-compile", action="store_true",
                        help="alternate eager and compiled steps in one process and report the speed-up")
    parser.add_argument("--no-peak", action="store_true", help="skip the interleaved matmul-rate measurement")
    parser.add_argument("--solve", type=int, default=None, metavar="SEGMENTS",
                        help="measure inference instead: model.solve with this many segments, every row running "
                             "all of them (early_exit=False), puzzles/s; --compile / --compare-compile apply")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "bench_model.jsonl"))
    args = parser.parse_args(argv)
    args.argv = argv

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build(args, device)
    if args.solve:
        return bench_solve(args, model, device)
    config = model.config
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    if args.compile or args.compare_compile:
        compile_start = time.perf_counter()
        model.compile_segment(solve=False)
    compiled_segment = model._compiled_segment
    inputs = torch.randint(1, args.vocab_size, (args.batch_size, args.seq_len), device=device)
    labels = torch.randint(2, args.vocab_size, (args.batch_size, args.seq_len), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16-autocast")
    mm_dtype = torch.float32 if args.dtype == "fp32" else torch.bfloat16
    carry = None

    def train_step(compiled: bool):
        nonlocal carry
        model._compiled_segment = compiled_segment if compiled else None
        with autocast:
            out = model(inputs, labels=labels, carry=carry)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        carry = out.carry

    def timed(compiled: bool) -> float:
        sync(device)
        start = time.perf_counter()
        train_step(compiled)
        sync(device)
        return time.perf_counter() - start

    variants = [False, True] if args.compare_compile else [args.compile]
    compile_seconds = None
    for compiled in variants:
        for i in range(args.warmup):
            seconds = timed(compiled)
            if compiled and i == 0:
                compile_seconds = seconds
    times = {v: [] for v in variants}
    rates = []
    for _ in range(args.steps):  # interleaved: each variant and the peak see the same load
        for compiled in variants:
            times[compiled].append(timed(compiled))
        if not args.no_peak:
            rates.append(matmul_rate(device, mm_dtype, 2048 if device.type == "cpu" else 8192, repeats=3))

    peak = statistics.median(rates) if rates else None
    flops = step_flops(config, args.batch_size)
    name = args.model + ("-mlp_t" if args.model == "trm" and args.mlp_t else "") + (
        " halt-only" if args.model == "hrm" and args.halt_only else "")
    base = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
        "model": name, "dtype": args.dtype, "batch_size": args.batch_size, "hidden_size": args.hidden_size,
        "layers": args.layers, "cycles": [config.H_cycles, config.L_cycles], "seq_len": config.total_seq_len,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2), "torch": torch.__version__,
        "gflop_per_step": round(flops / 1e9, 2),
    }
    results = []
    for compiled in variants:
        step_time = statistics.median(times[compiled])
        result = {**base, "compile": compiled, "step_time_s": round(step_time, 4),
                  "examples_per_s": round(args.batch_size / step_time, 1),
                  "achieved_gflops": round(flops / step_time / 1e9, 2)}
        if peak:
            result.update(matmul_peak_gflops=round(peak / 1e9, 2), mfu=round(flops / step_time / peak, 3))
        if compiled:
            result["first_compiled_step_s"] = round(compile_seconds, 1)
        results.append(result)
    if args.compare_compile:
        speedup = statistics.median(times[False]) / statistics.median(times[True])
        for result in results:
            result["compile_speedup"] = round(speedup, 3)
    return write_results(args, results)


if __name__ == "__main__":
    main()
