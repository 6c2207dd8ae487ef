"""Test-time search against inference compute: a grid of depth × breadth × selector on trained models, overall and
by depth bucket, chosen on one split and reported on another.

    # choose on validation, report the chosen settings on test (one panel per model in the plot)
    python benchmarks/search_compute.py --model trm=runs/open/trm/model --model baseline=runs/open/base/model \
        --dataset data/open/sudoku6 --split validation --then-split test \
        --search depth=trained,16,64 breadth=1,8,32 kind=noise,restart,step_noise,symmetry,sample \
                 selector=q,vote,residual,valid --max-compute 32 --name open_sudoku6

For every model, every setting of the grid runs on `--split` (modeling_hrm.search.evaluate_grid: one run per
setting, every selector scored on it, FLOPs per puzzle by modeling_hrm/flops.py counting the segments each
trajectory ran, wall time); exact accuracy is reported overall and per depth bucket (the dataset's `rounds` /
`path_length` column, or its `depth_buckets` where the builder defined them). With `--then-split`, the best
setting of each selector whose compute is at most `--max-compute` × the plain run (trained depth, one trajectory)
is chosen on `--split` and evaluated once on `--then-split`, beside the plain run: the share of the plain run's
errors it removes, overall and in the hardest bucket. The validity selector is a verifier (it checks answers
against the rules) and is reported apart. Writes benchmarks/results/search_<name>.json and
search_<name>_<split>.png (exact accuracy vs inference FLOPs, one line per selector); prints Markdown tables and,
last, one `RESULT` line per model.

A grid's cost is the sum over its settings of (trajectories per puzzle × segments run); `--limit` draws N
puzzles of each split at random (seed 0, over every depth bucket).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
DEPTH_COLUMNS = ("rounds", "path_length")  # Sudoku propagation rounds, maze shortest-path moves


class BenchmarkError(ValueError):
    """Bad input to the benchmark: one line, exit 2."""


def parse_models(values: list[str]) -> dict[str, str]:
    models = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).name or value, value
        if not name or not path:
            raise BenchmarkError(f"--model takes NAME=PATH or PATH, got {value!r}")
        if name in models:
            raise BenchmarkError(f"--model name {name!r} is given twice")
        models[name] = path
    return models


def load_split(dataset: str, split: str, limit: int | None, bucket_column: str | None):
    """(arrays, metadata, bucket name per row or None, bucket order shallow to deep)."""
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset
    from training.evaluation import select_rows

    ds, meta = load_hrm_dataset(dataset, split)
    arrays = dataset_arrays(ds)
    keep, arrays = select_rows(ds, meta, arrays, limit)
    if len(keep) < len(ds):
        ds = ds.select(keep)
    if not len(arrays["inputs"]):
        raise BenchmarkError(f"split {split!r} of {dataset} has no rows")
    column = bucket_column or next((c for c in DEPTH_COLUMNS if c in ds.column_names), None)
    if column is None:
        return arrays, meta, None, []
    if column not in ds.column_names:
        raise BenchmarkError(f"--bucket-column {column!r}: the dataset has no such column "
                             f"(columns: {', '.join(ds.column_names)})")
    values = np.asarray(ds[column])
    if column == "rounds" and meta.get("depth_buckets"):
        try:
            from dataset_scripts.sudoku import depth_bucket_names

            names = np.asarray(depth_bucket_names(values, meta["depth_buckets"]), dtype=object)
            return arrays, meta, names, meta["depth_buckets"].split(",")
        except ImportError:
            pass
    names = np.asarray([f"{column}={v}" for v in values], dtype=object)
    order = [f"{column}={v}" for v in sorted(set(values.tolist()))]
    return arrays, meta, names, order


def per_bucket(correct: list[bool], names, order: list[str]) -> dict[str, float]:
    if names is None:
        return {}
    correct = np.asarray(correct, dtype=bool)
    return {b: float(correct[names == b].mean()) for b in order if (names == b).any()}


def run_grid(model, arrays, meta, names, order, grid, batch_size: int, label: str, **explicit) -> dict:
    from modeling_hrm.search import evaluate_grid

    task = meta.get("task")
    shape = (int(meta["grid_height"]), int(meta["grid_width"])) if task == "maze" else None
    result = evaluate_grid(model, arrays["inputs"], arrays["labels"], arrays.get("puzzle_identifiers"), grid=grid,
                           task=task, grid_shape=shape, max_rows=batch_size,
                           log=lambda line: print(f"{label} {line}", flush=True), **explicit)
    for row in result["rows"] + [result["reference"]]:
        row["per_bucket"] = per_bucket(row["correct"], names, order)
    return result


def choose(result: dict, max_compute: float) -> dict[str, dict]:
    """Per selector: the setting with the best exact accuracy at most `max_compute` × the plain run's FLOPs
    (ties: the cheaper one)."""
    chosen = {}
    for selector in result["selectors"]:
        rows = [r for r in result["rows"] if r["selector"] == selector and r["relative_flops"] <= max_compute + 1e-9]
        if rows:
            chosen[selector] = max(rows, key=lambda r: (r["exact_accuracy"], -r["flops_per_puzzle"]))
    return chosen


SETTING_KEYS = ("depth", "breadth", "kind", "h_cycles", "l_cycles", "early_exit", "noise", "step_noise",
                "temperature", "symmetries", "seed")


def as_setting(row: dict):
    from modeling_hrm.search import SearchSetting

    return SearchSetting(**{k: row[k] for k in SETTING_KEYS})


def error_reduction(plain: float, best: float) -> float | None:
    return None if plain >= 1.0 else (best - plain) / (1.0 - plain)


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def strip(result: dict) -> dict:
    """The grid result without per-puzzle lists (kept small on disk)."""
    return {**result, "rows": [{k: v for k, v in r.items() if k != "correct"} for r in result["rows"]],
            "reference": {k: v for k, v in result["reference"].items() if k != "correct"}}


def dry_run(models: dict, grid: dict, task: str | None, num_puzzles: int, gflops: float) -> None:
    """Worst-case compute of the grid: trajectories x depth x FLOPs of a segment at the cycles used, per puzzle."""
    from modeling_hrm.flops import segment_flops
    from modeling_hrm.search import grid_settings, setting_flops_config

    for name, model in models.items():
        settings, _ = grid_settings(grid, model.config, task)
        total = 0.0
        print(f"## {name}: {len(settings)} settings (+ the plain run) on {num_puzzles} puzzles, at most")
        for setting in settings:
            flops = setting.trajectories * (setting.depth or model.config.halt_max_steps) * \
                segment_flops(setting_flops_config(model.config, setting))
            total += flops
            print(f"  {setting.label():60s} {flops / 1e9:10.2f} GFLOP/puzzle")
        total += model.config.halt_max_steps * segment_flops(model.config)
        hours = total * num_puzzles / (gflops * 1e9) / 3600
        print(f"  total {total * num_puzzles / 1e12:.2f} TFLOP: {hours:.2f} h at {gflops:g} GFLOP/s "
              f"(early exit makes it less)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                   help="a trained model folder (repeat: one panel and one table per model)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="test", help="split the grid runs on (and settings are chosen on)")
    p.add_argument("--then-split", default=None, help="split on which the chosen settings are reported (e.g. test)")
    p.add_argument("--search", nargs="+", required=True, metavar="KEY=VALUES",
                   help="the grid, as hrm-evaluate --search (e.g. depth=trained,16,64 breadth=1,8,32 "
                        "kind=noise,symmetry selector=q,vote,residual,valid)")
    p.add_argument("--max-compute", type=float, default=32.0,
                   help="choose only settings with at most this many times the plain run's FLOPs (default 32)")
    p.add_argument("--limit", type=int, default=None, help="N puzzles of each split, drawn at random over it (seed 0)")
    p.add_argument("--bucket-column", default=None, help="depth column for the buckets (default rounds / path_length)")
    p.add_argument("--batch-size", type=int, default=512, help="trajectories per forward at most")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--name", default=None, help="name of the result files (default: the dataset folder's name)")
    p.add_argument("--output-dir", default=str(RESULTS))
    p.add_argument("--dry-run", action="store_true",
                   help="print each setting's worst-case FLOPs (every trajectory runs its whole depth) and the time "
                        "they take at --gflops, then stop")
    p.add_argument("--gflops", type=float, default=10.0,
                   help="sustained GFLOP/s assumed by --dry-run (default 10: one loaded CPU core on these small "
                        "models; measure yours from the plain run's s/100 puzzles)")
    args = p.parse_args(argv)
    try:
        import torch

        from modeling_hrm.loading import load_pretrained_model, resolve_device
        from modeling_hrm.search import format_table, grid_settings, parse_grid, plot_accuracy_vs_flops

        models = parse_models(args.model)
        grid = parse_grid(args.search)
        if args.limit is not None and args.limit < 1:
            raise BenchmarkError(f"--limit must be >= 1, got {args.limit}")
        if not args.max_compute >= 1:
            raise BenchmarkError(f"--max-compute must be >= 1 (the plain run), got {args.max_compute}")
        device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        arrays, meta, names, order = load_split(args.dataset, args.split, args.limit, args.bucket_column)
        loaded = {}
        for name, path in models.items():
            loaded[name] = load_pretrained_model(path, device)
            grid_settings(grid, loaded[name].config, meta.get("task"))
    except (ValueError, OSError) as err:
        print(f"search_compute: error: {str(err).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    if args.dry_run:
        dry_run(loaded, grid, meta.get("task"), len(arrays["inputs"]), args.gflops)
        return 0
    name = args.name or Path(args.dataset.rstrip("/")).name
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"dataset": args.dataset, "split": args.split, "then_split": args.then_split, "grid": grid,
              "max_compute": args.max_compute, "limit": args.limit, "device": str(device), "bucket_order": order,
              "torch_threads": torch.get_num_threads(), "models": {}}
    started = time.time()
    grids = {}
    for model_name, model in loaded.items():
        result = run_grid(model, arrays, meta, names, order, grid, args.batch_size, model_name)
        grids[model_name] = result
        record["models"][model_name] = {"path": models[model_name], "grid": strip(result),
                                        "chosen": {s: {k: v for k, v in r.items() if k != "correct"}
                                                   for s, r in choose(result, args.max_compute).items()}}
        print(f"\n## {model_name} on {args.split}\n")
        print(format_table(result))
    plot = out_dir / f"search_{name}_{args.split}.png"
    plot_accuracy_vs_flops(grids, plot, title=f"{name} ({args.split}): exact accuracy vs inference FLOPs")

    summary = []
    if args.then_split:
        test_arrays, _, test_names, test_order = load_split(args.dataset, args.then_split, args.limit,
                                                            args.bucket_column)
        for model_name, model in loaded.items():
            chosen = record["models"][model_name]["chosen"]
            test = run_grid(model, test_arrays, meta, test_names, test_order, None, args.batch_size,
                            f"{model_name} {args.then_split}",
                            settings=[as_setting(r) for r in chosen.values()], selectors=list(chosen),
                            reference=as_setting({**grids[model_name]["reference"], "selector": "q"}))
            rows, plain = test["rows"], test["reference"]
            plain = {k: v for k, v in plain.items() if k != "correct"}
            report = {"plain": plain, "chosen": {}}
            hardest = next((b for b in reversed(test_order) if b in plain.get("per_bucket", {})), None)
            print(f"\n## {model_name}: settings chosen on {args.split} (≤ {args.max_compute:g}× the plain run's "
                  f"FLOPs), on {args.then_split}\n")
            print("| selector | setting | exact | errors removed | hardest bucket" + (f" ({hardest})" if hardest else "")
                  + " | errors removed there | × plain FLOPs | s/100 puzzles |")
            print("|---|---|---|---|---|---|---|---|")
            exit_text = "" if plain["early_exit"] else ", no early exit"
            print(f"| plain run | trained depth, breadth 1{exit_text} | {pct(plain['exact_accuracy'])} | – | "
                  f"{pct(plain.get('per_bucket', {}).get(hardest))} | – | 1.0 | {plain['seconds_per_100_puzzles']:.2f} |")
            for selector, cell in chosen.items():
                row = next(r for r in rows if r["selector"] == selector and
                           all(r[k] == cell[k] for k in SETTING_KEYS))
                row = {k: v for k, v in row.items() if k != "correct"}
                row["relative_flops"] = row["flops_per_puzzle"] / plain["flops_per_puzzle"]
                overall = error_reduction(plain["exact_accuracy"], row["exact_accuracy"])
                deep = None
                if hardest is not None and hardest in row["per_bucket"]:
                    deep = error_reduction(plain["per_bucket"][hardest], row["per_bucket"][hardest])
                report["chosen"][selector] = {**row, "errors_removed": overall, "errors_removed_hardest": deep}
                setting = (f"depth {row['depth'] or 'trained'}, breadth {row['breadth']}"
                           + (f" {row['kind']}" if row["breadth"] > 1 else "")
                           + (f", cycles {row['h_cycles'] or '-'}/{row['l_cycles'] or '-'}"
                              if row["h_cycles"] or row["l_cycles"] else "")
                           + ("" if row["early_exit"] else ", no early exit"))
                label = selector + (" (verifier)" if selector == "valid" else "")
                print(f"| {label} | {setting} | {pct(row['exact_accuracy'])} | {pct(overall)} | "
                      f"{pct(row['per_bucket'].get(hardest))} | {pct(deep)} | {row['relative_flops']:.1f} | "
                      f"{row['seconds_per_100_puzzles']:.2f} |")
            record["models"][model_name][args.then_split] = report
            model_only = {s: c for s, c in report["chosen"].items() if s != "valid"}
            best = max(model_only.items(), key=lambda kv: kv[1]["exact_accuracy"], default=(None, None))
            summary.append(f"RESULT model={model_name} split={args.then_split} plain={pct(plain['exact_accuracy'])} "
                           f"best_selector={best[0]} best={pct(best[1] and best[1]['exact_accuracy'])} "
                           f"errors_removed={pct(best[1] and best[1]['errors_removed'])} "
                           f"hardest_errors_removed={pct(best[1] and best[1]['errors_removed_hardest'])} "
                           f"flops_x={best[1]['relative_flops']:.1f}" if best[1] else
                           f"RESULT model={model_name} no setting within --max-compute")
    record["seconds"] = time.time() - started
    path = out_dir / f"search_{name}.json"
    path.write_text(json.dumps(record, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    print(f"\nwrote {path} and {plot}")
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
