"""What the `puzzle-solving` pipeline costs on top of `model.solve`: parsing and checking the puzzles (with the
Sudoku solvability pre-check), batching, and turning predictions back into answers (with validity checks).

    python benchmarks/bench_pipeline.py --device cuda --num-puzzles 1024 --batch-size 256
    python benchmarks/bench_pipeline.py --device cpu --num-puzzles 64 --batch-size 64 --hidden-size 128

Puzzles: random unique-solution 9×9 Sudokus from the project's generator (64 distinct ones, then digit
relabellings of them). Model: a randomly initialised HRM with the paper's shapes by default (its answers are
wrong, so every answer goes through the validity check and a bounded solvability search when the pre-check left
the puzzle undecided: the pipeline's worst case). Every puzzle runs `--max-steps` segments (no early exit), so
the model time is the same for both paths. Prints a table and writes benchmarks/results/pipeline_<device>.json.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import RESULTS, build_model, command_line, model_config, sync, timed, write_json  # noqa: E402


def make_puzzles(count: int, seed: int = 0) -> list[str]:
    from dataset_scripts.sudoku import generate_puzzle

    rng = random.Random(seed)
    base = [generate_puzzle(9, rng)[0] for _ in range(min(count, 64))]
    puzzles = []
    for i in range(count):
        perm = np.concatenate([[0], np.random.default_rng(seed + i).permutation(np.arange(1, 10))])
        grid = perm[np.asarray(base[i % len(base)])]
        puzzles.append("".join("." if v == 0 else str(int(v)) for v in grid))
    return puzzles


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num-puzzles", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4, help="H_layers = L_layers")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None)
    parser.add_argument("--compare-cpu", type=int, default=0, metavar="N",
                        help="also solve the first N puzzles with the same weights on the CPU and count equal answers")
    args = parser.parse_args(argv)

    import modeling_hrm  # noqa: F401  (registers the pipeline)
    from modeling_hrm.pipeline_puzzle_solving import (POSTCHECK_NODES, _sudoku_solvable, encode_sudoku,
                                                          parse_puzzle)
    from transformers import pipeline

    device = torch.device(args.device)
    config = model_config("hrm", vocab_size=11, seq_len=81, hidden_size=args.hidden_size,
                          num_heads=max(1, args.hidden_size // 64), H_layers=args.layers, L_layers=args.layers,
                          halt_max_steps=args.max_steps)
    model = build_model(config, device, seed=0, train=False)
    t0 = time.perf_counter()
    puzzles = make_puzzles(args.num_puzzles)
    print(f"{len(puzzles)} puzzles generated in {time.perf_counter() - t0:.1f} s")
    solver = pipeline("puzzle-solving", model=model, device=device)

    def model_only(tokens):
        for s in range(0, len(tokens), args.batch_size):
            model.solve(tokens[s:s + args.batch_size], max_steps=args.max_steps, early_exit=False)
        sync(device)

    def parse_only():  # what the pipeline's preprocess does per puzzle
        return [parse_puzzle(p, precheck=False) for p in puzzles]

    def solvability():  # what an invalid answer costs after the model: the bounded reference search
        return [_sudoku_solvable(g.grid, POSTCHECK_NODES) for g in parsed]

    def through_pipeline():
        out = solver(puzzles, batch_size=args.batch_size, max_steps=args.max_steps, early_exit=False)
        sync(device)
        return out

    tokens = torch.as_tensor(np.stack([encode_sudoku(parse_puzzle(p, precheck=False).grid) for p in puzzles])
                              .astype(np.int64)).to(device)
    model_only(tokens[:args.batch_size])  # warm-up (kernels, allocator)
    timings = {}
    parsed = parse_only()
    for name, fn in (("model.solve on encoded tensors", lambda: model_only(tokens)),
                     ("pipeline(list) end to end", through_pipeline),
                     ("  of which: parsing + checks (no solver)", parse_only),
                     ("  of which: solvability search (invalid answers)", solvability)):
        timings[name] = min(timed(fn, device) for _ in range(args.repeats))
    results = through_pipeline()

    agreement = None
    if args.compare_cpu and device.type != "cpu":
        cpu_solver = pipeline("puzzle-solving", model=build_model(config, train=False), device="cpu")
        cpu_solver.model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
        subset = puzzles[:args.compare_cpu]
        on_cpu = cpu_solver(subset, batch_size=args.batch_size, max_steps=args.max_steps, early_exit=False)
        same = sum(a["answer"] == b["answer"] and a["steps"] == b["steps"] for a, b in zip(on_cpu, results))
        agreement = {"puzzles": len(subset), "same_answer_and_steps": same}
        print(f"{device} vs cpu, same weights (fp32): {same} of {len(subset)} answers and step counts identical")

    n = len(puzzles)
    base = timings["model.solve on encoded tensors"]
    print(f"\ndevice {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor()}), "
          f"HRM hidden {args.hidden_size}, {args.layers}+{args.layers} layers, {n} puzzles, batch {args.batch_size}, "
          f"{args.max_steps} segments each, best of {args.repeats}")
    print(f"{'path':50s} {'total s':>9s} {'ms/puzzle':>10s} {'x model':>8s}")
    for name, seconds in timings.items():
        print(f"{name:50s} {seconds:9.3f} {1000 * seconds / n:10.3f} {seconds / base:8.2f}")
    print(f"answers: {n}, valid: {sum(r['valid'] for r in results)} (a random model)")

    report = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
              platform.processor(), "num_puzzles": n, "batch_size": args.batch_size, "max_steps": args.max_steps,
              "hidden_size": args.hidden_size, "layers": args.layers, "repeats": args.repeats,
              "cpu_agreement": agreement, "seconds": timings, "ms_per_puzzle": {k: 1000 * v / n for k, v in timings.items()},
              "command": command_line(__file__, argv)}
    out = Path(args.output or RESULTS / f"pipeline_{device.type}.json")
    write_json(out, report)
    print(f"written to {out}")
    return report


if __name__ == "__main__":
    main()
