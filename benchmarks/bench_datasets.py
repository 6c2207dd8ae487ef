"""Dataset build benchmarks (writes nothing but a temporary folder; prints markdown lines).

    flock /tmp/hrm-bench.lock python benchmarks/bench_datasets.py generator --seconds 20
    flock /tmp/hrm-bench.lock python benchmarks/bench_datasets.py sudoku-aug --puzzles 1000 --num-aug 1000
    flock /tmp/hrm-bench.lock python benchmarks/bench_datasets.py arc --source arc-agi-1 --num-aug 1000

`sudoku-aug` builds from a CSV of generated 9x9 puzzles (the sudoku-extreme format; the Hub is
not reachable here), so it times CSV reading + validation + augmentation + leak checks + parquet.
"""

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_scripts.common import folder_size_bytes  # noqa: E402
from dataset_scripts.sudoku import SudokuSolver, generate_puzzle  # noqa: E402


def bench_generator(seconds: float) -> None:
    print("| size | puzzles/s (any rating) | rating distribution (share with rating >= r) | rate for rating >= 1 / >= 5 / >= 20 |")
    print("|---|---|---|---|")
    for n in (4, 6, 9):
        solver = SudokuSolver(n)
        rng = random.Random(0)
        ratings = []
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            ratings.append(generate_puzzle(n, rng, solver, extra_clues=0 if n == 9 else n)[2])
        el = time.perf_counter() - t0
        r = np.asarray(ratings)
        rate = len(r) / el
        share = {k: (r >= k).mean() for k in (1, 5, 20)}
        print(f"| {n}x{n} | {rate:.1f} ({len(r)} in {el:.0f} s) | mean {r.mean():.1f}, max {r.max()}; "
              + ", ".join(f">={k}: {v:.1%}" for k, v in share.items())
              + " | " + " / ".join(f"{rate * v:.2f}" for v in share.values()) + " |", flush=True)


def bench_sudoku_aug(puzzles: int, num_aug: int) -> None:
    from dataset_scripts.build_sudoku_dataset import main

    tmp = Path(tempfile.mkdtemp())
    try:
        rng = random.Random(1)
        solver = SudokuSolver(9)
        t0 = time.perf_counter()
        rows = [generate_puzzle(9, rng, solver)[:2] for _ in range(puzzles + 100)]
        print(f"generated {len(rows)} 9x9 puzzles in {time.perf_counter() - t0:.0f} s", flush=True)
        (tmp / "csv").mkdir()
        for name, part in (("train.csv", rows[:puzzles]), ("test.csv", rows[puzzles:])):
            with open(tmp / "csv" / name, "w") as f:
                f.write("source,question,answer,rating\n")
                for p, s in part:
                    f.write("gen," + "".join("." if v == 0 else str(v) for v in p) + "," + "".join(map(str, s)) + ",0\n")
        t0 = time.perf_counter()
        meta = main(["--output-dir", str(tmp / "out"), "--source", "csv", "--csv-dir", str(tmp / "csv"),
                     "--num-aug", str(num_aug), "--quiet"])
        el = time.perf_counter() - t0
        print(f"sudoku {puzzles} x {num_aug}-aug build: {el:.1f} s, {meta['num_rows']['train']:,} train rows, "
              f"{folder_size_bytes(tmp / 'out') / 1e6:.1f} MB on disk")
    finally:
        shutil.rmtree(tmp)


def bench_arc(source: str, num_aug: int) -> None:
    from dataset_scripts.build_arc_dataset import main

    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        meta = main(["--output-dir", str(tmp / "out"), "--source", source, "--num-aug", str(num_aug), "--quiet"])
        el = time.perf_counter() - t0
        js = (tmp / "out" / "hrm_dataset.json").stat().st_size
        print(f"ARC {source} {num_aug} versions: {el:.1f} s, train {meta['num_rows']['train']:,} rows, test "
              f"{meta['num_rows']['test']:,} rows, {meta['num_puzzle_identifiers']:,} puzzle ids, "
              f"{folder_size_bytes(tmp / 'out') / 1e6:.1f} MB on disk (hrm_dataset.json {js / 1e6:.1f} MB)")
        t0 = time.perf_counter()
        from dataset_scripts.common import dataset_arrays, load_hrm_dataset

        ds, _ = load_hrm_dataset(tmp / "out", "train", cache_dir=str(tmp / "cache"))
        arr = dataset_arrays(ds)
        print(f"load_dataset + dataset_arrays (train, first load incl. Arrow cache): {time.perf_counter() - t0:.1f} s, "
              f"inputs {arr['inputs'].shape}")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("generator", "sudoku-aug", "arc"))
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--puzzles", type=int, default=1000)
    ap.add_argument("--num-aug", type=int, default=1000)
    ap.add_argument("--source", default="arc-agi-1")
    a = ap.parse_args()
    if a.what == "generator":
        bench_generator(a.seconds)
    elif a.what == "sudoku-aug":
        bench_sudoku_aug(a.puzzles, a.num_aug)
    else:
        bench_arc(a.source, a.num_aug)
