"""Benchmark: batched inference with per-row early exit vs always running max_steps segments.

Rows whose Q head says halt leave the batch inside `model.solve(early_exit=True)`. This script times both
modes on the same rows and reports accuracy, mean steps and the speed-up.

    # a trained checkpoint on a built dataset (the figure reported in benchmarks/README.md)
    flock /tmp/hrm-bench.lock python benchmarks/bench_early_exit.py \
        --model outputs/sudoku-small/checkpoint-final --dataset data/sudoku-extreme-1k --split test --limit 2000

    # no checkpoint yet: a random tiny model whose Q-head bias is set so rows halt at chosen steps
    python benchmarks/bench_early_exit.py --random --limit 512

    # every budget in one run (the issue's "never slower" check), quick-start-size random model
    python benchmarks/bench_early_exit.py --random --size quick --budgets 1,2,4,8,16 --limit 512 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.harness import build_model, command_line, model_config, timed, write_json  # noqa: E402
from training.evaluation import puzzle_metrics, run_solve  # noqa: E402


SIZES = {  # hidden, layers (H = L), seq_len, vocab
    "medium": (128, 2, 81, 11),  # 9×9 Sudoku shapes
    "quick": (64, 2, 16, 6),     # the quick-start model (training/configs/sudoku_cpu.yaml) on 4×4 Sudoku
}


def random_setup(limit: int, halt_step: int, max_steps: int, seed: int = 0, size: str = "medium"):
    """A random model (`size`: "medium" = 9×9 Sudoku shapes, hidden 128, 2+2 layers; "quick" = the quick-start
    model's size on 4×4 Sudoku, hidden 64, 2+2 layers) and random puzzles, with a hand-set Q head:
    random Q weights give each row its own q_halt − q_continue, and the halt bias is shifted so that a fraction
    1/`halt_step` of the rows halts after the first segment; the others halt later or run to the budget.
    Accuracy is meaningless here; the timing shows what leaving rows out of the batch saves."""
    hidden, layers, seq_len, vocab = SIZES[size]
    cfg = model_config("hrm", vocab_size=vocab, seq_len=seq_len, hidden_size=hidden, num_heads=4, H_layers=layers,
                       L_layers=layers, puzzle_emb_ndim=hidden, halt_max_steps=max_steps)
    model = build_model(cfg, seed=seed, train=False)
    rng = np.random.default_rng(seed)
    arrays = {"inputs": rng.integers(1, vocab, (limit, seq_len)).astype(np.uint8),
              "labels": rng.integers(2, vocab, (limit, seq_len)).astype(np.uint8),
              "puzzle_identifiers": np.zeros(limit, dtype=np.int32)}
    with torch.no_grad():
        model.q_head.weight.normal_(0.0, 0.3)
        model.q_head.bias.zero_()
        out = model(torch.as_tensor(arrays["inputs"][:256].astype(np.int64)))
        diff = (out.q_halt_logits - out.q_continue_logits).numpy()
        model.q_head.bias[0] -= float(np.quantile(diff, 1 - 1 / halt_step))
    return model, arrays


def load_setup(model_path: str, dataset: str, split: str, limit: int | None):
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset
    from modeling_hrm.solve import load_model

    model = load_model(model_path)
    ds, meta = load_hrm_dataset(dataset, split)
    arrays = dataset_arrays(ds)
    if limit:
        arrays = {k: v[:limit] for k, v in arrays.items()}
    return model, arrays


def time_mode(model, arrays, *, early_exit: bool, max_steps: int | None, batch_size: int, repeats: int):
    best, out = float("inf"), {}

    def solve():
        out.update(run_solve(model, arrays, batch_size=batch_size, max_steps=max_steps, early_exit=early_exit))

    for _ in range(repeats):
        best = min(best, timed(solve, model.device))
    res = puzzle_metrics(out["predictions"], arrays["labels"], out["steps"], out["q_halt_logits"])
    return best, res, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="trained checkpoint folder or Hub id")
    p.add_argument("--dataset", help="built dataset folder or Hub id (required with --model)")
    p.add_argument("--split", default="test")
    p.add_argument("--random", action="store_true", help="use a random model with a hand-set Q head instead")
    p.add_argument("--halt-step", type=int, default=4, help="--random: typical halting step")
    p.add_argument("--size", default="medium", choices=sorted(SIZES), help="--random: model size (see SIZES)")
    p.add_argument("--budgets", default=None,
                   help="comma-separated segment budgets to compare in one run, e.g. 1,2,4,8,16 (default: --max-steps)")
    p.add_argument("--limit", type=int, default=1024, help="rows to evaluate")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-steps", type=int, default=None, help="segment budget (default: the model's)")
    p.add_argument("--repeats", type=int, default=2, help="timing repeats per mode (the best is kept)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: on a shared CPU, more threads thrash and hide the effect)")
    p.add_argument("--device", default=None)
    p.add_argument("--output", help="write the results as JSON here")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else [args.max_steps]
    if args.random:
        model, arrays = random_setup(args.limit, args.halt_step, max(b or 16 for b in budgets), size=args.size)
        source = f"random {args.size} model, Q head set so 1/{args.halt_step} of the rows halt after segment 1"
    elif args.model and args.dataset:
        model, arrays = load_setup(args.model, args.dataset, args.split, args.limit)
        source = f"{args.model} on {args.dataset}:{args.split}"
    else:
        p.error("give --model and --dataset, or --random")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()

    # Warm-up (allocator, kernels), then the timed runs.
    run_solve(model, {k: v[: min(len(v), args.batch_size)] for k, v in arrays.items()}, batch_size=args.batch_size,
              max_steps=2, early_exit=False)
    results = []
    for budget in budgets:
        max_steps = budget or model.config.halt_max_steps
        # Alternate the modes, best of `repeats` each: a burst of load from other processes hits both alike.
        t_full = t_early = float("inf")
        for _ in range(args.repeats):
            seconds, full, _ = time_mode(model, arrays, early_exit=False, max_steps=max_steps,
                                         batch_size=args.batch_size, repeats=1)
            t_full = min(t_full, seconds)
            seconds, early, out = time_mode(model, arrays, early_exit=True, max_steps=max_steps,
                                            batch_size=args.batch_size, repeats=1)
            t_early = min(t_early, seconds)
        results.append({
            "source": source, "device": str(device), "threads": args.threads, "rows": int(len(arrays["inputs"])),
            "batch_size": args.batch_size, "max_steps": max_steps,
            "full": {"seconds": t_full, "exact_accuracy": full["exact_accuracy"],
                     "token_accuracy": full["token_accuracy"], "mean_steps": full["mean_steps"]},
            "early_exit": {"seconds": t_early, "exact_accuracy": early["exact_accuracy"],
                           "token_accuracy": early["token_accuracy"], "mean_steps": early["mean_steps"],
                           "steps_histogram": early["steps_histogram"]},
            "speedup": t_full / t_early,
            "ideal_speedup": max_steps / max(early["mean_steps"], 1e-9),
            "command": command_line(__file__, argv),
        })
    print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    print(f"\n{source}, {results[0]['rows']} rows, batch {args.batch_size}, {args.threads} thread(s), best of "
          f"{args.repeats}")
    print("\n| budget | mode | exact acc. | token acc. | mean steps | time (s) | puzzles/s | speed-up (ideal) |\n"
          "|---|---|---|---|---|---|---|---|")
    for result in results:
        for name, key in (("all segments", "full"), ("early exit", "early_exit")):
            r = result[key]
            extra = (f"**{result['speedup']:.2f}×** ({result['ideal_speedup']:.2f}×)" if key == "early_exit" else "")
            print(f"| {result['max_steps']} | {name} | {100 * r['exact_accuracy']:.2f}% | "
                  f"{100 * r['token_accuracy']:.2f}% | {r['mean_steps']:.2f} | {r['seconds']:.2f} | "
                  f"{result['rows'] / r['seconds']:.1f} | {extra} |")
    if args.output:
        write_json(args.output, results if len(results) > 1 else results[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
