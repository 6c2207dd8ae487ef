"""`hrm-evaluate`: honest evaluation of an HRM checkpoint on a built dataset split.

    hrm-evaluate --model PATH_OR_REPO --dataset PATH_OR_REPO --split test [--max-steps N]
                 [--scaling-steps 1,2,4,8,16,32] [--early-exit] [--output-dir DIR] [--limit N]

One pass runs every puzzle for the largest budget asked for and records each segment's predictions score
and Q values; from it follow, exactly, the results of every budget with and without early exit:

- headline: exact and token accuracy, Q-halt accuracy and mean steps at `--max-steps` (default: the model's
  `halt_max_steps`), both "full" (every puzzle runs all segments, the original's evaluation) and "act"
  (a puzzle stops when its Q head says halt); `--early-exit` makes "act" the top-level headline;
- steps histogram of the ACT run (steps_histogram.png);
- accuracy vs max_steps, the inference-time scaling curve (scaling_curve.png);
- ARC datasets: each augmented version's prediction is mapped back to the original task, versions vote
  (ties by mean sigmoid(q_halt), then by first proposal, as the originals), and pass@1 / pass@2 (headline) /
  pass@K are reported under `--protocol` (default: the model's paper): `hrm` counts a task only if all its
  test inputs are solved, from one checkpoint; `trm` credits each solved test input 1 / (test inputs of its
  task) and, given a run folder (`--model runs/x`, its checkpoint-*/ kept by the TRM recipes), votes over every
  checkpoint of the run (TRM's aggregated voting); both rules are reported by name as well;
- a picture of a few example predictions (examples.png) and everything as results.json;
- `--num-candidates 1,2,4,8`: candidate search (`model.solve(num_candidates=K)`, K trajectories from perturbed
  initial states), exact accuracy vs K when the Q head picks (largest q_halt), and, for Sudoku, when the first
  valid grid is picked (the Q head's pick where none is valid) and when any candidate is right (an upper bound);
- `--search depth=4,16,64 breadth=1,8,32 kind=noise,symmetry selector=q,vote,residual,valid`: test-time search
  instead of the evaluation above (modeling_hrm/search.py): every setting of the grid (depth × breadth × kind ×
  cycles, each selector scored on the same run) with its exact accuracy, the accuracy of a perfect selector
  (oracle), inference FLOPs per puzzle and against the plain run, wall time; a table on stdout, search.json and
  search_accuracy_vs_flops.png (one line per selector) in the output folder. Rows are scored one by one (ARC: per
  test pair, without voting across versions).

This module is the command line; what it reports is computed in training/evaluation_report.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python training/hrm_evaluate.py`: import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_scripts.arc import PROTOCOLS  # noqa: E402
from training.evaluation import check_model_fits_dataset, load_split  # noqa: E402
from training.evaluation_report import (candidate_curve, evaluate_checkpoint,  # noqa: E402,F401
                                        evaluate_run_checkpoints, evaluate_search)



def resolve_protocol(protocol: str | None, config) -> str:
    """The ARC scoring protocol: the one asked for, or the model's paper's; a protocol of the other paper is refused
    (each paper's number is its own model under its own rule)."""
    model_type = getattr(config, "model_type", "hrm")
    if protocol is None:
        return "trm" if model_type == "trm" else "hrm"
    if protocol != ("trm" if model_type == "trm" else "hrm"):
        raise ValueError(f"--protocol {protocol} is the {protocol.upper()} paper's scoring rule, but the model is "
                         f"{model_type.upper()} (score it with --protocol {'trm' if model_type == 'trm' else 'hrm'})")
    return protocol


def run_checkpoints(path: str) -> list[Path]:
    """The checkpoint-STEP/ folders of a training run folder, oldest first ([] for anything else)."""
    from training.checkpointing import list_checkpoints

    folder = Path(path)
    if not folder.is_dir() or (folder / "config.json").is_file():
        return []
    return list_checkpoints(folder)


def _parse_int_list(text: str, what: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or values[0] < 1:
        raise ValueError(f"{what} must hold positive integers, got {text!r}")
    return values


def default_budgets(headline: int) -> list[int]:
    """Powers of two up to twice the headline budget, plus the headline budget itself."""
    budgets = {headline, 2 * headline}
    b = 1
    while b < 2 * headline:
        budgets.add(b)
        b *= 2
    return sorted(budgets)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hrm-evaluate", description="Evaluate an HRM checkpoint on a dataset split.")
    p.add_argument("--model", required=True, help="checkpoint folder or Hub repo id")
    p.add_argument("--dataset", required=True, help="built dataset folder or Hub dataset repo id")
    p.add_argument("--split", default="test")
    p.add_argument("--max-steps", type=int, default=None,
                   help="headline ACT segment budget (default: the model's halt_max_steps)")
    p.add_argument("--scaling-steps", default=None,
                   help="budgets of the accuracy-vs-max_steps curve, e.g. 1,2,4,8,16,32 (default: powers of two "
                        "up to 2 × max-steps); 'none' evaluates only up to max-steps")
    p.add_argument("--early-exit", action="store_true",
                   help="make the ACT (Q-head halting) results the headline instead of the full-budget ones")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate N rows drawn at random over the split (seed 0, the same rows every time; ARC: the "
                        "first N tasks)")
    p.add_argument("--pass-k", default="1,2", help="ARC: the K of pass@K (default 1,2)")
    p.add_argument("--protocol", default=None, metavar="hrm|trm",
                   help="ARC scoring of the model's paper (default: the model's type): hrm = a task counts if all its "
                        "test inputs are solved, one checkpoint; trm = 1 / (test inputs) per solved input, votes "
                        "aggregated over every checkpoint of a run folder")
    p.add_argument("--num-examples", type=int, default=4, help="puzzles drawn in examples.png (0 = none)")
    p.add_argument("--output-dir", default=None, help="where results.json and the plots go (default: ./eval-<split>)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--num-candidates", default=None,
                   help="candidate search: K values to report, e.g. 1,2,4,8 (runs solve with the largest K at the "
                        "headline budget, early exit as --early-exit)")
    p.add_argument("--candidate-noise", type=float, default=1.0,
                   help="std of the Gaussian noise on the initial states of candidates 1..K-1 (default 1.0)")
    p.add_argument("--candidate-seed", type=int, default=0, help="seed of the candidates' noise (default 0)")
    p.add_argument("--search", nargs="+", metavar="KEY=VALUES",
                   help="test-time search grid instead of the standard evaluation, e.g. depth=4,16,64 breadth=1,8,32 "
                        "kind=noise,symmetry selector=q,vote,residual,valid (keys: depth, breadth, kind = noise | "
                        "restart | step_noise | symmetry | sample or several joined by '+', selector, h_cycles, "
                        "l_cycles, early_exit, noise, step_noise, temperature, symmetries, seed); --batch-size "
                        "bounds the trajectories per forward")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p



def _summary(results: dict) -> str:
    lines = [f"task {results['task']}  rows {results['num_rows']}  max_steps {results['max_steps']}  "
             f"headline mode {results['headline_mode']}",
             f"exact accuracy  {100 * results['exact_accuracy']:.2f}%   token accuracy "
             f"{100 * results['token_accuracy']:.2f}%   Q-halt accuracy {100 * results['q_halt_accuracy']:.2f}%   "
             f"mean steps {results['mean_steps']:.2f}",
             f"ACT early exit: exact {100 * results['act']['exact_accuracy']:.2f}% with mean steps "
             f"{results['act']['mean_steps']:.2f}  histogram {results['act']['steps_histogram']}",
             "accuracy vs max_steps (all segments / ACT): " + ", ".join(
                 f"{b}: {100 * f:.1f}/{100 * a:.1f}" for b, f, a in zip(results["scaling"]["max_steps"],
                                                                       results["scaling"]["full"],
                                                                       results["scaling"]["act"]))]
    if "by_depth" in results:
        depth = "path length, moves" if results["task"] == "maze" else "propagation rounds; 'search' = singles stall"
        lines.append(f"exact by depth bucket ({depth}): " + ", ".join(
            f"{name}: {100 * b['exact_accuracy']:.1f}% of {b['num_puzzles']}" for name, b in results["by_depth"].items()))
    if "candidates" in results:
        c = results["candidates"]
        for pick in ("q_head", "validity", "any"):
            if pick in c:
                lines.append(f"candidates (noise {c['noise']}), exact by {pick}: " + ", ".join(
                    f"K={k}: {100 * a:.1f}%" for k, a in zip(c["num_candidates"], c[pick])))
    if "arc" in results:
        arc = results["arc"]
        ks = [k for k in arc if k.startswith("pass@")]
        lines.append(f"ARC tasks {arc['num_tasks']} (test inputs {arc['num_test_inputs']}), protocol "
                     f"{arc['protocol']}" + (f" voting over checkpoints {results['aggregated_checkpoints']}"
                                             if "aggregated_checkpoints" in results else "") + ": "
                     + "  ".join(f"{k} {100 * arc[k]:.2f}%" for k in ks)
                     + (f"  official fractional score {100 * arc['official_score']:.2f}%"
                        if "official_score" in arc else ""))
    return "\n".join(lines)



def _search_main(args, model, ds, meta: dict, arrays: dict, output_dir: Path) -> int:
    from modeling_hrm.search import format_table

    try:
        result = evaluate_search(model, ds, meta, arrays, args.search, batch_size=args.batch_size, limit=args.limit,
                                 output_dir=output_dir, name=args.model)
    except (ValueError, OSError, RuntimeError) as err:
        if args.debug:
            raise
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"hrm-evaluate: error while evaluating: {text}", file=sys.stderr)
        return 1
    print(f"task {result['task']}  rows {result['num_rows']}  test-time search grid")
    print(format_table(result))
    print(f"results and plot written to {output_dir}/ (search.json, search_accuracy_vs_flops.png)")
    return 0


def check_resources(config, num_rows: int, *, max_steps: int, batch_size: int, candidates: list[int] | None,
                    device) -> None:
    """Refuse, before any work, an evaluation whose memory estimate exceeds what is free (one-line `ValueError`,
    exit 2): one forward of `--batch-size` rows (modeling_hrm.search's per-trajectory estimate) on the device, and
    the per-segment records of every row (and the candidates' predictions) on the host."""
    from dataset_scripts.validation import check_memory
    from modeling_hrm.search import SearchSetting, bytes_per_trajectory

    per_row = bytes_per_trajectory(config, SearchSetting())
    rows = min(batch_size, num_rows)
    check_memory(rows * per_row, f"--batch-size {batch_size} ({rows} rows in one forward)", "lower --batch-size",
                 device)
    records = num_rows * (13 * max_steps + 2 * config.seq_len)
    check_memory(records, f"recording {max_steps} segments of {num_rows} rows", "lower --max-steps or "
                 "--scaling-steps, or evaluate fewer rows (--limit)", "cpu")
    if candidates:
        top = max(candidates)
        check_memory(top * per_row, f"--num-candidates {top} (its trajectories in one forward)",
                     "lower --num-candidates", device)
        check_memory(num_rows * top * (config.seq_len + 4), f"the predictions of {top} candidates for {num_rows} "
                     f"rows", "lower --num-candidates or evaluate fewer rows (--limit)", "cpu")


def check_arguments(args: argparse.Namespace) -> None:
    """Reject option values that cannot work, before the model and data load (one-line `ValueError`)."""
    for name, minimum in (("max_steps", 1), ("batch_size", 1), ("limit", 1), ("num_examples", 0)):
        value = getattr(args, name)
        if value is not None and value < minimum:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must be >= {minimum}, got {value}"
                             + (" (leave it out to evaluate every row)" if name == "limit" else ""))
    if args.scaling_steps is not None and args.scaling_steps.lower() != "none":
        _parse_int_list(args.scaling_steps, "--scaling-steps")
    _parse_int_list(args.pass_k, "--pass-k")
    if args.num_candidates is not None:
        _parse_int_list(args.num_candidates, "--num-candidates")
    if args.protocol is not None and args.protocol not in PROTOCOLS:
        raise ValueError(f"--protocol {args.protocol}: unknown; expected one of {', '.join(PROTOCOLS)}")
    if not np.isfinite(args.candidate_noise) or args.candidate_noise < 0:
        raise ValueError(f"--candidate-noise must be a finite number >= 0, got {args.candidate_noise}")
    if args.search is not None:
        from modeling_hrm.search import parse_grid

        parse_grid(args.search)
        if args.num_candidates is not None:
            raise ValueError("--search replaces the standard evaluation; leave out --num-candidates (breadth=K "
                             "kind=noise is the same candidate search)")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError("--search runs in one process; launch hrm-evaluate without torchrun / accelerate")
    if args.output_dir is not None:
        out = Path(args.output_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--output-dir {out} is a file, not a folder")
        if any(p.exists() and not p.is_dir() for p in out.parents):
            raise ValueError(f"--output-dir {out}: a parent of it is a file")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `hrm-evaluate`: 0 on success, 2 for a bad option / model / dataset, 1 on a failure
    while evaluating."""
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        pass_k = _parse_int_list(args.pass_k, "--pass-k")
        from modeling_hrm.loading import load_pretrained_model, resolve_device

        import torch

        accelerator = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import Accelerator

            accelerator = Accelerator()
            device = accelerator.device
        else:
            device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        run = run_checkpoints(args.model)  # a training run folder: its checkpoints, oldest first
        model = load_pretrained_model(run[-1] if run else args.model, device)
        headline = args.max_steps or model.config.halt_max_steps
        if args.scaling_steps is None:
            budgets = default_budgets(headline)
        elif args.scaling_steps.lower() == "none":
            budgets = [b for b in default_budgets(headline) if b <= headline]
        else:
            budgets = _parse_int_list(args.scaling_steps, "--scaling-steps")
        ds, meta, arrays = load_split(args.dataset, args.split)
        check_model_fits_dataset(model.config, meta, arrays)
        if not len(arrays["inputs"]):
            raise ValueError(f"split {args.split!r} of {args.dataset} has no rows")
        if args.search is None:  # (a search splits its trajectories into chunks that fit by itself)
            check_resources(model.config, min(len(arrays["inputs"]), args.limit or len(arrays["inputs"])),
                            max_steps=max(budgets + [headline]), batch_size=args.batch_size, device=device,
                            candidates=_parse_int_list(args.num_candidates, "--num-candidates")
                            if args.num_candidates else None)
        if args.search is not None:  # a setting the model or task cannot take fails here, before any work
            from modeling_hrm.search import grid_settings, parse_grid

            shape = (int(meta["grid_height"]), int(meta["grid_width"])) if meta.get("task") == "maze" else None
            grid_settings(parse_grid(args.search), model.config, meta.get("task"), shape)
        protocol = resolve_protocol(args.protocol, model.config)
        # TRM's aggregated voting: every checkpoint of a run votes (ARC; other tasks score one checkpoint).
        checkpoints = run if protocol == "trm" and meta.get("task") == "arc" else []
        if run and not checkpoints:
            model = load_pretrained_model(args.model, device)  # one model: the run's final one
    except (ValueError, OSError, KeyError) as err:
        if args.debug:
            raise
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"hrm-evaluate: error: {text}", file=sys.stderr)
        return 2
    output_dir = Path(args.output_dir or f"eval-{args.split}")
    options = dict(max_steps=headline, budgets=budgets, early_exit_headline=args.early_exit,
                   batch_size=args.batch_size, pass_k=pass_k, num_examples=args.num_examples, limit=args.limit,
                   accelerator=accelerator, candidates=_parse_int_list(args.num_candidates, "--num-candidates")
                   if args.num_candidates else None, candidate_noise=args.candidate_noise,
                   candidate_seed=args.candidate_seed, protocol=protocol)
    if args.search is not None:
        return _search_main(args, model, ds, meta, arrays, output_dir)
    try:
        if checkpoints:
            results = evaluate_run_checkpoints(checkpoints, ds, meta, arrays, device=device, output_dir=output_dir,
                                               **options)
        else:
            results = evaluate_checkpoint(model, ds, meta, arrays, output_dir=output_dir, **options)
    except (ValueError, OSError, RuntimeError) as err:  # e.g. out of memory, disk full: a failure during work
        if args.debug:
            raise
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"hrm-evaluate: error while evaluating: {text}", file=sys.stderr)
        return 1
    if accelerator is None or accelerator.is_main_process:
        print(_summary(results))
        print(f"results and plots written to {output_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())