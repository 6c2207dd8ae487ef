"""Training-step throughput and MFU of HRMForPuzzleSolving (one ACT segment + backward + AdamW step).

    python benchmarks/bench_model.py                      # CPU, fp32, hidden 256, 2+2 layers, Sudoku shapes
    python benchmarks/bench_model.py --device cuda --dtype bf16 --batch-size 768 --hidden-size 512 --layers 4

FLOPs are counted as the project's convention: 2 × (parameters of one block) × tokens per block application
for every forward application (the no-grad cycles, the gradient step and the extra no-grad segment that
ACT training runs for the Q-continue target), plus 2× that again for the backward of the applications that
carry gradient (one L step and one H step). MFU = achieved FLOP/s ÷ this machine's measured dense matmul
rate, both measured in the same process, interleaved, so contention from other processes hits both alike.
Figures are appended to benchmarks/results/bench_model.jsonl.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modeling_hrm import HRMConfig, HRMForPuzzleSolving  # noqa: E402


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


def step_flops(config: HRMConfig, batch_size: int, act_training: bool) -> float:
    block_params = 4 * config.hidden_size ** 2 + 3 * config.hidden_size * config.intermediate_size
    tokens = batch_size * config.total_seq_len
    applications = config.H_cycles * config.L_cycles * config.L_layers + config.H_cycles * config.H_layers
    forward_apps = applications * (2 if act_training else 1)  # ACT: a second (no-grad) segment for the target
    backward_apps = config.L_layers + config.H_layers          # the one-step gradient
    return 2 * block_params * tokens * (forward_apps + 2 * backward_apps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                        help="bf16 = autocast with fp32 master weights (as mixed-precision training)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2, help="H_layers = L_layers")
    parser.add_argument("--cycles", type=int, nargs=2, default=[2, 2], metavar=("H", "L"))
    parser.add_argument("--seq-len", type=int, default=81)
    parser.add_argument("--vocab-size", type=int, default=11)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "bench_model.jsonl"))
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = HRMConfig(vocab_size=args.vocab_size, seq_len=args.seq_len, hidden_size=args.hidden_size,
                       num_heads=args.num_heads, H_layers=args.layers, L_layers=args.layers,
                       H_cycles=args.cycles[0], L_cycles=args.cycles[1], puzzle_emb_ndim=args.hidden_size,
                       halt_max_steps=16)
    model = HRMForPuzzleSolving(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    forward = torch.compile(model) if args.compile else model
    inputs = torch.randint(1, args.vocab_size, (args.batch_size, args.seq_len), device=device)
    labels = torch.randint(2, args.vocab_size, (args.batch_size, args.seq_len), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    mm_dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    carry = None

    def train_step():
        nonlocal carry
        with autocast:
            out = forward(inputs, labels=labels, carry=carry)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        carry = out.carry

    for _ in range(args.warmup):
        train_step()
    step_times, rates = [], []
    for _ in range(args.steps):  # interleave: the peak is measured under the same load as the model
        sync(device)
        start = time.perf_counter()
        train_step()
        sync(device)
        step_times.append(time.perf_counter() - start)
        rates.append(matmul_rate(device, mm_dtype, 2048 if device.type == "cpu" else 8192, repeats=3))

    step_time = statistics.median(step_times)
    peak = statistics.median(rates)
    flops = step_flops(config, args.batch_size, act_training=True)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
        "dtype": args.dtype, "compile": args.compile, "batch_size": args.batch_size,
        "hidden_size": args.hidden_size, "layers": f"{args.layers}+{args.layers}", "cycles": args.cycles,
        "seq_len": config.total_seq_len, "torch": torch.__version__,
        "step_time_s": round(step_time, 4), "examples_per_s": round(args.batch_size / step_time, 1),
        "achieved_gflops": round(flops / step_time / 1e9, 2), "matmul_peak_gflops": round(peak / 1e9, 2),
        "mfu": round(flops / step_time / peak, 3),
        "command": "python " + " ".join(sys.argv),
    }
    print(json.dumps(result))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
